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

from ..events.bag import read_messages, stamp_ns
from ..loop.coverage import RegionCoverage
from ..monitor.latency import percentiles
from ..realtime import scheduling_reports

ROBOT_TOPIC = re.compile(r"^/(?P<robot>[^/]+)/(?P<leaf>perception|decision_trace|ground_truth|collisions|cmd_vel)$")
RECORDED_TOPICS = ("perception", "decision_trace", "ground_truth", "collisions", "cmd_vel")
FLEET_TOPICS = ("/fleet/plan", "/fleet/agent_state", "/fleet/detections", "/diagnostics")
# what was shed, why and how much: these counters of these /diagnostics statuses (newest values;
# status names are "<namespace>/<node>: <task>")
SHEDDING_KEYS = {
    "event_sensor: event stream": ("events_in", "events_out", "dropped_rate_cap", "dropped_roi", "dropped_subsample",
                                   "dropped_time_reset", "rate_cap_ev_s", "controls_by"),
    "perception: decisions": ("packets", "stale_packets", "lost_packets", "loss_restarts", "late_packets_taken",
                              "time_jumps", "admitted_ev_s", "admitted_why", "latency_p95_ms", "latency_over_target"),
    "robot: fused loop": ("events_in", "events_out", "dropped_rate_cap", "dropped_roi", "rate_cap_ev_s",
                          "missed_world_states", "admitted_ev_s", "admitted_why", "latency_p95_ms", "latency_over_target"),
}


@dataclass
class RunData:
    """What the report and the plots need, per robot, read back from the recording."""

    perception: Dict[str, List[Any]] = field(default_factory=lambda: defaultdict(list))
    traces: Dict[str, List[Any]] = field(default_factory=lambda: defaultdict(list))
    poses: Dict[str, List[Tuple[float, float, float]]] = field(default_factory=lambda: defaultdict(list))
    motion: Dict[str, List[Tuple[float, float, float]]] = field(default_factory=lambda: defaultdict(list))  # t, yaw, v
    commands: Dict[str, List[Tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))     # t, linear
    collisions: Dict[str, List[Any]] = field(default_factory=lambda: defaultdict(list))
    plans: List[Any] = field(default_factory=list)
    scheduling: Dict[str, str] = field(default_factory=dict)   # node -> its newest "scheduling" report
    shedding: Dict[str, Dict[str, str]] = field(default_factory=dict)   # status name -> its newest values
    t_first_ns: Optional[int] = None
    t_last_ns: Optional[int] = None


def stamp_seconds(stamp) -> float:
    """A builtin_interfaces/Time (of rclpy or of a recording) in seconds."""
    return stamp_ns(stamp) * 1e-9


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
            for st in msg.status:
                if st.name.endswith(tuple(SHEDDING_KEYS)):
                    run.shedding[st.name] = {kv.key: kv.value for kv in st.values}
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
            # on the world's clock, as the collisions are (the recording's clock is the wall's)
            p, q, stamp = msg.pose.pose.position, msg.pose.pose.orientation, stamp_seconds(msg.header.stamp)
            run.poses[robot].append((stamp, p.x, p.y))
            yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
            run.motion[robot].append((stamp, yaw, float(msg.twist.twist.linear.x)))
        elif leaf == "cmd_vel":
            run.commands[robot].append((t_ns * 1e-9, float(msg.linear.x)))
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


