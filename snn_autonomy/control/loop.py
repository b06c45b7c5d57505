"""The robot's controller: patrol policy + velocity limits + safety watchdog, as one object
that both the fused agent and the `control` node drive (decisions in, velocity out)."""
from __future__ import annotations

from typing import Optional, Tuple

from ..perception.labels import CENTER
from .limits import LimitsConfig, VelocityLimiter
from .policy import PatrolConfig, PatrolController, Pose
from .watchdog import IMMINENT, STALE, SafetyWatchdog, WatchdogConfig

Twist2 = Tuple[float, float]   # linear m/s, angular rad/s


class RobotController:
    def __init__(self, patrol: PatrolConfig = PatrolConfig(), limits: LimitsConfig = LimitsConfig(),
                 watchdog: WatchdogConfig = WatchdogConfig()) -> None:
        self.patrol = PatrolController(patrol)
        self.limiter = VelocityLimiter(limits)
        self.watchdog = SafetyWatchdog(watchdog)
        self.command: Twist2 = (0.0, 0.0)
        self.mode = "waiting"

    def on_decision(self, now_s: float, pose: Pose, label: int, approaching: bool) -> Twist2:
        """A new perception decision: the command to send now."""
        self.watchdog.feed(now_s, label == CENTER, approaching)
        reason = self.watchdog.check(now_s)
        if reason == STALE:   # cannot happen right after a feed unless the deadline is 0; kept for safety
            self.mode = STALE
            self.command = self.limiter.stop(now_s)
            return self.command
        c = self.patrol.command(pose, label, approaching, now_s)
        if reason == IMMINENT:   # halt: no forward motion; turning in place moves no part of a round base
            self.limiter.halt()
            c.linear = 0.0
        self.mode = IMMINENT if reason == IMMINENT else c.mode
        self.command = self.limiter.limit(c.linear, c.angular, now_s)
        return self.command

    def on_clock_jump(self, now_s: float) -> Optional[Twist2]:
        """The clock jumped to `now_s`: stop at once (stale) until a decision on the new time line;
        the limiter's time restarts there, so the first command after it is acceleration-limited."""
        self.watchdog.on_clock_jump(now_s)
        return self.on_tick(now_s)

    def on_tick(self, now_s: float) -> Optional[Twist2]:
        """The watchdog's clock between decisions: a stop command when perception went stale."""
        if self.watchdog.check(now_s) == STALE:
            self.mode = STALE
            self.command = self.limiter.stop(now_s)
            return self.command
        return None
