"""A scripted driver that wanders the arena using ground truth (for headless runs,
benchmarks and data generation; the robot's own controller uses perception)."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .ground_truth import range_scan
from .world import World


class WanderDriver:
    """Cruise at `cruise_mps`; when anything is nearer than `avoid_m` in the central
    third of the view, slow down and turn toward the side with more room; turn away
    from anything within 0.6 x `avoid_m` at the sides; otherwise drift with a slowly
    varying random turn rate (seeded; `drift_std` sets how much it meanders, so a small
    one gives long straight runs)."""

    def __init__(self, world: World, robot: int, cruise_mps: float = 0.4, avoid_m: float = 0.9,
                 seed: int = 0, rays: int = 15, drift_std: float = 1.2) -> None:
        self.world, self.robot = world, robot
        self.cruise, self.avoid, self.drift_std = cruise_mps, avoid_m, drift_std
        self.rng = np.random.default_rng(seed * 7919 + robot)
        self.rays = rays
        self._drift = 0.0

    def command(self) -> Tuple[float, float]:
        scan = range_scan(self.world, self.robot, n_rays=self.rays)
        d = scan.distance
        third = len(d) // 3
        left, centre, right = d[:third], d[third:len(d) - third], d[len(d) - third:]
        self._drift = 0.98 * self._drift + 0.02 * self.rng.normal(0.0, self.drift_std)
        nearest = float(centre.min())
        if nearest < self.avoid:
            turn = 1.0 if left.mean() >= right.mean() else -1.0
            speed = self.cruise * max(0.0, (nearest - 0.35) / self.avoid)
            return speed, 1.8 * turn
        # keep off walls and obstacles at the sides too, instead of grazing along them
        if left.min() < 0.6 * self.avoid:
            return self.cruise, -0.9
        if right.min() < 0.6 * self.avoid:
            return self.cruise, 0.9
        return self.cruise, float(np.clip(self._drift, -0.8, 0.8))
