"""`control` node: perception decisions -> velocity commands, behind a safety watchdog.

Subscribes perception  snn_autonomy_msgs/Perception (the newest decision)
           odom        nav_msgs/Odometry (odom frame = the robot's start pose, as the built-in
                       world publishes; composed with start_pose into the map frame)
           assignment  snn_autonomy_msgs/Assignment (the fleet_agent's share of the fleet plan:
                       the patrol loop; without one the robot cruises and avoids)
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
The logic is snn_autonomy.control.loop.RobotController; this node only converts messages.
"""
from __future__ import annotations

import math
import time
from typing import List, Optional

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from snn_autonomy_msgs.msg import Assignment, DecisionTrace, Perception

from ..control.limits import LimitsConfig
from ..control.loop import RobotController
from ..control.policy import PatrolConfig
from ..control.watchdog import IMMINENT, STALE, WatchdogConfig
from ..fleet.agent import start_pose_in_world
from ..monitor.latency import LatencyBudgets, LatencyTracker
from . import qos
from .clock import on_clock_jumps
from .convert import decision_trace_msg, odom_in_map
from .diagnostics import ERROR, OK, WARN, Status, Updater
from .diagnostics import STALE as DIAG_STALE
from .params import declare_config, read_config
from .spin import exit_with, spin_node


class ControlNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("control", **kwargs)
        d = ParameterDescriptor
        self.declare_parameter("agent_id", "", d(description="robot id ('' = the namespace)"))
        self.declare_parameter("world_config", "", d(description="world YAML giving the start pose when "
                                                                 "start_pose is [] ('' = the shipped world)"))
        self.declare_parameter("start_pose", [0.0], d(description="x, y, yaw of the odom origin in the map "
                                                                  "frame ([0.0] = from world_config)"))
        self.declare_parameter("tick_hz", 50.0, d(description="watchdog check rate [Hz]"))
        self.declare_parameter("clock_jump_threshold_s", 0.5, d(
            description="a clock jump larger than this either way stops the robot until a new decision [s]"))
        for prefix, cls in (("patrol.", PatrolConfig), ("limits.", LimitsConfig), ("watchdog.", WatchdogConfig)):
            declare_config(self, cls, prefix)
        self.control = RobotController(read_config(self, PatrolConfig, "patrol."),
                                       read_config(self, LimitsConfig, "limits."),
                                       read_config(self, WatchdogConfig, "watchdog."))
        self.agent_id = self.get_parameter("agent_id").value or self.get_namespace().strip("/") or "robot_0"
        start = list(self.get_parameter("start_pose").value)
        if len(start) == 3:
            self.origin = tuple(float(v) for v in start)
        elif start == [0.0]:
            self.origin = start_pose_in_world(self.get_parameter("world_config").value or None, self.agent_id)
        else:
            raise ValueError(f"start_pose must be [x, y, yaw] or [0.0], got {start}")
        self.pose = self.origin
        self.decisions = 0
        self.bad_decisions = 0
        self.odom_rejected = 0
        self._pub = self.create_publisher(Twist, "cmd_vel", qos.COMMAND)
        self._trace_pub = self.create_publisher(DecisionTrace, "decision_trace", qos.COMMAND)
        declare_config(self, LatencyBudgets, "latency.")
        self.latency = LatencyTracker(read_config(self, LatencyBudgets, "latency."))
        self.create_subscription(Perception, "perception", self._on_perception, qos.COMMAND)
        self.create_subscription(Odometry, "odom", self._on_odom, qos.COMMAND)
        self.create_subscription(Assignment, "assignment", self._on_assignment, qos.LATCHED)
        self.create_timer(1.0 / max(1.0, float(self.get_parameter("tick_hz").value)), self._tick)
        self.last_clock_jump_s = 0.0
        self._jumps = on_clock_jumps(self, float(self.get_parameter("clock_jump_threshold_s").value),
                                     self._on_clock_jump)
        self.diag = Updater(self, hardware_id=f"control_{self.agent_id}")
        self.diag.add("control", self._diagnose)
        self.diag.add("latency", self._diagnose_latency)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _send(self, cmd) -> None:
        t = Twist()
        t.linear.x, t.angular.z = float(cmd[0]), float(cmd[1])
        self._pub.publish(t)

    def _on_perception(self, msg: Perception, info) -> None:
        if msg.label >= len(msg.class_names) or not msg.class_names or not 0.0 <= msg.confidence <= 1.0:
            self.bad_decisions += 1   # a decision this controller cannot read: it does not feed the watchdog
            self.get_logger().warning(f"perception label {msg.label} outside {list(msg.class_names)} or "
                                      f"confidence {msg.confidence} outside [0, 1]", throttle_duration_sec=1.0)
            return
        self.decisions += 1
        self._send(self.control.on_decision(self._now(), self.pose, int(msg.label), bool(msg.approaching)))
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

    def _on_odom(self, msg: Odometry) -> None:
        pose = odom_in_map(self.origin, msg)
        if not all(math.isfinite(v) for v in (*pose, msg.twist.twist.linear.x, msg.twist.twist.angular.z)):
            self.odom_rejected += 1
            self.get_logger().warning("non-finite odometry dropped", throttle_duration_sec=1.0)
            return
        self.pose = pose

    def _on_assignment(self, msg: Assignment) -> None:
        wps = [(w.x, w.y) for w in msg.region.waypoints]
        self.control.patrol.assign(msg.region.region_id, wps, self.pose)
        self.get_logger().info(f"patrolling {msg.region.region_id or 'nothing'} ({len(wps)} waypoints)")

    def _tick(self) -> None:
        stop = self.control.on_tick(self._now())
        if stop is not None:
            self._send(stop)

    def _on_clock_jump(self, now_s: float, delta_s: float) -> None:
        self.last_clock_jump_s = delta_s
        stop = self.control.on_clock_jump(now_s)
        if stop is not None:
            self._send(stop)
        self.get_logger().warning(f"clock jumped {delta_s:+.3f} s to {now_s:.3f} s: stopped until the next decision")

    def _diagnose(self, st: Status) -> None:
        c = self.control
        w = c.watchdog
        age = w.age_s(self._now())
        if c.mode == STALE and age == float("inf"):
            st.summary(WARN, "stopped: no perception since the clock jump" if w.clock_jumps
                       else "stopped: no perception yet")
        elif c.mode == STALE:
            st.summary(WARN, f"stopped: no perception for {age * 1e3:.0f} ms (deadline "
                             f"{w.cfg.deadline_s * 1e3:.0f} ms)")
        elif c.mode == IMMINENT:
            st.summary(WARN, "halted: obstacle ahead and approaching")
        else:
            st.summary(OK, c.mode)
        st.add_all({"mode": c.mode, "region": c.patrol.region_id, "perception_age_ms": round(age * 1e3, 1),
                    "stops_stale": w.counters.stops[STALE], "stops_imminent": w.counters.stops[IMMINENT],
                    "stopped_s": round(w.counters.stopped_s, 2), "decisions": self.decisions,
                    "bad_decisions": self.bad_decisions, "odom_rejected": self.odom_rejected,
                    "clock_jumps": w.clock_jumps, "last_clock_jump_s": round(self.last_clock_jump_s, 3),
                    "linear": round(c.command[0], 3),
                    "angular": round(c.command[1], 3)})

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
