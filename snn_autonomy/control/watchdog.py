"""Safety watchdog: the robot moves only on fresh perception that does not say it is about to hit.

Two reasons to stop, checked on every control tick and every decision:
- stale: no Perception within `deadline_s` (default 100 ms: at 0.45 m/s that is 4.5 cm
  driven blind, well inside the 0.9 m at which perception reports obstacles);
- imminent: the newest decision says something in the robot's path is nearer than the first
  range class and closes in (SectorPercept.imminent).
A stale stop is a zero Twist: the robot does not move blind. An imminent-collision stop
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

STALE, IMMINENT = "stale_perception", "imminent_collision"


@dataclass(frozen=True)
class WatchdogConfig:
    deadline_s: float = spec(0.1, lo=0.005, hi=10.0, unit="s", help="stop when no Perception is newer than this")
    stop_on_imminent: bool = True


@dataclass
class WatchdogCounters:
    stops: Dict[str, int] = field(default_factory=lambda: {STALE: 0, IMMINENT: 0})
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

    def feed(self, now_s: float, imminent: bool) -> None:
        self._last_feed = now_s
        self._imminent = self.cfg.stop_on_imminent and bool(imminent)

    def check(self, now_s: float) -> Optional[str]:
        """None when the robot may move; else why it must stop (a new stop is counted once)."""
        if self._last_feed is not None and now_s < self._last_feed:
            self.on_clock_jump(now_s)   # the clock went back unannounced: the last decision is from another time line
        if self._last_feed is None or now_s - self._last_feed > self.cfg.deadline_s:
            reason = STALE
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
        self._imminent = False
        if self._stopped_since is not None:
            self._stopped_since = now_s
