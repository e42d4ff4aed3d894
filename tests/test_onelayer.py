"""The linearised one-layer CNN of §5: operator, gradient (9), schemes (10) and (51)–(52), growth rate."""

import numpy as np
import pytest
from scipy.signal import correlate2d

from instab.pde import images
from instab.pde.onelayer import LinearisedCNN, damping, nesterov_coefficients


def dense_operator(image, w):
    """M = C⊤C built from scipy's direct correlation, column by column."""
    cols = []
    for e in np.eye(w * w):
        r = correlate2d(image, e.reshape(w, w), mode="valid")
        cols.append(correlate2d(image, r, mode="valid").ravel())
    return np.stack(cols, axis=1)


@pytest.fixture
def small():
    rng = np.random.default_rng(1)
    return rng.standard_normal((14, 14))


def test_operator_is_ctc_symmetric_psd(small):
    m = LinearisedCNN(small, 4)
    dense = dense_operator(small, 4)
    k = np.random.default_rng(2).standard_normal((4, 4))
    np.testing.assert_allclose(m.operator(k).ravel(), dense @ k.ravel(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dense, dense.T, atol=1e-9)
    assert np.linalg.eigvalsh(dense).min() > -1e-9


def test_gradient_is_gradient_of_the_linearised_loss(small):
    """(9): the gradient of (a/2)(<Ī_W, K> + β/2 ||K*I||²) + α/2 ||K||²."""
    a, beta, alpha, w = -0.5, 1.3, 2.0, 5
    m = LinearisedCNN(small, w, a, beta)

    def quad(k):
        response = correlate2d(small, k, mode="valid")
        linear = (a / 2) * (np.sum(m.i_bar_window * k) + beta / 2 * np.sum(response**2))
        return linear + alpha / 2 * np.sum(k * k)

    k = np.random.default_rng(3).standard_normal((w, w))
    g = m.gradient(k, alpha)
    h = 1e-6
    basis = [e.reshape(w, w) for e in np.eye(w * w)]
    fd = np.array([(quad(k + h * e) - quad(k - h * e)) / (2 * h) for e in basis])
    np.testing.assert_allclose(g.ravel(), fd, rtol=1e-6, atol=1e-6)


def test_linearisation_matches_network_loss_at_zero(small):
    """At K = 0 the gradient of loss (6) (y = 1) is (a/2) Ī_W with a = s(0) − 1 = −0.5: eq. (33)."""
    w = 3
    m = LinearisedCNN(small, w, a=-0.5, beta=1.0)
    assert m.network_loss(np.zeros((w, w)), alpha=0.0) == pytest.approx(np.log(2.0), rel=1e-12)
    h = 1e-6
    basis = [e.reshape(w, w) for e in np.eye(w * w)]
    fd = np.array([(m.network_loss(h * e, 0.0) - m.network_loss(-h * e, 0.0)) / (2 * h) for e in basis])
    np.testing.assert_allclose(m.gradient(np.zeros((w, w)), 0.0).ravel(), fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_schemes_keep_dtype(small, dtype):
    m = LinearisedCNN(small, 4, dtype=dtype)
    k = np.ones((4, 4), dtype=dtype)
    assert m.euler_step(k, 1.0, 1e-3).dtype == dtype
    assert m.nesterov_step(k, k, 1.0, 1e-2, 0.9).dtype == dtype
    run = m.run(k, 1.0, 1e-3, 5, momentum=0.9)
    assert run.kernel.dtype == dtype and np.all(np.isfinite(run.loss))


def test_nesterov_coefficients_and_damping():
    mu, eta = nesterov_coefficients(1e-4, 0.9)
    assert mu == 0.9 and eta == pytest.approx(9.5e-9, rel=1e-12)
    d = damping(1e-4, 0.9)
    assert (2 - d * 1e-4) / (2 + d * 1e-4) == pytest.approx(0.9, rel=1e-12)
    assert 2 * 1e-8 / (2 + d * 1e-4) == pytest.approx(eta, rel=1e-12)
    with pytest.raises(ValueError, match="momentum"):
        nesterov_coefficients(1e-4, 1.0)


def test_nesterov_with_zero_momentum_is_gradient_step(small):
    m = LinearisedCNN(small, 4)
    k = np.random.default_rng(4).standard_normal((4, 4))
    prev = np.random.default_rng(5).standard_normal((4, 4))
    _, eta = nesterov_coefficients(0.1, 0.0)
    np.testing.assert_allclose(m.nesterov_step(k, prev, 3.0, 0.1, 0.0), k - eta * m.gradient(k, 3.0))


def test_growth_rate_is_spectral_radius_on_checkerboard():
    """Checkerboard: M = P χχ⊤, eigenvalues P w² and 0; the scheme's amplifiers are known."""
    n, w, a, beta, dt = 32, 6, -0.5, 1.0, 1e-5
    m = LinearisedCNN(images.checkerboard(n), w, a, beta)
    lam = (n - w + 1) ** 2 * w * w
    for alpha in (0.5 * lam / 4, 2 * lam / 4, 1.7 / dt):
        z = np.array([alpha + 0.5 * a * beta * lam, alpha])
        rho = np.max(np.abs(1 - dt * z))
        assert m.growth_rate(alpha, dt, 300) == pytest.approx(rho, rel=1e-6)


def test_nesterov_growth_rate_is_largest_root():
    """Near either Nesterov bound the dominant roots of r² − (1+μ)q r + μq are real: the rate is |r|."""
    n, w, a, beta, dt, mu = 32, 6, -0.5, 1.0, 1e-3, 0.9
    m = LinearisedCNN(images.checkerboard(n), w, a, beta)
    lam = (n - w + 1) ** 2 * w * w
    _, eta = nesterov_coefficients(dt, mu)
    for alpha in (0.999 * lam / 4, 1.001 * lam / 4, 0.98 * 4 / ((1 + 2 * mu) * dt * dt),
                  1.02 * 4 / ((1 + 2 * mu) * dt * dt)):
        z = np.array([alpha + 0.5 * a * beta * lam, alpha])
        rho = max(np.max(np.abs(np.roots([1, -(1 + mu) * (1 - eta * zz), mu * (1 - eta * zz)]))) for zz in z)
        assert m.growth_rate(alpha, dt, 2000, momentum=mu) == pytest.approx(rho, rel=1e-4)


def test_run_overflows_when_unstable_and_converges_when_stable():
    n, w, dt = 32, 6, 1e-5
    m = LinearisedCNN(images.checkerboard(n), w, dtype=np.float32)
    lam = (n - w + 1) ** 2 * w * w
    k0 = np.random.default_rng(0).standard_normal((w, w))
    bad = m.run(k0, 2.5 / dt, dt, 400)
    good = m.run(k0, 0.5 * (lam / 4 + 2 / dt), dt, 400)
    assert not np.isfinite(bad.loss[-1])
    assert np.isfinite(good.loss[-1]) and good.norm[-1] < 1e-3 * good.norm[0]


def test_spectrum_lanczos_matches_dense():
    rng = np.random.default_rng(7)
    image = rng.standard_normal((24, 24))
    w = 9                                 # 81 > 64: the Lanczos path
    ev = np.linalg.eigvalsh(dense_operator(image, w))
    lo, hi = LinearisedCNN(image, w).spectrum()
    assert hi == pytest.approx(ev[-1], rel=1e-9)
    assert lo == pytest.approx(ev[0], rel=1e-6, abs=1e-6 * ev[-1])


def test_bad_parameters_named():
    with pytest.raises(ValueError, match="kernel_size"):
        LinearisedCNN(np.zeros((8, 8)), 9)
    with pytest.raises(ValueError, match="beta"):
        LinearisedCNN(np.zeros((8, 8)), 2, beta=0.0)
    with pytest.raises(ValueError, match="float16"):
        LinearisedCNN(np.zeros((8, 8)), 2, dtype=np.float16)
