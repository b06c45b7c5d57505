"""A live fleet for fault injection: the launch plan's nodes under the project's launcher, and
an in-process probe node that records what the faults are judged on.

Times are wall-clock seconds (`time.time()`, the clock of DDS source timestamps on this host):
a message counts at the moment its sender published it, so a probe that takes its messages
late (a pause of its own) does not move them. The nodes run on the world's clock (/clock): a
deadline of theirs lasts `wall_per_sim_s` times as long on the probe's, or longer while the
world runs late; `world_s` maps a probe time onto the world's clock. Everything runs in the
caller's thread: `wait` / `wait_until` supervise the launcher (reaping exits, respawning) and
spin the probe.
"""
from __future__ import annotations

import bisect
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..launch_plan import NodeSpec
from ..launcher import Launcher
from ..ros.convert import stamp_to_ns

STREAM = "event_sensor: event stream"       # /diagnostics status names (after the node's namespace)
PERCEPTION = "perception: decisions"
CONTROL = "control: control"


def sent(info) -> float:
    """When the sender published the message (DDS source timestamp), wall-clock seconds."""
    return int(info["source_timestamp"]) * 1e-9


def world_time(t: float, ts: Sequence[float], ss: Sequence[float], runs: Sequence[int]) -> float:
    """A clock's reading at time `t`, interpolated between readings `ss` taken at times `ts`, on the
    run of that clock that was going at `t` (`runs`: where each run starts in the readings; a
    restarted world counts from 0 again). NaN before the first reading."""
    if not ts:
        return math.nan
    k = max(0, bisect.bisect_right([ts[i] for i in runs], t) - 1)
    lo, hi = runs[k], (runs[k + 1] if k + 1 < len(runs) else len(ts))
    j = bisect.bisect_right(ts, t, lo, hi)
    if j == lo or j == hi:
        return ss[lo] if j == lo else ss[hi - 1]
    w = (t - ts[j - 1]) / max(ts[j] - ts[j - 1], 1e-9)
    return ss[j - 1] + w * (ss[j] - ss[j - 1])


