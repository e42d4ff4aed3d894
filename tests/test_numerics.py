"""The torch-free numerics: one bisection, one rule for k, the perturbed product, RelL1 on arrays."""

import math

import numpy as np
import pytest

from instab import numerics


@pytest.mark.parametrize("geometric", [False, True])
def test_bisect_brackets_a_known_change(geometric):
    b = numerics.bisect(lambda x: x <= 3.7, 1.0, 10.0, rtol=1e-3, geometric=geometric)
    assert b.lo <= 3.7 < b.hi and (b.hi - b.lo) <= 1e-3 * b.lo * (1 + 1e-12)
    assert b.trials[:2] == [(1.0, True), (10.0, False)]  # the bracket is checked first, lo first
    with pytest.raises(ValueError, match="hold at lo"):
        numerics.bisect(lambda x: x <= 3.7, 5.0, 10.0, rtol=1e-3)


def test_bisect_expands_a_bracket_that_misses():
    b = numerics.bisect(lambda x: x <= 50.0, 1.0, 2.0, rtol=0.01, geometric=True, expand=30)
    assert b.lo <= 50.0 < b.hi and b.hi / b.lo <= 1.01
    assert b.trials[0] == (2.0, True)  # hi first when expanding
    with pytest.raises(RuntimeError, match="still holds"):
        numerics.bisect(lambda x: True, 1.0, 2.0, rtol=0.01, expand=3)


def test_one_rule_for_k_and_form():
    assert numerics.check_k(3) == 3 and numerics.check_k(np.int64(5)) == 5
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="positive integer"):
            numerics.check_k(bad)
    with pytest.raises(ValueError, match="'fast'.*paper"):
        numerics.check_form("fast")
    assert [k for k in range(1, 10) if numerics.is_power_of_two(k)] == [1, 2, 4, 8]


def test_perturbed_step_is_exact_for_powers_of_two_and_moves_the_last_bit_otherwise():
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    plain = numerics.perturbed_step(x, 0.1, g)
    for k in (2, 4):
        assert np.array_equal(numerics.perturbed_step(x, 0.1, g, k), plain)
    for form in numerics.FORMS:
        p3 = numerics.perturbed_step(x, 0.1, g, 3, form)
        assert p3.dtype == np.float32 and 0 < np.mean(p3 != plain) < 1
        scale = np.maximum(np.abs(x), np.abs(np.float32(0.1) * g))  # the operands of the last subtraction
        assert np.all(np.abs(p3 - plain) <= 2 * np.spacing(scale))  # at most two of their ulps apart


def test_rel_l1_on_arrays():
    assert numerics.rel_l1([1.0, 0.0], [1.0, 0.0]) == 0.0
    assert numerics.rel_l1([1.0, 2.0], [-1.0, 2.0]) == pytest.approx(1.0)
    assert math.isnan(numerics.rel_l1([1.0, np.inf], [1.0, 1.0]))
    with pytest.raises(ValueError, match="shapes"):
        numerics.rel_l1([1.0], [1.0, 2.0])
