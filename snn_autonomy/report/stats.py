"""Small statistics for the benchmarks' counts."""
from __future__ import annotations

import math
from typing import Tuple


def _poisson_cdf(k: int, mu: float) -> float:
    """P(X <= k) for X ~ Poisson(mu)."""
    if mu <= 0.0:
        return 1.0
    log_mu = math.log(mu)      # terms in log space: exp(-mu) alone underflows past mu = 745
    return min(1.0, sum(math.exp(i * log_mu - mu - math.lgamma(i + 1)) for i in range(k + 1)))


def _solve(f, lo: float, hi: float) -> float:
    """The root of f, increasing on [lo, hi], by bisection (to 1e-9 relative)."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9 * max(hi, 1.0):
            break
    return 0.5 * (lo + hi)


def poisson_interval(k: int, level: float = 0.95) -> Tuple[float, float]:
    """Exact (Garwood) two-sided interval for the mean of a Poisson count `k`: how far a count
    of rare events (collisions in a benchmark) could be from its rate by chance alone. Five
    events give 1.6-11.7: two variants at 5 and 9 cannot be told apart."""
    if k < 0 or int(k) != k:
        raise ValueError(f"a count must be a non-negative integer, got {k!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    k, tail = int(k), (1.0 - level) / 2.0
    top = 10.0 + 4.0 * k
    upper = _solve(lambda mu: tail - _poisson_cdf(k, mu), 0.0, top)            # P(X <= k) = tail
    lower = 0.0 if k == 0 else _solve(lambda mu: (1.0 - _poisson_cdf(k - 1, mu)) - tail, 0.0, top)  # P(X >= k) = tail
    return lower, upper
