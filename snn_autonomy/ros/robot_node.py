"""`robot` node: fused mode. Sensor -> perception -> control -> attention of one robot in one
process with direct calls and no serialisation (`loop.fused.FusedAgent`); the split mode runs the
same stages as the event_sensor, perception, control and attention nodes over topics. The control
stage is the same `ControlCore` behind the same `ControlPorts` as the `control` node's (odometry,
assignment, watchdog tick, clock jumps, cmd_vel), and the perception engine takes the same
parameters (`EngineConfig`) as the `perception` node's.

Subscribes /world/state        the built-in world (this robot's camera rendered from it, as the
                               event_sensor's `world` source does)
           odom, assignment,   as the control and attention nodes
           /fleet/agent_state,
           /fleet/detections
Publishes  cmd_vel             on every decision, and zero while perception is stale (watchdog)
           local_map           PointCloud2 in `map`: the controller's local map, as the control node
           perception          snn_autonomy_msgs/Perception per decision (for the fleet agent, monitors)
           virtual_scan        sensor_msgs/LaserScan of a sector model's decision (as the perception node)
           decision_trace      DecisionTrace: e2e = the camera's events available -> cmd_vel published
           /diagnostics
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import List, Optional

from rclpy.node import Node
from sensor_msgs.msg import LaserScan
from snn_autonomy_msgs.msg import DecisionTrace, Perception, SharedDetections, WorldState

from ..attention.policy import AttentionConfig
from ..config import spec
from ..control.core import ControlTiming
from ..control.limits import LimitsConfig
from ..control.policy import PatrolConfig
from ..control.watchdog import WatchdogConfig
from ..loop.fused import FusedAgent
from ..monitor.energy import EnergyAccountant, EnergyConfig
from ..monitor.latency import LatencyBudgets, LatencyTracker
from ..perception.cost_model import AdmissionConfig
from ..perception.engine import EngineConfig, open_engine
from ..sensors.dvs import DvsConfig
from ..sensors.world_follower import WorldFollower
from ..sim.config import load_world_config
from . import qos
from .control_ports import ControlPorts
from .convert import apply_world_state, decision_trace_msg, perception_msg, stamp_to_ns, virtual_scan_msg
from .coordinator_node import DETECTIONS_TOPIC
from .diagnostics import ERROR, OK, WARN, Status, Updater, report_admission
from .diagnostics import STALE as DIAG_STALE
from .params import declare_params
from .perception_node import graphs_note
from .spin import exit_with, spin_node


@dataclass(frozen=True)
class RobotNodeConfig:
    world_config: str = spec("", help="world YAML of the world node ('' = the shipped default world)")
    robot_id: str = spec("", help="robot id ('' = the namespace)")
    attention: bool = spec(True, help="false: the full sensing budget always")
    scan_frame_id: str = spec("camera_link", help="frame of virtual_scan: the camera's body frame, x forward")
    world_state_depth: int = spec(qos.STATE_DEPTH, lo=1, hi=100000,
                                  help="world states queued while rendering falls behind "
                                       "(the world node's state_depth must be as deep)")


class RobotNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("robot", **kwargs)
        # every parameter is declared and checked before any of them is used
        cfg = declare_params(self, RobotNodeConfig)
        engine, energy = declare_params(self, EngineConfig), declare_params(self, EnergyConfig)
        dvs, attention = declare_params(self, DvsConfig, "dvs."), declare_params(self, AttentionConfig,
                                                                                "attention_policy.")
        patrol, limits = declare_params(self, PatrolConfig, "patrol."), declare_params(self, LimitsConfig, "limits.")
        watchdog, timing = declare_params(self, WatchdogConfig, "watchdog."), declare_params(self, ControlTiming)
        self.latency = LatencyTracker(declare_params(self, LatencyBudgets, "latency."))
        admission = declare_params(self, AdmissionConfig, "admission.")
        world_cfg = load_world_config(cfg.world_config or None)
        self.agent_id = cfg.robot_id or self.get_namespace().strip("/") or "robot_0"
        self.follower = WorldFollower(world_cfg, self.agent_id, dvs)
        perception = open_engine(engine)
        self.energy = EnergyAccountant.from_config(energy, perception.manifest.get("dense_macs_per_step"))
        cam = world_cfg.camera
        origin = tuple(float(v) for v in self.follower.world.pose[self.follower.index])
        self.agent = FusedAgent(perception, cam.width, cam.height, cam.hfov_deg, attention=cfg.attention,
                                patrol=patrol, limits=limits, watchdog=watchdog, attention_cfg=attention,
                                agent_id=self.agent_id, origin=origin, admission=admission)
        self.ports = ControlPorts(self, self.agent.control, timing, self.agent_id)
        self.rejected_states = 0
        self.rejected_detections = 0
        self._perception_pub = self.create_publisher(Perception, "perception", qos.COMMAND)
        self._trace_pub = self.create_publisher(DecisionTrace, "decision_trace", qos.COMMAND)
        self._scan_frame = cfg.scan_frame_id
        self._scan_pub = (self.create_publisher(LaserScan, "virtual_scan", qos.SENSOR)
                          if perception.head.sectors is not None else None)
        self.create_subscription(WorldState, "/world/state", self._on_world_state,
                                 qos.state(cfg.world_state_depth))
        self.create_subscription(SharedDetections, DETECTIONS_TOPIC, self._on_shared, qos.COMMAND)
        self.diag = Updater(self, hardware_id=f"robot_{self.agent_id}")
        self.diag.add("fused loop", self._diagnose)
        self.diag.add("control", self.ports.diagnose)
        self.diag.add("energy", lambda st: (st.summary(OK, self.energy.meter_description()
                                                       if self.energy.meter is not None else "estimated only"),
                                            st.add_all(self.energy.diagnostics())))
        self.get_logger().info(f"fused loop for {self.agent_id}: {perception.stepper.name}{graphs_note(perception)}, "
                               f"attention {'on' if self.agent.attention else 'off'}")

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
        cmd = self.agent.on_events(batch, self.follower.world.time_us, self.ports.now_s())
        self.energy.end()
        if cmd is None:
            return
        self.ports.send(cmd, decided=True)
        e2e = (time.perf_counter_ns() - t0) * 1e-6
        d = self.agent.last_decision
        # energy of the batch's decisions; the newest one (the one acted on) is published
        energy = self.energy.assign(self.agent.last_decisions)[-1]
        d.stamp_ns = stamp_to_ns(msg.header.stamp)   # sensor time of the world state that completed it
        stages = [("loop", e2e)]
        m = perception_msg(d, self.agent.perception, self.agent_id, self.agent.stats.decisions, stages,
                           energy.estimated_uj, energy.measured_uj)
        self._perception_pub.publish(m)
        if self._scan_pub is not None:
            self._scan_pub.publish(virtual_scan_msg(d, self.agent.perception.head.sectors, m.header.stamp, self._scan_frame))
        self.latency.add(time.time_ns() * 1e-9, e2e, {"loop": e2e})
        t = decision_trace_msg(msg.header, self.agent_id, self.agent.stats.decisions, time.time_ns(), e2e, stages,
                               energy.estimated_uj, energy.measured_uj)
        self._trace_pub.publish(t)

    def _on_shared(self, msg: SharedDetections) -> None:
        now = self.get_clock().now().nanoseconds
        ok = [d for d in msg.detections if math.isfinite(d.position.x) and math.isfinite(d.position.y)]
        if len(ok) < len(msg.detections):
            self.rejected_detections += len(msg.detections) - len(ok)
            self.get_logger().warning("shared detections with non-finite positions refused", throttle_duration_sec=1.0)
        self.agent.shared = [(d.position.x, d.position.y, (now - stamp_to_ns(d.header.stamp)) * 1e-9,
                              d.source_agent_id) for d in ok]

    def _diagnose(self, st: Status) -> None:
        level, text = self.latency.level(time.time_ns() * 1e-9)
        st.summary((OK, WARN, ERROR, DIAG_STALE)[level], text)
        p = self.agent.perception
        if p.geometry_refused:      # the world's camera is not the one the model was trained on
            st.merge(ERROR, f"{p.geometry_refused} frames: {p.geometry_problem}")
        s = self.agent.stats
        lat = self.latency.summary().get("e2e", {})
        st.add_all({"mode": self.agent.control.mode, "decisions": s.decisions,
                    "steps_per_decision": round(s.steps / max(s.decisions, 1), 2),
                    "events_per_decision": round(s.events_used / max(s.decisions, 1), 1),
                    "e2e_p50_ms": lat.get("p50"), "e2e_p99_ms": lat.get("p99"),
                    "missed_world_states": self.follower.missed_states, "rejected_states": self.rejected_states,
                    "rejected_detections": self.rejected_detections})
        f = self.agent.filter
        st.add_all({"events_in": f.counters.events_in, "events_out": f.counters.events_out,
                    "dropped_rate_cap": f.counters.dropped_rate_cap, "dropped_roi": f.counters.dropped_roi,
                    "rate_cap_ev_s": f.controls.rate_cap_ev_s})
        if self.agent.admission is not None:
            report_admission(st, self.agent.admission)


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(RobotNode, args))


if __name__ == "__main__":
    main()
