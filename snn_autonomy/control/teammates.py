"""Where the fleet's other robots are, from their heartbeats: each teammate's body, where its last
heartbeat's pose and velocity put it now, is an obstacle of the controller's histogram.

The camera sees 70 degrees to each side of its axis; a teammate that comes from the side, or
that the robot turns toward, is in no decision until it is in the image, and a decision about
a robot is a range class, not where it is going. The fleet knows better: every agent beats its
pose and velocity in the map frame on /fleet/agent_state (snn_autonomy_msgs/AgentState, every
0.2 s by default). At 0.6 m/s a robot moves 12 cm between two heartbeats, so a teammate is
placed where its heartbeat's velocity carries it by now (at most `predict_s` ahead: a heartbeat
that old says little of where it went since), and its body (a circle of the radius its
heartbeat gives, or of this robot's where it gives none) is what the histogram sees of it. A
teammate silent for `timeout_s` (the coordinator's heartbeat timeout: it is lost then) is
forgotten.

Poses are compared with the robot's own in the map frame, so a teammate's odometry drift is
the error; heartbeats are stamped by the sender's clock (synchronised clocks across hosts, as
for the decision traces' latency): one stamped further than `timeout_s` from this clock is
refused.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Dict, NamedTuple, Tuple

import numpy as np

from ..fleet.state import footprint_ok
from .frames import finite

# points on a body's circle are 1.6 cm apart (72 on the built-in robots' 0.18 m radius), so that
# no 10-degree histogram bin the body spans falls between two of them while its near side is
# more than 9 cm from the robot's centre (a body nearer than that is already in contact)
POINT_SPACING_M = 0.0158


@lru_cache(maxsize=16)
def _ring(r: float) -> np.ndarray:
    """Points on a circle of radius `r` about the origin, as complex numbers (a fleet has few
    sizes: each is computed once, not at every decision)."""
    n = max(8, int(math.ceil(2 * math.pi * r / POINT_SPACING_M)))
    ring = r * np.exp(1j * np.linspace(0.0, 2 * math.pi, n, endpoint=False))
    ring.flags.writeable = False
    return ring


class _Heard(NamedTuple):
    """A teammate's newest heartbeat: map-frame pose, forward speed, its stamp, its body's radius."""
    x: float
    y: float
    yaw: float
    linear_mps: float
    stamp_s: float
    radius_m: float


class Teammates:
    def __init__(self, body_radius_m: float = 0.18, timeout_s: float = 1.0, predict_s: float = 0.5,
                 radius_m: float = 1.6) -> None:
        self.body_radius_m = float(body_radius_m)
        self.timeout_s = float(timeout_s)
        self.predict_s = float(predict_s)
        self.radius_m = float(radius_m)
        self._last: Dict[str, _Heard] = {}

    def __len__(self) -> int:
        return len(self._last)

    def update(self, agent_id: str, x: float, y: float, yaw: float, linear_mps: float, stamp_s: float,
               now_s: float, footprint_radius_m: float = math.nan) -> str:
        """A teammate's heartbeat (map frame, stamped `stamp_s` by its clock), heard at `now_s` on
        this one, with its body's radius (0 or NaN: unknown, taken as this robot's): '' when
        taken, else why it was refused (not finite, a radius `footprint_ok` does not accept,
        or stamped further than timeout_s from now: clocks not synchronised, or a heartbeat from
        before a clock jump). An older heartbeat than the one held (out of order) is ignored."""
        if not (agent_id and finite(x, y, yaw, linear_mps, stamp_s)):
            return "not finite"
        if not footprint_ok(footprint_radius_m):
            return f"footprint radius {footprint_radius_m} m"
        if abs(now_s - stamp_s) > self.timeout_s:
            return f"stamped {stamp_s - now_s:+.1f} s from this clock"
        held = self._last.get(agent_id)
        if held is None or stamp_s >= held.stamp_s:
            r = footprint_radius_m if footprint_radius_m > 0.0 else self.body_radius_m   # NaN > 0 is False
            self._last[agent_id] = _Heard(float(x), float(y), float(yaw), float(linear_mps), float(stamp_s), float(r))
        return ""

    def bodies(self, now_s: float, robot_xy: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray]:
        """Map-frame points on the bodies of the teammates heard from within timeout_s, where they
        are predicted at `now_s`, within radius_m of the robot; teammates silent longer are
        forgotten, as are all of them when the clock went back past their stamps."""
        circles = []
        for agent_id, (x, y, yaw, v, stamp, r) in list(self._last.items()):
            age = now_s - stamp
            if abs(age) > self.timeout_s:
                del self._last[agent_id]
                continue
            ahead = v * min(max(age, 0.0), self.predict_s)
            cx, cy = x + ahead * math.cos(yaw), y + ahead * math.sin(yaw)
            if math.hypot(cx - robot_xy[0], cy - robot_xy[1]) <= self.radius_m + r:
                circles.append(complex(cx, cy) + _ring(r))
        if not circles:
            return np.empty(0), np.empty(0)
        pts = np.concatenate(circles)
        return pts.real, pts.imag
