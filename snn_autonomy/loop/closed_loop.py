"""Headless closed-loop runs: N robots in the built-in world patrolling the regions the fleet
coordinator assigned them (`snn-autonomy closed-loop`).

`perception="snn"`: each robot is a FusedAgent with the shipped model (events from its camera,
SNN decisions, attention). `perception="oracle"`: the same ControlCore is fed what perfect
perception would report (perception.sectors.oracle_percept, from the world's geometry) at the
SNN's decision rate, with no camera at all; the difference between the two runs is perception's
share of every figure. The report (loop.metrics) has distance, speed, coverage, collisions by
kind and fault, halts by cause and the minimum clearance, plus the SNN's work per decision.
With `teammates`, every robot hears the others' heartbeats (pose and speed, every
HEARTBEAT_PERIOD_US, as the fleet agents beat on /fleet/agent_state) and steers around them.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Literal, Optional

import numpy as np

from ..attention.policy import AttentionConfig, mode_fractions
from ..control.core import ControlCore
from ..fleet.assignment import optimal_assignment, travel_costs
from ..fleet.config import AgentConfig
from ..fleet.regions import partition
from ..fleet.state import AgentReport, yaw_quaternion
from ..paths import resolve_model
from ..perception.sectors import SectorSpec, oracle_percept
from ..sim.config import load_world_config, with_robot_count
from ..sim.world import World
from .fused import FusedAgent, LoopStats, budget_costs
from .metrics import PatrolMetrics

Perception = Literal["snn", "oracle"]
CONTROL_TICK_US = 10_000    # the watchdog's clock between decisions
PATH_PERIOD_US = 100_000     # poses kept for the plot
ORACLE_PERIOD_US = 25_000   # oracle decisions: 40 per second and robot, about the SNN's rate in this loop
HEARTBEAT_PERIOD_US = int(AgentConfig().heartbeat_period_s * 1e6)   # the fleet agents' pose heartbeats


def run_closed_loop(agents: int = 3, duration_s: float = 60.0, attention: bool = True, world: str = "",
                    seed: Optional[int] = None, backend: str = "onnxruntime", model: Optional[Path] = None,
                    attention_cfg: AttentionConfig = AttentionConfig(), perception: Perception = "snn",
                    plot: Optional[Path] = None, progress: Optional[Callable[[float], None]] = None,
                    temporal_prior: bool = True, teammates: bool = True) -> Dict[str, Any]:
    if perception not in ("snn", "oracle"):
        raise ValueError(f"perception must be 'snn' or 'oracle', not {perception!r}")
    cfg = load_world_config(world or None)
    if seed is not None:
        cfg = replace(cfg, seed=int(seed))
    cfg = with_robot_count(cfg, agents)
    w = World(cfg)
    cam_cfg = cfg.camera
    sectors = SectorSpec.for_camera(cam_cfg.hfov_deg)
    origins = [tuple(map(float, w.pose[i])) for i in range(agents)]
    loops: List[FusedAgent] = []
    if perception == "snn":
        from ..perception.runtime import StreamingPerception
        from ..sensors.world_camera import WorldCamera

        cams = [WorldCamera(w, i) for i in range(agents)]
        for cam in cams:
            cam.capture()   # first frame: pixel references and compiled kernels
        for i in range(agents):
            p = StreamingPerception.from_file(resolve_model(model), backend=backend, temporal_prior=temporal_prior,
                                              **({"threads": 1} if backend == "onnxruntime" else {}))
            loops.append(FusedAgent(p, cam_cfg.width, cam_cfg.height, cam_cfg.hfov_deg, attention=attention,
                                    attention_cfg=attention_cfg, agent_id=f"robot_{i}", origin=origins[i]))
        cores = [lp.control for lp in loops]
    else:
        cores = [ControlCore(origins[i], sectors=sectors) for i in range(agents)]
    # the coordinator's plan for a fleet that all joined at once: one region each, optimal assignment
    regions = partition(cfg.arena.size_m, agents)
    plan = dict(optimal_assignment(travel_costs([o[:2] for o in origins], regions)))
    for i, core in enumerate(cores):
        region = regions[plan[i]]
        core.on_assignment(region.region_id, region.waypoints)
    metrics = PatrolMetrics(w, [regions[plan[i]].boundary for i in range(agents)])
    steps = int(round(duration_s * 1e6 / w.dt_us))
    paths: List[np.ndarray] = []          # robot poses, then obstacle positions, every PATH_PERIOD_US
    next_tick = next_oracle = next_path = next_beat = 0
    t0 = time.perf_counter()
    for s in range(steps):
        metrics.before_step()
        collisions = w.step()
        now = w.time_us
        if teammates and now >= next_beat:
            # each robot's heartbeat reaches the others (the fleet agents' /fleet/agent_state)
            for j in range(agents):
                x, y, yaw = map(float, w.pose[j])
                beat = AgentReport(f"robot_{j}", 0, x, y, yaw_quaternion(yaw), float(w.vel[j, 0]), stamp_s=now * 1e-6,
                                   footprint_radius_m=cfg.robots.radius_m)
                for i, core in enumerate(cores):
                    if i != j:
                        core.on_teammate(beat, now * 1e-6)
            next_beat = now + HEARTBEAT_PERIOD_US
        if perception == "snn":
            for i, cam in enumerate(cams):
                if not cam.frame_due():
                    continue
                # the simulator's ground truth stands in for odometry
                cores[i].on_pose(tuple(map(float, w.pose[i])), float(w.vel[i, 0]))
                cmd = loops[i].on_events(cam.capture(), now, now * 1e-6)
                if cmd is not None:
                    w.set_command(i, *cmd)
        elif now >= next_oracle:
            for i, core in enumerate(cores):
                core.on_pose(tuple(map(float, w.pose[i])), float(w.vel[i, 0]))
                w.set_command(i, *core.on_percept(now * 1e-6, oracle_percept(w, i, sectors)))
            next_oracle = now + ORACLE_PERIOD_US
        if now >= next_tick:
            for i, core in enumerate(cores):
                stop = core.on_tick(now * 1e-6)
                if stop is not None:
                    w.set_command(i, *stop)
            next_tick = now + CONTROL_TICK_US
        metrics.after_step(collisions, [core.mode for core in cores])
        if plot is not None and now >= next_path:
            paths.append(np.concatenate([w.pose[:, :2], w.obs_pos]))
            next_path = now + PATH_PERIOD_US
        if progress is not None and s % 1000 == 0:
            progress(s / steps)
    wall = time.perf_counter() - t0
    sim_s = steps * w.dt_us / 1e6
    stops: Dict[str, int] = {}
    for core in cores:
        for k, v in core.watchdog.counters.stops.items():
            stops[k] = stops.get(k, 0) + v
    result: Dict[str, Any] = {
        "perception": perception, "agents": agents, "duration_s": sim_s, "world": world or "default",
        "seed": cfg.seed, "attention": attention if perception == "snn" else None, "teammates": teammates,
        "backend": backend if perception == "snn" else None}
    result.update(metrics.report(sim_s))
    result.update({
        "watchdog_stops": stops,
        "waypoints_reached": sum(core.patrol.waypoints_reached for core in cores),
        "waypoints_skipped": sum(core.patrol.waypoints_skipped for core in cores),
        "decisions": sum(core.counters.decisions for core in cores),
        "decisions_per_s": round(sum(core.counters.decisions for core in cores) / sim_s / agents, 2),
    })
    if perception == "snn":
        total = LoopStats.total(lp.stats for lp in loops)
        n = max(total.decisions, 1)
        result.update({
            "model": str(resolve_model(model)), "model_bin_us": loops[0].perception.bin_us,
            "events_per_decision": round(total.events_used / n, 1),
            "camera_events_per_decision": round(total.events_in / n, 1),
            "synops_per_decision": round(total.synaptic_ops / n, 1),
            "steps_per_decision": round(total.steps / n, 2),
            **mode_fractions(total.decisions_by_mode, n),
            "by_budget": budget_costs(total),
            "prior_fraction": round(sum(lp.perception.prior_decisions for lp in loops) / n, 3),
            "prior_turned_fraction": round(sum(lp.perception.turned_decisions for lp in loops) / n, 3),
            "prior_held_fraction": round(sum(lp.perception.held_decisions for lp in loops) / n, 3)})
    result.update({"wall_s": round(wall, 1), "real_time_factor": round(sim_s / wall, 3)})
    if plot is not None:
        from ..report.plots import plot_patrol

        track = np.asarray(paths)
        w0 = World(cfg)   # the obstacles where they started
        plot_patrol(plot, w0, [(f"robot_{i}", regions[plan[i]].boundary) for i in range(agents)],
                    {f"robot_{i}": track[:, i] for i in range(agents)}, metrics.events,
                    f"{perception}: {agents} robots, {sim_s:.0f} s, seed {cfg.seed}, coverage "
                    f"{result['coverage']:.0%}, {result['collisions_at_fault']} at-fault collisions",
                    obstacle_paths=track[:, agents:])
        result["plot"] = str(plot)
    return result
