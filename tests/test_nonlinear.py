import numpy as np
import pytest

from instab import bounds
from instab.pde import nonlinear as nl
from instab.pde import sigma_map as sm


def small_net(pooling="mean", dtype=np.float64, image=None, **kw):
    # α = 1.25 with an 8×8 kernel keeps the ratio w²β/(4α) of §5.4's 32×32 kernel and α = 20
    args = dict(alpha=1.25, beta=1.0, y=1, pooling=pooling, dtype=dtype) | kw
    if image is None:
        return nl.NonlinearCNN.checkerboard(40, 8, **args)
    return nl.NonlinearCNN(image, 8, **args)


@pytest.mark.parametrize("pooling", nl.POOLINGS)
def test_gradient_matches_finite_differences(pooling):
    """∇L of (25), windowed as in (8), is the derivative of loss (6) — on a random image."""
    rng = np.random.default_rng(1)
    net = small_net(pooling, image=rng.standard_normal((20, 20)))
    scale = 0.05 if pooling == "sum" else 0.5      # keep ŷ away from 0 and 1 so ℓ has slope
    K = scale * rng.standard_normal((8, 8))
    grad = net.gradient(K)
    h = 1e-6
    for z in [(0, 0), (3, 5), (7, 7)]:
        e = np.zeros_like(K)
        e[z] = h
        fd = (net.loss(K + e) - net.loss(K - e)) / (2 * h)
        assert grad[z] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_swish_derivatives():
    v = np.linspace(-6, 6, 101)
    h = 1e-6
    fd1 = (nl.swish(v + h, 1.3) - nl.swish(v - h, 1.3)) / (2 * h)
    fd2 = (nl.swish_prime(v + h, 1.3) - nl.swish_prime(v - h, 1.3)) / (2 * h)
    np.testing.assert_allclose(nl.swish_prime(v, 1.3), fd1, atol=1e-8)
    np.testing.assert_allclose(nl.swish_second(v, 1.3), fd2, atol=1e-7)
    assert nl.swish_prime(0.0, 2.0) == 0.5 and nl.swish_second(0.0, 2.0) == pytest.approx(1.0)  # r''(0) = β/2
    np.testing.assert_allclose(nl.swish_prime(-v, 1.0), 1 - nl.swish_prime(v, 1.0), atol=1e-15)


def test_checkerboard_response_is_sigma_times_image():
    net = small_net()
    K = net.initial_kernel(3)
    v = net.response(K)
    s = net.sigma(K)
    np.testing.assert_allclose(v, s * net.corr.image[:33, :33], rtol=0, atol=1e-12)


