"""report.json of a run, computed from its MCAP recording (so the report and the recording
cannot disagree): decisions and their traces, energy, events and synaptic operations per
decision, collisions, coverage of the assigned regions."""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..events.bag import read_messages
from ..loop.coverage import RegionCoverage
from ..monitor.latency import percentiles
from ..realtime import scheduling_reports

ROBOT_TOPIC = re.compile(r"^/(?P<robot>[^/]+)/(?P<leaf>perception|decision_trace|ground_truth|collisions)$")
RECORDED_TOPICS = ("perception", "decision_trace", "ground_truth", "collisions", "cmd_vel")
FLEET_TOPICS = ("/fleet/plan", "/fleet/agent_state", "/fleet/detections", "/diagnostics")


@dataclass
class RunData:
    """What the report and the plots need, per robot, read back from the recording."""

    perception: Dict[str, List[Any]] = field(default_factory=lambda: defaultdict(list))
    traces: Dict[str, List[Any]] = field(default_factory=lambda: defaultdict(list))
    poses: Dict[str, List[Tuple[float, float, float]]] = field(default_factory=lambda: defaultdict(list))
    collisions: Dict[str, List[Any]] = field(default_factory=lambda: defaultdict(list))
    plans: List[Any] = field(default_factory=list)
    scheduling: Dict[str, str] = field(default_factory=dict)   # node -> its newest "scheduling" report
    t_first_ns: Optional[int] = None
    t_last_ns: Optional[int] = None


def read_run(bag: Path) -> RunData:
    run = RunData()
    for topic, t_ns, _type, msg in read_messages(bag):
        run.t_first_ns = t_ns if run.t_first_ns is None else run.t_first_ns
        run.t_last_ns = t_ns
        if topic == "/fleet/plan":
            run.plans.append(msg)
            continue
        if topic == "/diagnostics":
            run.scheduling.update({"/" + node: text for node, text in scheduling_reports(msg.status).items()})
            continue
        m = ROBOT_TOPIC.match(topic)
        if m is None:
            continue
        robot, leaf = m["robot"], m["leaf"]
        if leaf == "perception":
            run.perception[robot].append(msg)
        elif leaf == "decision_trace":
            run.traces[robot].append(msg)
        elif leaf == "ground_truth":
            p = msg.pose.pose.position
            run.poses[robot].append((t_ns * 1e-9, p.x, p.y))
        else:
            run.collisions[robot].append(msg)
    return run


def _coverage(run: RunData) -> Tuple[Optional[float], Dict[str, float]]:
    """Share of each robot's assigned region it covered (the region of the newest plan that gave
    it one; poses from ground truth)."""
    region = {}
    for plan in run.plans:
        for a in plan.assignments:
            if a.region.region_id:
                region[a.agent_id] = [(p.x, p.y) for p in a.region.boundary.points]
    per = {}
    for robot, boundary in region.items():
        cov = RegionCoverage(boundary)
        for _t, x, y in run.poses.get(robot, ()):
            cov.visit(x, y)
        per[robot] = round(cov.fraction, 4)
    return (round(float(np.mean(list(per.values()))), 4) if per else None), per


def _mean(values: List[float]) -> Optional[float]:
    a = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    return round(float(a.mean()), 4) if a.size else None


def summarise(bag: Path, agents: int, duration_s: float, model_t_max: int,
              extra: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], RunData]:
    """The report of the run recorded in `bag` (and the data read, for the plots)."""
    run = read_run(bag)
    decisions = [d for ds in run.perception.values() for d in ds]
    traces = [t for ts in run.traces.values() for t in ts]
    stages: Dict[str, List[float]] = defaultdict(list)
    for t in traces:
        for s in t.stage_latencies:
            stages[s.stage].append(float(s.duration_ms))
    e2e = percentiles(t.e2e_latency_ms for t in traces)
    steps_mean = _mean([float(d.steps_used) for d in decisions])
    coverage, per_robot = _coverage(run)
    distance = 0.0
    for poses in run.poses.values():
        a = np.asarray([(x, y) for _t, x, y in poses])
        if len(a) > 1:
            distance += float(np.hypot(*np.diff(a, axis=0).T).sum())
    measured = _mean([float(d.energy_measured_uj) for d in decisions])
    report = {
        "agents": agents,
        "duration_s": duration_s,
        "decisions": len(decisions),
        "decisions_per_robot": {r: len(ds) for r, ds in sorted(run.perception.items())},
        "e2e_latency_ms": {"p50": e2e["p50"], "p95": e2e["p95"], "p99": e2e["p99"], "traces": e2e["n"]},
        "stage_latency_ms": {k: {"p50": p["p50"], "p99": p["p99"]} for k, p in
                             ((k, percentiles(v)) for k, v in sorted(stages.items()))},
        "steps_mean": steps_mean,
        "t_max": model_t_max,
        "t_max_used": sorted({int(d.t_max) for d in decisions}),
        "early_exit_saving": (round(1.0 - steps_mean / model_t_max, 4) if steps_mean and model_t_max else None),
        "energy_per_decision_uj": {"estimated": _mean([float(d.energy_estimated_uj) for d in decisions]),
                                   "measured": measured},
        "events_per_decision": _mean([float(d.events_used) for d in decisions]),
        "synops_per_decision": _mean([float(d.synaptic_ops) for d in decisions]),
        "collisions": sum(len(c) for c in run.collisions.values()),
        "distance_m": round(distance, 2),
        "coverage": coverage,
        "coverage_per_robot": per_robot,
        "plans": len(run.plans),
        "scheduling": dict(sorted(run.scheduling.items())),
    }
    report.update(extra or {})
    return report, run
