"""Message <-> core conversions (the one place that knows both)."""
from __future__ import annotations

import math

import numpy as np

from builtin_interfaces.msg import Time
from event_camera_msgs.msg import EventPacket
from snn_autonomy_msgs.msg import DecisionTrace, Perception, StageLatency

from ..events.packet import EventPacketData
from ..fleet.agent import compose


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


# ---------------------------------------------------------------- world state

def yaw_to_quat(yaw: float):
    from geometry_msgs.msg import Quaternion

    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0))


def quat_yaw(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


class WorldStateWriter:
    """snn_autonomy_msgs/WorldState of a sim.World, written into one message that is reused.

    Building the ~60 nested messages afresh for every state cost the world node 250 us per
    step (a quarter of a core at 1 kHz); updating their numbers in place costs a fraction of
    that. rclpy serialises on publish, so the message may be rewritten once it is published."""

    def __init__(self, world) -> None:
        from geometry_msgs.msg import Pose, Twist
        from snn_autonomy_msgs.msg import ObstacleState, WorldState

        m = self.msg = WorldState()
        m.header.frame_id = "map"
        m.config_sha256 = world.sha256
        m.robot_ids = list(world.robot_ids)
        m.robot_poses = [Pose() for _ in world.robot_ids]
        m.robot_velocities = [Twist() for _ in world.robot_ids]
        m.obstacles = [ObstacleState(id=i) for i in range(len(world.obs_pos))]

    def write(self, world, stamp_ns: int):
        m = self.msg
        m.header.stamp = ns_to_stamp(stamp_ns)
        m.step = int(world.step_count)
        for pose, twist, (x, y, yaw), (v, w) in zip(m.robot_poses, m.robot_velocities, world.pose.tolist(),
                                                    world.vel.tolist()):
            pose.position.x, pose.position.y = x, y
            pose.orientation.z, pose.orientation.w = math.sin(yaw / 2.0), math.cos(yaw / 2.0)
            twist.linear.x, twist.angular.z = v, w
        for o, p, v, r, h, mv in zip(m.obstacles, world.obs_pos.tolist(), world.obs_vel.tolist(),
                                     world.obs_r.tolist(), world.obs_h.tolist(), world.obs_moving.tolist()):
            o.position.x, o.position.y = p
            o.velocity.x, o.velocity.y = v
            o.radius_m, o.height_m, o.moving = r, h, bool(mv)
        m.robot_collisions = [int(c) for c in world.collisions]
        return m


def apply_world_state(msg, world) -> int:
    """Adopt a WorldState in a local sim.World (same configuration); returns its time in us.

    Raises ValueError when the message does not describe this world."""
    if msg.config_sha256 != world.sha256:
        raise ValueError(f"world state is of configuration {msg.config_sha256[:12]}, this sensor loaded "
                         f"{world.sha256[:12]}: both must use the same world file")
    if len(msg.robot_poses) != len(world.pose) or len(msg.obstacles) != len(world.obs_pos):
        raise ValueError("world state has a different number of robots or obstacles")
    pose = np.array([[p.position.x, p.position.y, quat_yaw(p.orientation)] for p in msg.robot_poses])
    vel = np.array([[t.linear.x, t.angular.z] for t in msg.robot_velocities]).reshape(-1, 2)
    obs = np.array([[o.position.x, o.position.y] for o in msg.obstacles]).reshape(-1, 2)
    obs_vel = np.array([[o.velocity.x, o.velocity.y] for o in msg.obstacles]).reshape(-1, 2)
    if not (np.isfinite(pose).all() and np.isfinite(obs).all()):
        raise ValueError("world state holds non-finite positions")
    t_us = stamp_to_ns(msg.header.stamp) // 1000
    world.set_dynamic_state(t_us, pose.reshape(-1, 3), obs, vel if len(vel) == len(pose) else None, obs_vel)
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
    m.time_to_contact_s = math.nan
    m.steps_used, m.t_max, m.early_exit = d.steps, d.t_max, d.early_exit
    m.events_in, m.events_used = d.events_in, d.events_used
    m.synaptic_ops, m.neuron_updates = int(d.synaptic_ops), int(d.neuron_updates)
    m.energy_estimated_uj = float(energy_estimated_uj)
    m.energy_measured_uj = float(energy_measured_uj)
    m.backend = engine.stepper.name
    m.stage_latencies = [StageLatency(stage=s, duration_ms=float(ms)) for s, ms in stages]
    return m


def odom_in_map(origin, msg) -> tuple:
    """(x, y, yaw) in the map frame of a nav_msgs/Odometry whose odom frame starts at `origin`
    (x, y, yaw in the map), as the built-in world publishes it."""
    p = msg.pose.pose
    return compose(origin, (p.position.x, p.position.y, quat_yaw(p.orientation)))


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
