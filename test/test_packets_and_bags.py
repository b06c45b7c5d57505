"""EventPacket streams and rosbag2 bags (sqlite3 in, MCAP out)."""
from __future__ import annotations

import numpy as np
import pytest

from snn_autonomy.events import EventBatch, EventFormatError, PacketEncoder, PacketStreamDecoder
from snn_autonomy.events.bag import McapBagWriter, bag_topics, packet_to_dict, read_event_packets
from snn_autonomy.events.packet import EVENT_PACKET_MSG, EVENT_PACKET_TYPE
from snn_autonomy.events.synthetic import edge_stream
from conftest import ROOT


def test_packet_definition_matches_interface_file():
    msg_file = ROOT / "interfaces" / "event_camera_msgs" / "msg" / "EventPacket.msg"
    fields = [line.split("#")[0].strip() for line in msg_file.read_text().splitlines()]
    assert [f for f in fields if f] == EVENT_PACKET_MSG.strip().splitlines()


def _packets(n_packets=20, seed=0):
    stream = edge_stream(30_000, width=320, height=240, seed=seed)
    enc = PacketEncoder(320, 240)
    edges = np.linspace(stream.t_first, stream.t_last + 1, n_packets + 1).astype(np.int64)
    return stream, [enc.encode(stream.time_window(a, b), stamp_ns=int(b) * 1000) for a, b in zip(edges[:-1], edges[1:])]


def test_packet_stream_round_trip_and_lost_packets():
    stream, pkts = _packets()
    dec = PacketStreamDecoder()
    out = [dec.decode(p) for p in pkts]
    np.testing.assert_array_equal(np.concatenate([b.events for b in out]), stream.events)
    # Packets are self-contained: losing some loses only their events, and is counted.
    dec2 = PacketStreamDecoder()
    kept = [p for i, p in enumerate(pkts) if i % 3 != 1]
    got = np.concatenate([dec2.decode(p).events for p in kept])
    want = np.concatenate([b.events for i, b in enumerate(out) if i % 3 != 1])
    np.testing.assert_array_equal(got, want)
    # a gap is seen when the next packet arrives: losses after the last kept one are not
    assert dec2.counters.lost_packets == kept[-1].seq + 1 - len(kept)


def test_bad_packets_are_counted_not_raised():
    _, pkts = _packets(4)
    dec = PacketStreamDecoder()
    p = pkts[0]
    bad = [
        type(p)(**{**p.__dict__, "encoding": "mono"}),
        type(p)(**{**p.__dict__, "is_bigendian": True}),
        type(p)(**{**p.__dict__, "width": 0}),
    ]
    assert dec.decode(bad[0]) is None
    assert "unsupported event encoding 'mono'" in dec.counters.last_problem
    assert dec.decode(bad[1]) is None and dec.decode(bad[2]) is None
    c = dec.counters
    assert (c.rejected_encoding, c.rejected_big_endian, c.rejected_geometry) == (1, 1, 1)
    assert dec.decode(pkts[1]) is not None
    # a geometry change restarts the decoder and is counted
    q = type(p)(**{**pkts[2].__dict__, "width": 640, "height": 480})
    assert dec.decode(q) is not None and dec.counters.geometry_changes == 1


def test_read_sqlite_bag(evt3_bag):
    topics = bag_topics(evt3_bag)
    assert [(t.name, t.msgtype, t.count) for t in topics] == [("/event_camera/events", EVENT_PACKET_TYPE, 105)]
    pkts = [p for _, _, p in read_event_packets(evt3_bag)]
    assert len(pkts) == 105 and {p.encoding for p in pkts} == {"evt3"}
    assert all(b.seq == a.seq + 1 for a, b in zip(pkts, pkts[1:]))


def test_wrong_topic_or_type_is_a_clear_error(evt3_bag):
    with pytest.raises(EventFormatError, match="not in bag"):
        list(read_event_packets(evt3_bag, "/nope"))


