"""A fleet plan (the core's view of snn_autonomy_msgs/FleetPlan)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .regions import PatrolRegion


@dataclass(frozen=True)
class Assignment:
    agent_id: str
    region: PatrolRegion
    travel_cost_m: float    # distance to the region's patrol loop when planned (without the keep bonus)


@dataclass(frozen=True)
class Plan:
    plan_id: int                          # counts up from 1 for one coordinator run
    stamp_s: float                        # coordinator clock when planned
    assignments: Tuple[Assignment, ...]   # sorted by agent id
    unassigned_region_ids: Tuple[str, ...] = ()
    lost_agent_ids: Tuple[str, ...] = ()  # agents lost since the previous plan
    reason: str = ""                      # agent_joined, agent_lost, availability, periodic (comma-joined)

    def for_agent(self, agent_id: str) -> Optional[Assignment]:
        for a in self.assignments:
            if a.agent_id == agent_id:
                return a
        return None

    def mapping(self) -> Dict[str, str]:
        """agent id -> region id."""
        return {a.agent_id: a.region.region_id for a in self.assignments}
