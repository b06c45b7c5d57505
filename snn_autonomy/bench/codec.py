"""`snn-autonomy bench codec`: EVT3/EVT2 decode and encode throughput on one core.

Measured on a synthetic stream with the structure of camera output (half of the
events in same-row runs that EVT3 packs into vector words, half isolated) and on
the recordings in the data directory when present. Figures are medians of
repeated runs, in millions of events per second, single thread.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..events.bag import read_event_packets
from ..events.codec import encode, make_decoder
from ..events.raw import raw_data
from ..events.synthetic import edge_stream
from ..paths import data_dir as recordings_dir
from .timing import median, repeat_seconds

BUDGET_EVT3_DECODE_MEV_S = 100.0


def _decode_rate(encoding: str, data, width: int, height: int, repeats: int) -> Dict[str, float]:
    n_events = len(make_decoder(encoding, width, height).decode(data))

    def run() -> None:
        make_decoder(encoding, width, height).decode(data)

    secs = median(repeat_seconds(run, repeats))
    word = 2 if encoding == "evt3" else 4
    n_words = len(data) // word
    return {"mev_s": round(n_events / secs / 1e6, 1), "mwords_s": round(n_words / secs / 1e6, 1),
            "events": n_events, "words_per_event": round(n_words / max(n_events, 1), 3)}


def run_codec_bench(n_events: int = 2_000_000, repeats: int = 7, data_dir: Optional[Path] = None) -> Dict[str, Any]:
    stream = edge_stream(n_events, seed=1)
    w, h = stream.width, stream.height
    evt3 = np.frombuffer(encode(stream, "evt3"), dtype=np.uint8)
    evt2 = np.frombuffer(encode(stream, "evt2"), dtype=np.uint8)
    d3 = _decode_rate("evt3", evt3, w, h, repeats)
    d2 = _decode_rate("evt2", evt2, w, h, repeats)
    enc_secs = median(repeat_seconds(lambda: encode(stream, "evt3"), repeats))
    result: Dict[str, Any] = {
        "evt3_decode_mev_s": d3["mev_s"],
        "evt3_encode_mev_s": round(len(stream) / enc_secs / 1e6, 1),
        "evt2_decode_mev_s": d2["mev_s"],
        "stream": {"events": len(stream), "sensor": f"{w}x{h}", "vector_fraction": 0.5,
                   "evt3_words_per_event": d3["words_per_event"], "evt2_words_per_event": d2["words_per_event"],
                   "evt3_decode_mwords_s": d3["mwords_s"]},
        "budget": {"evt3_decode_mev_s_min": BUDGET_EVT3_DECODE_MEV_S,
                   "met": d3["mev_s"] >= BUDGET_EVT3_DECODE_MEV_S},
        "threads": 1,
        "recordings": {},
    }
    data_dir = data_dir or recordings_dir()
    if data_dir is not None:
        bag = data_dir / "evt3_trigger_bag"
        if bag.exists():
            pkts = [p for _, _, p in read_event_packets(bag)]
            blob = np.frombuffer(b"".join(p.events for p in pkts), dtype=np.uint8)
            r = _decode_rate("evt3", blob, pkts[0].width, pkts[0].height, repeats)
            result["recordings"][bag.name] = {"evt3_decode_mev_s": r["mev_s"], "evt3_decode_mwords_s": r["mwords_s"],
                                              "words_per_event": r["words_per_event"], "events": r["events"]}
        for raw in sorted((data_dir / "raw").glob("*.raw")):
            header, blob = raw_data(raw)
            enc = header.encoding
            r = _decode_rate(enc, blob, header.width, header.height, repeats)
            result["recordings"][raw.name] = {f"{enc}_decode_mev_s": r["mev_s"], "events": r["events"],
                                              "words_per_event": r["words_per_event"]}
    return result
