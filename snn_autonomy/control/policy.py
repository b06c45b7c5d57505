"""Patrol with reactive avoidance: the robot's own controller, driven by perception.

The robot loops over the waypoints of its assigned region (pure pursuit of the current
waypoint; the next one once within `waypoint_radius_m`). Perception overrides the
pursuit, one rule per class of the perception task (snn_autonomy.perception.labels):

- clear: pursue the waypoint; slow down in proportion to the heading error, so the
  robot turns before it drives off;
- obstacle_left / obstacle_right (something within 0.9 m on that side): keep going at
  `side_speed_factor` of cruise, turning away at `avoid_turn_rps`;
- obstacle_center: stop advancing and turn in place; the direction is kept for as long
  as the centre stays blocked (no dithering between left and right), chosen at first
  toward the waypoint's side;
- approaching (time to contact under 2 s) slows everything by `approach_speed_factor`;
- after any avoidance the robot drives straight on for `avoid_hold_s` before it steers
  for the waypoint again: pursuit would otherwise turn it straight back into what it
  has just turned away from (the waypoint often lies behind the obstacle).
Without an assigned region the robot cruises straight on and only avoids.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ..config import spec
from ..perception.labels import CENTER, CLEAR, LEFT, RIGHT

Pose = Tuple[float, float, float]   # x, y, yaw (map frame, REP-103)


@dataclass(frozen=True)
class PatrolConfig:
    cruise_mps: float = spec(0.4, lo=0.0, hi=10.0, unit="m/s")
    heading_gain: float = spec(1.5, lo=0.0, hi=20.0, help="rad/s of turn per rad of heading error")
    waypoint_radius_m: float = spec(0.4, lo=0.05, hi=10.0, unit="m")
    avoid_turn_rps: float = spec(1.2, lo=0.0, hi=10.0, unit="rad/s")
    side_speed_factor: float = spec(0.6, lo=0.0, hi=1.0)
    approach_speed_factor: float = spec(0.5, lo=0.0, hi=1.0)
    avoid_hold_s: float = spec(1.0, lo=0.0, hi=60.0, unit="s", help="straight on after an avoidance")


@dataclass
class Command:
    linear: float
    angular: float
    mode: str          # what decided it: pursue, cruise, hold, avoid_left, avoid_right, turn_in_place


def wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


class PatrolController:
    def __init__(self, cfg: PatrolConfig = PatrolConfig()) -> None:
        self.cfg = cfg
        self.waypoints: list = []
        self.index = 0
        self.region_id = ""
        self._turn_dir = 0.0
        self._hold_until = -1.0
        self.waypoints_reached = 0

    def assign(self, region_id: str, waypoints: Sequence[Tuple[float, float]], pose: Optional[Pose] = None) -> None:
        """A new patrol loop; it starts at the waypoint nearest to `pose`."""
        if region_id == self.region_id and list(waypoints) == self.waypoints:
            return
        self.region_id, self.waypoints = region_id, [tuple(map(float, w)) for w in waypoints]
        self.index = 0
        if pose is not None and self.waypoints:
            d = [math.hypot(wx - pose[0], wy - pose[1]) for wx, wy in self.waypoints]
            self.index = int(min(range(len(d)), key=d.__getitem__))

    def _goal_heading_error(self, pose: Pose) -> Optional[float]:
        if not self.waypoints:
            return None
        x, y, yaw = pose
        wx, wy = self.waypoints[self.index]
        if math.hypot(wx - x, wy - y) < self.cfg.waypoint_radius_m:
            self.index = (self.index + 1) % len(self.waypoints)
            self.waypoints_reached += 1
            wx, wy = self.waypoints[self.index]
        return wrap(math.atan2(wy - y, wx - x) - yaw)

    def command(self, pose: Pose, label: int, approaching: bool, now_s: float) -> Command:
        c = self.cfg
        err = self._goal_heading_error(pose)
        slow = c.approach_speed_factor if approaching else 1.0
        if label != CENTER:
            self._turn_dir = 0.0
        if label != CLEAR:
            self._hold_until = now_s + c.avoid_hold_s
        if label == CENTER:
            if self._turn_dir == 0.0:
                self._turn_dir = 1.0 if (err if err is not None else 1.0) >= 0 else -1.0
            return Command(0.0, self._turn_dir * c.avoid_turn_rps, "turn_in_place")
        if label == LEFT:
            return Command(c.cruise_mps * c.side_speed_factor * slow, -c.avoid_turn_rps, "avoid_left")
        if label == RIGHT:
            return Command(c.cruise_mps * c.side_speed_factor * slow, c.avoid_turn_rps, "avoid_right")
        assert label == CLEAR, label
        if err is None:
            return Command(c.cruise_mps * slow, 0.0, "cruise")
        if now_s < self._hold_until:
            return Command(c.cruise_mps * slow, 0.0, "hold")
        v = c.cruise_mps * slow * max(0.0, math.cos(err)) ** 2
        return Command(v, c.heading_gain * err, "pursue")
