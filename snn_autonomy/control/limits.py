"""Velocity and acceleration limits of a differential-drive base."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

from ..config import spec


@dataclass(frozen=True)
class LimitsConfig:
    max_linear_mps: float = spec(0.5, lo=0.0, hi=20.0, unit="m/s")
    max_reverse_mps: float = spec(0.0, lo=0.0, hi=20.0, unit="m/s", help="0 = never drive backwards")
    max_angular_rps: float = spec(1.8, lo=0.0, hi=20.0, unit="rad/s")
    max_linear_accel: float = spec(1.0, lo=0.01, hi=100.0, unit="m/s^2")
    max_angular_accel: float = spec(6.0, lo=0.01, hi=1000.0, unit="rad/s^2")
    # Stopping is never rate-limited: the watchdog's stop must take effect at once.


class VelocityLimiter:
    """Clamps commands to the speed limits and their change per tick to the acceleration limits."""

    def __init__(self, cfg: LimitsConfig = LimitsConfig()) -> None:
        self.cfg = cfg
        self.v = 0.0
        self.w = 0.0
        self._t = None

    def limit(self, v: float, w: float, now_s: float) -> Tuple[float, float]:
        c = self.cfg
        if not (math.isfinite(v) and math.isfinite(w)):
            v, w = 0.0, 0.0
        v = min(max(v, -c.max_reverse_mps), c.max_linear_mps)
        w = min(max(w, -c.max_angular_rps), c.max_angular_rps)
        dt = 0.0 if self._t is None else max(0.0, now_s - self._t)
        self._t = now_s
        if v != 0.0 or w != 0.0:
            dv, dw = c.max_linear_accel * dt, c.max_angular_accel * dt
            v = min(max(v, self.v - dv), self.v + dv)
            w = min(max(w, self.w - dw), self.w + dw)
        self.v, self.w = v, w
        return v, w

    def halt(self) -> None:
        """Forward motion to zero at once (braking is not rate-limited); turning keeps its limits."""
        self.v = 0.0

    def stop(self, now_s: float) -> Tuple[float, float]:
        self.v = self.w = 0.0
        self._t = now_s
        return 0.0, 0.0
