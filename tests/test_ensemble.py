"""The intervals of instab.ensemble: fit for their n, coverage checked by simulation; a k × seed grid's
spread and k effect, the pairwise disagreement of runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instab.ensemble import (
    bootstrap_interval,
    floor_decision,
    k_effect_decision,
    k_effect_share,
    mean_interval,
    pairwise_disagreement,
    proportion_interval,
    spread,
)


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


def test_spread_separates_the_two_noises():
    rows = np.array([0.0, 1.0, 2.0])[:, None]        # varies over k only
    sp = spread(rows + np.zeros((3, 4)))
    assert sp.sgd_std == 0 and sp.fp_std > 0 and sp.paper_ratio == math.inf and sp.ratio == math.inf
    with pytest.raises(ValueError, match="2×2"):
        spread(np.zeros((1, 5)))


def test_pairwise_disagreement():
    a, b, c = np.tile([0, 1, 2, 3], 5), np.tile([0, 1, 2, 0], 5), np.tile([0, 1, 2, 3], 5)
    d = pairwise_disagreement([a, b, c])  # three runs, 20 images: BCa over the images
    assert d["pairs"] == 3 and d["mean"] == pytest.approx((0.25 + 0 + 0.25) / 3)
    assert d["low"] <= d["mean"] <= d["high"]
    two = pairwise_disagreement([a, b])  # one pair: 5 of 20 images differ, Wilson
    assert (two["low"], two["high"]) == pytest.approx(proportion_interval(5, 20))
    assert math.isnan(pairwise_disagreement([a, b], interval=False)["low"])
    with pytest.raises(ValueError):
        pairwise_disagreement([a])


def test_k_effect_decision_needs_its_absence_shown():
    # p < 0.05/m: a k effect; a small upper bound of its share: absence shown; else the grid cannot tell
    assert k_effect_decision([0.02, 0.5], [0.9, 0.1], 0.05, 0.5) == [False, True]  # 0.02 < 0.025
    assert k_effect_decision([0.02, 0.5, 0.9], [0.9, 0.1, 0.8], 0.05, 0.5) == [None, True, None]
    assert k_effect_decision([float("nan")], [float("nan")], 0.05, 0.5) == [None]


def test_k_effect_share_is_small_without_one_and_large_with_one():
    rng = np.random.default_rng(3)
    none = rng.normal(0, 1, (16, 16))
    point, upper = k_effect_share(none)
    assert 0 <= point <= upper < 0.3  # 16 × 16, no k effect: the upper bound is small
    shared = none + rng.normal(0, 2, (16, 1))
    assert k_effect_share(shared)[0] > 0.6
