"""`robot` node: fused mode. Sensor -> perception -> control -> attention of one robot in one
process with direct calls and no serialisation (`loop.fused.FusedAgent`); the split mode runs the
same stages as the event_sensor, perception, control and attention nodes over topics.

Subscribes /world/state        the built-in world (this robot's camera rendered from it, as the
                               event_sensor's `world` source does)
           odom, assignment,   as the control and attention nodes
           /fleet/detections
Publishes  cmd_vel             on every decision, and zero while perception is stale (watchdog)
           perception          snn_autonomy_msgs/Perception per decision (for the fleet agent, monitors)
           decision_trace      DecisionTrace: e2e = the camera's events available -> cmd_vel published
           /diagnostics
"""
from __future__ import annotations

import time
from typing import List, Optional

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from snn_autonomy_msgs.msg import Assignment, DecisionTrace, Perception, SharedDetections, WorldState

from ..attention.policy import AttentionConfig
from ..control.limits import LimitsConfig
from ..control.policy import PatrolConfig
from ..control.watchdog import IMMINENT, STALE, WatchdogConfig
from ..loop.fused import FusedAgent
from ..monitor.energy import EnergyAccountant
from ..monitor.latency import LatencyBudgets, LatencyTracker
from ..paths import model_path
from ..perception.runtime import StreamingPerception
from ..sensors.dvs import DvsConfig
from ..sensors.world_follower import WorldFollower
from ..sim.config import load_world_config
from . import qos
from .convert import apply_world_state, decision_trace_msg, odom_in_map, perception_msg, stamp_to_ns
from .coordinator_node import DETECTIONS_TOPIC
from .diagnostics import ERROR, OK, WARN, Status, Updater
from .diagnostics import STALE as DIAG_STALE
from .params import declare_config, read_config
from .spin import exit_with, spin_node


class RobotNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("robot", **kwargs)
        d = ParameterDescriptor
        self.declare_parameter("world_config", "", d(description="world YAML of the world node ('' = default)"))
        self.declare_parameter("robot_id", "", d(description="robot id ('' = the namespace)"))
        self.declare_parameter("model", "", d(description="model .npz ('' = the shipped model)"))
        self.declare_parameter("backend", "onnxruntime", d(description="torch | onnxruntime"))
        self.declare_parameter("attention", True, d(description="false: the full sensing budget always"))
        self.declare_parameter("energy_profile", "", d(description="hardware profile of the energy estimate "
                                                                   "('' = the default of energy_profiles.yaml)"))
        self.declare_parameter("energy_meter", "auto", d(description="auto | none | rapl | nvml | ina3221"))
        for prefix, cls in (("patrol.", PatrolConfig), ("limits.", LimitsConfig), ("watchdog.", WatchdogConfig),
                            ("attention_policy.", AttentionConfig), ("dvs.", DvsConfig),
                            ("latency.", LatencyBudgets)):
            declare_config(self, cls, prefix)
        g = lambda n: self.get_parameter(n).value  # noqa: E731
        world_cfg = load_world_config(g("world_config") or None)
        self.agent_id = g("robot_id") or self.get_namespace().strip("/") or "robot_0"
        self.follower = WorldFollower(world_cfg, self.agent_id, read_config(self, DvsConfig, "dvs."))
        backend = g("backend")
        perception = StreamingPerception.from_file(g("model") or model_path("perception_default.npz"), backend,
                                                   **({"threads": 1} if backend == "onnxruntime" else {}))
        self.energy = EnergyAccountant.create(g("energy_profile"), g("energy_meter"),
                                              perception.manifest.get("dense_macs_per_step"))
        cam = world_cfg.camera
        self.agent = FusedAgent(perception, cam.width, cam.height, cam.hfov_deg, attention=bool(g("attention")),
                                patrol=read_config(self, PatrolConfig, "patrol."),
                                limits=read_config(self, LimitsConfig, "limits."),
                                watchdog=read_config(self, WatchdogConfig, "watchdog."),
                                attention_cfg=read_config(self, AttentionConfig, "attention_policy."),
                                agent_id=self.agent_id)
        w = self.follower.world
        self.origin = tuple(float(v) for v in w.pose[self.follower.index])
        self.pose = self.origin
        self.latency = LatencyTracker(read_config(self, LatencyBudgets, "latency."))
        self.rejected_states = 0
        self._cmd_pub = self.create_publisher(Twist, "cmd_vel", qos.COMMAND)
        self._perception_pub = self.create_publisher(Perception, "perception", qos.COMMAND)
        self._trace_pub = self.create_publisher(DecisionTrace, "decision_trace", qos.COMMAND)
        self.create_subscription(WorldState, "/world/state", self._on_world_state, qos.STATE)
        self.create_subscription(Odometry, "odom", self._on_odom, qos.COMMAND)
        self.create_subscription(Assignment, "assignment", self._on_assignment, qos.LATCHED)
        self.create_subscription(SharedDetections, DETECTIONS_TOPIC, self._on_shared, qos.COMMAND)
        self.create_timer(0.02, self._tick)
        self.diag = Updater(self, hardware_id=f"robot_{self.agent_id}")
        self.diag.add("fused loop", self._diagnose)
        self.diag.add("energy", lambda st: (st.summary(OK, self.energy.meter_description()
                                                       if self.energy.meter is not None else "estimated only"),
                                            st.add_all(self.energy.diagnostics())))
        self.get_logger().info(f"fused loop for {self.agent_id}: {perception.stepper.name}, "
                               f"attention {'on' if self.agent.attention else 'off'}")

    def _send(self, cmd) -> None:
        t = Twist()
        t.linear.x, t.angular.z = float(cmd[0]), float(cmd[1])
        self._cmd_pub.publish(t)

    def _on_world_state(self, msg: WorldState) -> None:
        try:
            batch = self.follower.on_state(len(msg.robot_ids), msg.step, lambda w: apply_world_state(msg, w))
        except ValueError as exc:
            self.rejected_states += 1
            self.get_logger().warning(f"world state rejected: {exc}", throttle_duration_sec=2.0)
            return
        if batch is None:
            return
        t0 = time.perf_counter_ns()
        self.energy.begin()
        cmd = self.agent.on_events(batch, self.follower.world.time_us, self.pose, control_now_s=time.monotonic())
        self.energy.end()
        if cmd is None:
            return
        self._send(cmd)
        e2e = (time.perf_counter_ns() - t0) * 1e-6
        d = self.agent.last_decision
        # energy of the batch's decisions; the newest one (the one acted on) is published
        energy = self.energy.assign(self.agent.last_decisions)[-1]
        d.stamp_ns = stamp_to_ns(msg.header.stamp)   # sensor time of the world state that completed it
        stages = [("loop", e2e)]
        self._perception_pub.publish(perception_msg(d, self.agent.perception, self.agent_id,
                                                    self.agent.stats.decisions, stages,
                                                    energy.estimated_uj, energy.measured_uj))
        self.latency.add(time.time_ns() * 1e-9, e2e, {"loop": e2e})
        t = decision_trace_msg(msg.header, self.agent_id, self.agent.stats.decisions, time.time_ns(), e2e, stages,
                               energy.estimated_uj, energy.measured_uj)
        self._trace_pub.publish(t)

    def _on_odom(self, msg: Odometry) -> None:
        self.pose = odom_in_map(self.origin, msg)

    def _on_assignment(self, msg: Assignment) -> None:
        self.agent.control.patrol.assign(msg.region.region_id, [(w.x, w.y) for w in msg.region.waypoints], self.pose)

    def _on_shared(self, msg: SharedDetections) -> None:
        now = self.get_clock().now().nanoseconds
        self.agent.shared = [(d.position.x, d.position.y, (now - stamp_to_ns(d.header.stamp)) * 1e-9,
                              d.source_agent_id) for d in msg.detections]

    def _tick(self) -> None:
        stop = self.agent.control.on_tick(time.monotonic())
        if stop is not None:
            self._send(stop)

    def _diagnose(self, st: Status) -> None:
        level, text = self.latency.level(time.time_ns() * 1e-9)
        st.summary((OK, WARN, ERROR, DIAG_STALE)[level], text)
        c = self.agent.control
        if c.mode in (STALE, IMMINENT):
            st.merge(WARN, f"stopped: {c.mode}")
        s = self.agent.stats
        lat = self.latency.summary().get("e2e", {})
        st.add_all({"mode": c.mode, "decisions": s.decisions, "steps_per_decision": round(s.steps / max(s.decisions, 1), 2),
                    "events_per_decision": round(s.events_used / max(s.decisions, 1), 1),
                    "e2e_p50_ms": lat.get("p50"), "e2e_p99_ms": lat.get("p99"),
                    "missed_world_states": self.follower.missed_states, "rejected_states": self.rejected_states})


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(RobotNode, args))


if __name__ == "__main__":
    main()
