"""The main job (`snn-autonomy demo`): the whole fleet graph of the built-in world as ROS 2 nodes
over DDS, watched live, recorded, and reported.

The launch plan (one `robot` node per robot in fused mode, or event_sensor, perception,
control and attention nodes in split mode; fleet agents, the coordinator, the world) runs
under the project's launcher. An in-process monitor node records every robot's decisions,
decision traces, ground truth, commands and collisions, and the fleet's plans and
detections, to an MCAP file, and shows per robot: decisions/s, e2e latency p99, energy per
decision, early-exit saving. At the end it writes, under the output directory:

    report.json   figures computed from the recording (snn_autonomy.report.summary)
    *.png         latency per stage, steps per decision, energy per decision, trajectories
    recording/    the MCAP rosbag2 (Foxglove, `ros2 bag`, rosbags)
    logs/         one log per node and the launcher's own

The demo lasts `duration_s` simulated seconds after the first decision (the world's clock, read
from the ground truth it publishes). The world runs at `real_time_factor` (default 0.5): every node of three robots shares the
CPU with the world, and at full speed two cores cannot keep up with three 1 kHz cameras.
"""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import yaml

from .launch_plan import LaunchConfig, build_plan
from .paths import config_path, resolve_model
from .perception.model_io import read_manifest
from .report.summary import stamp_seconds

RECORD = ("perception", "decision_trace", "ground_truth", "collisions", "cmd_vel", "odom", "assignment")


def world_yaml(out: Path, agents: int, seed: Optional[int]) -> Path:
    doc = yaml.safe_load(config_path("world_default.yaml").read_text())
    doc["world"]["robots"]["count"] = agents
    if seed is not None:
        doc["world"]["seed"] = int(seed)
    path = out / "world.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class _Live:
    """Per-robot figures over the last few seconds, from the monitor's subscriptions."""

    def __init__(self) -> None:
        self.decisions: Dict[str, deque] = defaultdict(lambda: deque(maxlen=2000))
        self.e2e: Dict[str, deque] = defaultdict(lambda: deque(maxlen=500))
        self.first_decision_s: Optional[float] = None    # monotonic wall time
        self.sim_now_s: Optional[float] = None           # the world's clock, from ground truth stamps
        self.sim_first_s: Optional[float] = None         # ... at the first decision
        self.distance: Dict[str, float] = defaultdict(float)
        self.collisions: Dict[str, int] = defaultdict(int)
        self._last_xy: Dict[str, tuple] = {}
        self._lock = threading.Lock()   # callbacks run in the monitor's thread, the table in the main one

    def on_perception(self, msg) -> None:
        now = time.monotonic()
        with self._lock:
            self.first_decision_s = self.first_decision_s or now
            if self.sim_first_s is None:
                self.sim_first_s = self.sim_now_s
            self.decisions[msg.agent_id].append((now, msg.steps_used, msg.t_max, msg.energy_estimated_uj))

    def on_trace(self, msg) -> None:
        with self._lock:
            self.e2e[msg.agent_id].append(msg.e2e_latency_ms)

    def on_ground_truth(self, robot: str, msg) -> None:
        p = msg.pose.pose.position
        stamp = stamp_seconds(msg.header.stamp)
        with self._lock:
            self.sim_now_s = max(self.sim_now_s or 0.0, stamp)
            if self.first_decision_s is not None and self.sim_first_s is None:
                self.sim_first_s = self.sim_now_s   # the first decision came before any ground truth
            last = self._last_xy.get(robot)
            if last is not None:
                self.distance[robot] += ((p.x - last[0]) ** 2 + (p.y - last[1]) ** 2) ** 0.5
            self._last_xy[robot] = (p.x, p.y)

    def on_collision(self, robot: str, _msg) -> None:
        with self._lock:
            self.collisions[robot] += 1

    def simulated_s(self) -> float:
        """Simulated seconds since the first decision (0 before it)."""
        with self._lock:
            if self.sim_first_s is None or self.sim_now_s is None:
                return 0.0
            return self.sim_now_s - self.sim_first_s

    def table(self, model_t_max: int, elapsed: float, duration: float):
        import numpy as np
        from rich.table import Table

        t = Table(title=f"snn-autonomy demo: {elapsed:.0f} / {duration:.0f} simulated s")
        for col in ("robot", "decisions/s", "e2e p99 ms", "energy/decision uJ", "steps", "early-exit saving",
                    "driven m", "contacts"):
            t.add_column(col)
        now = time.monotonic()
        with self._lock:
            snapshot = {r: (list(d), list(self.e2e[r])) for r, d in self.decisions.items()}
            driven, contacts = dict(self.distance), dict(self.collisions)
        for robot, (decisions, lat) in sorted(snapshot.items()):
            recent = [d for d in decisions if now - d[0] < 5.0]
            steps = np.mean([d[1] for d in recent]) if recent else float("nan")
            e2e = np.percentile(lat, 99) if lat else float("nan")
            t.add_row(robot, f"{len(recent) / 5.0:.0f}", f"{e2e:.2f}",
                      f"{np.mean([d[3] for d in recent]):.2f}" if recent else "-", f"{steps:.1f}",
                      f"{100 * (1 - steps / model_t_max):.0f} %" if recent else "-",
                      f"{driven.get(robot, 0.0):.1f}", str(contacts.get(robot, 0)))
        return t


