"""What an agent reports (the core's view of snn_autonomy_msgs/AgentState) and its validation.

Validation is separate from the coordinator so the same rules are unit-tested on their own and
every rejection has a short reason that becomes a counter name on /diagnostics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

# same values as the AgentState HEALTH_* constants
HEALTH_OK, HEALTH_WARN, HEALTH_ERROR, HEALTH_STALE = 0, 1, 2, 3
MAX_ID_LENGTH = 128
MAX_FOOTPRINT_M = 10.0


@dataclass(frozen=True)
class AgentReport:
    """One heartbeat. Pose in the map frame [m]; orientation a quaternion (x, y, z, w);
    velocities in the body frame [m/s, rad/s]; energies [J], NaN budget = unknown; the body's
    radius [m], 0 or NaN = unknown."""

    agent_id: str
    seq: int
    x: float
    y: float
    orientation: Tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    linear_mps: float = 0.0
    angular_rps: float = 0.0
    health: int = HEALTH_OK
    health_message: str = ""
    energy_budget_j: float = math.nan
    energy_used_j: float = 0.0
    capabilities: Tuple[str, ...] = ()
    assigned_region_id: str = ""
    stamp_s: float = 0.0
    footprint_radius_m: float = math.nan

    @property
    def yaw(self) -> float:
        qx, qy, qz, qw = self.orientation
        return math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))


def yaw_quaternion(yaw: float) -> Tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))


def footprint_ok(radius_m: float) -> bool:
    """Whether a body's radius is one a heartbeat may give: 0 or NaN (not said), or up to
    MAX_FOOTPRINT_M."""
    return math.isnan(radius_m) or 0.0 <= radius_m <= MAX_FOOTPRINT_M


def id_problem(agent_id: str) -> Optional[str]:
    """Why an agent id is unusable ('empty_id', 'bad_id'), or None."""
    if not agent_id:
        return "empty_id"
    if len(agent_id) > MAX_ID_LENGTH or not agent_id.isprintable() or agent_id != agent_id.strip():
        return "bad_id"
    return None


def report_problem(r: AgentReport, arena_size_m: Tuple[float, float], margin_m: float) -> Optional[str]:
    """Why a report is malformed (a counter name), or None. The id is checked by `id_problem`."""
    if not (math.isfinite(r.x) and math.isfinite(r.y)):
        return "non_finite_pose"
    if not all(math.isfinite(q) for q in r.orientation) or abs(math.sqrt(sum(q * q for q in r.orientation)) - 1) > 0.1:
        return "bad_orientation"
    w, d = arena_size_m
    if not (-margin_m <= r.x <= w + margin_m and -margin_m <= r.y <= d + margin_m):
        return "out_of_arena"
    if not (math.isfinite(r.linear_mps) and math.isfinite(r.angular_rps)):
        return "non_finite_velocity"
    if r.health not in (HEALTH_OK, HEALTH_WARN, HEALTH_ERROR, HEALTH_STALE):
        return "bad_health"
    budget_ok = math.isnan(r.energy_budget_j) or (math.isfinite(r.energy_budget_j) and r.energy_budget_j >= 0)
    if not budget_ok or not (math.isfinite(r.energy_used_j) and r.energy_used_j >= 0):
        return "bad_energy"
    if r.seq < 0:
        return "bad_seq"
    if not footprint_ok(r.footprint_radius_m):
        return "bad_footprint"
    return None
