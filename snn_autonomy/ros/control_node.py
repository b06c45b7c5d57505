"""`control` node: perception decisions -> velocity commands, behind a safety watchdog.

Subscribes perception  snn_autonomy_msgs/Perception (the newest decision)
           odom        nav_msgs/Odometry (odom frame = the robot's start pose, as the built-in
                       world publishes; composed with start_pose into the map frame)
           assignment  snn_autonomy_msgs/Assignment (the fleet_agent's share of the fleet plan:
                       the patrol loop; without one the robot cruises and avoids)
           /fleet/agent_state snn_autonomy_msgs/AgentState: the other robots' heartbeats, steered
                       around where their pose and velocity put them
Publishes  cmd_vel     geometry_msgs/Twist: on every decision, and zero at `tick_hz` while
                       perception is stale (watchdog)
           decision_trace snn_autonomy_msgs/DecisionTrace right after each decision's cmd_vel:
                       the perception stages plus `control`, and e2e = newest packet published ->
                       cmd_vel published (wall clock, DDS source timestamps; synchronised clocks
                       across hosts)
           /diagnostics: mode, perception age, stops by reason, clock jumps; latency percentiles
                       per stage graded against the budgets (OK / WARN / ERROR / STALE)
Clock jumps (use_sim_time and the simulator reset or fast-forwarded, more than
`clock_jump_threshold_s` either way): the robot stops at once and stays stopped until a
decision arrives after the jump (decisions from before it no longer count).
The logic is snn_autonomy.control.core.ControlCore, driven through ros/control_ports.py exactly
as the fused `robot` node drives it; this node only converts Perception messages.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import List, Optional

from rclpy.node import Node
from snn_autonomy_msgs.msg import DecisionTrace, Perception

from ..config import spec
from ..control.core import ControlCore, ControlTiming
from ..control.limits import LimitsConfig
from ..control.policy import PatrolConfig
from ..control.watchdog import WatchdogConfig
from ..fleet.start_pose import check_start_pose, start_pose_field, start_pose_of
from ..monitor.latency import LatencyBudgets, LatencyTracker
from . import qos
from .control_ports import ControlPorts
from .convert import decision_trace_msg, sector_view_of
from .diagnostics import ERROR, OK, WARN, Status, Updater
from .diagnostics import STALE as DIAG_STALE
from .params import declare_params
from .spin import exit_with, spin_node


@dataclass(frozen=True)
class ControlNodeConfig:
    agent_id: str = spec("", help="robot id ('' = the namespace)")
    world_config: str = spec("", help="world YAML giving the start pose when start_pose is [] ('' = the shipped "
                                      "world)")
    start_pose: List[float] = start_pose_field()

    def validate(self) -> None:
        check_start_pose(self.start_pose)


class ControlNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("control", **kwargs)
        # every parameter is declared and checked before any of them is used
        cfg = declare_params(self, ControlNodeConfig)
        patrol, limits = declare_params(self, PatrolConfig, "patrol."), declare_params(self, LimitsConfig, "limits.")
        watchdog, timing = declare_params(self, WatchdogConfig, "watchdog."), declare_params(self, ControlTiming)
        self.latency = LatencyTracker(declare_params(self, LatencyBudgets, "latency."))
        self.agent_id = cfg.agent_id or self.get_namespace().strip("/") or "robot_0"
        origin = start_pose_of(cfg.start_pose, cfg.world_config or None, self.agent_id)
        self.core = ControlCore(origin, patrol, limits, watchdog)
        self.ports = ControlPorts(self, self.core, timing, self.agent_id)
        self._trace_pub = self.create_publisher(DecisionTrace, "decision_trace", qos.COMMAND)
        self.create_subscription(Perception, "perception", self._on_perception, qos.COMMAND)
        self.diag = Updater(self, hardware_id=f"control_{self.agent_id}")
        self.diag.add("control", self.ports.diagnose)
        self.diag.add("latency", self._diagnose_latency)

    def _on_perception(self, msg: Perception, info) -> None:
        if self.ports.decide(int(msg.label), len(msg.class_names), float(msg.confidence),
                             bool(msg.approaching), sector_view_of(msg)) is not None:
            self._trace(msg, int(info["source_timestamp"]))

    def _trace(self, msg: Perception, perception_wall_ns: int) -> None:
        now_ns = time.time_ns()
        stages = {s.stage: float(s.duration_ms) for s in msg.stage_latencies}
        stages["control"] = (now_ns - perception_wall_ns) * 1e-6
        e2e = stages.get("decision", math.nan) + stages["control"]
        self.latency.add(now_ns * 1e-9, e2e, stages)
        t = decision_trace_msg(msg.header, msg.agent_id or self.agent_id, msg.decision_id, now_ns, e2e,
                               stages.items(), msg.energy_estimated_uj, msg.energy_measured_uj)
        self._trace_pub.publish(t)

    def _diagnose_latency(self, st: Status) -> None:
        level, text = self.latency.level(time.time_ns() * 1e-9)
        st.summary((OK, WARN, ERROR, DIAG_STALE)[level], text)
        for stage, p in sorted(self.latency.summary().items()):
            st.add_all({f"{stage}_p50_ms": p["p50"], f"{stage}_p99_ms": p["p99"]})
        st.add("decisions", self.latency.count)


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(ControlNode, args))


if __name__ == "__main__":
    main()
