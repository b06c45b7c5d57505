"""Latency of every decision: rolling percentiles per stage and end to end, judged against budgets.

Stages of one decision (wall-clock milliseconds, measured where they happen):
    transport    EventPacket published by the sensor -> received by perception (DDS)
    decode       EVT3 bytes -> events
    snn          binning and SNN steps until the decision
    decision     newest packet published -> Perception published (transport + decode + snn + waiting)
    control      Perception published -> cmd_vel published (DDS + the controller)
    e2e          newest packet published -> cmd_vel published: sensing to action
In fused mode there is no transport: e2e is the time from the camera's events being
available to the command returned.

`LatencyTracker` keeps the last `window` samples per stage (a decision rate of 50-100/s makes
1,000 samples 10-20 s of history: recent enough to show a regression, long enough for a
stable p99) and grades e2e p99 against its budgets: OK, WARN above `warn_p99_ms`, ERROR above
`error_p99_ms`, STALE when no decision arrived for `stale_s`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Iterable, Optional, Tuple

import numpy as np

from ..config import spec

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}


@dataclass(frozen=True)
class LatencyBudgets:
    warn_p99_ms: float = spec(5.0, lo=0.0, unit="ms", help="e2e p99 above this: WARN (split-mode budget)")
    error_p99_ms: float = spec(10.0, lo=0.0, unit="ms", help="e2e p99 above this: ERROR (full-demo budget)")
    stale_s: float = spec(1.0, lo=0.0, unit="s", help="no decision for this long: STALE")
    window: int = spec(1000, lo=10, hi=10_000_000, help="samples kept per stage")


def percentiles(values: Iterable[float]) -> Dict[str, float]:
    a = np.asarray(list(values), dtype=np.float64)
    if a.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50": round(float(p50), 4), "p95": round(float(p95), 4), "p99": round(float(p99), 4), "n": int(a.size)}


class LatencyTracker:
    def __init__(self, budgets: LatencyBudgets = LatencyBudgets()) -> None:
        self.budgets = budgets
        self.samples: Dict[str, Deque[float]] = {}
        self.count = 0
        self.last_s: Optional[float] = None

    def add(self, now_s: float, e2e_ms: float, stages: Dict[str, float]) -> None:
        """One decision's end-to-end latency and its stages (ms). Non-finite values are skipped."""
        self.count += 1
        self.last_s = now_s
        for name, ms in (("e2e", e2e_ms), *stages.items()):
            if ms is None or not np.isfinite(ms):
                continue
            self.samples.setdefault(name, deque(maxlen=self.budgets.window)).append(float(ms))

    def summary(self) -> Dict[str, Dict[str, float]]:
        return {name: percentiles(v) for name, v in self.samples.items()}

    def level(self, now_s: float) -> Tuple[int, str]:
        b = self.budgets
        if self.last_s is None or now_s - self.last_s > b.stale_s:
            return STALE, "no decisions" if self.last_s is None else f"no decision for {now_s - self.last_s:.1f} s"
        p99 = percentiles(self.samples.get("e2e", ())).get("p99", float("nan"))
        if not np.isfinite(p99):
            return OK, "no end-to-end samples yet"
        if p99 > b.error_p99_ms:
            return ERROR, f"e2e p99 {p99:.2f} ms over the {b.error_p99_ms:g} ms budget"
        if p99 > b.warn_p99_ms:
            return WARN, f"e2e p99 {p99:.2f} ms over {b.warn_p99_ms:g} ms"
        return OK, f"e2e p99 {p99:.2f} ms"
