"""Summaries of recordings (RAW and AEDAT4 files, rosbag2 directories of EventPackets)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from .bag import bag_topics, read_event_packets
from .errors import EventFormatError
from .packet import EVENT_PACKET_TYPE, PacketStreamDecoder
from .files import iter_file, read_file_header


def recording_info(path: Path, topic: str | None = None) -> Dict[str, Any]:
    """Decode a whole recording and summarise it.

    Keys: events, triggers, t_first_us, t_last_us, duration_ms, width, height, encoding,
    kind ("raw" or "bag"), packets (bags), topic (bags), stats (decoder counters).
    """
    path = Path(path)
    if path.is_dir():
        return _bag_info(path, topic)
    if path.is_file():
        return _raw_info(path)
    raise EventFormatError(f"{path}: no such file or bag directory")


def _span(first, last) -> Dict[str, Any]:
    return {"t_first_us": first, "t_last_us": last,
            "duration_ms": None if first is None else round((last - first) / 1000.0, 3)}


def _raw_info(path: Path) -> Dict[str, Any]:
    header = read_file_header(path)
    n = n_tr = 0
    first = last = None
    stats = None
    for batch, stats in iter_file(path):
        n += len(batch)
        n_tr += len(batch.triggers)
        if len(batch):
            first = batch.t_first if first is None else first
            last = batch.t_last
    return {"kind": "aedat4" if header.encoding == "aedat4" else "raw", "path": str(path), "events": n, "triggers": n_tr, **_span(first, last),
            "width": header.width, "height": header.height, "encoding": header.encoding,
            "geometry_source": header.geometry_source, "stats": stats.as_dict() if stats else {}}


def _bag_info(path: Path, topic: str | None) -> Dict[str, Any]:
    if topic is None:
        topics = [t.name for t in bag_topics(path) if t.msgtype == EVENT_PACKET_TYPE]
        if len(topics) > 1:
            raise EventFormatError(f"bag has several EventPacket topics ({', '.join(topics)}); choose one with --topic")
        topic = topics[0] if topics else None
    decoder = PacketStreamDecoder()
    n = n_tr = packets = 0
    first = last = None
    width = height = encoding = None
    for _, _, pkt in read_event_packets(path, topic):
        packets += 1
        width, height, encoding = pkt.width, pkt.height, pkt.encoding
        batch = decoder.decode(pkt)
        if batch is None:
            continue
        n += len(batch)
        n_tr += len(batch.triggers)
        if len(batch):
            first = batch.t_first if first is None else first
            last = batch.t_last
    return {"kind": "bag", "path": str(path), "topic": topic, "packets": packets, "events": n,
            "triggers": n_tr, **_span(first, last), "width": width, "height": height, "encoding": encoding,
            "stats": decoder.stats.as_dict(), "stream": decoder.counters.as_dict()}
