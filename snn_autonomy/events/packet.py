"""EventPacket in plain Python, and the stream decoder/encoder around it.

`EventPacketData` mirrors event_camera_msgs/msg/EventPacket field for field; the
ROS layer converts it to and from the message class, bag readers produce it, so
everything below `ros/` works without rclpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .batch import EventBatch
from .errors import EventFormatError, UnsupportedEncodingError
from .stats import DecodeStats
from .words import WordStreamDecoder

# The public definition (ros-event-camera/event_camera_msgs), as carried in bags.
EVENT_PACKET_TYPE = "event_camera_msgs/msg/EventPacket"
EVENT_PACKET_MSG = """\
std_msgs/Header header
uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""


@dataclass
class EventPacketData:
    """One EventPacket. stamp_ns is header.stamp in nanoseconds."""

    stamp_ns: int
    frame_id: str
    width: int
    height: int
    seq: int
    time_base: int
    encoding: str
    is_bigendian: bool
    events: bytes = b""

    @property
    def nbytes(self) -> int:
        return len(self.events)


class PacketEncoder:
    """Encodes EventBatches into consecutive EventPackets of one stream.

    Every packet is self-contained (see evt3.encode_evt3). `time_base` carries the
    sensor time of the packet's first event in nanoseconds (0 for an empty packet);
    the public message leaves it undefined for evt3 and decoders here do not need it.
    """

    def __init__(self, width: int, height: int, frame_id: str = "camera_optical_frame",
                 encoding: str = "evt3") -> None:
        self.width = int(width)
        self.height = int(height)
        self.frame_id = frame_id
        self.encoding = encoding
        self.seq = 0
        from .codec import encode      # numba: loaded where events are coded, once per encoder
        self._encode_events = encode

    def encode(self, batch: EventBatch, stamp_ns: int) -> EventPacketData:
        if (batch.width, batch.height) != (self.width, self.height):
            raise EventFormatError(
                f"batch is {batch.width}x{batch.height}, stream is {self.width}x{self.height}")
        pkt = EventPacketData(
            stamp_ns=int(stamp_ns), frame_id=self.frame_id, width=self.width, height=self.height,
            seq=self.seq, time_base=0 if len(batch) == 0 else int(batch.t_first) * 1000,
            encoding=self.encoding, is_bigendian=False, events=self._encode_events(batch, self.encoding))
        self.seq += 1
        return pkt


@dataclass
class StreamCounters:
    """Packet-level problems of one stream (event-level ones are in DecodeStats)."""

    packets: int = 0
    lost_packets: int = 0            # gaps in `seq`
    rejected_encoding: int = 0       # packets of an encoding we do not decode
    rejected_big_endian: int = 0     # evt2/evt3 are little-endian by definition
    rejected_geometry: int = 0       # width/height of 0 or beyond 2048
    geometry_changes: int = 0        # decoder restarted for a new sensor size
    seq_restarts: int = 0            # seq went backwards: the driver restarted
    first_seq: int = -1              # seq of the first packet heard (a driver counts from 0: the
                                     # packets it sent before this subscriber joined)
    last_problem: str = ""

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


class PacketStreamDecoder:
    """Decodes the EventPackets of one topic in order, carrying state across them.

    Never raises on packet content: packets it cannot decode are counted in
    `counters` with a message in `counters.last_problem`; event-level drops are in
    `stats`. `decode` returns None for a rejected packet.
    """

    def __init__(self) -> None:
        self.counters = StreamCounters()
        self._decoder: Optional[WordStreamDecoder] = None
        self._key: Optional[tuple] = None
        self._last_seq: Optional[int] = None
        self._retired_stats: list = []

    @property
    def stats(self) -> DecodeStats:
        """Event-level counts over the whole stream, across decoder restarts."""
        current = [self._decoder.stats] if self._decoder else []
        return sum(self._retired_stats + current, DecodeStats())

    def _reject(self, counter: str, message: str) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.counters.last_problem = message

    def decode(self, pkt: EventPacketData) -> Optional[EventBatch]:
        c = self.counters
        c.packets += 1
        if pkt.is_bigendian:
            self._reject("rejected_big_endian", f"packet {pkt.seq}: is_bigendian=true is not valid for {pkt.encoding!r}")
            return None
        if not (0 < pkt.width <= 2048 and 0 < pkt.height <= 2048):
            self._reject("rejected_geometry", f"packet {pkt.seq}: sensor size {pkt.width}x{pkt.height} outside 1..2048")
            return None
        key = (str(pkt.encoding).lower(), int(pkt.width), int(pkt.height))
        if key != self._key:
            try:
                from .codec import make_decoder

                decoder = make_decoder(pkt.encoding, pkt.width, pkt.height)
            except UnsupportedEncodingError as exc:
                self._reject("rejected_encoding", f"packet {pkt.seq}: {exc}")
                return None
            if self._decoder is not None:
                self._retired_stats.append(self._decoder.stats)
                c.geometry_changes += 1
                c.last_problem = f"packet {pkt.seq}: stream changed to {key[0]} {key[1]}x{key[2]}; decoder restarted"
            self._decoder, self._key = decoder, key
        if self._last_seq is None:
            c.first_seq = int(pkt.seq)
        else:
            if pkt.seq > self._last_seq + 1:
                c.lost_packets += int(pkt.seq - self._last_seq - 1)
            elif pkt.seq <= self._last_seq:
                c.seq_restarts += 1
                c.last_problem = f"packet seq went from {self._last_seq} to {pkt.seq}: driver restarted?"
        self._last_seq = int(pkt.seq)
        return self._decoder.decode(pkt.events, pkt.time_base)