def collision_episodes(run: RunData, world) -> List[Dict[str, Any]]:
    """Every collision of the recording, one per episode (loop.metrics' EPISODE_GAP_S), with its
    robot, time, place, kind (loop.metrics' KINDS) and whether the robot was at fault (its pose
    and speed from its ground truth at or before the contact, the other's velocity from the
    collision message): what the report counts and the trajectories plot marks. A recording made
    before Collision carried the other's velocity is judged by the robot's own motion alone (the
    other taken as still), and its episodes say so (`other_velocity_known`)."""
    from ..loop.metrics import EPISODE_GAP_S, at_fault

    out: List[Dict[str, Any]] = []
    for robot, cs in sorted(run.collisions.items()):
        last: Dict[Tuple[int, str], float] = {}
        motion = run.motion.get(robot, [])
        times = np.asarray([m[0] for m in motion])
        for c in cs:
            t = stamp_seconds(c.header.stamp)
            key = (int(c.other_kind), c.other_id)
            gap, last[key] = t - last.get(key, -math.inf), t
            if gap < EPISODE_GAP_S:
                continue
            kind = ("wall", "obstacle", "robot")[min(int(c.other_kind), 2)]
            if kind == "obstacle":
                idx = int(c.other_id.rsplit("_", 1)[-1]) if c.other_id.rsplit("_", 1)[-1].isdigit() else -1
                kind = "moving" if 0 <= idx < len(world.obs_moving) and world.obs_moving[idx] else "static"
            other = getattr(c, "other_velocity", None)
            fault = False
            if len(times):
                # the newest ground truth at or before the contact (both on the world's clock)
                i = max(0, int(np.searchsorted(times, t, side="right")) - 1)
                _t, yaw, v = motion[i]
                px, py = run.poses[robot][i][1:]
                fault = bool(at_fault(px, py, yaw, v, c.position.x, c.position.y,
                                      *((other.x, other.y) if other is not None else (0.0, 0.0))))
            out.append({"robot": robot, "t_s": t, "x": c.position.x, "y": c.position.y, "kind": kind,
                        "at_fault": fault, "other_velocity_known": other is not None})
    return out


def _patrol(run: RunData, world, duration_s: float) -> Dict[str, Any]:
    """Distance and speed per robot, collisions by kind and fault (collision_episodes), and the
    share of time commanded to a halt."""
    from ..loop.metrics import HALT_MPS, KINDS

    dist: Dict[str, float] = {}
    for robot, poses in sorted(run.poses.items()):
        a = np.asarray([(x, y) for _t, x, y in poses]).reshape(-1, 2)
        dist[robot] = round(float(np.hypot(*np.diff(a, axis=0).T).sum()) if len(a) > 1 else 0.0, 2)
    coll = {k: 0 for k in KINDS}
    fault = {k: 0 for k in KINDS}
    unknown_other = 0
    for e in collision_episodes(run, world):
        coll[e["kind"]] += 1
        fault[e["kind"]] += e["at_fault"]
        unknown_other += not e["other_velocity_known"] and e["kind"] in ("moving", "robot")
    total = sum(dist.values())
    # commands carry no stamp: their share of time halted is taken on the recording's clock
    halted = span = 0.0
    for robot, cmds in run.commands.items():
        for (t0, v), (t1, _v) in zip(cmds, cmds[1:]):
            halted += (t1 - t0) if abs(v) < HALT_MPS else 0.0
        span += cmds[-1][0] - cmds[0][0] if cmds else 0.0
    robots = max(len(dist), 1)
    return {
        "distance_per_robot_m": dist,
        "mean_speed_mps": round(total / (duration_s * robots), 3) if duration_s > 0 else None,
        "collisions_by_kind": coll,
        "collisions_at_fault_by_kind": fault,
        "collisions_at_fault_per_100m": round(100.0 * sum(fault.values()) / total, 3) if total > 0 else None,
        # with a moving obstacle or robot, in a recording older than Collision.other_velocity:
        # judged as if the other stood still
        "collisions_judged_without_other_velocity": unknown_other,
        "halted_fraction": round(halted / span, 4) if span > 0 else None,
    }


def _shedding(run: RunData) -> Dict[str, Dict[str, Dict[str, str]]]:
    """Per node (status name prefix): the counters of what it dropped, and the caps in force."""
    out: Dict[str, Dict[str, Dict[str, str]]] = defaultdict(dict)
    for name, values in sorted(run.shedding.items()):
        namespace, _, status = name.rpartition("/")
        node = status.partition(": ")[0]
        out[namespace or node][node] = {k: values[k] for k in SHEDDING_KEYS[status] if k in values}
    return dict(out)


def _mean(values: List[float]) -> Optional[float]:
    a = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    return round(float(a.mean()), 4) if a.size else None


def summarise(bag: Path, agents: int, duration_s: float, model_t_max: int,
              extra: Optional[Dict[str, Any]] = None, world=None) -> Tuple[Dict[str, Any], RunData]:
    """The report of the run recorded in `bag` (and the data read, for the plots); with the
    `world` it ran in, the patrol figures too (collisions by kind need its obstacles)."""
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
        **(_patrol(run, world, duration_s) if world is not None else {}),
        "plans": len(run.plans),
        "scheduling": dict(sorted(run.scheduling.items())),
        "shedding": _shedding(run),
    }
    report.update(extra or {})
    return report, run
