"""What a patrol run achieved, robot by robot: distance, speed, coverage, collisions by kind and
fault, halts by cause, and the closest it came to anything.

Definitions (the report's keys):
- collisions by kind: `wall`, `static` (a fixed obstacle), `moving` (a moving obstacle),
  `robot`; a collision is **at fault** when the robot closed the gap: its velocity toward the
  contact point exceeded `AT_FAULT_MPS` and the other's velocity toward the robot (zero for
  walls and static obstacles). A robot standing still, driving away, or outrun by something
  that ran into it is not at fault; a robot that drives into a wall or catches up with an
  obstacle is. The robot is judged by its pose and velocity before the step in which the
  contact began, the other by its velocity when the contact began (the world reports a
  contact in that step whichever of the two moved into the other, with the other's velocity
  before an obstacle's bounce reverses it: sim.world.Collision).
- a collision is one episode: contacts with the same thing that begin within
  `EPISODE_GAP_S` of the last one (a robot nudging an obstacle along) are one collision;
  `contacts` counts them all.
- a halt is a stretch of commanded forward speed under `HALT_MPS`; it is counted once, under the
  control mode in force when it began (stale_perception, imminent_collision, turn_in_place,
  turn_to_goal, ...), and its time is summed by the same cause.
- clearance: distance from the robot's body (its circle) to the nearest wall, obstacle or other
  robot, sampled every `CLEARANCE_PERIOD_US`; the report gives its minimum per robot.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..sim.world import Collision, World
from .coverage import RegionCoverage

AT_FAULT_MPS = 0.05
EPISODE_GAP_S = 1.0
HALT_MPS = 0.02
CLEARANCE_PERIOD_US = 10_000
KINDS = ("wall", "static", "moving", "robot")


def collision_kind(world: World, c: Collision) -> str:
    if c.kind == "obstacle":
        return "moving" if bool(world.obs_moving[c.other]) else "static"
    return c.kind


def at_fault(x: float, y: float, yaw: float, linear_mps: float, cx: float, cy: float,
             other_vx: float = 0.0, other_vy: float = 0.0) -> bool:
    """Whether a robot at (x, y, yaw) driving at `linear_mps` closed the gap to the contact point
    (cx, cy) of something moving at (other_vx, other_vy)."""
    dx, dy = cx - x, cy - y
    d = math.hypot(dx, dy)
    if d < 1e-9:
        return abs(linear_mps) > AT_FAULT_MPS
    ux, uy = dx / d, dy / d
    own = linear_mps * (math.cos(yaw) * ux + math.sin(yaw) * uy)      # toward the contact point
    other = -(other_vx * ux + other_vy * uy)                          # toward the robot
    return own > AT_FAULT_MPS and own > other


def body_clearance(world: World, robot: int) -> float:
    """Distance [m] from the robot's body to the nearest wall, obstacle or other robot (< 0 overlapping)."""
    x, y = world.pose[robot, :2]
    r = world.cfg.robots.radius_m
    w = world.walls
    e = w[:, 2:] - w[:, :2]
    ll = np.einsum("ij,ij->i", e, e)
    s = np.clip(np.einsum("ij,ij->i", np.array([x, y]) - w[:, :2], e) / np.where(ll > 0, ll, 1.0), 0.0, 1.0)
    near = w[:, :2] + s[:, None] * e
    best = float(np.min(np.hypot(near[:, 0] - x, near[:, 1] - y))) - r
    if len(world.obs_pos):
        best = min(best, float(np.min(np.hypot(*(world.obs_pos - (x, y)).T) - world.obs_r)) - r)
    others = np.delete(world.pose[:, :2], robot, axis=0)
    if len(others):
        best = min(best, float(np.min(np.hypot(*(others - (x, y)).T))) - 2 * r)
    return best


@dataclass
class RobotRecord:
    coverage: RegionCoverage
    collisions: Dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    at_fault: Dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    halts: Dict[str, int] = field(default_factory=lambda: defaultdict(int))
    halted_s: Dict[str, float] = field(default_factory=lambda: defaultdict(float))
    min_clearance_m: float = math.inf
    halt_cause: str = ""         # cause of the halt in progress ("" when moving)


