"""Stability thresholds of gradient descent on a network: divergence, bisection, sharpness.

Paper App. E linearises gradient descent with weight decay α on any network, eq. (62),
``∂_t K = −∇_K ℓ − αK``, and finds the amplifier ``A = 1 − Δt (α + F̂)`` (63), hence the step
restriction ``Δt < min 2 / (α + F̂)`` (64) and, for large α, ``Δt < 2/α`` (65).  In the
linearisation F̂ runs over the eigenvalues of the data-loss Hessian, so (64) reads
``Δt < 2 / (α + λ₀)`` with λ₀ the top Hessian eigenvalue (the *sharpness* of the data loss).

This module measures the quantities the bound speaks of, for any ``nn.Module`` and loss:

- :func:`gradient_descent` — plain full-batch gradient descent with weight decay (no momentum),
  ``w ← w − Δt (∇L(w) + α w)`` (the explicit Euler step of (62)), with the divergence criterion
  :class:`Divergence` checked at every step;
- :func:`max_stable_lr` — bisection (in log Δt) for the largest step that does not diverge;
- :func:`top_hessian_eigenvalue` — λ₀ by Lanczos on Hessian-vector products;
- :func:`sharpness_trace` — λ₀(w_t) + α along a run, against the linear threshold 2/Δt.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from torch import nn

from instab import numerics

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------------------------------------
# Divergence criterion and gradient descent
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Divergence:
    """When a run counts as diverged: the loss is not finite, or the weight norm has grown to more
    than ``norm_factor`` times its initial value.

    Just above the threshold of (64) the unstable mode grows like ``|A|^t`` with ``|A| = 1 + 2δ``
    for a step ``(1 + δ)`` times the threshold, so a budget of ``steps`` resolves the threshold to
    about ``δ ≈ ln(norm_factor) / (2 steps)`` (:meth:`resolution`).
    """

    norm_factor: float = 10.0

    def __post_init__(self) -> None:
        if not self.norm_factor > 1:
            raise ValueError(f"norm_factor={self.norm_factor!r} is not allowed; it must be > 1")

    def check(self, loss: float, norm: float, norm0: float) -> str:
        """The reason the run diverged (``""`` if it did not)."""
        if not math.isfinite(loss) or not math.isfinite(norm):
            return "non-finite loss"
        if norm > self.norm_factor * norm0:
            return f"weight norm > {self.norm_factor:g} × initial"
        return ""

    def resolution(self, steps: int) -> float:
        """Relative step excess that grows the weights ``norm_factor``-fold within ``steps`` steps."""
        return math.log(self.norm_factor) / (2.0 * steps)


@dataclass
class GDRun:
    """A gradient-descent run: losses and weight norms before each step, and whether it diverged."""

    lr: float
    alpha: float
    diverged: bool
    reason: str
    steps: int
    loss: np.ndarray
    weight_norm: np.ndarray


def weight_norm(model: nn.Module) -> float:
    """Euclidean norm of all trainable parameters together."""
    with torch.no_grad():
        # sum() of tensors is a tensor (its int start 0 only matters for a model with no trainable parameter)
        return float(torch.sqrt(cast(torch.Tensor,
                                     sum((p.double() ** 2).sum() for p in model.parameters() if p.requires_grad))))


def parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of ``model``, in order."""
    return [p for p in model.parameters() if p.requires_grad]


