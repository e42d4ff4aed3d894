"""The intervals of instab.ensemble: fit for their n, coverage checked by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instab.ensemble import bootstrap_interval, floor_decision, mean_interval, proportion_interval


@pytest.mark.parametrize("n", [2, 3, 6])
def test_mean_interval_covers_the_mean_over_few_seeds(n):
    """Student's t over n normal values covers their mean 95% of the time at any n ≥ 2 (a
    percentile bootstrap over 3 values covers about 75%); 600 draws: ±2% Monte Carlo error."""
    x = np.random.default_rng(n).normal(5.0, 2.0, size=(600, n))
    hits = [lo <= 5.0 <= hi for _, lo, hi in (mean_interval(row) for row in x)]
    assert 0.92 <= np.mean(hits) <= 0.98


def test_mean_interval_of_one_value_decides_nothing():
    mean, lo, hi = mean_interval([0.3])
    assert mean == 0.3 and math.isnan(lo) and math.isnan(hi)
    assert floor_decision([lo, hi], 0.01) is None
    assert mean_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        mean_interval([])


def test_proportion_interval_is_wilsons():
    lo, hi = proportion_interval(10, 100)
    assert (lo, hi) == pytest.approx((0.0552, 0.1744), abs=1e-4)  # Wilson (1927), z = 1.96
    lo, hi = proportion_interval(0, 1000)
    assert lo == 0 and 0 < hi < 0.004
    with pytest.raises(ValueError):
        proportion_interval(5, 4)


def test_bootstrap_interval_needs_ten_values_and_covers_a_skewed_mean():
    with pytest.raises(ValueError, match="n >= 10"):
        bootstrap_interval([0.1] * 9)
    rng = np.random.default_rng(3)
    hits = []
    for _ in range(100):
        x = rng.exponential(1.0, size=200)
        lo, hi = bootstrap_interval(x, n_resamples=500, seed=int(rng.integers(1 << 30)))
        hits.append(lo <= 1.0 <= hi)
    assert np.mean(hits) >= 0.88  # 100 draws: a loose check that BCa is centred on the mean