class LiveFleet:
    def __init__(self, plan: Sequence[NodeSpec], robots: Sequence[str], log_dir: Path,
                 wall_per_sim_s: float = 1.0) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.robots = list(robots)
        self.wall_per_sim_s = wall_per_sim_s     # 1 / the world's real-time factor
        self.launcher = Launcher(plan, log_dir, echo=lambda line: None, node_output=False)
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node("chaos_probe")
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        # per robot: (t, value) series
        self.cmd: Dict[str, List[Tuple[float, float, float]]] = defaultdict(list)        # t, linear, angular
        self.speed: Dict[str, List[Tuple[float, float]]] = defaultdict(list)             # ground truth |v|
        self.decisions: Dict[str, List[float]] = defaultdict(list)                       # Perception received
        # Perception published, as control's DecisionTrace gives it (cmd_vel stamp - control stage):
        # a respawned perception's first decisions reach control before the probe has discovered
        # the new publisher, and only the traces show them
        self.traced_decisions: Dict[str, List[float]] = defaultdict(list)
        self.e2e: Dict[str, List[Tuple[float, float]]] = defaultdict(list)               # DecisionTrace e2e ms
        self.collisions: Dict[str, List[float]] = defaultdict(list)
        self.plans: List[Tuple[float, Any]] = []
        self.diag: Dict[str, List[Tuple[float, Dict[str, str], str]]] = defaultdict(list)  # name -> values, message
        # the world's /clock: probe times, its seconds, and where each run of it starts (a restarted
        # world counts from 0 again)
        self._clock_t: List[float] = []
        self._clock_s: List[float] = []
        self._runs: List[int] = [0]
        self.ignore_linear_z = math.nan        # Twists marked with this linear.z are not recorded
        self._subscribe()

    # ------------------------------------------------------------------ recording
    def _subscribe(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from rosgraph_msgs.msg import Clock
        from snn_autonomy_msgs.msg import Collision, DecisionTrace, FleetPlan, Perception

        from ..ros import qos

        n = self.node
        for r in self.robots:
            n.create_subscription(Twist, f"/{r}/cmd_vel", lambda m, i, r=r: self._on_cmd(r, m, sent(i)), qos.COMMAND)
            n.create_subscription(Odometry, f"/{r}/ground_truth", lambda m, i, r=r: self.speed[r].append(
                (sent(i), math.hypot(m.twist.twist.linear.x, m.twist.twist.linear.y))), qos.COMMAND)
            n.create_subscription(Perception, f"/{r}/perception",
                                  lambda m, i, r=r: self.decisions[r].append(sent(i)), qos.COMMAND)
            n.create_subscription(DecisionTrace, f"/{r}/decision_trace",
                                  lambda m, i, r=r: self._on_trace(r, m, sent(i)), qos.COMMAND)
            n.create_subscription(Collision, f"/{r}/collisions",
                                  lambda m, i, r=r: self.collisions[r].append(sent(i)), qos.COMMAND)
        n.create_subscription(FleetPlan, "/fleet/plan", lambda m, i: self.plans.append((sent(i), m)), qos.LATCHED)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 100)
        n.create_subscription(Clock, "/clock", self._on_clock, qos.SENSOR)

    def _on_clock(self, msg, info) -> None:
        s = stamp_to_ns(msg.clock) * 1e-9
        if self._clock_s and s < self._clock_s[-1]:
            self._runs.append(len(self._clock_s))
        self._clock_t.append(sent(info))
        self._clock_s.append(s)

    def _on_trace(self, robot: str, msg, t: float) -> None:
        self.e2e[robot].append((t, float(msg.e2e_latency_ms)))
        control_ms = sum(float(s.duration_ms) for s in msg.stage_latencies if s.stage == "control")
        self.traced_decisions[robot].append(stamp_to_ns(msg.cmd_vel_stamp) * 1e-9 - control_ms * 1e-3)

    def _on_cmd(self, robot: str, msg, t: float) -> None:
        if msg.linear.z != self.ignore_linear_z:     # not one of the probe's own hostile Twists
            self.cmd[robot].append((t, msg.linear.x, msg.angular.z))

    def _on_diag(self, msg, info) -> None:
        t = sent(info)
        for s in msg.status:
            self.diag[s.name.lstrip("/")].append((t, {kv.key: kv.value for kv in s.values}, s.message))

    def diag_values(self, name: str, since: float = 0.0) -> List[Tuple[float, Dict[str, str]]]:
        """(t, key/values) of the status `name` (e.g. 'robot_0/perception: decisions') since `since`."""
        return [(t, v) for t, v, _ in self.diag.get(name, []) if t >= since]

    def world_s(self, t: float) -> float:
        """The world's clock at probe time `t` (see `world_time`)."""
        return world_time(t, self._clock_t, self._clock_s, self._runs)

    def counter(self, name: str, key: str, since: float = 0.0) -> Optional[int]:
        """The newest value of an integer counter on /diagnostics (None if not reported yet)."""
        vals = [v[key] for _, v in self.diag_values(name, since) if key in v]
        return int(float(vals[-1])) if vals else None

    # ------------------------------------------------------------------ running
    def start(self, ready: Callable[[], bool], timeout_s: float = 120.0) -> float:
        """Start the plan; wait until `ready()`; returns the seconds it took."""
        t0 = time.monotonic()
        self.launcher.start()
        if self.wait_until(ready, timeout_s) is None:
            raise RuntimeError(f"the fleet did not come up within {timeout_s:.0f} s; logs in {self.launcher.log_dir}")
        return time.monotonic() - t0

    def wait(self, seconds: float) -> None:
        self.wait_until(lambda: False, seconds)

    def wait_until(self, cond: Callable[[], bool], timeout_s: float) -> Optional[float]:
        """Seconds until `cond()` held, or None after `timeout_s`."""
        t0 = time.monotonic()
        next_poll = 0.0
        while True:
            now = time.monotonic()
            if cond():
                return now - t0
            if now - t0 > timeout_s:
                return None
            if now >= next_poll:               # reap and respawn at 20 Hz
                self.launcher.poll()
                next_poll = now + 0.05
            self._executor.spin_once(timeout_sec=0.005)

    def stop(self) -> Dict[str, Any]:
        import rclpy

        try:
            self.launcher.shutdown()
        finally:
            self._executor.remove_node(self.node)
            self.node.destroy_node()
            rclpy.try_shutdown()
        return self.launcher.summary()

    def set_parameter(self, node: str, name: str, value: Any, timeout_s: float = 10.0) -> Tuple[bool, str]:
        """Set a parameter of a running node through its parameter service."""
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, node)
        future = client.set_parameters([Parameter(name, value=value)])
        if self.wait_until(future.done, timeout_s) is None:
            return False, f"no answer from {node} within {timeout_s} s"
        result = future.result().results[0]
        return bool(result.successful), result.reason