def gradient_descent(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *, lr: float,
                     alpha: float, steps: int, criterion: Divergence = Divergence(),
                     callback: Callable[[int, nn.Module], None] | None = None) -> GDRun:
    """Run ``steps`` steps of full-batch gradient descent on ``loss_fn(model(x), y)`` with weight
    decay ``alpha`` on every parameter, in place, stopping as soon as ``criterion`` says diverged.

    The step is ``w ← w − lr (∇L(w) + α w)`` — torch's SGD without momentum, and the forward-Euler
    discretisation of the linearised PDE (62) whose amplifier is (63).  ``callback(t, model)`` is
    called before step ``t`` (and after the last one, with ``t = steps``).
    """
    if not lr > 0:
        raise ValueError(f"lr={lr!r} is not allowed; it must be positive")
    if not alpha >= 0:
        raise ValueError(f"alpha={alpha!r} is not allowed; it must be >= 0")
    params = parameters(model)
    norm0 = weight_norm(model)
    losses, norms = [], []
    reason = ""
    t = 0
    for t in range(steps + 1):
        if callback is not None:
            callback(t, model)
        loss = loss_fn(model(x), y)
        lv, nv = float(loss.detach()), weight_norm(model)
        losses.append(lv)
        norms.append(nv)
        reason = criterion.check(lv, nv, norm0)
        if reason or t == steps:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.add_(g.add(p, alpha=alpha), alpha=-lr)
    return GDRun(lr=lr, alpha=alpha, diverged=bool(reason), reason=reason, steps=t,
                 loss=np.asarray(losses), weight_norm=np.asarray(norms))


# ------------------------------------------------------------------------------------------------
# Bisection
# ------------------------------------------------------------------------------------------------
@dataclass
class Bisection:
    """Result of :func:`max_stable_lr`: ``lr`` is the largest step tried that did not diverge,
    ``hi`` the smallest that did (``hi / lr ≤ 1 + rtol``); ``trials`` lists every (step, diverged)."""

    lr: float
    hi: float
    trials: list[tuple[float, bool]] = field(default_factory=list)


def max_stable_lr(diverges: Callable[[float], bool], lo: float, hi: float, *, rtol: float = 0.01,
                  max_expand: int = 30) -> Bisection:
    """Bisection in log-step for the largest step at which ``diverges(step)`` is False.

    ``lo`` and ``hi`` are first guesses: ``hi`` is doubled until it diverges and ``lo`` halved until
    it does not, then the bracket is halved geometrically until ``hi / lo ≤ 1 + rtol``.  Assumes one
    threshold (no divergence below a stable step), which is what the bound (64) predicts.
    """
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi, got lo={lo!r}, hi={hi!r}")
    try:
        b = numerics.bisect(lambda step: not diverges(step), lo, hi, rtol=rtol, geometric=True, expand=max_expand)
    except RuntimeError as e:  # the bracket could not be widened: say it in this module's words
        where = str(e).rsplit(" ", 1)[-1]
        raise RuntimeError(f"no divergence up to step {where}" if "holds" in str(e)
                           else f"divergence down to step {where}") from None
    return Bisection(lr=b.lo, hi=b.hi, trials=[(step, not stable) for step, stable in b.trials])


def max_stable_lr_gd(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *, alpha: float,
                     steps: int, lo: float, hi: float, rtol: float = 0.01,
                     criterion: Divergence = Divergence()) -> Bisection:
    """The largest learning rate at which :func:`gradient_descent` from ``model``'s current weights
    does not diverge within ``steps`` steps (every trial restarts from the same weights)."""
    state = copy.deepcopy(model.state_dict())

    def diverges(lr: float) -> bool:
        model.load_state_dict(state)
        return gradient_descent(model, loss_fn, x, y, lr=lr, alpha=alpha, steps=steps,
                                criterion=criterion).diverged

    try:
        return max_stable_lr(diverges, lo, hi, rtol=rtol)
    finally:
        model.load_state_dict(state)


