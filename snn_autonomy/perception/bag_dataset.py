"""Training samples from a robot's own recording: a rosbag2 (MCAP or sqlite3) with an event
camera's EventPackets, a 2D LiDAR's LaserScans and odometry, labelled by the LiDAR
(`scan_labels`) with no hand labelling and no simulator.

One sample per scan: the events of the `t_max x bin_us` window that ends at the scan's stamp,
pooled onto the model's grid (any camera resolution), and the labels of that scan. Event times
are the camera's; they are put on the stamps' clock by the offset between each packet's header
stamp and its last (or first, `rig.sync.packet_stamp`) event, the median over the first packets
(re-estimated when the camera's time line restarts). A scan that cannot make a good sample is
dropped and counted by reason (`BagDatasetReport.dropped`); a bag that cannot make any (a topic
missing, stamps of two clocks) is refused with a `RecordingError` that says what to fix.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

from ..events.bag import bag_topics, packet_from_msg, read_messages, stamp_ns
from ..events.batch import EventBatch
from ..events.errors import EventFormatError
from ..events.packet import EVENT_PACKET_TYPE, PacketStreamDecoder
from ..events.representations import binned_frames
from ..events.roi import Roi
from .dataset import META_COLUMNS, Dataset, InputSpec
from .errors import RecordingError
from .labels import LabelConfig, class_of
from .rig import RigConfig
from .scan_labels import ContactEstimator, ScanData, camera_sector_ranges, planar_motion

SCAN_TYPE, ODOM_TYPE = "sensor_msgs/msg/LaserScan", "nav_msgs/msg/Odometry"
OFFSET_PACKETS = 64            # packets whose stamp-minus-event-time median puts events on the stamps' clock
RESTART_S = 0.5                # a packet this far off that offset: the camera's time line restarted
SCAN_GAP_S = 1.0               # scans further apart than this: the range rate starts afresh
KEEP_STREAM_S = 2.0            # events and stamps kept behind the newest scan still to label


@dataclass(frozen=True)
class BagTopics:
    events: str
    scan: str
    odom: str


@dataclass
class BagDatasetReport:
    bag: str
    topics: Dict[str, str]
    camera: Tuple[int, int] = (0, 0)
    scans: int = 0
    samples: int = 0
    dropped: Dict[str, int] = field(default_factory=dict)
    event_packets: int = 0
    packets_rejected: int = 0
    packets_other_geometry: int = 0       # packets of a camera size other than the first packet's: not used
    camera_restarts: int = 0              # the camera's time line restarted (windows across it are dropped)
    stamp_offset_s: float = 0.0           # packet stamp minus event time (the camera's clock against the stamps')
    span_s: float = 0.0                   # first to last labelled scan

    def as_dict(self) -> dict:
        d = asdict(self)
        d["camera"] = list(self.camera)
        return d


def resolve_topics(path: Path, events: Optional[str] = None, scan: Optional[str] = None,
                   odom: Optional[str] = None) -> List[BagTopics]:
    """The (events, scan, odom) topic triples of a bag, one per robot: the topics named, else
    paired by namespace (`/robot_0/events` with `/robot_0/scan` and `/robot_0/odom`, where a name
    ending in /scan or /odom wins over others of the type), else the bag's only topic of a type."""
    try:
        have = {t.name: t.msgtype for t in bag_topics(path)}
    except EventFormatError as exc:
        raise RecordingError(str(exc)) from exc
    listing = ", ".join(f"{n} [{t}]" for n, t in sorted(have.items())) or "nothing"
    of_type = {kind: sorted(n for n, t in have.items() if t == kind) for kind in (EVENT_PACKET_TYPE, SCAN_TYPE, ODOM_TYPE)}

    def named(name: str, msgtype: str) -> str:
        if name not in have:
            raise RecordingError(f"{path}: no topic {name!r} (the bag has: {listing})")
        if have[name] != msgtype:
            raise RecordingError(f"{path}: {name} carries {have[name]}, not {msgtype}")
        return name

    def beside(ev: str, given: Optional[str], msgtype: str, suffix: str, flag: str) -> str:
        if given is not None:
            return named(given, msgtype)
        ns = ev.rsplit("/", 1)[0]
        found = of_type[msgtype]
        if not found:
            raise RecordingError(f"{path}: no {msgtype} topic (the bag has: {listing}); record it, or name "
                                  f"it with {flag}")
        local = [n for n in found if n.rsplit("/", 1)[0] == ns]
        for choice in ([n for n in local if n.endswith(suffix)], local, found if len(found) == 1 else []):
            if len(choice) == 1:
                return choice[0]
        raise RecordingError(f"{path}: which {msgtype} goes with {ev}? ({', '.join(found)}); choose with {flag}")

    if events is not None:
        cams = [named(events, EVENT_PACKET_TYPE)]
    else:
        cams = of_type[EVENT_PACKET_TYPE]
        if not cams:
            raise RecordingError(f"{path}: no {EVENT_PACKET_TYPE} topic (the bag has: {listing})")
        if len(cams) > 1 and (scan is not None or odom is not None):
            raise RecordingError(f"{path}: several event topics ({', '.join(cams)}); name one with --events-topic")
    return [BagTopics(ev, beside(ev, scan, SCAN_TYPE, "/scan", "--scan-topic"),
                      beside(ev, odom, ODOM_TYPE, "/odom", "--odom-topic")) for ev in cams]


