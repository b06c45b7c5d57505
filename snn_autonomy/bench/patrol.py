"""`snn-autonomy bench patrol`: whether the robots do their job, with perfect perception (the
oracle) and with the SNN, through the same controller.

Runs headless closed loops (loop.closed_loop) over each world and seed, in parallel processes,
and reports every run and the figures over all of them: coverage, mean speed, collisions at fault
per 100 m by kind, halts. With both perceptions it also gives the SNN's share of the oracle's
coverage and of its at-fault collision rate, and checks the goals below. With `attention_share`
it also runs the SNN with attention off (the full sensing budget: every other part the same) and
reports attention's own saving of events and synaptic operations per decision against it.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..config import ConfigError
from ..paths import config_path, resolve_model
from ..report.stats import poisson_interval

# what a patrol must reach (figures over all worlds and seeds, 3 robots, 120 simulated s)
GOALS = {
    "oracle": {"wall_static_at_fault": 0, "coverage_min": 0.60},
    "snn": {"coverage_of_oracle_min": 0.85, "at_fault_per_100m_max": 1.0, "at_fault_of_oracle_max": 1.5,
            "mean_speed_min_mps": 0.25},
    # attention's own saving per decision, against the same SNN runs with attention off
    "attention": {"events_saved_min": 0.40, "synops_ratio_min": 2.0},
}
# SNN figures per decision, weighted by each run's decisions
PER_DECISION = ("events_per_decision", "synops_per_decision", "steps_per_decision", "calm_fraction",
                "open_fraction", "spin_fraction")
# the benchmark's worlds by name; any other world is given as its YAML file
WORLDS = {"default": "world_default.yaml", "unseen": "world_unseen.yaml"}


def world_file(world: str) -> str:
    """The file of a named world, or `world` itself when it is a YAML file; else a ConfigError."""
    if world in WORLDS:
        return str(config_path(WORLDS[world]))
    if world.endswith((".yaml", ".yml")) and Path(world).is_file():
        return world
    raise ConfigError(f"unknown world {world!r}: use {' or '.join(WORLDS)}, or a world YAML file")


def _one(args) -> Dict[str, Any]:
    from ..loop.closed_loop import run_closed_loop

    perception, world, seed, agents, duration_s, model, attention = args
    r = run_closed_loop(agents=agents, duration_s=duration_s, world=world_file(world), seed=seed,
                        perception=perception, model=model, attention=attention)
    r["world"] = world
    r.pop("collision_events", None)
    return r


def _overall(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    distance = sum(r["distance_m"] for r in runs)
    robot_s = sum(r["duration_s"] * r["agents"] for r in runs)
    kinds = ("wall", "static", "moving", "robot")
    fault = {k: sum(r["collisions_at_fault_by_kind"][k] for r in runs) for k in kinds}
    coll = {k: sum(r["collisions_by_kind"][k] for r in runs) for k in kinds}
    halts: Dict[str, int] = {}
    halted: Dict[str, float] = {}
    for r in runs:
        for k, v in r["halts"].items():
            halts[k] = halts.get(k, 0) + v
        for k, v in r["halted_s"].items():
            halted[k] = round(halted.get(k, 0.0) + v, 2)
    decisions = sum(r.get("decisions", 0) for r in runs)
    per_decision = {k: round(sum(r[k] * r["decisions"] for r in runs) / decisions, 3)
                    for k in PER_DECISION if decisions and all(k in r for r in runs)}
    return {
        "runs": len(runs),
        "coverage": round(sum(r["coverage"] for r in runs) / len(runs), 4),
        "mean_speed_mps": round(distance / robot_s, 3) if robot_s else None,
        "distance_m": round(distance, 2),
        "collisions_by_kind": coll,
        "collisions_at_fault_by_kind": fault,
        "collisions_at_fault_per_100m": round(100.0 * sum(fault.values()) / distance, 3) if distance else None,
        # a handful of events: the range their rate could have by chance alone (exact Poisson, 95 %)
        "collisions_at_fault_per_100m_ci95": ([round(100.0 * v / distance, 3) for v in poisson_interval(sum(fault.values()))]
                                              if distance else None),
        "halts": halts,
        "halted_fraction": round(sum(halted.values()) / robot_s, 4) if robot_s else None,
        "min_clearance_m": min(min(r["min_clearance_m"]) for r in runs),
        **per_decision,
    }


def bench_patrol(perceptions: Sequence[str] = ("oracle", "snn"), worlds: Sequence[str] = ("default", "unseen"),
                 seeds: Sequence[int] = (7, 11), agents: int = 3, duration_s: float = 120.0,
                 workers: int = 0, model: Optional[Path] = None, attention_share: bool = False) -> Dict[str, Any]:
    """`model`: the SNN's model file (default: the shipped model). `attention_share`: also run the
    SNN with attention off, and report attention's own share of the savings (`attention_share`)."""
    for w in worlds:
        world_file(w)
    if "snn" in perceptions and not (path := resolve_model(model)).is_file():
        raise FileNotFoundError(f"no model file {path}")
    if attention_share and "snn" not in perceptions:
        raise ConfigError("attention's share is the SNN's: run it with the SNN's perception")
    jobs = [(p, w, s, agents, duration_s, model, True) for p in perceptions for w in worlds for s in seeds]
    if attention_share:
        jobs += [("snn", w, s, agents, duration_s, model, False) for w in worlds for s in seeds]
    with ProcessPoolExecutor(max_workers=workers or min(len(jobs), os.cpu_count() or 1)) as pool:
        runs = list(pool.map(_one, jobs))
    out: Dict[str, Any] = {"agents": agents, "duration_s": duration_s, "worlds": list(worlds), "seeds": list(seeds)}
    # each run says what it ran with: `attention` is False for the SNN's attention-off runs only
    groups = {p: [r for r in runs if r["perception"] == p and r["attention"] is not False] for p in perceptions}
    if attention_share:
        groups["snn_attention_off"] = [r for r in runs if r["attention"] is False]
    for p, mine in groups.items():
        out[p] = {"overall": _overall(mine), "per_world": {w: _overall([r for r in mine if r["world"] == w])
                                                           for w in worlds},
                  "runs": mine}
    goals: Dict[str, Any] = {}
    if "oracle" in out:
        o = out["oracle"]["overall"]
        g = GOALS["oracle"]
        goals["oracle_no_wall_or_static_at_fault"] = (o["collisions_at_fault_by_kind"]["wall"]
                                                      + o["collisions_at_fault_by_kind"]["static"]) == g["wall_static_at_fault"]
        goals["oracle_coverage"] = o["coverage"] >= g["coverage_min"]
    if "snn" in out:
        s = out["snn"]["overall"]
        g = GOALS["snn"]
        goals["snn_mean_speed"] = (s["mean_speed_mps"] or 0.0) >= g["mean_speed_min_mps"]
        goals["snn_at_fault_per_100m"] = s["collisions_at_fault_per_100m"] is not None and \
            s["collisions_at_fault_per_100m"] <= g["at_fault_per_100m_max"]
        if "oracle" in out:
            o = out["oracle"]["overall"]
            out["snn_vs_oracle"] = {
                "coverage_ratio": round(s["coverage"] / o["coverage"], 3) if o["coverage"] else None,
                "at_fault_per_100m_ratio": (round(s["collisions_at_fault_per_100m"] / o["collisions_at_fault_per_100m"], 3)
                                            if o["collisions_at_fault_per_100m"] else None)}
            goals["snn_coverage_of_oracle"] = (out["snn_vs_oracle"]["coverage_ratio"] or 0.0) >= g["coverage_of_oracle_min"]
            ratio = out["snn_vs_oracle"]["at_fault_per_100m_ratio"]
            goals["snn_at_fault_of_oracle"] = ratio is None and not s["collisions_at_fault_per_100m"] or \
                (ratio is not None and ratio <= g["at_fault_of_oracle_max"])
    if attention_share:
        on, off = out["snn"]["overall"], out["snn_attention_off"]["overall"]
        g = GOALS["attention"]
        ev_on, ev_off = on.get("events_per_decision"), off.get("events_per_decision")
        syn_on, syn_off = on.get("synops_per_decision"), off.get("synops_per_decision")
        share = {"events_saved": round(1.0 - ev_on / ev_off, 4) if ev_on is not None and ev_off else None,
                 "synops_ratio": round(syn_off / syn_on, 3) if syn_on and syn_off is not None else None,
                 "steps_per_decision": {"on": on.get("steps_per_decision"), "off": off.get("steps_per_decision")},
                 "coverage": {"on": on["coverage"], "off": off["coverage"]}}
        out["attention_share"] = share
        goals["attention_events_saved"] = share["events_saved"] is not None and \
            share["events_saved"] >= g["events_saved_min"]
        goals["attention_synops_ratio"] = share["synops_ratio"] is not None and \
            share["synops_ratio"] >= g["synops_ratio_min"]
    out["goals"] = goals
    out["goals_met"] = all(goals.values()) if goals else None
    return out