def run_demo(agents: int = 3, duration_s: float = 60.0, seed: Optional[int] = None, out_dir: Path = Path("runs/demo"),
             attention: bool = True, mode: str = "fused", real_time_factor: float = 0.5, realtime: bool = True,
             log: Callable[[str], None] = print, live: bool = True) -> Dict[str, Any]:
    """Run the fleet for `duration_s` simulated seconds after its first decision (at the default
    real_time_factor, twice as long on the wall clock); returns the report."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from .launcher import Launcher
    from .report.plots import plot_energy, plot_latency, plot_steps, plot_trajectories
    from .report.summary import FLEET_TOPICS, summarise
    from .ros.recorder import TopicRecorder
    from .sim.config import load_world_config, with_robot_count
    from .sim.world import World

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bag = out / "recording"
    if bag.exists():
        import shutil

        shutil.rmtree(bag)
    world_path = world_yaml(out, agents, seed)
    cfg = LaunchConfig(robots=agents, mode=mode, attention=attention, world_config=str(world_path),
                       world_parameters={"real_time_factor": real_time_factor, "wait_for_subscribers": agents},
                       **({} if realtime else {"realtime_priority": {}}))
    plan = build_plan(cfg)
    model_t_max = int(read_manifest(resolve_model())["t_max"])
    robots = [f"robot_{i}" for i in range(agents)]
    rclpy.init()
    node = rclpy.create_node("demo_monitor")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    watch = _Live()
    listeners = {**{f"/{r}/perception": watch.on_perception for r in robots},
                 **{f"/{r}/decision_trace": watch.on_trace for r in robots},
                 **{f"/{r}/ground_truth": (lambda m, r=r: watch.on_ground_truth(r, m)) for r in robots},
                 **{f"/{r}/collisions": (lambda m, r=r: watch.on_collision(r, m)) for r in robots}}
    recorder = TopicRecorder(node, bag, topics=[f"/{r}/{leaf}" for r in robots for leaf in RECORD] + list(FLEET_TOPICS),
                             listeners=listeners)
    launcher = Launcher(plan, out / "logs", echo=lambda line: None, node_output=False)
    started = time.monotonic()
    state = {"next_discover": 0.0}

    # the monitor's callbacks run in their own thread: the launcher's loop only supervises
    spinner = threading.Thread(target=ex.spin, name="demo-monitor", daemon=True)
    spinner.start()

    def tick(view=None) -> None:
        now = time.monotonic()
        if now >= state["next_discover"]:
            recorder.discover()
            state["next_discover"] = now + 0.5
        first = watch.first_decision_s
        elapsed = watch.simulated_s()
        if first is not None and elapsed >= duration_s and not launcher.stop_reason:
            launcher.stop_reason = "demo duration reached"
        elif first is None and now - started > 180 and not launcher.stop_reason:
            launcher.stop_reason = "no decision within 180 s"
        elif first is not None and now - first > 20 * duration_s / real_time_factor + 60 and not launcher.stop_reason:
            launcher.stop_reason = "the world's clock stalled"   # never wait forever on a stopped world
        if view is not None:
            view.update(watch.table(model_t_max, elapsed, duration_s), refresh=True)

    log(f"demo: {agents} robots, {mode} mode, attention {'on' if attention else 'off'}, {duration_s:g} simulated s "
        f"at {real_time_factor:g}x real time; "
        f"output in {out}")
    try:
        if live:
            from rich.console import Console
            from rich.live import Live

            with Live(watch.table(model_t_max, 0, duration_s), console=Console(stderr=True),
                      auto_refresh=False) as view:
                status = launcher.run(None, on_tick=lambda: tick(view), tick_s=0.02)
        else:
            status = launcher.run(None, on_tick=tick, tick_s=0.02)
    finally:
        counts = recorder.close()
        ex.shutdown(timeout_sec=2.0)
        spinner.join(timeout=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    if watch.first_decision_s is None:
        raise RuntimeError(f"the fleet made no decision; see the node logs in {out / 'logs'}")
    world_cfg = load_world_config(str(world_path))
    world = World(with_robot_count(world_cfg, agents))
    report, run = summarise(bag, agents, duration_s, model_t_max, world=world, extra={
        "mode": mode, "attention": attention, "realtime": realtime, "seed": world_cfg.seed,
        "real_time_factor": real_time_factor, "launcher_exit_status": status, "launcher": launcher.summary(),
        "recorded_messages": sum(counts.values()), "recording": str(bag)})
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_latency(run, out / "latency_per_stage.png")
    plot_steps(run, model_t_max, out / "early_exit_steps.png")
    plot_energy(run, out / "energy_per_decision.png")
    plot_trajectories(run, world, out / "trajectories.png")
    return report
