"""Helpers for tests with real nodes: node processes and an in-test rclpy node."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from typing import Callable, List, Optional, Tuple

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy


class OutputLines:
    """Every line a process writes to its stdout pipe, read by a thread of its own, so that a
    test can wait for a line under a ceiling (a blocking readline has none) and still see the
    whole output, before and after that line."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60.0) -> int:
        """The number of lines up to and including the first that holds `text`; fails the test
        (and kills the process) if the process ends or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        k = 0                          # lines before k have been looked at
        while time.monotonic() < deadline:
            while k < len(self.lines):
                k += 1
                if text in self.lines[k - 1]:
                    return k
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError(f"never printed {text!r}:\n{self.text()[-3000:]}")

    def finish(self, timeout: float = 10.0) -> str:
        """All of the output, once the process has closed its end of the pipe."""
        self._reader.join(timeout)
        return self.text()

    def text(self, start: int = 0) -> str:
        return "".join(self.lines[start:])


# Tests wait on /diagnostics for counters and states: nodes started here report four times a
# second instead of once (a parameter a test may still set; the product's default stays 1 s).
TEST_DIAGNOSTICS_PERIOD_S = 0.25


class NodeProcess:
    """A node started as `python -m <module> --ros-args ...` in its own process group."""

    def __init__(self, module: str, params: Optional[dict] = None, namespace: str = "", extra: List[str] = ()):
        self.module = module
        params = {"diagnostic_updater.period": TEST_DIAGNOSTICS_PERIOD_S, **(params or {})}
        args = ["--ros-args"]
        if namespace:
            args += ["-r", f"__ns:={namespace}"]
        for k, v in (params or {}).items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, (list, tuple)):
                v = "[" + ",".join(str(x) for x in v) + "]"
            args += ["-p", f"{k}:={v}"]
        self.cmd = [sys.executable, "-m", module, *args, *extra]
        self.logfile = tempfile.NamedTemporaryFile("w+", prefix="node-", suffix=".log", delete=False)
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "NodeProcess":
        self.proc = subprocess.Popen(self.cmd, stdout=self.logfile, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=dict(os.environ))
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (a clean ROS shutdown), then SIGTERM, then SIGKILL; returns the exit status."""
        if self.proc is None:
            return 0
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.wait()

    def log(self) -> str:
        self.logfile.flush()
        with open(self.logfile.name) as fh:
            return fh.read()

    def __enter__(self) -> "NodeProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Probe:
    """An rclpy node inside the test, with a spin-until helper."""

    def __init__(self, name: str = "test_probe") -> None:
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(name)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)

    def spin_until(self, cond: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.01)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        rclpy.try_shutdown()


# node modules, started with `python -m`
WORLD = "snn_autonomy.ros.world_node"
SENSOR = "snn_autonomy.ros.event_sensor_node"
PERCEPTION = "snn_autonomy.ros.perception_node"
CONTROL = "snn_autonomy.ros.control_node"
ATTENTION = "snn_autonomy.ros.attention_node"
ROBOT = "snn_autonomy.ros.robot_node"
FLEET_AGENT = "snn_autonomy.ros.fleet_agent_node"

# best effort like the publishers, but deep: a Python probe must not lose a burst
PROBE_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)
# every world state of a test (reliable, as the world publishes them), for replays and ground
# truth: a reader of the product's depth (200 states) wraps while a probe on a busy machine has
# not yet taken them. The world's writer holds only its `state_depth` for a reader that is behind:
# a test that needs them all starts the world with state_depth 5000 too.
PROBE_STATES = QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE)


def diag_values(msgs, name_part: str) -> dict:
    """Key/values of the newest DiagnosticStatus whose name contains `name_part` (a node's
    `scheduling` status only when asked for by name: every node reports one)."""
    out = {}
    for m in msgs:
        for s in m.status:
            if name_part in s.name and (not s.name.endswith(": scheduling") or name_part.endswith("scheduling")):
                out = {kv.key: kv.value for kv in s.values}
    return out


def roi_window_ns(msgs, roi: str, name_part: str = "event_sensor: event stream",
                  packet_period_ns: int = 1_000_000) -> Optional[Tuple[int, int]]:
    """(after, until): an event sensor's packets stamped in (after, until] were cut by ROI `roi`
    ("x,y,w,h" or "full"), from the newest of its statuses in `msgs` that report it; None if none
    does. Each status reports, of one instant, the ROI, the stamp of the newest packet when it
    took effect (`roi_since_s`) and the newest packet's stamp (`stamp_s`): events filtered before
    the change wait at most one packet period for their packet, and the statuses that report the
    same ROI since the same stamp saw no change in between."""
    runs = [{kv.key: kv.value for kv in s.values} for m in msgs for s in m.status if s.name.endswith(name_part)]
    mine = [v for v in runs if v.get("roi") == roi and "roi_since_s" in v]
    if not mine:
        return None
    since = mine[-1]["roi_since_s"]
    until = max(round(float(v["stamp_s"]) * 1e9) for v in mine if v["roi_since_s"] == since)
    return round(float(since) * 1e9) + packet_period_ns, until


# A real node (the common main) that cannot finish stopping, by its first argument: `callback`,
# a callback that never returns; `teardown`, a teardown that blocks (as a DDS destructor waiting
# on a lock does). Deaf to SIGINT and SIGTERM either way.
STUCK_NODE = r"""
import sys, threading, time
from rclpy.node import Node
from snn_autonomy.ros.spin import spin_node

class Stuck(Node):
    def __init__(self):
        super().__init__("stuck")
        if sys.argv[1] == "callback":
            self.create_timer(0.05, self.stuck_in_a_callback)
        print("ready", flush=True)

    def stuck_in_a_callback(self):
        print("stuck", flush=True)
        while True:
            time.sleep(0.01)

    def destroy_node(self):
        if sys.argv[1] == "teardown":
            threading.Event().wait()
        super().destroy_node()

sys.exit(spin_node(Stuck, []))
"""


def warn_of_unclean_stops(launch_summary: dict) -> None:
    """A node that stopped when asked but with an unusual status (one past its shutdown deadline
    has its stacks in its log) does not fail a run whose job was done; the suite's warnings
    summary carries the end of its log."""
    from snn_autonomy.launcher import log_tails

    if launch_summary["unclean_stop_logs"]:
        warnings.warn(f"unclean stops:\n{log_tails(launch_summary['unclean_stop_logs'])}")


def fifo_permitted(priority: int = 50) -> bool:
    """Whether a process of this user may take SCHED_FIFO at `priority` (root, CAP_SYS_NICE or
    an rtprio limit): asked of a throw-away child, so that the test process keeps its policy."""
    import subprocess
    code = ("import sys; from snn_autonomy.realtime import set_fifo_priority; "
            f"sys.exit(0 if set_fifo_priority({priority}).applied else 1)")
    return subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
