"""Patrol regions: a rectangular arena cut into N equal-area cells, each with a patrol loop.

Equal areas keep the patrol work even; among the equal-area layouts (rows of cells, the rows as
tall as their share of cells) the one whose cells are nearest to square is chosen, because a
near-square cell has the shortest loop for its area. Map frame (REP-103), metres; the arena
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


def partition(size_m: Tuple[float, float], n: int, inset_m: float = 0.6) -> List[PatrolRegion]:
    """`n` patrol regions covering a `size_m` = (width, depth) arena without overlap.

    Each region's patrol loop is its rectangle inset by `inset_m` from the edges (walls and
    neighbours), at most a quarter of the cell's smaller side, counter-clockwise from the
    lower-left corner.
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
            loop = ((x0 + d, y0 + d), (x1 - d, y0 + d), (x1 - d, y1 - d), (x0 + d, y1 - d))
            regions.append(PatrolRegion(f"region_{len(regions)}_of_{n}", box, loop))
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
