"""Optimal assignment of agents to regions (Hungarian method on a travel-cost matrix).

Cost of agent i for region j: the straight-line distance [m] from the agent's position to the
nearest point of the region's patrol loop — how far it must go before it patrols. Inner walls
are ignored (no path planning here). The region an agent already works on costs `keep_bonus_m`
less, so a re-plan does not swap agents between regions for a marginal gain. The plan minimises
the sum of these costs (`scipy.optimize.linear_sum_assignment`); with more agents than regions
some agents stay unassigned, with more regions than agents some regions do.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from .regions import PatrolRegion, loop_distance


def travel_costs(positions: Sequence[Tuple[float, float]], regions: Sequence[PatrolRegion]) -> np.ndarray:
    """(agents, regions) matrix of distances [m] from each position to each region's patrol loop."""
    out = np.zeros((len(positions), len(regions)), dtype=np.float64)
    for i, (x, y) in enumerate(positions):
        for j, r in enumerate(regions):
            out[i, j] = loop_distance(x, y, r.waypoints)
    return out


def with_keep_bonus(costs: np.ndarray, regions: Sequence[PatrolRegion], current: Sequence[str],
                    bonus_m: float) -> np.ndarray:
    """`costs` with `bonus_m` taken off each agent's current region (`current[i]`, '' = none)."""
    out = costs.copy()
    index = {r.region_id: j for j, r in enumerate(regions)}
    for i, rid in enumerate(current):
        if rid in index:
            out[i, index[rid]] -= bonus_m
    return out


def optimal_assignment(costs: np.ndarray) -> List[Tuple[int, int]]:
    """(agent, region) index pairs of minimum total cost, sorted by agent index."""
    costs = np.asarray(costs, dtype=np.float64)
    if costs.size == 0:
        return []
    if not np.all(np.isfinite(costs)):
        raise ValueError("assignment costs must be finite")
    from scipy.optimize import linear_sum_assignment   # scipy loads only where a plan is made

    rows, cols = linear_sum_assignment(costs)
    return sorted(zip(rows.tolist(), cols.tolist()))
