"""The agent side of the fleet: what one robot says in its heartbeats, and its share of a plan.

Heartbeats carry strictly increasing sequence numbers (the coordinator rejects repeats), the
pose in the map frame (start pose composed with odometry), health and the region the agent
works on — so a restarted coordinator learns who patrols where. The newest plan received wins
(one coordinator per DDS domain). Energy used stays 0 until an energy meter reports it.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

from ..config import ConfigError
from ..control.frames import Pose2, odom_to_map
from .config import AgentConfig
from .detections import Sighting
from .plan import Assignment, Plan
from .state import HEALTH_OK, HEALTH_WARN, AgentReport, id_problem, yaw_quaternion


class FleetAgent:
    def __init__(self, agent_id: str, start_pose: Pose2, cfg: AgentConfig) -> None:
        why = id_problem(agent_id)
        if why is not None:
            raise ConfigError(f"agent id {agent_id!r} is unusable ({why}); set agent_id or run in a namespace")
        if not all(math.isfinite(v) for v in start_pose):
            raise ConfigError(f"start pose {start_pose!r} is not finite")
        self.agent_id = agent_id
        self.cfg = cfg
        self.start_pose: Pose2 = tuple(float(v) for v in start_pose)
        self.pose: Pose2 = self.start_pose
        self.velocity = (0.0, 0.0)
        self.seq = -1
        self.last_odom_s: Optional[float] = None
        self.odom_rejected = 0
        self.assignment: Optional[Assignment] = None
        self.plan_id = 0
        self.plans_received = 0

    def on_odom(self, x: float, y: float, yaw: float, linear_mps: float, angular_rps: float,
                now_s: float) -> bool:
        """Odometry in the odom frame (origin = start pose); non-finite values are counted and dropped."""
        pose = odom_to_map(self.start_pose, x, y, yaw, linear_mps, angular_rps)
        if pose is None:
            self.odom_rejected += 1
            return False
        self.pose = pose
        self.velocity = (linear_mps, angular_rps)
        self.last_odom_s = now_s
        return True

    def health(self, now_s: float) -> Tuple[int, str]:
        if not self.cfg.use_odom:
            return HEALTH_OK, "pose fixed at start_pose (odometry off)"
        if self.last_odom_s is None:
            return HEALTH_WARN, "no odometry yet: pose is the start pose"
        age = now_s - self.last_odom_s
        if age > self.cfg.odom_timeout_s:
            return HEALTH_WARN, f"odometry silent for {age:.1f} s: pose is the last known"
        return HEALTH_OK, "ok"

    def heartbeat(self, now_s: float) -> AgentReport:
        """The next heartbeat (advances the sequence number)."""
        self.seq += 1
        health, text = self.health(now_s)
        x, y, yaw = self.pose
        budget = self.cfg.energy_budget_j
        return AgentReport(
            agent_id=self.agent_id, seq=self.seq, x=x, y=y, orientation=yaw_quaternion(yaw),
            linear_mps=self.velocity[0], angular_rps=self.velocity[1], health=health, health_message=text,
            energy_budget_j=math.nan if budget < 0 else budget, energy_used_j=0.0,
            capabilities=tuple(self.cfg.capabilities),
            assigned_region_id=self.assignment.region.region_id if self.assignment else "", stamp_s=now_s,
            footprint_radius_m=self.cfg.footprint_radius_m)

    def on_plan(self, plan: Plan) -> bool:
        """Take this agent's share of `plan`; True when its region changed (to another one or to none)."""
        self.plans_received += 1
        before = self.assignment.region if self.assignment else None
        self.assignment = plan.for_agent(self.agent_id)
        self.plan_id = plan.plan_id
        return before != (self.assignment.region if self.assignment else None)


# Where a perception class puts the obstacle relative to the robot: the bearing of its sector's
# centre (a third of the field of view each) and a range inside the label's near distance.
SECTOR_BEARING_FRACTION = {1: 1.0 / 3.0, 2: 0.0, 3: -1.0 / 3.0}   # obstacle_left, _center, _right


def sighting_from_decision(agent_id: str, pose: Pose2, label: int, label_name: str, confidence: float,
                           stamp_s: float, hfov_rad: float, range_m: float = 0.6,
                           min_confidence: float = 0.9) -> Optional[Sighting]:
    """A coarse map-frame sighting of what a perception decision reports, for the fleet: the
    obstacle at `range_m` (within the label's 0.9 m) on the bearing of its sector. None for
    `clear` and for decisions below `min_confidence`."""
    if label not in SECTOR_BEARING_FRACTION or not confidence >= min_confidence:
        return None
    x, y, yaw = pose
    bearing = yaw + SECTOR_BEARING_FRACTION[label] * hfov_rad
    return Sighting(agent_id, int(label), label_name, float(confidence), x + range_m * math.cos(bearing),
                    y + range_m * math.sin(bearing), radius_m=0.3, stamp_s=stamp_s)
