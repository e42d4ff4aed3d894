import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from instab import bounds, stability


def _regression(n: int = 40, d: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Data of a linear least-squares problem and its exact Hessian eigenvalues (2/n) eig(XᵀX)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.3, 2.0, d, dtype=torch.float64)
    y = torch.randn(n, 1, generator=g, dtype=torch.float64)
    eig = np.linalg.eigvalsh(2.0 / n * (x.T @ x).numpy())
    return x, y, eig


def _linear(d: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(d, 1, bias=False).double()


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def test_multilayer_lr_bound():
    assert bounds.multilayer_lr_bound(100.0) == pytest.approx(0.02)
    assert bounds.multilayer_lr_bound(10.0, 30.0) == pytest.approx(0.05)
    np.testing.assert_allclose(bounds.multilayer_lr_bound([1.0, 2.0], [1.0, 0.0]), [1.0, 1.0])
    with pytest.raises(ValueError, match="alpha"):
        bounds.multilayer_lr_bound(0.0)


def test_lanczos_finds_the_exact_top_eigenvalue_of_a_quadratic():
    x, y, eig = _regression()
    lam = stability.top_hessian_eigenvalue(_linear(x.shape[1]), F.mse_loss, x, y, iters=10)
    assert lam == pytest.approx(eig[-1], rel=1e-10)


def test_hessian_vector_product_matches_finite_differences_and_lanczos_the_dense_spectrum():
    model = _mlp()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (16,), generator=g)
    op = stability.HessianOperator(model, F.cross_entropy, x, y)
    dense = np.stack([op(e) for e in np.eye(op.size)])
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    top, bottom = stability.lanczos_extremes(op, op.size, iters=op.size)
    eig = np.linalg.eigvalsh(dense)
    assert top == pytest.approx(eig[-1], rel=1e-8)
    assert bottom == pytest.approx(eig[0], rel=1e-6, abs=1e-10)
    v = np.random.default_rng(0).standard_normal(op.size)
    params = list(model.parameters())

    def grad_at(shift: float) -> np.ndarray:
        with torch.no_grad():
            i = 0
            for p in params:
                p.add_(torch.as_tensor(shift * v[i:i + p.numel()]).view_as(p))
                i += p.numel()
        gr = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        with torch.no_grad():
            i = 0
            for p in params:
                p.sub_(torch.as_tensor(shift * v[i:i + p.numel()]).view_as(p))
                i += p.numel()
        return np.concatenate([t.ravel().numpy() for t in gr])

    h = 1e-5
    np.testing.assert_allclose((grad_at(h) - grad_at(-h)) / (2 * h), dense @ v, rtol=1e-5, atol=1e-8)
    lam = stability.top_hessian_eigenvalue(model, F.cross_entropy, x, y, iters=op.size)
    assert lam == pytest.approx(eig[-1])


def test_gradient_descent_is_torch_sgd_with_weight_decay_bit_for_bit():
    x, y, _ = _regression()
    a, b = _linear(x.shape[1]), _linear(x.shape[1])
    stability.gradient_descent(a, F.mse_loss, x, y, lr=0.05, alpha=0.3, steps=7)
    opt = torch.optim.SGD(b.parameters(), lr=0.05, weight_decay=0.3, momentum=0.0, foreach=False)
    for _ in range(7):
        opt.zero_grad()
        F.mse_loss(b(x), y).backward()
        opt.step()
    assert torch.equal(a.weight, b.weight)


def test_divergence_criterion():
    c = stability.Divergence(norm_factor=10.0)
    assert c.check(1.0, 9.9, 1.0) == ""
    assert "weight norm" in c.check(1.0, 10.1, 1.0)
    assert c.check(math.nan, 1.0, 1.0) == "non-finite loss"
    assert c.check(math.inf, 1.0, 1.0) == "non-finite loss"
    assert c.resolution(100) == pytest.approx(math.log(10) / 200)
    with pytest.raises(ValueError, match="norm_factor"):
        stability.Divergence(norm_factor=1.0)


def test_bisection_on_a_known_threshold():
    for threshold, lo, hi in [(3.7, 1.0, 2.0), (3.7, 5.0, 6.0), (0.01, 1.0, 100.0)]:
        b = stability.max_stable_lr(lambda s, t=threshold: s > t, lo, hi, rtol=0.01)
        assert b.lr <= threshold < b.hi
        assert b.hi / b.lr <= 1.01
        assert all(d == (s > threshold) for s, d in b.trials)
    with pytest.raises(ValueError):
        stability.max_stable_lr(lambda s: s > 1, 2.0, 1.0)
    with pytest.raises(RuntimeError, match="no divergence"):
        stability.max_stable_lr(lambda s: False, 1.0, 2.0, max_expand=5)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 20.0])
def test_gd_threshold_of_a_quadratic_is_eq_64_exactly(alpha):
    """For a linear model the linearisation is exact: the threshold is 2/(α + λ₀) (eq. (64))."""
    x, y, eig = _regression()
    model = _linear(x.shape[1])
    w0 = model.weight.detach().clone()
    exact = bounds.multilayer_lr_bound(alpha, eig[-1])
    crit = stability.Divergence(norm_factor=10.0)
    steps = 200
    b = stability.max_stable_lr_gd(model, F.mse_loss, x, y, alpha=alpha, steps=steps, lo=0.5 * exact,
                                   hi=1.5 * exact, rtol=0.005, criterion=crit)
    assert torch.equal(model.weight, w0)  # restored
    assert exact * (1 - 0.005) <= b.lr <= exact * (1 + 0.005 + 2 * crit.resolution(steps))
    run = stability.gradient_descent(model, F.mse_loss, x, y, lr=1.05 * exact, alpha=alpha, steps=steps)
    assert run.diverged and run.steps < steps


def test_sharpness_trace_of_a_quadratic_is_constant():
    x, y, eig = _regression()
    tr = stability.sharpness_trace(_linear(x.shape[1]), F.mse_loss, x, y, lr=0.1, alpha=2.0, steps=20,
                                   every=5, iters=8)
    np.testing.assert_array_equal(tr.steps, [0, 5, 10, 15, 20])
    np.testing.assert_allclose(tr.sharpness, eig[-1] + 2.0, rtol=1e-9)
    assert tr.threshold == pytest.approx(20.0)
    assert not tr.run.diverged and tr.run.loss.size == 21


def test_hessian_leaves_batchnorm_statistics_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stability.top_hessian_eigenvalue(model, F.cross_entropy, x, y, iters=5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_lanczos_top_residual_bounds_the_error():
    """A symmetric matrix with a known spectrum: the top Ritz value is within its residual of the
    top eigenvalue; too few iterations show a large residual (the check can fail)."""
    import numpy as np

    from instab.stability import lanczos_extremes, lanczos_top
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    eig = np.linspace(-1.0, 1.0, 200)
    eig[-1] = 5.0
    a = (q * eig) @ q.T
    good = lanczos_top(lambda v: a @ v, 200, iters=40)
    assert abs(good.value - 5.0) <= good.residual + 1e-9 and good.relative_residual < 1e-6
    assert good.value == lanczos_extremes(lambda v: a @ v, 200, iters=40)[0]
    eig[-2] = 4.99  # a near-degenerate top pair converges slowly: 3 steps are not enough
    a = (q * eig) @ q.T
    poor = lanczos_top(lambda v: a @ v, 200, iters=3)
    assert poor.relative_residual > 1e-3