def test_loss_is_stable_when_yhat_rounds_to_one():
    """A logit of ~1e6 makes ŷ = 1.0 in floating point: the softplus loss stays finite, no NaN."""
    net = small_net("sum", np.float32)
    K = 100 * net.initial_kernel(0)
    g = float(net.logit(net.response(K)))
    assert g > 1e4
    assert np.isfinite(net.loss(K)) and np.all(np.isfinite(net.gradient(K)))
    assert net.cross_entropy(-1e6) == pytest.approx(1e6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_perturbed_update(dtype):
    """k a power of two changes no bit (§4.1); odd k changes only the last bits, in both forms."""
    net = small_net(dtype=dtype)
    K = net.initial_kernel(0)
    base = net.step(K, 0.4)     # a large step αΔt = 0.5, so that its last bits reach K's
    for form in nl.FORMS:
        assert np.array_equal(net.step(K, 0.4, 2, form), base)
        assert np.array_equal(net.step(K, 0.4, 4, form), base)
        pert = net.step(K, 0.4, 3, form)
        assert pert.dtype == dtype
        assert 0 < nl.rel_l1(base, pert) < 50 * np.finfo(dtype).eps
    with pytest.raises(ValueError, match="form"):
        net.step(K, 0.07, 3, "other")


def test_rel_l1():
    assert nl.rel_l1([1.0, 0.0], [1.0, 0.0]) == 0.0
    assert nl.rel_l1([1.0, -1.0], [-1.0, 1.0]) == 2.0            # the bound
    assert nl.rel_l1([1.0, 0.0], [3.0, 0.0]) == pytest.approx(0.5)  # (2/2)·(2/4)
    assert np.isnan(nl.rel_l1([1.0, np.inf], [1.0, 1.0]))
    with pytest.raises(ValueError, match="shapes"):
        nl.rel_l1([1.0], [1.0, 2.0])


def test_scheme_reduces_to_the_sigma_map():
    """(8) on the checkerboard is (★) for σ plus K⊥ ← (1 − αΔt) K⊥ — to rounding error."""
    net = small_net()
    m = sm.sigma_map(net)
    K0 = net.initial_kernel(2)
    for dt in (0.5 * m.convergence_threshold(), 0.7 * m.blowup_threshold()):
        run = nl.simulate(net, K0, dt, 25)
        orb = m.orbit(net.sigma(K0), dt, 25)
        np.testing.assert_allclose(run.sigma[:15], orb[:15], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(run.perp[10] / run.perp[0], abs(1 - net.alpha * dt) ** 10, rtol=1e-9)
    assert np.all(np.abs(run.shares.sum(axis=1) - 1) < 1e-12)


def test_sigma_map_fixed_point_and_thresholds():
    for m in (sm.SigmaMap(40, 8, alpha=1.25), sm.SigmaMap(pooling="sum")):
        for sign in (1, -1):
            s = m.fixed_point(sign)
            assert np.sign(s) == sign
            assert m(s, 0.013) == pytest.approx(s, rel=1e-10)   # a fixed point for every Δt
            dtc = m.convergence_threshold(sign)
            assert m.derivative(s, dtc) == pytest.approx(-1.0, abs=1e-9)  # period doubling
            h = 1e-6 * abs(s)
            fd = (m(s + h, 0.02) - m(s - h, 0.02)) / (2 * h)
            assert m.derivative(s, 0.02) == pytest.approx(fd, rel=1e-5)
            assert sum(m.curvature_terms(s).values()) == pytest.approx(float(m.curvature(s)))
        assert m.blowup_threshold() == 2 / m.alpha
    weak = sm.SigmaMap(40, 8, alpha=20.0)           # α > w²β/4: σ ≈ 0 attracts and is the fixed point
    assert abs(weak.fixed_point()) < 1e-2 and weak.curvature(weak.fixed_point()) > 0


def test_paper_thresholds_need_mean_pooling():
    """§5.4 reports blow-up above Δt = 0.1 and convergence below 0.03 (α = 20, 256², 32²)."""
    mean, total = sm.SigmaMap(pooling="mean"), sm.SigmaMap(pooling="sum")
    assert mean.blowup_threshold() == pytest.approx(0.1)
    assert 0.032 < mean.convergence_threshold() < 0.0325
    assert 0.0035 < total.convergence_threshold() < 0.0036
    assert mean.curvature(0.0) == pytest.approx(20.0 - 32 * 32 / 4, abs=1e-2)   # σ = 0 repels


def test_lyapunov_and_classification():
    m = sm.SigmaMap()
    lam = m.lyapunov(-60.0, [0.02, 0.04, 0.07, 0.09], 500, 1000)
    assert lam[0] < 0 and lam[1] < 0 and lam[2] > 0.5 and lam[3] > 0.3
    assert m.full_lyapunov(-60.0, [0.2], 10, 10)[0] > 0
    assert m.classify(0.02, -60.0, 500, 500) == "converges"
    assert m.classify(0.04, -60.0, 500, 500) == "periodic"
    assert m.classify(0.07, -60.0, 500, 500) == "chaotic"
    assert m.classify(0.11, -60.0, 500, 500) == "blows up"
    dts = np.linspace(0.02, 0.11, 451)
    show = sm.showcase_dts(m, dts, m.full_lyapunov(-60.0, dts, 500, 500), -1)
    assert show["converges"] < 0.0323 < show["period-2"] < show["chaotic"] < 0.1 < show["blows up"]
    assert m.classify(show["chaotic"], -60.0, 500, 500) == "chaotic"


def test_training_blows_up_above_two_over_alpha():
    net = small_net(dtype=np.float32)
    K0 = net.initial_kernel(0)
    up = nl.simulate(net, K0, 1.2 * sm.sigma_map(net).blowup_threshold(), 300, stop_above=1e30)
    assert up.blew_up_at is not None and up.loss[-1] == np.inf
    down = nl.simulate(net, K0, 0.5 * sm.sigma_map(net).convergence_threshold(-1), 100, k=3)
    assert down.blew_up_at is None and down.change[-1] < 1e-6
    assert np.nanmax(down.rel_l1) < 1e-4


def test_measured_thresholds_on_a_small_problem():
    net = small_net()
    m = sm.sigma_map(net)
    K0 = net.initial_kernel(0)
    b, _ = sm.measured_blowup_threshold(net, K0, 0.5 * m.blowup_threshold(), 1.5 * m.blowup_threshold(), 150,
                                        rtol=1e-2)
    assert b == pytest.approx(m.blowup_threshold(), rel=0.02)
    c = m.convergence_threshold(int(np.sign(net.sigma(K0))))
    meas, _ = sm.measured_convergence_threshold(net, K0, 0.75 * c, 1.5 * c, 300, rtol=1e-2)
    assert meas == pytest.approx(c, rel=0.03)


def test_growth_summary():
    rl = np.r_[0.0, 1e-8, 1e-8 * np.exp(0.5 * np.arange(1, 40)), np.full(40, 1.5)]
    rl = np.minimum(rl, 1.5)
    g = nl.error_growth(rl)
    assert g.first == 1e-8 and g.peak == 1.5 and g.plateau == 1.5
    assert g.rate == pytest.approx(0.5, rel=1e-6)
    assert g.decades == pytest.approx(np.log10(1.5e8))
    assert nl.error_growth(np.zeros(10)).decades == 0.0


def test_table3_bounds_for_the_checkerboard():
    image = nl._checkerboard(256)
    power = np.abs(np.fft.fft2(image)) ** 2
    kw = dict(Ibar=float(image.sum()), a=-0.5, beta=1.0, ihat2_min=float(power.min()),
              ihat2_max=float(power.max()))
    b = bounds.table3_alpha_bounds(1e-8, **kw)
    assert b["transitioning"][0] == pytest.approx(1.07e9, rel=0.01)      # Table 2's α_min, theory
    assert b["activated"][1] == b["not activated"][1] == pytest.approx(2e8)
    dt = bounds.table3_max_dt(20.0, **kw)
    assert dt == {"activated": pytest.approx(0.1), "transitioning": 0.0, "not activated": pytest.approx(0.1)}
    assert bounds.table3_max_dt(20.0, **(kw | dict(Ibar=4.0)))["activated"] == pytest.approx(2 / 22)


@pytest.mark.parametrize("bad", [dict(pooling="max"), dict(alpha=0.0), dict(y=0.5), dict(kernel_size=0)])
def test_bad_input_is_named(bad):
    args = dict(image=nl._checkerboard(16), kernel_size=4, alpha=1.0) | bad
    with pytest.raises(ValueError, match=list(bad)[0]):
        nl.NonlinearCNN(**args)


@pytest.mark.parametrize("bad", [dict(dt=0.0), dict(n_iter=-1), dict(k=1), dict(form="x")])
def test_bad_train_input_is_named(bad):
    net = small_net()
    args = dict(net=net, K0=net.initial_kernel(0), dt=0.01, n_iter=3) | bad
    with pytest.raises(ValueError, match=list(bad)[0]):
        nl.simulate(**args)
