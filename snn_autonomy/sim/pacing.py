"""Pacing simulated time against the wall clock at a real-time factor."""
from __future__ import annotations

# A world later than this behind its real-time factor (a starved process) goes on from where it is
# at that factor: racing to catch up would step the robots through time that the nodes on /clock
# never saw, with stale commands. Shorter lags are caught up, so the factor holds over jitter.
MAX_LAG_S = 0.05
LATE_S = 0.005      # a step this much behind its due time counts as late


class RealTimePacer:
    """When each step of simulated time is due on the wall clock (`real_time_factor` simulated
    seconds per wall second; 0 = as fast as possible), with the lateness it could not make up."""

    def __init__(self, real_time_factor: float, max_lag_s: float = MAX_LAG_S) -> None:
        self.rtf = float(real_time_factor)
        self.max_lag_s = float(max_lag_s)
        self.late_steps = 0
        self.lost_wall_s = 0.0      # wall time the world fell behind and gave up on
        self._wall0 = 0.0

    def start(self, now: float) -> None:
        """Simulated time 0 is wall time `now`."""
        self._wall0 = now

    def wait_s(self, sim_s: float, now: float) -> float:
        """How long to sleep at wall time `now` before going past simulated time `sim_s` (0 when
        it is due or late); a lag beyond max_lag_s is given up on, not raced through."""
        if self.rtf <= 0:
            return 0.0
        delay = self._wall0 + sim_s / self.rtf - now
        if delay < -LATE_S:
            self.late_steps += 1
            if delay < -self.max_lag_s:
                self._wall0 -= delay
                self.lost_wall_s -= delay
        return max(delay, 0.0)
