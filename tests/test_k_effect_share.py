"""The share of the spread over k that every seed shares (:func:`instab.ensemble.k_effect_share`):
its one-sided 95% upper bound covers the true share at its nominal rate, checked by simulation.

The model is the crossed two-way random-effects model of :func:`instab.ensemble.std_ratio`,

    acc[k, s] = m + a_k + u_s + e_ks,   var a = σ_a², var u = σ_u², var e = σ_e²,

and the share is π = σ_a² / (σ_a² + σ_e²).  The simulation sets σ_a² = π, σ_e² = 1 − π and σ_u² = 1
(the batch order does not enter the bound: MS_k and MS_e do not depend on it).

The requirement: with a k effect of known share (π = 0.1, 0.5, 0.9), the upper bound lies at or
above π in 92–98% of the grids, on grids of 3 × 3, 6 × 6 and 16 × 16.  1,000 grids per cell put
the Monte Carlo error at ±1.4% (2 SE); the bounds use 2,000 GPQ draws (the default is 20,000).
Measured with 2,000 grids per cell (π = 0.1, 0.3, 0.6, 0.9): 94.5–96.0%.  Without a k effect
(π = 0) the bound, a share, is never below 0, so it covers by construction; what the chapter
decides then is absence (the bound below the registry's limit) and a false presence, the F test
of :func:`instab.ensemble.k_effect_p`, which must reject at its level (5%) and no more often.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from instab.ensemble import k_effect_p, k_effect_share

GRIDS = 1_000
DRAWS = 2_000
CELLS = [(3, 0.5), (6, 0.1), (6, 0.5), (6, 0.9), (16, 0.1), (16, 0.5), (16, 0.9)]


def _grids(share: float, n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` n × n grids with a k effect of share ``share`` of the spread over k (module docstring)."""
    return (93.0 + math.sqrt(share) * rng.standard_normal((count, n, 1)) + rng.standard_normal((count, 1, n))
            + math.sqrt(1 - share) * rng.standard_normal((count, n, n)))


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: f"{c[0]}x{c[0]}-share{c[1]}")
def test_the_upper_bound_covers_the_true_share(cell):
    n, share = cell
    grids = _grids(share, n, GRIDS, np.random.default_rng([n, int(100 * share)]))
    uppers = np.array([k_effect_share(t, draws=DRAWS)[1] for t in grids])
    coverage = float(np.mean(uppers >= share))
    assert 0.92 <= coverage <= 0.98, f"{n} × {n}, share {share}: coverage {coverage:.3f}"


@pytest.mark.parametrize("n", [6, 16])
def test_without_a_k_effect_the_bound_covers_and_the_f_test_keeps_its_level(n):
    grids = _grids(0.0, n, 4 * GRIDS, np.random.default_rng(n))
    ps = np.array([k_effect_p(t) for t in grids])
    assert 0.04 <= float(np.mean(ps < 0.05)) <= 0.06  # ±0.7% Monte Carlo error (2 SE) at 4,000 grids
    for t in grids[:200]:
        point, upper = k_effect_share(t, draws=DRAWS)
        assert 0.0 <= point <= upper <= 1.0
