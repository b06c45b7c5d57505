"""Message <-> core conversions (the one place that knows both)."""
from __future__ import annotations

import array
import math
from typing import Optional

import numpy as np

from builtin_interfaces.msg import Time
from event_camera_msgs.msg import EventPacket
from sensor_msgs.msg import LaserScan, PointCloud2, PointField
from snn_autonomy_msgs.msg import DecisionTrace, Perception, StageLatency, WorldState

from ..control.frames import odom_to_map
from ..events.bag import stamp_ns
from ..events.packet import EventPacketData
from ..perception.sectors import SectorView


def stamp_to_ns(stamp: Time) -> int:
    return stamp_ns(stamp)


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


# ---------------------------------------------------------------- world state

def yaw_to_quat(yaw: float):
    from geometry_msgs.msg import Quaternion

    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0))


def quat_yaw(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


class WorldStateWriter:
    """snn_autonomy_msgs/WorldState of a sim.World, written into one message that is reused
    (rclpy serialises on publish, so the message may be rewritten once it is published).
    Robots and obstacles go into flat float64 arrays, row by row (see WorldState.msg)."""

    def __init__(self, world) -> None:
        m = self.msg = WorldState()
        m.header.frame_id = "map"
        m.config_sha256 = world.sha256
        m.robot_ids = list(world.robot_ids)

    def write(self, world, stamp_ns: int):
        m = self.msg
        m.header.stamp = ns_to_stamp(stamp_ns)
        m.step = int(world.step_count)
        robots, obstacles = world.packed_state()
        m.robot_states = _float64_array(robots)
        m.obstacle_states = _float64_array(obstacles)
        m.robot_collisions = array.array("I", np.asarray(world.collisions, dtype=np.uint32).tobytes())
        return m


def _float64_array(a: np.ndarray) -> array.array:
    """A float64 array as the array.array rclpy takes for float64[] without a per-element copy."""
    out = array.array("d")
    out.frombytes(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return out


def apply_world_state(msg, world) -> int:
    """Adopt a WorldState in a local sim.World (same configuration); returns its time in us.

    Raises ValueError when the message does not describe this world."""
    t_us = stamp_to_ns(msg.header.stamp) // 1000
    world.set_packed_state(t_us, msg.config_sha256, msg.robot_states, msg.obstacle_states)
    return t_us


def perception_msg(d, engine, agent_id: str, decision_id: int, stages, energy_estimated_uj: float = math.nan,
                   energy_measured_uj: float = math.nan):
    """snn_autonomy_msgs/Perception of one Decision (perception.runtime) of `engine`
    (a StreamingPerception); `stages` is a list of (stage, ms)."""
    m = Perception()
    m.header.stamp = ns_to_stamp(d.stamp_ns)
    m.header.frame_id = "camera"
    m.agent_id = agent_id
    m.decision_id = decision_id
    m.first_packet_seq, m.last_packet_seq = max(0, d.first_packet_seq), max(0, d.last_packet_seq)
    m.class_names = list(engine.classes)
    m.class_scores = [float(v) for v in d.scores]
    m.label = d.label
    m.confidence = d.confidence
    m.confidence_measure = engine.measure
    m.threshold = d.threshold
    m.approaching = d.approaching
    sectors = engine.head.sectors
    if sectors is not None:
        view = sectors.view(d.sectors)
        m.fov_rad, m.sector_classes, m.sector_free_m = view.fov_rad, list(view.classes), list(view.free_m)
    else:
        m.fov_rad = math.nan
    m.time_to_contact_s = math.nan
    m.steps_used, m.t_max, m.early_exit = d.steps, d.t_max, d.early_exit
    m.events_in, m.events_used = d.events_in, d.events_used
    m.synaptic_ops, m.neuron_updates = int(d.synaptic_ops), int(d.neuron_updates)
    m.energy_estimated_uj = float(energy_estimated_uj)
    m.energy_measured_uj = float(energy_measured_uj)
    m.backend = engine.stepper.name
    m.stage_latencies = [StageLatency(stage=s, duration_ms=float(ms)) for s, ms in stages]
    return m


def sector_view_of(msg) -> Optional[SectorView]:
    """The sector view of a Perception message (None for a four-class model's)."""
    if not len(msg.sector_classes) and not len(msg.sector_free_m):
        return None
    return SectorView(tuple(int(c) for c in msg.sector_classes), tuple(float(r) for r in msg.sector_free_m),
                      float(msg.fov_rad))


def virtual_scan_msg(d, spec, stamp, frame_id: str, range_min_m: float = 0.05):
    """sensor_msgs/LaserScan of a sector decision, stamped `stamp` in `frame_id`: one ray per
    sector at its centre, ranges as `SectorSpec.scan_ranges` (the lower edge of the class, +inf
    where free). The scan frame has x forward and angles counter-clockwise (REP 103), so rays
    run right to left, the reverse of the sectors' left-to-right order."""
    fov = math.radians(spec.hfov_deg)
    step = fov / spec.count
    # scan_time 0: every ray of one decision at once, not one turn of a scanner
    return laser_scan_msg(stamp, frame_id, -fov / 2 + step / 2, step, spec.scan_ranges(np.array(d.sectors))[::-1],
                          range_min_m, spec.edges_m[-1], 0.0)


def laser_scan_msg(stamp, frame_id: str, angle_min: float, angle_increment: float, ranges: np.ndarray,
                   range_min: float, range_max: float, scan_time: float):
    """sensor_msgs/LaserScan of beams from `angle_min`, counter-clockwise, all taken at `stamp`
    (time_increment 0); `ranges` with +-inf as REP 117."""
    m = LaserScan()
    m.header.stamp, m.header.frame_id = stamp, frame_id
    m.angle_min, m.angle_increment = float(angle_min), float(angle_increment)
    m.angle_max = float(angle_min + angle_increment * (len(ranges) - 1))
    m.time_increment, m.scan_time = 0.0, float(scan_time)
    m.range_min, m.range_max = float(range_min), float(range_max)
    m.ranges = array.array("f", np.ascontiguousarray(ranges, dtype=np.float32).tobytes())
    return m


def planar_cloud_msg(stamp, frame_id: str, xs: np.ndarray, ys: np.ndarray) -> PointCloud2:
    """sensor_msgs/PointCloud2 of points on the ground plane (z 0), float32 x, y, z, stamped
    `stamp` in `frame_id`: what RViz draws and a costmap's obstacle layer takes as marks."""
    m = PointCloud2()
    m.header.stamp, m.header.frame_id = stamp, frame_id
    m.height, m.width = 1, int(len(xs))
    m.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate("xyz")]
    m.is_bigendian, m.point_step, m.row_step, m.is_dense = False, 12, 12 * int(len(xs)), True
    pts = np.zeros((len(xs), 3), dtype="<f4")
    pts[:, 0], pts[:, 1] = xs, ys
    m.data = array.array("B", pts.tobytes())
    return m


def odom_in_map(origin, msg) -> Optional[tuple]:
    """(x, y, yaw) in the map frame of a nav_msgs/Odometry whose odom frame starts at `origin`
    (x, y, yaw in the map), as the built-in world publishes it; None when not finite."""
    p, t = msg.pose.pose, msg.twist.twist
    return odom_to_map(origin, p.position.x, p.position.y, quat_yaw(p.orientation), t.linear.x, t.angular.z)


def decision_trace_msg(header, agent_id: str, decision_id: int, cmd_vel_ns: int, e2e_ms: float, stages,
                       energy_estimated_uj: float, energy_measured_uj: float):
    """snn_autonomy_msgs/DecisionTrace; `stages` is a list of (stage, ms)."""
    t = DecisionTrace()
    t.header = header
    t.agent_id, t.decision_id = agent_id, int(decision_id)
    t.cmd_vel_stamp = ns_to_stamp(cmd_vel_ns)
    t.e2e_latency_ms = float(e2e_ms)
    t.stage_latencies = [StageLatency(stage=k, duration_ms=float(v)) for k, v in stages]
    t.energy_estimated_uj, t.energy_measured_uj = float(energy_estimated_uj), float(energy_measured_uj)
    return t
