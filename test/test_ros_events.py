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
