"""Bounds of the linearised one-layer CNN: (13), (38)–(41), (59)–(61), exact windowed bounds, search."""

import numpy as np
import pytest

from instab import bounds
from instab.pde import images
from instab.pde.onelayer import LinearisedCNN, empirical_alpha_bounds, windowed_alpha_bounds


def test_fourier_spectrum_of_pixel_checkerboard_is_one_spike():
    n = 16
    s = bounds.fourier_spectrum(images.checkerboard(n))
    assert s[n // 2, n // 2] == pytest.approx(n**4)
    s[n // 2, n // 2] = 0
    assert np.all(s < 1e-18 * n**4)


def test_table2_and_table6_theory_numbers():
    """Sum-normalised DFT, pixel checkerboard, a = −0.5, β = 1: the paper's 1.07e9, 2e8 and 1.33e8."""
    cb = images.checkerboard(256)
    b = bounds.alpha_bounds(cb, 1e-8)
    assert b.alpha_min == pytest.approx(256**4 / 4) and b.alpha_min == pytest.approx(1.07e9, rel=0.01)
    assert b.alpha_max == pytest.approx(2e8) and b.empty
    m = bounds.momentum_alpha_bounds(cb, 1e-4)
    assert m.alpha_min == pytest.approx(256**4 / 4) and m.alpha_max == pytest.approx(4 / 3e-8)


def test_alpha_interval_both_signs_of_a():
    lo_hi = bounds.alpha_interval(1.0, 9.0, 100.0, a=-0.5, beta=2.0)      # c = −0.5
    assert (lo_hi.alpha_min, lo_hi.alpha_max) == (4.5, 100.5)
    pos = bounds.alpha_interval(1.0, 9.0, 100.0, a=0.5, beta=2.0)        # c = +0.5: roles swap
    assert (pos.alpha_min, pos.alpha_max) == (-0.5, 95.5)
    assert pos.contains(0.0) and not pos.contains(96.0)


def test_nesterov_limit_against_companion_roots():
    dt = 1e-2
    for mu in (0.0, 0.5, 0.9, 0.99):
        zmax = bounds.nesterov_z_limit(dt, mu)
        eta = (1 + mu) * dt * dt / 2
        cases = ((0.999 * zmax, True), (1.001 * zmax, False), (1e-3 * zmax, True), (-1e-3 * zmax, False))
        for z, stable in cases:
            q = 1 - eta * z
            rho = np.max(np.abs(np.roots([1, -(1 + mu) * q, mu * q])))
            assert (rho < 1) == stable, (mu, z, rho)
    assert bounds.nesterov_z_limit(dt, 0.0) == pytest.approx(4 / dt**2)
    assert bounds.nesterov_z_limit(dt, 0.999999) == pytest.approx(bounds.paper_momentum_z_limit(dt), rel=1e-5)
    assert bounds.nesterov_z_limit(1e-4, 0.9) == pytest.approx(1.4286e8, rel=1e-4)


def test_cfl_dt_bound():
    cb = images.checkerboard(8)
    alpha = 1000.0                                   # > ¼·8⁴ = 1024?  no: below α_min → no stable step
    assert bounds.cfl_dt_bound(cb, alpha) == 0.0
    alpha = 2000.0                                   # z ranges over [2000 − 1024, 2000]
    assert bounds.cfl_dt_bound(cb, alpha) == pytest.approx(2 / 2000)
    assert bounds.cfl_dt_bound(cb, alpha, momentum=True) == pytest.approx(2 / np.sqrt(3 * 2000))


@pytest.mark.parametrize("n,w", [(32, 8), (40, 12)])   # dense path (w² = 64) and Lanczos path (144)
def test_windowed_bounds_checkerboard_closed_form(n, w):
    b = windowed_alpha_bounds(images.checkerboard(n), w, dt=1e-5)
    assert b.alpha_min == pytest.approx(0.25 * (n - w + 1) ** 2 * w * w, rel=1e-10)
    assert b.alpha_max == pytest.approx(2e5, rel=1e-10)
    nb = windowed_alpha_bounds(images.checkerboard(n), w, dt=1e-2, momentum=0.5)
    assert nb.alpha_max == pytest.approx(4 / (2 * 1e-4), rel=1e-10)


def test_windowed_bounds_constant_image():
    """I = c: (K*I)(x) = c ΣK, so M = P c² 11⊤ with eigenvalues P c² w² and 0."""
    n, w, c = 30, 10, 0.7
    lo, hi = LinearisedCNN(np.full((n, n), c), w).spectrum()
    assert hi == pytest.approx((n - w + 1) ** 2 * c * c * w * w, rel=1e-10)
    assert lo == pytest.approx(0.0, abs=1e-8 * hi)


def test_windowed_lower_bound_never_exceeds_fourier():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((32, 32))
    f = bounds.alpha_bounds(image, 1e-3)
    for w in (2, 8, 16, 32):
        assert windowed_alpha_bounds(image, w, 1e-3).alpha_min <= f.alpha_min * (1 + 1e-12)


@pytest.mark.parametrize("momentum,dt", [(None, 1e-6), (0.9, 1e-3)])
def test_search_by_simulation_finds_exact_bounds(momentum, dt):
    image = images.checkerboard(32)
    exact = windowed_alpha_bounds(image, 6, dt, momentum=momentum)
    found = empirical_alpha_bounds(image, 6, dt, momentum=momentum, n_steps=400)
    assert found.alpha_min == pytest.approx(exact.alpha_min, rel=0.01)
    assert found.alpha_max == pytest.approx(exact.alpha_max, rel=0.01)


def test_search_on_random_image():
    """A spectrum without a closed form (and with small gaps): Lanczos and simulation still agree."""
    image = images.random_sign(24, seed=3)
    exact = windowed_alpha_bounds(image, 5, 1e-3)
    found = empirical_alpha_bounds(image, 5, 1e-3, n_steps=400)
    assert found.alpha_min == pytest.approx(exact.alpha_min, rel=0.01)
    assert found.alpha_max == pytest.approx(exact.alpha_max, rel=0.01)
