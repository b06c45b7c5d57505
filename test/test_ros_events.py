"""EventPackets over real rclpy / DDS: what the core encodes arrives and decodes intact."""
from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from event_camera_msgs.msg import EventPacket  # noqa: E402

from snn_autonomy.events import PacketEncoder, PacketStreamDecoder  # noqa: E402
from snn_autonomy.events.synthetic import edge_stream  # noqa: E402
from snn_autonomy.ros.convert import msg_to_packet, packet_to_msg  # noqa: E402


def test_packet_msg_round_trip():
    stream = edge_stream(2000, width=320, height=240, seed=9)
    pkt = PacketEncoder(320, 240, frame_id="cam").encode(stream, stamp_ns=1_700_000_000_123_456_789)
    back = msg_to_packet(packet_to_msg(pkt))
    assert back == pkt


def test_event_packets_over_dds():
    stream = edge_stream(20_000, width=320, height=240, seed=11)
    enc = PacketEncoder(320, 240)
    edges = np.linspace(stream.t_first, stream.t_last + 1, 11).astype(np.int64)
    pkts = [enc.encode(stream.time_window(a, b), stamp_ns=int(b) * 1000) for a, b in zip(edges[:-1], edges[1:])]
    rclpy.init()
    try:
        pub_node = rclpy.create_node("test_event_pub")
        sub_node = rclpy.create_node("test_event_sub")
        received = []
        # Reliable on both ends for the test, so no packet may be lost.
        sub_node.create_subscription(EventPacket, "events", lambda m: received.append(msg_to_packet(m)), 100)
        pub = pub_node.create_publisher(EventPacket, "events", 100)
        deadline = time.monotonic() + 10
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(sub_node, timeout_sec=0.05)
        assert pub.get_subscription_count() == 1
        for p in pkts:
            pub.publish(packet_to_msg(p))
        while len(received) < len(pkts) and time.monotonic() < deadline:
            rclpy.spin_once(sub_node, timeout_sec=0.05)
        assert [p.seq for p in received] == list(range(len(pkts)))
        dec = PacketStreamDecoder()
        got = np.concatenate([dec.decode(p).events for p in received])
        np.testing.assert_array_equal(got, stream.events)
    finally:
        rclpy.try_shutdown()


def test_every_encoding_of_the_camera_drivers_reaches_a_decision():
    """A perception node fed EventPackets as metavision_driver (evt3, evt2) and libcaer_driver
    (libcaer_cmp, libcaer) publish them: each stream, in turn on one topic, is decided on."""
    from snn_autonomy_msgs.msg import Perception

    from ros_helpers import PERCEPTION, NodeProcess, Probe
    from snn_autonomy.events.batch import EventBatch
    from snn_autonomy.ros import qos

    probe = Probe("encodings_probe")
    got = []
    probe.node.create_subscription(Perception, "/cam/perception", got.append, qos.COMMAND)
    pub = probe.node.create_publisher(EventPacket, "/cam/events", qos.SENSOR)
    node = NodeProcess(PERCEPTION, namespace="/cam").start()
    rng = np.random.default_rng(2)
    t_us, stamp_ns = 5_000_000, 1_700_000_000 * 10**9
    try:
        probe.spin_until(lambda: pub.get_subscription_count() > 0, 60, "perception to subscribe")
        decided = {}
        for encoding in ("evt3", "evt2", "libcaer_cmp", "libcaer"):
            enc = PacketEncoder(128, 96, encoding=encoding)
            n0 = len(got)
            deadline = time.monotonic() + 60
            while len(got) < n0 + 3 and time.monotonic() < deadline:
                k = 400                       # 2 ms of a busy scene per packet
                b = EventBatch.from_arrays(rng.integers(0, 128, k), rng.integers(0, 96, k),
                                           np.sort(rng.integers(t_us, t_us + 2000, k)), rng.integers(0, 2, k), 128, 96)
                t_us += 2000
                stamp_ns += 2_000_000
                pub.publish(packet_to_msg(enc.encode(b, stamp_ns)))
                probe.spin_for(0.01)
            decided[encoding] = len(got) - n0
        assert all(n >= 3 for n in decided.values()), (decided, node.log()[-3000:])
    finally:
        code = node.stop()
        probe.close()
    assert code == 0, node.log()[-3000:]