class _EventStream:
    """Decoded packets of one camera on the stamps' clock, kept for a few seconds."""

    def __init__(self, use_first: bool) -> None:
        self.decoder = PacketStreamDecoder()
        self.use_first = use_first
        self.geometry: Optional[Tuple[int, int]] = None
        self.offset_ns: Optional[int] = None
        self._offsets: List[int] = []
        self.batches: Deque[Tuple[int, EventBatch]] = deque()   # (stamp ns, batch)
        self.stamps: List[int] = []                              # packet stamps, ascending
        self.restarts = 0
        self.restart_ns = -1          # stamp of the newest restart; windows before it are not whole
        self.other_geometry = 0

    def add(self, pkt) -> None:
        batch = self.decoder.decode(pkt)
        if batch is None:
            return
        if self.geometry is None:
            self.geometry = (batch.width, batch.height)
        if (batch.width, batch.height) != self.geometry:
            self.other_geometry += 1
            return
        if len(batch):
            off = pkt.stamp_ns - 1000 * int(batch.t_first if self.use_first else batch.t_last)
            if self.offset_ns is not None and abs(off - self.offset_ns) > RESTART_S * 1e9:
                self.restarts += 1
                self.restart_ns = pkt.stamp_ns
                self.batches.clear()
                self._offsets, self.offset_ns = [], None
            if len(self._offsets) < OFFSET_PACKETS:
                self._offsets.append(off)
                self.offset_ns = int(np.median(self._offsets))
        if self.stamps and pkt.stamp_ns < self.stamps[-1]:
            return                        # out-of-order stamp: its events are kept, the gap test is not fed
        self.stamps.append(pkt.stamp_ns)
        self.batches.append((pkt.stamp_ns, batch))

    @property
    def settled(self) -> bool:
        return len(self._offsets) >= OFFSET_PACKETS

    def forget_before(self, t_ns: int) -> None:
        while self.batches and self.batches[0][0] < t_ns:
            self.batches.popleft()
        cut = bisect_left(self.stamps, t_ns)
        if cut > 1000:
            del self.stamps[:cut - 1]

    def coverage_problem(self, start_ns: int, end_ns: int, max_gap_ns: int) -> Optional[str]:
        """Why [start, end] is not wholly seen by the stream, or None."""
        s = self.stamps
        i0 = bisect_right(s, start_ns) - 1
        i1 = bisect_left(s, end_ns)
        if i0 < 0 or start_ns <= self.restart_ns:
            return "window before the event stream began (or across a restart of the camera's clock)"
        if i1 >= len(s):
            return "window after the event stream ended"
        if max(b - a for a, b in zip(s[i0:i1], s[i0 + 1:i1 + 1])) > max_gap_ns:
            return "event stream silent inside the window"
        return None

    def window(self, start_ns: int, end_ns: int) -> EventBatch:
        """Events of the packets stamped in [start, end], in camera time."""
        parts = [b for st, b in self.batches if start_ns <= st <= end_ns and len(b)]
        w, h = self.geometry
        return EventBatch.concatenate(parts) if parts else EventBatch.empty(w, h)


