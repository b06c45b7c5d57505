"""Small timing helpers shared by the benchmarks."""
from __future__ import annotations

import time
from typing import Callable, List


def repeat_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> List[float]:
    """Wall-clock seconds of `repeats` calls of fn after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median(values: List[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
