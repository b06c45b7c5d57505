"""Small statistics for the benchmarks' counts."""
from __future__ import annotations

from typing import Tuple


def poisson_interval(k: int, level: float = 0.95) -> Tuple[float, float]:
    """Exact (Garwood) two-sided interval for the mean of a Poisson count `k`: how far a count
    of rare events (collisions in a benchmark) could be from its rate by chance alone. Five
    events give 1.6-11.7: two variants at 5 and 9 cannot be told apart. The bounds are
    chi-square quantiles: P(X >= k) = tail at the lower one, P(X <= k) = tail at the upper."""
    if k < 0 or int(k) != k:
        raise ValueError(f"a count must be a non-negative integer, got {k!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    from scipy.stats import chi2    # here: the benchmarks need it, importing the package does not

    k, tail = int(k), (1.0 - level) / 2.0
    lower = 0.0 if k == 0 else 0.5 * float(chi2.ppf(tail, 2 * k))
    return lower, 0.5 * float(chi2.ppf(1.0 - tail, 2 * k + 2))
