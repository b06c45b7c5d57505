"""Headless closed-loop runs: N robots in the built-in world, each a FusedAgent with the
shipped model, patrolling the region the fleet coordinator assigned it
(`snn-autonomy closed-loop`). Reports what the attention on/off comparison needs:
coverage of the assigned regions, collisions per 100 m, watchdog stops, events and
synaptic operations per decision, decisions per second.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..attention.policy import AttentionConfig
from ..fleet.assignment import optimal_assignment, travel_costs
from ..fleet.regions import partition
from ..paths import resolve_model
from ..perception.runtime import StreamingPerception
from ..sensors.world_camera import WorldCamera
from ..sim.config import load_world_config, with_robot_count
from ..sim.world import World
from ..control.watchdog import STALE
from .coverage import RegionCoverage
from .fused import FusedAgent

CONTROL_TICK_US = 10_000    # the watchdog's clock between decisions


def run_closed_loop(agents: int = 3, duration_s: float = 60.0, attention: bool = True, world: str = "",
                    seed: Optional[int] = None, backend: str = "onnxruntime", model: Optional[Path] = None,
                    attention_cfg: AttentionConfig = AttentionConfig(),
                    progress: Optional[Callable[[float], None]] = None) -> Dict[str, Any]:
    cfg = load_world_config(world or None)
    if seed is not None:
        from dataclasses import replace

        cfg = replace(cfg, seed=int(seed))
    cfg = with_robot_count(cfg, agents)
    w = World(cfg)
    cams = [WorldCamera(w, i) for i in range(agents)]
    for cam in cams:
        cam.capture()   # first frame: pixel references and compiled kernels
    cam_cfg = cfg.camera
    loops: List[FusedAgent] = []
    for i in range(agents):
        perception = StreamingPerception.from_file(resolve_model(model), backend=backend,
                                                   **({"threads": 1} if backend == "onnxruntime" else {}))
        loops.append(FusedAgent(perception, cam_cfg.width, cam_cfg.height, cam_cfg.hfov_deg, attention=attention,
                                attention_cfg=attention_cfg, agent_id=f"robot_{i}",
                                origin=tuple(map(float, w.pose[i]))))
    poses = [lp.control.pose for lp in loops]
    # the coordinator's plan for a fleet that all joined at once: one region each, optimal assignment
    regions = partition(cfg.arena.size_m, agents)
    plan = dict(optimal_assignment(travel_costs([p[:2] for p in poses], regions)))
    coverage = []
    for i, lp in enumerate(loops):
        region = regions[plan[i]]
        lp.control.on_assignment(region.region_id, region.waypoints)
        coverage.append(RegionCoverage(region.boundary))
    steps = int(round(duration_s * 1e6 / w.dt_us))
    collisions: List = []
    stale_collisions = 0
    next_tick = 0
    t0 = time.perf_counter()
    for s in range(steps):
        for c in w.step():
            collisions.append(c)
            stale_collisions += loops[c.robot].control.mode == STALE
        now = w.time_us
        for i, cam in enumerate(cams):
            if not cam.frame_due():
                continue
            pose = tuple(map(float, w.pose[i]))
            loops[i].control.on_pose(pose)      # the simulator's ground truth stands in for odometry
            cmd = loops[i].on_events(cam.capture(), now, now * 1e-6)
            if cmd is not None:
                w.set_command(i, *cmd)
            coverage[i].visit(pose[0], pose[1])
        if now >= next_tick:
            for i, lp in enumerate(loops):
                stop = lp.on_tick(now * 1e-6)
                if stop is not None:
                    w.set_command(i, *stop)
            next_tick = now + CONTROL_TICK_US
        if progress is not None and s % 1000 == 0:
            progress(s / steps)
    wall = time.perf_counter() - t0
    sim_s = steps * w.dt_us / 1e6
    distance = float(w.distance_m.sum())
    total = {k: sum(getattr(lp.stats, k) for lp in loops)
             for k in ("decisions", "steps", "events_in", "events_used", "synaptic_ops", "calm_decisions")}
    n = max(total["decisions"], 1)
    stops: Dict[str, int] = {}
    for lp in loops:
        for k, v in lp.control.watchdog.counters.stops.items():
            stops[k] = stops.get(k, 0) + v
    return {
        "agents": agents, "attention": attention, "duration_s": sim_s, "seed": cfg.seed, "backend": backend,
        "coverage": round(float(np.mean([c.fraction for c in coverage])), 4),
        "coverage_per_agent": [round(c.fraction, 4) for c in coverage],
        "collisions": len(collisions), "distance_m": round(distance, 2),
        "collisions_per_100m": round(100.0 * len(collisions) / distance, 3) if distance > 0 else None,
        "collisions_by_kind": {k: sum(c.kind == k for c in collisions) for k in ("wall", "obstacle", "robot")},
        "collisions_at_speed": sum(c.relative_speed > 0.1 for c in collisions),
        "collisions_while_stale": stale_collisions,
        "watchdog_stops": stops,
        "decisions": total["decisions"],
        "decisions_per_s": round(total["decisions"] / sim_s / agents, 2),
        "events_per_decision": round(total["events_used"] / n, 1),
        "camera_events_per_decision": round(total["events_in"] / n, 1),
        "synops_per_decision": round(total["synaptic_ops"] / n, 1),
        "steps_per_decision": round(total["steps"] / n, 2),
        "calm_fraction": round(total["calm_decisions"] / n, 3),
        "waypoints_reached": sum(lp.control.patrol.waypoints_reached for lp in loops),
        "wall_s": round(wall, 1), "real_time_factor": round(sim_s / wall, 3),
    }