# ------------------------------------------------------------------------------------------------
# Hessian top eigenvalue
# ------------------------------------------------------------------------------------------------
class HessianOperator:
    """v ↦ ∇²L(w) v for ``L = loss_fn(model(x), y)`` at the model's current weights (flattened).

    The gradient graph is built once; each product is one extra backward pass (Pearlmutter's trick
    by double backward).  Vectors are float64 NumPy arrays.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor):
        self.params = parameters(model)
        self.size = sum(p.numel() for p in self.params)
        loss = loss_fn(model(x), y)
        self.grads = torch.autograd.grad(loss, self.params, create_graph=True)
        self.calls = 0

    def __call__(self, v: np.ndarray) -> np.ndarray:
        vs, i = [], 0
        for p in self.params:
            vs.append(torch.as_tensor(v[i:i + p.numel()], dtype=p.dtype, device=p.device).view_as(p))
            i += p.numel()
        dot = cast(torch.Tensor, sum((g * u).sum() for g, u in zip(self.grads, vs, strict=True)))
        hv: Sequence[torch.Tensor] = torch.autograd.grad(dot, self.params, retain_graph=True, allow_unused=True)
        self.calls += 1
        hv = [h if h is not None else torch.zeros_like(p) for h, p in zip(hv, self.params, strict=True)]
        return np.concatenate([h.detach().double().cpu().ravel().numpy() for h in hv])


def _lanczos(matvec: Callable[[np.ndarray], np.ndarray], size: int, iters: int,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Lanczos with full reorthogonalisation from a seeded Gaussian start: the tridiagonal matrix T
    and the Lanczos basis (rows)."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(size)
    q /= np.linalg.norm(q)
    basis = [q]
    a_diag: list[float] = []
    b_off: list[float] = []
    for j in range(min(iters, size)):
        w = matvec(basis[j])
        a = float(basis[j] @ w)
        a_diag.append(a)
        Q = np.stack(basis)
        for _ in range(2):  # full reorthogonalisation, twice is enough
            w = w - Q.T @ (Q @ w)
        b = float(np.linalg.norm(w))
        if b < 1e-10 * max(1.0, abs(a)) or j == min(iters, size) - 1:
            break
        b_off.append(b)
        basis.append(w / b)
    T = np.diag(a_diag) + np.diag(b_off[:len(a_diag) - 1], 1) + np.diag(b_off[:len(a_diag) - 1], -1)
    return T, np.stack(basis[:len(a_diag)])


def lanczos_extremes(matvec: Callable[[np.ndarray], np.ndarray], size: int, *, iters: int = 30,
                     seed: int = 0) -> tuple[float, float]:
    """(largest, smallest) Ritz value after ``iters`` Lanczos steps with full reorthogonalisation,
    from a seeded Gaussian start vector (deterministic)."""
    ritz = np.linalg.eigvalsh(_lanczos(matvec, size, iters, seed)[0])
    return float(ritz[-1]), float(ritz[0])


@dataclass
class RitzPair:
    """The top Ritz value θ of a Lanczos run and the residual ‖A y − θ y‖ of its unit Ritz vector y:
    A has an eigenvalue within ``residual`` of θ (for symmetric A)."""

    value: float
    residual: float
    iters: int

    @property
    def relative_residual(self) -> float:
        return self.residual / abs(self.value) if self.value else math.inf


def lanczos_top(matvec: Callable[[np.ndarray], np.ndarray], size: int, *, iters: int = 30,
                seed: int = 0) -> RitzPair:
    """The largest Ritz value with its residual, checked with one more product ``matvec(y)``."""
    T, basis = _lanczos(matvec, size, iters, seed)
    top = float(np.linalg.eigvalsh(T)[-1])  # the value lanczos_extremes gives
    y = basis.T @ np.linalg.eigh(T)[1][:, -1]
    y /= np.linalg.norm(y)
    residual = float(np.linalg.norm(matvec(y) - top * y))
    return RitzPair(top, residual, len(T))


def top_hessian_eigenvalue(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *,
                           iters: int = 30, seed: int = 0) -> float:
    """λ₀, the largest eigenvalue of the data-loss Hessian ∇²L(w) at the model's current weights
    (Lanczos on Hessian-vector products).  In (64), ``2/(α + λ₀)`` is the linear step limit.

    A network with BatchNorm is evaluated in its current mode (train mode: batch statistics, the
    loss gradient descent sees); its running statistics are left as they were.
    """
    with _hessian_of(model, loss_fn, x, y) as op:
        top, _ = lanczos_extremes(op, op.size, iters=iters, seed=seed)
    return top


def top_hessian_eigenpair(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *,
                          iters: int = 30, seed: int = 0) -> RitzPair:
    """:func:`top_hessian_eigenvalue` with its residual check (:func:`lanczos_top`): the Hessian
    has an eigenvalue within ``residual`` of ``value``."""
    with _hessian_of(model, loss_fn, x, y) as op:
        return lanczos_top(op, op.size, iters=iters, seed=seed)


@contextlib.contextmanager
def _hessian_of(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> Iterator[HessianOperator]:
    """The :class:`HessianOperator` at the model's weights; its buffers (BatchNorm running
    statistics, moved by the forward pass in train mode) are put back afterwards."""
    names = dict(model.named_parameters())
    buffers = copy.deepcopy({k: v for k, v in model.state_dict().items() if k not in names})
    try:
        yield HessianOperator(model, loss_fn, x, y)
    finally:
        model.load_state_dict(buffers, strict=False)


# ------------------------------------------------------------------------------------------------
# Sharpness along a run
# ------------------------------------------------------------------------------------------------
@dataclass
class SharpnessTrace:
    """Sharpness ``λ₀(w_t) + α`` at the recorded steps of a gradient-descent run, with the run."""

    lr: float
    alpha: float
    steps: np.ndarray
    sharpness: np.ndarray
    run: GDRun

    @property
    def threshold(self) -> float:
        """The linear stability threshold on the sharpness, 2/Δt (eq. (64))."""
        return 2.0 / self.lr


def sharpness_trace(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *, lr: float,
                    alpha: float, steps: int, every: int | Sequence[int] = 10, iters: int = 20, seed: int = 0,
                    criterion: Divergence = Divergence()) -> SharpnessTrace:
    """Run :func:`gradient_descent` and record the sharpness λ₀(w_t) + α every ``every`` steps
    (or at the listed steps).  Below the linear threshold (λ₀ + α < 2/Δt) every mode is attenuated;
    above it the linearisation predicts divergence."""
    at = set(range(0, steps + 1, every)) if isinstance(every, int) else set(every)
    rec_steps: list[int] = []
    rec_sharp: list[float] = []

    def cb(t: int, m: nn.Module) -> None:
        if t in at:
            rec_steps.append(t)
            rec_sharp.append(top_hessian_eigenvalue(m, loss_fn, x, y, iters=iters, seed=seed) + alpha)

    run = gradient_descent(model, loss_fn, x, y, lr=lr, alpha=alpha, steps=steps, criterion=criterion,
                           callback=cb)
    return SharpnessTrace(lr=lr, alpha=alpha, steps=np.asarray(rec_steps), sharpness=np.asarray(rec_sharp),
                          run=run)


# ------------------------------------------------------------------------------------------------
# The Hessian in torch (on torch's threads: NumPy's BLAS would take every core)
# ------------------------------------------------------------------------------------------------
def hessian_product(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> tuple[
        Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """(v ↦ ∇²L v, ∇L) for L = ``loss_fn(model(x), y)`` at the model's weights, flat float64 torch
    vectors (Pearlmutter's double backward; the gradient graph built once)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model(x), y), params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(flat @ v.to(flat.dtype), params, retain_graph=True, allow_unused=True)
        return torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1)
                          for h, p in zip(hv, params, strict=True)]).double()

    return hvp, flat.detach().double()


