"""`snn-autonomy bench loop`: sensing-to-action latency of one agent in the built-in world.

fused   sensor filter -> perception -> control in one process (`loop.fused.FusedAgent`): per
        camera batch that completes a decision, the wall time from the batch's events being
        available to the velocity command returned. The world itself is not timed.
split   event_sensor, perception and control as separate node processes over DDS with the
        world node at real time: e2e from each decision's DecisionTrace (newest EventPacket
        published -> cmd_vel published, DDS source timestamps on one host), with the p50 and
        p99 of each stage the traces carry (transport, decode, snn, decision, control).
        Perception and control run at the plan's default `realtime_priority` (SCHED_FIFO 45 and
        50, where the kernel allows it; `scheduling` says what each node got).
        `split_normal`: the same with every node on normal scheduling (`realtime_priority: {}`).
        `split_pinned`: the default plan with its `cpu_affinity` keeping the world and the event
        sensor (the simulation) on CPU 0 and perception and control on CPU 1.
`--stress N` runs N busy-loop processes (normal scheduling) throughout every mode, as
cyclictest is run beside stress-ng: what the chain's scheduling protects it from.
All at the default event rate (attention off: its node is not on the path and its budgets
would lower the rate). Budgets on a 2-core machine: fused p99 <= 2 ms, split p99 <= 5 ms.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from ..monitor.latency import percentiles
from ..paths import resolve_model
from .stress import CpuHog


def _ms(values: List[float]) -> Dict[str, Any]:
    p = percentiles(values)
    return {"p50_ms": p["p50"], "p95_ms": p["p95"], "p99_ms": p["p99"], "decisions": p["n"]}


def fused_latency(duration_s: float = 10.0, seed: int = 7) -> Dict[str, Any]:
    """In this process, at the fused robot node's default SCHED_FIFO priority where allowed.
    The loop steps the world as fast as it can: one core busy at FIFO for `duration_s`, of
    which the kernel's RT throttling leaves other processes 5 %."""
    from dataclasses import replace

    from ..launch_plan import DEFAULT_REALTIME_PRIORITY
    from ..loop.fused import FusedAgent
    from ..perception.runtime import StreamingPerception
    from ..realtime import set_fifo_priority, set_normal_scheduling
    from ..sensors.world_camera import WorldCamera
    from ..sim.config import load_world_config, with_robot_count
    from ..sim.world import World

    cfg = with_robot_count(replace(load_world_config(None), seed=seed), 1)
    world = World(cfg)
    cam = WorldCamera(world, 0)
    cam.capture()
    perception = StreamingPerception.from_file(resolve_model(), backend="onnxruntime",
                                               threads=1)
    agent = FusedAgent(perception, cfg.camera.width, cfg.camera.height, cfg.camera.hfov_deg, attention=False)
    lat: List[float] = []
    scheduling = set_fifo_priority(DEFAULT_REALTIME_PRIORITY["robot"])
    try:
        _run_fused(world, cam, agent, duration_s, lat)
    finally:
        if scheduling.applied:
            set_normal_scheduling()
    return {**_ms(lat), "events_per_decision": round(agent.stats.events_used / max(agent.stats.decisions, 1), 1),
            "scheduling": scheduling.describe()}


def _run_fused(world, cam, agent, duration_s: float, lat: List[float]) -> None:
    for s in range(int(duration_s * 1e6 / world.dt_us)):
        world.step()
        if cam.frame_due():
            batch = cam.capture()
            agent.control.on_pose(tuple(map(float, world.pose[0])), float(world.vel[0, 0]))
            t0 = time.perf_counter_ns()
            cmd = agent.on_events(batch, world.time_us, world.time_us * 1e-6)
            if cmd is not None:
                lat.append((time.perf_counter_ns() - t0) * 1e-6)
                world.set_command(0, *cmd)
        if s % 10 == 0:
            stop = agent.on_tick(world.time_us * 1e-6)
            if stop is not None:
                world.set_command(0, *stop)