def dataset_from_bag(path: Path, rig: RigConfig, inputs: InputSpec, sectors: int, label: LabelConfig,
                     topics: Optional[BagTopics] = None, bag_index: int = 0,
                     progress: Optional[Callable[[int], None]] = None) -> Tuple[Dataset, BagDatasetReport]:
    """Samples of a bag (`Dataset`, meta's first column `bag_index`) and what was kept and dropped."""
    path = Path(path)
    if topics is None:
        streams = resolve_topics(path)
        if len(streams) > 1:
            raise RecordingError(f"{path}: {len(streams)} cameras ({', '.join(t.events for t in streams)}); "
                                  "label one at a time (dataset_from_bag's `topics`)")
        topics = streams[0]
    report = BagDatasetReport(str(path), {"events": topics.events, "scan": topics.scan, "odom": topics.odom})
    dropped: Counter = Counter()
    stream = _EventStream(rig.sync.packet_stamp == "first_event")
    odom: Deque[Tuple[int, float, float, float]] = deque()   # stamp ns, forward m/s, turn rad/s, heading rad
    heading = [0.0, None]       # the turn rate integrated since the first odometry (rad), at stamp (ns)
    pending: List[ScanData] = []
    contact = ContactEstimator(rig.camera, sectors)
    window_ns = inputs.bin_us * inputs.t_max * 1000
    skew_ns = int(rig.sync.max_odom_skew_s * 1e9)
    gap_ns = int(rig.sync.max_event_gap_s * 1e9)
    out: Dict[str, list] = {"x": [], "y": [], "app": [], "meta": [], "sector_m": []}
    seen: Dict[str, Optional[Tuple[int, int]]] = {"events": None, "scan": None, "odom": None}   # first, last stamp
    last_scan_ns = [None]

    def note(kind: str, t: int) -> None:
        seen[kind] = (t, t) if seen[kind] is None else (seen[kind][0], t)

    def motion_at(t: int) -> Tuple[float, float]:
        # the odometry's (heading, forward speed) nearest to t; NaN without odometry within the allowed skew
        best = min(((abs(ts - t), yaw, v) for ts, v, _, yaw in odom), default=(skew_ns + 1, math.nan, math.nan))
        return best[1:] if best[0] <= skew_ns else (math.nan, math.nan)

    def label_scan(scan: ScanData) -> None:
        t = scan.stamp_ns
        near = [(abs(ts - t), v, w) for ts, v, w, _ in odom if abs(ts - t) <= skew_ns]
        ranges, covered = camera_sector_ranges(scan, rig.camera, sectors)
        if last_scan_ns[0] is not None and t - last_scan_ns[0] > SCAN_GAP_S * 1e9:
            contact.reset()
        last_scan_ns[0] = t
        _, v, w = min(near) if near else (0, 0.0, 0.0)
        ttc = contact.update(t * 1e-9, ranges, v, w)
        if not near:
            dropped[f"no odometry within {rig.sync.max_odom_skew_s:g} s"] += 1
            return
        if not covered.all():
            dropped["scan does not reach every sector of the camera's view"] += 1
            return
        why = stream.coverage_problem(t - window_ns, t, gap_ns)
        if why is None and stream.offset_ns is None:
            why = "no events yet to put the camera's clock on the stamps'"
        if why:
            dropped[why] += 1
            return
        off = stream.offset_ns
        batch = stream.window(t - window_ns - gap_ns, t + 2 * gap_ns)   # binning keeps the window's events
        t_end_us = (t - off) // 1000
        frames = binned_frames(batch, t_end_us - inputs.bin_us * inputs.t_max + 1, inputs.bin_us, inputs.t_max,
                               roi=Roi.full(*stream.geometry), out_size=inputs.grid)
        three, _ = camera_sector_ranges(scan, rig.camera, 3)
        out["x"].append(np.minimum(frames, 255).astype(np.uint8))
        out["y"].append(class_of(tuple(three), label.near_m))
        t_min = float(ttc.min())
        out["app"].append(t_min < label.ttc_s)
        (yaw0, v0), (yaw1, v1) = motion_at(t - window_ns), motion_at(t)
        out["meta"].append((bag_index, 0, t // 1000, float(three.min()), *three, t_min, yaw0, yaw1, v0, v1))
        out["sector_m"].append(ranges.astype(np.float32))

    def flush(final: bool) -> None:
        pending.sort(key=lambda s: s.stamp_ns)
        newest_event = stream.stamps[-1] if stream.stamps else 0
        newest_odom = odom[-1][0] if odom else 0
        while pending:
            t = pending[0].stamp_ns
            if not final and not (stream.settled and newest_event >= t + 2 * gap_ns and newest_odom >= t + skew_ns):
                break
            label_scan(pending.pop(0))
        keep = (pending[0].stamp_ns if pending else newest_event) - int(KEEP_STREAM_S * 1e9)
        stream.forget_before(keep)
        while odom and odom[0][0] < keep:
            odom.popleft()

    wanted = {topics.events: "events", topics.scan: "scan", topics.odom: "odom"}
    try:
        for n, (topic, _, _, msg) in enumerate(read_messages(path, list(wanted))):
            kind = wanted[topic]
            if kind == "events":
                pkt = packet_from_msg(msg)
                stream.add(pkt)
                note("events", pkt.stamp_ns)
            elif kind == "scan":
                report.scans += 1
                t = stamp_ns(msg.header.stamp)
                note("scan", t)
                pending.append(ScanData.from_msg(msg, t))
            else:
                t = stamp_ns(msg.header.stamp)
                motion = planar_motion(msg)
                note("odom", t)
                if motion is not None:
                    if heading[1] is not None and odom:
                        heading[0] += odom[-1][2] * (t - heading[1]) * 1e-9
                    heading[1] = t
                    odom.append((t, *motion, heading[0]))
            if n % 2000 == 0:
                flush(final=False)
                if progress:
                    progress(len(out["y"]))
    except EventFormatError as exc:
        raise RecordingError(f"{path}: {exc}") from exc
    _check_clocks(path, topics, seen)
    flush(final=True)
    c = stream.decoder.counters
    report.event_packets = c.packets
    report.packets_rejected = c.rejected_encoding + c.rejected_big_endian + c.rejected_geometry
    if stream.geometry is None:
        raise RecordingError(f"{path}: no event on {topics.events} could be decoded"
                              + (f" ({c.last_problem})" if c.last_problem else ""))
    report.camera = stream.geometry
    report.stamp_offset_s = (stream.offset_ns or 0) * 1e-9
    report.packets_other_geometry = stream.other_geometry
    report.camera_restarts = stream.restarts
    report.dropped = dict(sorted(dropped.items()))
    report.samples = len(out["y"])
    if out["meta"]:
        report.span_s = (out["meta"][-1][2] - out["meta"][0][2]) * 1e-6
    h, w = inputs.grid[1], inputs.grid[0]
    data = Dataset(
        np.stack(out["x"]) if out["x"] else np.zeros((0, inputs.t_max, 2, h, w), np.uint8),
        np.array(out["y"], dtype=np.int64), np.array(out["app"], dtype=np.uint8),
        np.array(out["meta"], dtype=np.float64).reshape(-1, META_COLUMNS),
        np.array(out["sector_m"], dtype=np.float32).reshape(-1, sectors))
    return data, report


def _check_clocks(path: Path, topics: BagTopics, seen: Dict[str, Optional[Tuple[int, int]]]) -> None:
    """Refuse a bag whose three streams do not share a clock (say, events stamped with the
    camera's own time and scans with the robot's): their stamp spans must overlap."""
    names = {"events": topics.events, "scan": topics.scan, "odom": topics.odom}
    for kind, span in seen.items():
        if span is None:
            raise RecordingError(f"{path}: {names[kind]} holds no message")
    lo = max(first for first, _ in seen.values())
    hi = min(last for _, last in seen.values())
    if hi <= lo:
        spans = "; ".join(f"{names[k]} {a * 1e-9:.3f}..{b * 1e-9:.3f} s" for k, (a, b) in seen.items())
        raise RecordingError(f"{path}: the stamps of the three topics do not overlap ({spans}): they are not "
                              "synchronised (one clock for all drivers, e.g. use_sim_time on all or none)")