@dataclass
class Spectrum:
    """The extremes of a Lanczos run: the top Ritz pair (value and residual), the bottom Ritz value
    (λ_min ≥ it, up to the residual of its own pair) and the top unit Ritz vector (a warm start for
    the next estimate along a run)."""

    top: RitzPair
    bottom: float
    vector: torch.Tensor


def lanczos_torch(matvec: Callable[[torch.Tensor], torch.Tensor], size: int, *, iters: int = 20,
                  seed: int = 0, start: torch.Tensor | None = None) -> Spectrum:
    """``iters`` Lanczos steps with full reorthogonalisation in float64 torch, from ``start`` (a warm
    start, e.g. the previous top Ritz vector) or a seeded Gaussian vector: the top Ritz value with
    its residual ‖A y − θ y‖, the bottom Ritz value and the top Ritz vector (the same algorithm as
    :func:`lanczos_top`; the tests check both agree with ``scipy.sparse.linalg.eigsh``)."""
    n_max = min(iters, size)
    basis = torch.zeros(n_max, size, dtype=torch.float64)
    if start is None:
        q = torch.randn(size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    else:
        q = start.to(torch.float64).clone()
    basis[0] = q / q.norm()
    a_diag: list[float] = []
    b_off: list[float] = []
    for j in range(n_max):
        w = matvec(basis[j])
        a = float(basis[j] @ w)
        a_diag.append(a)
        q_j = basis[:j + 1]
        for _ in range(2):
            w = w - q_j.T @ (q_j @ w)
        b = float(w.norm())
        if b < 1e-10 * max(1.0, abs(a)) or j == n_max - 1:
            break
        b_off.append(b)
        basis[j + 1] = w / b
    n = len(a_diag)
    t = torch.diag(torch.tensor(a_diag, dtype=torch.float64))
    if n > 1:
        off = torch.tensor(b_off[:n - 1], dtype=torch.float64)
        t += torch.diag(off, 1) + torch.diag(off, -1)
    if not bool(torch.isfinite(t).all()):  # a diverged network: no spectrum to report
        return Spectrum(RitzPair(math.nan, math.nan, n), math.nan, basis[0])
    evals, evecs = torch.linalg.eigh(t)
    top = float(evals[-1])
    y = basis[:n].T @ evecs[:, -1]
    y = y / y.norm()
    return Spectrum(RitzPair(top, float((matvec(y) - top * y).norm()), n), float(evals[0]), y)


def hessian_spectrum(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *, iters: int = 20,
                     seed: int = 0, start: torch.Tensor | None = None) -> Spectrum:
    """The extremes of the Hessian of L = ``loss_fn(model(x), y)`` at the model's weights
    (:func:`lanczos_torch` on :func:`hessian_product`)."""
    hvp, g = hessian_product(model, loss_fn, x, y)
    return lanczos_torch(hvp, g.numel(), iters=iters, seed=seed, start=start)


def top_eigenpair(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *, iters: int = 20,
                  seed: int = 0) -> RitzPair:
    """λ, the top Hessian eigenvalue of L = ``loss_fn(model(x), y)`` at the model's weights, with
    its residual (the top of :func:`hessian_spectrum`)."""
    return hessian_spectrum(model, loss_fn, x, y, iters=iters, seed=seed).top


def batch_sharpness(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                    batches: int) -> float:
    """The mean over the first ``batches`` minibatches of (x, y) of gᵀ H g / gᵀ g, with g and H the
    minibatch's own gradient and Hessian (the batch sharpness of Andreyev and Beneventano)."""
    vals = []
    for j in range(batches):
        xb, yb = x[j * batch_size:(j + 1) * batch_size], y[j * batch_size:(j + 1) * batch_size]
        if len(yb) == 0:
            break
        hvp, g = hessian_product(model, loss_fn, xb, yb)
        gg = float(g @ g)
        vals.append(float(g @ hvp(g)) / gg if gg > 0 else math.nan)
    return float(np.mean(vals)) if vals else math.nan


def momentum_limit(curvature: float, *, momentum: float, weight_decay: float) -> float:
    """2(1+μ)/(λ + α): the largest stable step of heavy-ball gradient descent with momentum μ and
    weight decay α on curvature λ (∞ where λ + α ≤ 0)."""
    denom = curvature + weight_decay
    return math.inf if denom <= 0 else 2.0 * (1.0 + momentum) / denom


def stability_ratio(lr: Sequence[float], curvature: Sequence[float], *, momentum: float,
                    weight_decay: float) -> np.ndarray:
    """η(λ + α)/(2(1 + μ)): the step over the linear stability limit of heavy-ball SGD on curvature
    λ (:func:`momentum_limit`); 1 is the edge."""
    return np.asarray(lr, float) * (np.asarray(curvature, float) + weight_decay) / (2 * (1 + momentum))
