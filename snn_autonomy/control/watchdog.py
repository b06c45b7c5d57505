"""Safety watchdog: the robot moves only on fresh perception that does not say it is about to hit.

Three reasons to stop, checked on every control tick and every decision:
- stale: no Perception within `deadline_s` (default 100 ms: at 0.45 m/s that is 4.5 cm
  driven blind, well inside the 0.9 m at which perception reports obstacles);
- stale odometry: odometry came, then none within `odom_deadline_s`. The route, the memory of
  what left the view and the temporal prior's turn all go by the pose; a frozen pose steers
  the robot by where it was. A robot run without odometry is never stopped for it (its pose
  stays the start pose, as the control diagnostics' `odom_age_ms` shows);
- imminent: the newest decision says something in the robot's path is nearer than the first
  range class and closes in (SectorPercept.imminent).
A stale stop (either kind) is a zero Twist: the robot does not move blind. An imminent-collision stop
halts forward motion and leaves turning in place to the controller: a round
differential-drive base turning on the spot moves no part of itself toward what is
ahead, and turning is how it gets the obstacle out of its path. Stops are counted by
reason, with the time spent stopped.

Clock jumps (simulation time reset or fast-forwarded): `on_clock_jump` forgets the last
decision, so the robot stays stopped until a decision arrives on the new time line. As a
second line of defence, `check` at a time before the last decision (the clock went back
without the caller saying so) is taken as such a jump too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

from ..config import spec

STALE, IMMINENT, ODOM_STALE = "stale_perception", "imminent_collision", "stale_odometry"


@dataclass(frozen=True)
class WatchdogConfig:
    deadline_s: float = spec(0.1, lo=0.005, hi=10.0, unit="s", help="stop when no Perception is newer than this")
    odom_deadline_s: float = spec(0.5, lo=0.01, hi=60.0, unit="s",
                                  help="stop when odometry, once it came, is older than this: 10-25 messages "
                                       "of a base's 20-50 Hz odometry lost, 25 cm driven at cruise on a "
                                       "pose that no longer moves (a quarter of the 0.9 m perception sees)")
    stop_on_imminent: bool = True


class OdometryAge:
    """How old the newest odometry is, on the caller's clock. Until the first odometry nothing is
    stale; after it, odometry older than `deadline_s` is. A clock that goes back (or a jump the
    caller reports) gives the odometry a fresh deadline on the new time line."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._last: Optional[float] = None
        self.lapses = 0                 # times odometry went stale
        self._stale = False

    def feed(self, now_s: float) -> None:
        self._last = now_s
        self._stale = False

    def age_s(self, now_s: float) -> float:
        """Seconds since the newest odometry (inf if none came)."""
        if self._last is not None and now_s < self._last:
            self.on_clock_jump(now_s)
        return float("inf") if self._last is None else now_s - self._last

    def stale(self, now_s: float) -> bool:
        """Whether odometry came and then went silent for longer than the deadline (a new lapse
        is counted once)."""
        stale = self._last is not None and self.age_s(now_s) > self.deadline_s
        self.lapses += stale and not self._stale
        self._stale = stale
        return stale

    def on_clock_jump(self, now_s: float) -> None:
        if self._last is not None:
            self._last = now_s


@dataclass
class WatchdogCounters:
    stops: Dict[str, int] = field(default_factory=lambda: {STALE: 0, IMMINENT: 0, ODOM_STALE: 0})
    stopped_s: float = 0.0
    last_reason: str = ""


class SafetyWatchdog:
    """Feed it every decision (`feed`) and ask it before every command (`check`)."""

    def __init__(self, cfg: WatchdogConfig = WatchdogConfig()) -> None:
        self.cfg = cfg
        self.counters = WatchdogCounters()
        self._last_feed: Optional[float] = None
        self._imminent = False
        self._stopped_since: Optional[float] = None
        self._reason = ""
        self.clock_jumps = 0
        self.odom = OdometryAge(cfg.odom_deadline_s)

    def feed_odom(self, now_s: float) -> None:
        """Odometry arrived at `now_s`."""
        self.odom.feed(now_s)

    def feed(self, now_s: float, imminent: bool) -> None:
        self._last_feed = now_s
        self._imminent = self.cfg.stop_on_imminent and bool(imminent)

    def check(self, now_s: float) -> Optional[str]:
        """None when the robot may move; else why it must stop (a new stop is counted once)."""
        if self._last_feed is not None and now_s < self._last_feed:
            self.on_clock_jump(now_s)   # the clock went back unannounced: the last decision is from another time line
        if self._last_feed is None or now_s - self._last_feed > self.cfg.deadline_s:
            reason = STALE
        elif self.odom.stale(now_s):
            reason = ODOM_STALE
        elif self._imminent:
            reason = IMMINENT
        else:
            reason = None
        if reason is not None and self._reason != reason:
            self.counters.stops[reason] += 1
            self.counters.last_reason = reason
        if reason is None and self._stopped_since is not None:
            self.counters.stopped_s += max(0.0, now_s - self._stopped_since)
            self._stopped_since = None
        elif reason is not None and self._stopped_since is None:
            self._stopped_since = now_s
        self._reason = reason or ""
        return reason

    def age_s(self, now_s: float) -> float:
        """Seconds since the last decision that counts (inf if none)."""
        return float("inf") if self._last_feed is None else now_s - self._last_feed

    def on_clock_jump(self, now_s: float) -> None:
        """The clock jumped to `now_s`: decisions fed before no longer count, and time spent
        stopped is measured on the new time line from here."""
        self.clock_jumps += 1
        self._last_feed = None
        self.odom.on_clock_jump(now_s)
        self._imminent = False
        if self._stopped_since is not None:
            self._stopped_since = now_s