def test_mcap_write_then_read_back(tmp_path, evt3_bag):
    out = tmp_path / "rec"
    src = list(read_event_packets(evt3_bag))
    with McapBagWriter(out, qos_sensor_data_topics=["/cam/events"]) as bag:
        for _, t_ns, pkt in src:
            bag.write("/cam/events", EVENT_PACKET_TYPE, packet_to_dict(pkt), t_ns)
        bag.write("/cam/status", "std_msgs/msg/String", {"data": "ok"}, src[-1][1])
    assert (out / "metadata.yaml").exists() and (out / "rec_0.mcap").exists()
    names = {t.name: t.count for t in bag_topics(out)}
    assert names == {"/cam/events": 105, "/cam/status": 1}
    back = [p for _, _, p in read_event_packets(out, "/cam/events")]
    assert [p.events for p in back] == [p.events for _, _, p in src]
    assert [p.stamp_ns for p in back] == [p.stamp_ns for _, _, p in src]
    with pytest.raises(EventFormatError, match="String"):
        list(read_event_packets(out, "/cam/status"))


def test_mcap_writer_refuses_to_overwrite(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "x").write_text("keep me")
    with pytest.raises(EventFormatError, match="not empty"):
        McapBagWriter(tmp_path / "rec")


def _older_metadata(bag, storage: str = "", files=None) -> None:
    """Rewrite a bag's metadata.yaml as older writers leave it: no storage, no file lists."""
    import yaml

    meta = bag / "metadata.yaml"
    doc = yaml.safe_load(meta.read_text())
    info = doc["rosbag2_bagfile_information"]
    info["storage_identifier"] = storage
    info["files"] = []
    info["relative_file_paths"] = files if files is not None else []
    meta.write_text(yaml.safe_dump(doc))


def test_bags_with_older_metadata_are_read_by_their_files_extension(tmp_path, evt3_bag):
    """`ros2 bag` reads a bag whose metadata names no storage and no files by the data files'
    extension; so does every reader here, sqlite3 and MCAP, and a bag nothing can be told of is
    one line and exit 2 from `events info` and `replay`."""
    import shutil
    import subprocess
    import sys

    expected = [p.events for _, _, p in read_event_packets(evt3_bag)]
    sqlite = shutil.copytree(evt3_bag, tmp_path / "sqlite")
    _older_metadata(sqlite)
    assert [p.events for _, _, p in read_event_packets(sqlite)] == expected
    mcap = tmp_path / "mcap"
    with McapBagWriter(mcap) as bag:
        for topic, t_ns, pkt in read_event_packets(evt3_bag):
            bag.write(topic, EVENT_PACKET_TYPE, packet_to_dict(pkt), t_ns)
    _older_metadata(mcap, files=["gone_0.mcap"])      # and a file list that names a file not there
    assert [p.events for _, _, p in read_event_packets(mcap)] == expected
    assert bag_topics(mcap)[0].count == len(expected)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  version: 5\n  storage_identifier: ''\n")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed\n")
    for bag in (empty, broken):
        for args in (["events", "info", bag, "--json"], ["replay", "--bag", bag]):
            p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", *map(str, args)], capture_output=True,
                               text=True, timeout=120)
            lines = p.stderr.strip().splitlines()
            assert p.returncode == 2 and len(lines) == 1 and "cannot open bag" in lines[0], (args, p.stderr)


@pytest.mark.parametrize("encoding", ["libcaer_cmp", "libcaer"])
def test_events_info_and_replay_read_libcaer_bags(tmp_path, encoding):
    """A bag as libcaer_driver records it: `events info` counts every event at its absolute time
    (time_base + relative time), and `replay` goes through it."""
    import json
    import subprocess
    import sys

    stream = edge_stream(6000, width=346, height=260, seed=8)
    enc = PacketEncoder(346, 260, encoding=encoding)
    bag = tmp_path / encoding
    with McapBagWriter(bag) as w:
        for k, a in enumerate(range(0, len(stream), 500)):
            part = EventBatch(stream.events[a:a + 500], 346, 260)
            w.write("/dvxplorer/events", EVENT_PACKET_TYPE, packet_to_dict(enc.encode(part, 10**9 + k)), 10**9 + k)
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "events", "info", str(bag), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["encoding"] == encoding and info["width"] == 346
    assert info["t_first_us"] == int(stream.t_first) and info["t_last_us"] == int(stream.t_last)
    assert info["stats"]["time_backwards"] == 0 and info["events"] == len(stream)
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "replay", "--bag", str(bag)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
