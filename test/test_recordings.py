"""The real recordings decode to their verified counts, event for event like the reference."""
from __future__ import annotations

import numpy as np
import pytest

from reference_decoders import RefEvt2, RefEvt3
from snn_autonomy.events.bag import read_event_packets
from snn_autonomy.events.info import recording_info
from snn_autonomy.events.packet import PacketStreamDecoder
from snn_autonomy.events.raw import raw_data, read_raw

EXPECTED_RAW = {
    # name: (events, span in ms, width, height), from the data MANIFEST
    "faery_evt2.raw": (521_252, 95.9, 640, 480),
    "expelliarmus_evt2_sample.raw": (539_481, 50.0, 640, 480),
}


def _columns(batch):
    return list(zip(batch.x.tolist(), batch.y.tolist(), batch.t.tolist(), batch.p.tolist()))


def test_evt3_bag_counts(evt3_bag):
    info = recording_info(evt3_bag)
    assert info["events"] == 82_469
    assert info["triggers"] == 2
    assert (info["width"], info["height"], info["encoding"]) == (1280, 720, "evt3")
    assert info["packets"] == 105
    assert info["stats"]["dropped_events"] == 0
    assert info["t_first_us"] < info["t_last_us"]


def test_evt3_bag_matches_reference_event_by_event(evt3_bag):
    dec = PacketStreamDecoder()
    ref = RefEvt3(1280, 720)
    events, triggers = [], []
    for _, _, pkt in read_event_packets(evt3_bag):
        batch = dec.decode(pkt)
        ref.feed(pkt.events)
        events += _columns(batch)
        triggers += batch.triggers.tolist()
    assert events == ref.events
    assert triggers == ref.triggers
    assert len(events) == 82_469
    s = dec.stats.as_dict()
    for k, v in ref.c.items():
        assert s[k] == v, k


@pytest.mark.parametrize("name", sorted(EXPECTED_RAW))
def test_raw_counts_and_span(raw_files, name):
    n, span_ms, w, h = EXPECTED_RAW[name]
    info = recording_info(raw_files[name])
    assert info["events"] == n
    assert info["duration_ms"] == pytest.approx(span_ms, abs=0.05)
    assert (info["width"], info["height"], info["encoding"]) == (w, h, "evt2")


@pytest.mark.parametrize("name", sorted(EXPECTED_RAW))
def test_raw_matches_reference_event_by_event(raw_files, name):
    batch, stats = read_raw(raw_files[name])
    header, blob = raw_data(raw_files[name])
    ref = RefEvt2(header.width, header.height)
    ref.feed(blob.tobytes())
    assert len(batch) == len(ref.events)
    got = np.stack([batch.x, batch.y, batch.t, batch.p], axis=1).astype(np.int64)
    np.testing.assert_array_equal(got, np.array(ref.events, dtype=np.int64))
    for k, v in ref.c.items():
        assert getattr(stats, k) == v, k


def test_raw_chunked_decoding_equals_whole(raw_files):
    """State carries across chunks: odd chunk sizes give the same events."""
    from snn_autonomy.events.raw import iter_raw

    path = raw_files["faery_evt2.raw"]
    whole, _ = read_raw(path)
    parts = [b for b, _ in iter_raw(path, chunk_bytes=4 * 9973)]
    np.testing.assert_array_equal(np.concatenate([p.events for p in parts]), whole.events)
