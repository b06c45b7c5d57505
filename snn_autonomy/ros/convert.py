"""Message <-> core conversions (the one place that knows both)."""
from __future__ import annotations

from builtin_interfaces.msg import Time
from event_camera_msgs.msg import EventPacket

from ..events.packet import EventPacketData


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def packet_to_msg(pkt: EventPacketData) -> EventPacket:
    msg = EventPacket()
    msg.header.stamp = ns_to_stamp(pkt.stamp_ns)
    msg.header.frame_id = pkt.frame_id
    msg.height = int(pkt.height)
    msg.width = int(pkt.width)
    msg.seq = int(pkt.seq)
    msg.time_base = int(pkt.time_base)
    msg.encoding = pkt.encoding
    msg.is_bigendian = bool(pkt.is_bigendian)
    msg.events = bytes(pkt.events)
    return msg


def msg_to_packet(msg: EventPacket) -> EventPacketData:
    events = msg.events
    # rclpy hands uint8[] as array.array('B') (or bytes); both expose the buffer.
    data = events.tobytes() if hasattr(events, "tobytes") else bytes(events)
    return EventPacketData(
        stamp_ns=stamp_to_ns(msg.header.stamp), frame_id=msg.header.frame_id, width=int(msg.width),
        height=int(msg.height), seq=int(msg.seq), time_base=int(msg.time_base), encoding=str(msg.encoding),
        is_bigendian=bool(msg.is_bigendian), events=data)
