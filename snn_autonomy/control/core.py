"""The control stage of one robot, whatever carries its messages.

`ControlCore` is what the split `control` node and the fused `robot` node both drive, so that a
fix lands once: odometry in (non-finite refused and counted), the fleet's assignment in, the
other robots' heartbeats in (non-finite or mistimed ones refused and counted), perception
decisions in (unreadable ones refused and counted), the watchdog's tick and clock jumps in,
velocity commands out, and one diagnostics summary. Time is the caller's clock in seconds (a
node's ROS clock, which follows /clock under use_sim_time, or the simulation's time); the
watchdog's deadline is measured on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from ..config import ConfigError, spec
from ..fleet.state import AgentReport
from ..perception.sectors import SectorPercept, SectorSpec, SectorView, percept_from_classes
from .frames import Pose2, finite, odom_to_map
from .limits import LimitsConfig, VelocityLimiter
from .policy import PatrolConfig, PatrolController
from .watchdog import IMMINENT, ODOM_STALE, STALE, SafetyWatchdog, WatchdogConfig

Twist2 = Tuple[float, float]   # linear m/s, angular rad/s


@dataclass(frozen=True)
class ControlTiming:
    """How the node around a ControlCore calls it between decisions."""
    tick_hz: float = spec(50.0, lo=1.0, hi=1000.0, unit="Hz",
                          help="watchdog check rate between decisions (a stale stop is at most 1/tick_hz late)")
    clock_jump_threshold_s: float = spec(0.5, lo=0.001, hi=86400.0, unit="s",
                                         help="a clock jump larger than this either way stops the robot until "
                                              "the next decision")


@dataclass
class ControlCounters:
    decisions: int = 0
    refused: Dict[str, int] = field(default_factory=lambda: {"decision": 0, "odom": 0, "teammate": 0})
    last_clock_jump_s: float = 0.0


@dataclass(frozen=True)
class ControlStatus:
    ok: bool                  # False: the robot is held (stale perception, imminent collision)
    summary: str
    values: Dict[str, object]


class ControlCore:
    """Patrol policy + velocity limits + safety watchdog, with the robot's pose and counters."""

    def __init__(self, origin: Pose2 = (0.0, 0.0, 0.0), patrol: PatrolConfig = PatrolConfig(),
                 limits: LimitsConfig = LimitsConfig(), watchdog: WatchdogConfig = WatchdogConfig(),
                 sectors: SectorSpec = SectorSpec()) -> None:
        if not finite(*origin):
            raise ConfigError(f"start pose {origin!r} is not finite")
        self.patrol = PatrolController(patrol)
        self.sectors = sectors
        self.limiter = VelocityLimiter(limits)
        self.watchdog = SafetyWatchdog(watchdog)
        self.command: Twist2 = (0.0, 0.0)
        self.mode = "waiting"
        self.origin: Pose2 = tuple(float(v) for v in origin)
        self.pose: Pose2 = self.origin
        self.speed_mps = math.nan           # odometry's forward speed; NaN until known
        self.counters = ControlCounters()

    # ------------------------------------------------------------------ inputs
    def on_odom(self, x: float, y: float, yaw: float, linear_mps: float = 0.0, angular_rps: float = 0.0,
                now_s: Optional[float] = None) -> bool:
        """Odometry in the odom frame (its origin is the start pose), received at `now_s` on the
        control clock (the watchdog then stops the robot when it goes silent; None: untimed);
        False when refused (non-finite)."""
        pose = odom_to_map(self.origin, x, y, yaw, linear_mps, angular_rps)
        if pose is None:
            self.counters.refused["odom"] += 1
            return False
        self.pose = pose
        self.speed_mps = float(linear_mps)
        if now_s is not None:
            self.watchdog.feed_odom(now_s)
        return True

    def odometry_stale(self, now_s: float) -> bool:
        """Whether timed odometry came and has since been silent past the watchdog's deadline: the
        pose and speed are then the last known, not the robot's."""
        return self.watchdog.odom.stale(now_s)

    def on_pose(self, pose: Pose2, linear_mps: float = math.nan) -> bool:
        """The pose in the map frame directly (a simulator's ground truth), with the forward speed
        where known; False when the pose is refused."""
        if not finite(*pose):
            self.counters.refused["odom"] += 1
            return False
        self.pose = tuple(float(v) for v in pose)
        self.speed_mps = float(linear_mps)
        return True

    def on_teammate(self, r: AgentReport, now_s: float) -> str:
        """Another robot's heartbeat: its pose (map frame), forward speed and body's radius at its
        stamp on its clock, heard at `now_s` on this one; its body is an obstacle where that puts
        it (control.teammates). '' when taken, else why it was refused (counted)."""
        why = self.patrol.teammates.update(r.agent_id, r.x, r.y, r.yaw, r.linear_mps, r.stamp_s, now_s,
                                           r.footprint_radius_m)
        if why:
            self.counters.refused["teammate"] += 1
        return why

    def on_assignment(self, region_id: str, waypoints: Sequence[Tuple[float, float]]) -> None:
        self.patrol.assign(region_id, waypoints, self.pose)

    def on_decision(self, now_s: float, label: int, classes: int, confidence: float,
                    approaching: bool, view: Optional[SectorView] = None) -> Optional[Twist2]:
        """A perception decision: the command to send now, or None when it is unreadable (a label
        outside the classes, a confidence outside [0, 1], a malformed sector view); a refused
        decision does not feed the watchdog, so it cannot keep the robot moving. A sector
        model's `view` is steered by; a four-class model's label is made into sectors."""
        if not (0 <= label < classes and 0.0 <= confidence <= 1.0) or (view is not None and view.problem()):
            self.counters.refused["decision"] += 1
            return None
        if view is not None:
            return self.on_percept(now_s, view.percept(approaching, confidence))
        return self.on_percept(now_s, percept_from_classes(self.sectors, int(label), bool(approaching),
                                                           float(confidence)))

    def on_percept(self, now_s: float, percept: SectorPercept) -> Optional[Twist2]:
        """A decision as free range per sector: the command to send now."""
        self.counters.decisions += 1
        self.watchdog.feed(now_s, percept.imminent)
        reason = self.watchdog.check(now_s)
        stop = self._stop_if_stale(reason, now_s)   # stale perception cannot follow a feed unless the deadline is 0
        if stop is not None:
            return stop
        c = self.patrol.command(self.pose, percept, now_s)
        if reason == IMMINENT:   # halt: no forward motion; turning in place moves no part of a round base
            self.limiter.halt()
            c.linear = 0.0
        self.mode = IMMINENT if reason == IMMINENT else c.mode
        self.command = self.limiter.limit(c.linear, c.angular, now_s)
        return self.command

    def on_tick(self, now_s: float) -> Optional[Twist2]:
        """Between decisions: a stop command when perception or odometry went stale."""
        return self._stop_if_stale(self.watchdog.check(now_s), now_s)

    def _stop_if_stale(self, reason: Optional[str], now_s: float) -> Optional[Twist2]:
        """The zero command when the watchdog's `reason` is a stale stop (perception or odometry)."""
        if reason not in (STALE, ODOM_STALE):
            return None
        self.mode = reason
        self.command = self.limiter.stop(now_s)
        return self.command

    def on_clock_jump(self, now_s: float, delta_s: float = 0.0) -> Optional[Twist2]:
        """The clock jumped by `delta_s` to `now_s`: stop at once (stale) until a decision on the new
        time line; the limiter's time restarts there, so the first command after it is
        acceleration-limited."""
        self.counters.last_clock_jump_s = delta_s
        self.watchdog.on_clock_jump(now_s)
        return self.on_tick(now_s)

    # ------------------------------------------------------------------ outputs
    def status(self, now_s: float) -> ControlStatus:
        """What /diagnostics says of the control stage."""
        w = self.watchdog
        age, odom_age = w.age_s(now_s), w.odom.age_s(now_s)
        if self.mode == STALE and age == float("inf"):
            text = "stopped: no perception since the clock jump" if w.clock_jumps else "stopped: no perception yet"
        elif self.mode == STALE:
            text = f"stopped: no perception for {age * 1e3:.0f} ms (deadline {w.cfg.deadline_s * 1e3:.0f} ms)"
        elif self.mode == ODOM_STALE:
            text = (f"stopped: no odometry for {odom_age * 1e3:.0f} ms "
                    f"(deadline {w.cfg.odom_deadline_s * 1e3:.0f} ms)")
        elif self.mode == IMMINENT:
            text = "halted: obstacle ahead and closing in"
        else:
            text = self.mode
        c = self.counters
        values = {"mode": self.mode, "region": self.patrol.region_id, "perception_age_ms": round(age * 1e3, 1),
                  "stops_stale": w.counters.stops[STALE], "stops_imminent": w.counters.stops[IMMINENT],
                  "stops_stale_odom": w.counters.stops[ODOM_STALE], "odom_age_ms": round(odom_age * 1e3, 1),
                  "stopped_s": round(w.counters.stopped_s, 2), "decisions": c.decisions,
                  "bad_decisions": c.refused["decision"], "odom_rejected": c.refused["odom"],
                  "clock_jumps": w.clock_jumps, "last_clock_jump_s": round(c.last_clock_jump_s, 3),
                  "local_map_marks": len(self.patrol.local_map), "teammates": len(self.patrol.teammates),
                  "teammates_rejected": c.refused["teammate"],
                  "linear": round(self.command[0], 3), "angular": round(self.command[1], 3)}
        return ControlStatus(self.mode not in (STALE, IMMINENT, ODOM_STALE), text, values)
