"""Coverage of a patrol region: the share of its 0.5 m cells a robot passed within 0.35 m of
(about the robot's footprint plus what its camera sweeps at close range)."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

COVERAGE_CELL_M = 0.5
COVERAGE_REACH_M = 0.35


class RegionCoverage:
    def __init__(self, boundary: Sequence[Tuple[float, float]]) -> None:
        b = np.asarray(boundary, dtype=float)
        lo, hi = b.min(0), b.max(0)
        xs = np.arange(lo[0] + COVERAGE_CELL_M / 2, hi[0], COVERAGE_CELL_M)
        ys = np.arange(lo[1] + COVERAGE_CELL_M / 2, hi[1], COVERAGE_CELL_M)
        self.cells = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        self.seen = np.zeros(len(self.cells), dtype=bool)

    def visit(self, x: float, y: float) -> None:
        self.seen |= np.hypot(self.cells[:, 0] - x, self.cells[:, 1] - y) < COVERAGE_REACH_M

    @property
    def fraction(self) -> float:
        return float(self.seen.mean()) if len(self.cells) else 0.0