# the simulation (world and the camera emulated from it) on one core, the chain on the other
PINNED = {"world": [0], "event_sensor": [0], "perception": [1], "control": [1]}


def split_latency(duration_s: float = 15.0, warmup_s: float = 5.0,
                  cpu_affinity: Optional[Dict[str, List[int]]] = None,
                  realtime_priority: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    """Starts the nodes with the project's launcher and listens to their decision traces.
    `realtime_priority` None: the plan's default."""
    import tempfile
    from pathlib import Path

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from snn_autonomy_msgs.msg import DecisionTrace

    from ..launch_plan import LaunchConfig, build_plan
    from ..launcher import Launcher
    from ..realtime import scheduling_reports
    from ..ros import qos

    rt_override = {} if realtime_priority is None else {"realtime_priority": dict(realtime_priority)}
    plan = build_plan(LaunchConfig(robots=1, attention=False, fleet=False, respawn_perception=False,
                                   world_parameters={"wait_for_subscribers": 1},
                                   cpu_affinity=dict(cpu_affinity or {}), **rt_override))
    rclpy.init()
    node = rclpy.create_node("bench_loop_probe")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    traces: List[float] = []
    stages: Dict[str, List[float]] = {}

    def on_trace(m) -> None:
        traces.append(float(m.e2e_latency_ms))
        for st in m.stage_latencies:
            stages.setdefault(st.stage, []).append(float(st.duration_ms))

    node.create_subscription(DecisionTrace, "/robot_0/decision_trace", on_trace, qos.COMMAND)
    policies: Dict[str, str] = {}

    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: policies.update(scheduling_reports(m.status)),
                             50)
    clock = {"start": time.monotonic(), "first": None}
    launcher = Launcher(plan, Path(tempfile.mkdtemp(prefix="snn_bench_loop_")), echo=lambda line: None,
                        node_output=False)

    def tick() -> None:
        ex.spin_once(timeout_sec=0.0)
        now = time.monotonic()
        if clock["first"] is None and traces:
            clock["first"] = now
        elif clock["first"] is not None and now - clock["first"] < warmup_s:
            traces.clear()          # the first seconds: nodes still settling
            stages.clear()
        if clock["first"] is None and now - clock["start"] > 90:
            launcher.stop_reason = "no decision traces within 90 s"
        elif clock["first"] is not None and now - clock["first"] >= warmup_s + duration_s:
            launcher.stop_reason = "done"

    try:
        launcher.run(None, on_tick=tick, tick_s=0.005)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if not traces:
        raise RuntimeError(f"no decision traces from the split nodes; logs in {launcher.log_dir}")
    per_stage = {}
    for stage, values in stages.items():
        p = percentiles(values)
        per_stage[stage] = {"p50_ms": p["p50"], "p99_ms": p["p99"]}
    return {**_ms(traces), "stages": per_stage, "scheduling": dict(sorted(policies.items()))}


def bench_loop(duration_s: float = 10.0, split: bool = True, stress: int = 0) -> Dict[str, Any]:
    """`fused`, `split` and `split_normal`; `split_pinned` too where this process may use CPUs 0 and 1."""
    import os

    with CpuHog(stress, pin=False):
        out: Dict[str, Any] = {"fused": fused_latency(duration_s)}
        if split:
            out["split"] = split_latency(duration_s)
            out["split_normal"] = split_latency(duration_s, realtime_priority={})
            if {0, 1} <= os.sched_getaffinity(0):
                out["split_pinned"] = {**split_latency(duration_s, cpu_affinity=PINNED), "cpu_affinity": PINNED}
    out["stress_processes"] = stress
    out["budgets_ms"] = {"fused_p99": 2.0, "split_p99": 5.0}
    out["within_budget"] = {"fused": bool(out["fused"]["p99_ms"] <= 2.0),
                            **{k: bool(out[k]["p99_ms"] <= 5.0) for k in ("split", "split_normal", "split_pinned") if k in out}}
    return out

