"""instab.growth: the quantities every chapter reads off a RelL1 curve, on synthetic curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instab import growth


def test_decades_and_the_points_that_count():
    assert growth.decades(1e-8, 1e-2) == pytest.approx(6.0)
    assert math.isnan(growth.decades(0.0, 1.0)) and math.isnan(growth.decades(1.0, float("nan")))
    s, r = growth.nonzero([0, 1, 2, 3, 4], [0.0, 0.0, 1e-9, float("nan"), 1e-6])
    assert list(s) == [2, 4] and list(r) == [1e-9, 1e-6]  # before the first difference, after a blow-up


def test_summary_of_a_curve():
    steps = np.arange(0, 401, dtype=float)
    rel = np.r_[0.0, np.minimum(1e-8 * 10 ** (steps[1:] / 20), 0.3)]
    g = growth.summary(steps, rel)
    assert g["first"] == pytest.approx(1e-8 * 10 ** 0.05) and g["peak"] == 0.3 and g["final"] == 0.3
    assert g["decades"] == pytest.approx(math.log10(0.3 / g["first"]))
    assert all(math.isnan(v) for v in growth.summary(steps, np.zeros_like(steps)).values())  # bitwise equal


def test_restraint_of_a_restrained_and_an_unrestrained_curve():
    steps = np.arange(1, 401, dtype=float)
    rel = np.minimum(1e-8 * 10 ** (steps / 20), 0.3)   # 1 decade per 20 iterations, capped
    g = growth.restraint(steps, rel)
    assert g["decades"] == pytest.approx(math.log10(0.3 / rel[0])) and g["plateau"] == 0.3
    assert g["early_rate"] == pytest.approx(1 / 20, rel=0.05)
    assert g["late_rate"] == 0 and g["late_over_early"] == 0
    unrestrained = growth.restraint(steps, 1e-8 * 10 ** (steps / 100))
    assert unrestrained["late_over_early"] == pytest.approx(1.0, rel=0.05)
    assert all(math.isnan(v) for v in growth.restraint(steps, np.zeros_like(steps)).values())
