"""The benchmarks' interval for rare counts (collisions): exact Poisson (Garwood) bounds."""
import pytest

from snn_autonomy.bench.patrol import _overall
from snn_autonomy.report.stats import poisson_interval


@pytest.mark.parametrize("k, lower, upper", [   # published Garwood 95 % limits
    (0, 0.0, 3.689), (1, 0.0253, 5.572), (5, 1.623, 11.668), (10, 4.795, 18.390), (1000, 938.97, 1063.95)])
def test_poisson_interval_matches_the_exact_limits(k, lower, upper):
    lo, hi = poisson_interval(k)
    assert lo == pytest.approx(lower, abs=1e-3, rel=1e-4) and hi == pytest.approx(upper, abs=1e-3, rel=1e-4)


def test_poisson_interval_narrows_with_a_lower_level_and_refuses_nonsense():
    lo90, hi90 = poisson_interval(5, 0.90)
    lo95, hi95 = poisson_interval(5)
    assert lo95 < lo90 < 5 < hi90 < hi95
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="non-negative integer"):
            poisson_interval(bad)
    with pytest.raises(ValueError, match="level"):
        poisson_interval(3, 1.0)


def test_patrol_figures_carry_the_interval_of_the_at_fault_rate():
    def run(distance, moving):
        return {"distance_m": distance, "duration_s": 120.0, "agents": 3, "coverage": 0.5,
                "collisions_at_fault_by_kind": {"wall": 0, "static": 0, "moving": moving, "robot": 0},
                "collisions_by_kind": {"wall": 0, "static": 0, "moving": moving + 1, "robot": 0},
                "halts": {}, "halted_s": {}, "min_clearance_m": [0.1]}
    o = _overall([run(100.0, 2), run(150.0, 3)])
    assert o["collisions_at_fault_per_100m"] == 2.0
    lo, hi = o["collisions_at_fault_per_100m_ci95"]
    assert lo == pytest.approx(100 * 1.623 / 250, abs=1e-3) and hi == pytest.approx(100 * 11.668 / 250, abs=1e-3)
