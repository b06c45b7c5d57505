"""Patrol regions: a rectangular arena cut into N equal-area cells, each with a patrol route.

Equal areas keep the patrol work even; among the equal-area layouts (rows of cells, the rows as
tall as their share of cells) the one whose cells are nearest to square is chosen, because a
near-square cell has the shortest route for its area. The route sweeps the cell in lanes
(`sweep_route`): a loop along the cell's edges would leave its middle unseen. Map frame (REP-103), metres; the arena
spans [0, width] x [0, depth], as in the built-in world. Region ids name the layout
(`region_1_of_3`), so the same number of regions always gives the same ids and shapes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

Point2 = Tuple[float, float]


@dataclass(frozen=True)
class PatrolRegion:
    region_id: str
    boundary: Tuple[Point2, ...]    # polygon corners, counter-clockwise [m]
    waypoints: Tuple[Point2, ...]   # patrol loop in order; the last waypoint leads back to the first [m]

    @property
    def area_m2(self) -> float:
        pts = self.boundary
        return 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1])))

    @property
    def centre(self) -> Point2:
        xs, ys = zip(*self.boundary)
        return (sum(xs) / len(xs), sum(ys) / len(ys))

    def contains(self, x: float, y: float) -> bool:
        """Whether (x, y) lies inside the boundary (even-odd rule; points on an edge may go either way)."""
        inside = False
        pts = self.boundary
        for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                inside = not inside
        return inside


def row_counts(n: int, width: float, depth: float) -> List[int]:
    """Cells per row, bottom to top, for `n` equal-area cells nearest to square.

    A row of k cells has height depth*k/n and cells width/k wide, so its cells' aspect ratio is
    width*n / (depth*k^2); the layout minimising the worst |log aspect| wins (fewer rows on ties).
    """
    if n < 1:
        raise ValueError(f"need at least one region, got {n}")
    best: Tuple[float, List[int]] = (math.inf, [n])
    for rows in range(1, n + 1):
        counts = [n // rows + (1 if i < n % rows else 0) for i in range(rows)]
        worst = max(abs(math.log(width * n / (depth * k * k))) for k in counts)
        if worst < best[0] - 1e-9:
            best = (worst, counts)
    return best[1]


LANE_SPACING_M = 1.0   # two 0.5 m coverage cells per lane (loop.coverage): a robot passes 0.25 m from each
WAYPOINT_SPACING_M = 2.0   # waypoints along a lane at most this far apart: a waypoint given up (blocked, or
                           # no progress) costs a few metres of the lane, not the whole lane


def sweep_route(x0: float, y0: float, x1: float, y1: float, inset_m: float,
                lane_spacing_m: float = LANE_SPACING_M,
                waypoint_spacing_m: float = WAYPOINT_SPACING_M) -> Tuple[Point2, ...]:
    """A boustrophedon route over the rectangle [x0, x1] x [y0, y1]: lanes parallel to its longer
    side, `lane_spacing_m` apart, the first and last `inset_m` in from the edges, driven
    alternately one way and the other, with waypoints at most `waypoint_spacing_m` apart along
    each lane; then back over the same lanes in reverse order, so the route is a closed loop
    (its last waypoint leads back to the first)."""
    along_x = (x1 - x0) >= (y1 - y0)
    a0, a1, c0, c1 = (x0, x1, y0, y1) if along_x else (y0, y1, x0, x1)
    lo, hi = c0 + inset_m, c1 - inset_m
    lanes = [lo + k * lane_spacing_m for k in range(max(1, int(math.floor((hi - lo) / lane_spacing_m + 1e-9)) + 1))]
    if hi - lanes[-1] > 0.5 * lane_spacing_m:
        lanes.append(hi)          # the far edge would otherwise be left out
    ends = (a0 + inset_m, a1 - inset_m)
    stops = np.linspace(ends[0], ends[1], max(2, int(math.ceil((ends[1] - ends[0]) / waypoint_spacing_m - 1e-9)) + 1))
    out: List[Point2] = []
    for k, c in enumerate(lanes):
        for a in (stops if k % 2 == 0 else stops[::-1]):
            out.append((float(a), c) if along_x else (c, float(a)))
    if len(out) > 2:
        out += out[-2:0:-1]
    return tuple(out)


def partition(size_m: Tuple[float, float], n: int, inset_m: float = 0.5) -> List[PatrolRegion]:
    """`n` patrol regions covering a `size_m` = (width, depth) arena without overlap.

    Each region's patrol route sweeps its rectangle inset by `inset_m` from the edges (walls
    and neighbours), at most a quarter of the cell's smaller side (`sweep_route`).
    """
    width, depth = float(size_m[0]), float(size_m[1])
    if not (width > 0 and depth > 0):
        raise ValueError(f"arena size must be positive, got {size_m!r}")
    regions: List[PatrolRegion] = []
    y0 = 0.0
    for k in row_counts(n, width, depth):
        y1 = y0 + depth * k / n
        for j in range(k):
            x0, x1 = width * j / k, width * (j + 1) / k
            d = min(inset_m, 0.25 * min(x1 - x0, y1 - y0))
            box = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
            regions.append(PatrolRegion(f"region_{len(regions)}_of_{n}", box, sweep_route(x0, y0, x1, y1, d)))
        y0 = y1
    return regions


def loop_distance(x: float, y: float, waypoints: Sequence[Point2]) -> float:
    """Distance [m] from (x, y) to the nearest point of the closed patrol loop through `waypoints`."""
    a = np.asarray(waypoints, dtype=np.float64).reshape(-1, 2)
    if len(a) == 0:
        return math.inf
    b = np.roll(a, -1, axis=0)
    e = b - a
    ll = np.einsum("ij,ij->i", e, e)
    p = np.array([x, y], dtype=np.float64)
    s = np.clip(np.einsum("ij,ij->i", p - a, e) / np.where(ll > 0, ll, 1.0), 0.0, 1.0)
    nearest = a + s[:, None] * e
    return float(np.min(np.hypot(*(nearest - p).T)))