class PatrolMetrics:
    """Fed by a headless run: `before_step` / `after_step` around each physics step."""

    def __init__(self, world: World, regions: Sequence[Sequence[tuple]]) -> None:
        self.world = world
        self.robots = [RobotRecord(RegionCoverage(b)) for b in regions]
        self._pose = world.pose.copy()
        self._vel = world.vel.copy()
        self._next_clearance = 0
        self.events: List[Dict[str, Any]] = []     # every collision, for the plot and the JSON
        self.contacts = 0
        self._last_contact: Dict[Tuple[int, str, int], float] = {}

    def before_step(self) -> None:
        self._pose[:] = self.world.pose
        self._vel[:] = self.world.vel

    def after_step(self, collisions: Sequence[Collision], modes: Sequence[str]) -> None:
        w = self.world
        dt_s = w.dt_us * 1e-6
        for c in collisions:
            self.contacts += 1
            key, t = (c.robot, c.kind, c.other), c.time_us * 1e-6
            last, self._last_contact[key] = self._last_contact.get(key, -math.inf), t
            if t - last < EPISODE_GAP_S:
                continue
            kind = collision_kind(w, c)
            x, y, yaw = self._pose[c.robot]
            fault = bool(at_fault(x, y, yaw, float(self._vel[c.robot, 0]), c.x, c.y, c.other_vx, c.other_vy))
            rec = self.robots[c.robot]
            rec.collisions[kind] += 1
            rec.at_fault[kind] += fault
            self.events.append({"t_s": round(c.time_us * 1e-6, 3), "robot": c.robot, "kind": kind,
                                "at_fault": fault, "x": round(c.x, 3), "y": round(c.y, 3),
                                "relative_speed_mps": round(c.relative_speed, 3), "mode": modes[c.robot]})
        sample = w.time_us >= self._next_clearance
        if sample:
            self._next_clearance = w.time_us + CLEARANCE_PERIOD_US
        for i, rec in enumerate(self.robots):
            if abs(w.cmd[i, 0]) < HALT_MPS:
                if not rec.halt_cause:
                    rec.halt_cause = modes[i] or "waiting"
                    rec.halts[rec.halt_cause] += 1
                rec.halted_s[rec.halt_cause] += dt_s
            else:
                rec.halt_cause = ""
            if sample:
                rec.coverage.visit(float(w.pose[i, 0]), float(w.pose[i, 1]))
                rec.min_clearance_m = min(rec.min_clearance_m, body_clearance(w, i))

    def report(self, duration_s: float) -> Dict[str, Any]:
        w = self.world
        dist = [float(d) for d in w.distance_m]
        total = sum(dist)

        def per100(n: int) -> Any:
            return round(100.0 * n / total, 3) if total > 0 else None

        coll = {k: sum(r.collisions[k] for r in self.robots) for k in KINDS}
        fault = {k: sum(r.at_fault[k] for r in self.robots) for k in KINDS}
        halts: Dict[str, int] = defaultdict(int)
        halted: Dict[str, float] = defaultdict(float)
        for r in self.robots:
            for k, v in r.halts.items():
                halts[k] += v
            for k, v in r.halted_s.items():
                halted[k] += v
        return {
            "distance_m": round(total, 2),
            "distance_per_robot_m": [round(d, 2) for d in dist],
            "mean_speed_mps": round(total / (duration_s * len(dist)), 3) if duration_s > 0 and dist else None,
            "coverage": round(float(np.mean([r.coverage.fraction for r in self.robots])), 4),
            "coverage_per_robot": [round(r.coverage.fraction, 4) for r in self.robots],
            "collisions": sum(coll.values()),
            "contacts": self.contacts,
            "collisions_by_kind": coll,
            "collisions_at_fault": sum(fault.values()),
            "collisions_at_fault_by_kind": fault,
            "collisions_per_100m": per100(sum(coll.values())),
            "collisions_at_fault_per_100m": per100(sum(fault.values())),
            "collisions_per_100m_by_kind": {k: per100(v) for k, v in coll.items()},
            "halts": dict(sorted(halts.items())),
            "halted_s": {k: round(v, 2) for k, v in sorted(halted.items())},
            "halted_fraction": round(sum(halted.values()) / (duration_s * len(dist)), 4) if duration_s > 0 else None,
            "min_clearance_m": [round(r.min_clearance_m, 3) for r in self.robots],
            "collision_events": self.events,
        }
