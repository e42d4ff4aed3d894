"""The one-layer CNN of §5, linearised around K = 0: scheme (10) and the Nesterov scheme (51)–(52).

Network (5): ``f(I) = s(Σ_x r(K ∗ I)(x))`` with r = Swish(β), s = sigmoid; loss (6): cross-entropy
plus (α/2)‖K‖²; the kernel K lives in a w×w window W (8).  The linearisation (9) around K = 0,

    ∂_t K = [ −(a/2) (Ī + β [(K ∗ I) ∗ I]) − α K ] · W,      a = ŷ − y,

is the gradient flow of the quadratic ``(a/2)(⟨Ī_W, K⟩ + (β/2)‖K ∗ I‖²) + (α/2)‖K‖²``.  Conventions
(the ones that reproduce the paper's Tables 2 and 6):

- ``∗`` is *valid* cross-correlation, ``(K ∗ I)(x) = Σ_z K(z) I(x + z)`` over the (N−w+1)² positions
  where the kernel fits (:class:`instab.pde.correlate.Correlator`);
- ``[(K ∗ I) ∗ I](z) = Σ_x (K ∗ I)(x) I(x + z)`` — a **sum** over positions (not a mean), restricted
  to the w×w window by construction; so the windowed operator ``M K = [(K ∗ I) ∗ I]·W`` is C⊤C
  with C the valid correlation, symmetric positive semi-definite on the w² kernel entries;
- the constant term: the paper's Ī (the image's sum, the w → ∞ limit) is, for a w×w window and
  valid positions, the exact ``Ī_W(z) = [1 ∗ I](z) = Σ_x I(x + z)`` over the valid x — what
  ``r'(0)·[1 ∗ I]`` is in the exact gradient.  We use Ī_W, so that (9) is the first-order (a held fixed)
  expansion of the windowed gradient of loss (6); it does not enter any stability bound;
- a = −0.5 (ŷ = s(0) = ½ with label y = 1), β = 1.

For the pixel checkerboard, ``C K = (−1)^x ⟨K, χ⟩`` with χ(z) = (−1)^(z₁+z₂), so M = P·χχ⊤ with
P = (N−w+1)²: rank one, eigenvalues P·w² and 0 — the closed form behind Table 2's windowed α_min.

The exact stability interval of a windowed scheme, from its operator's extreme eigenvalues
(:func:`windowed_alpha_bounds`), and the same interval found by simulation (:func:`empirical_alpha_bounds`)
are the schemes' own tools; the formulas they evaluate ((13), (38)–(41), (59)–(61)) are in
:mod:`instab.bounds`, which knows nothing of the schemes.

Arithmetic is in float32 or float64 (the dtype of the :class:`LinearisedCNN`), by FFT: one gradient
costs four real FFTs of the image's size (about a millisecond for 256×256), against tens of
milliseconds for ``conv2d`` + autograd (``benchmarks/onelayer_fft.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special
from scipy.optimize import brentq
from scipy.sparse.linalg import LinearOperator, eigsh

from instab.bounds import AlphaBounds, alpha_interval, z_limit
from instab.pde.correlate import Correlator


def nesterov_coefficients(dt: float, momentum: float) -> tuple[float, float]:
    """(μ, η) of the semi-implicit scheme (51)–(52) for time step Δt and momentum coefficient μ.

    (51)–(52) read ``V = K^n + μ (K^n − K^{n−1})``, ``K^{n+1} = V − η ∇L(V)`` with
    ``μ = (2 − dΔt)/(2 + dΔt)`` and ``η = 2Δt²/(2 + dΔt)``.  Eliminating the damping d,
    ``2/(2 + dΔt) = (1 + μ)/2``, so ``η = (1 + μ) Δt² / 2`` (App. D: μ = 0.9, Δt = 1e-4 → η = 9.5e-9).
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum={momentum!r} is not allowed; it must be in [0, 1)")
    if not dt > 0:
        raise ValueError(f"dt={dt!r} is not allowed; it must be positive")
    return float(momentum), float((1.0 + momentum) * dt * dt / 2.0)


def damping(dt: float, momentum: float) -> float:
    """The damping d of PDE (50) giving momentum coefficient μ: ``d = 2(1 − μ) / (Δt (1 + μ))`` (App. D)."""
    return 2.0 * (1.0 - momentum) / (dt * (1.0 + momentum))


def _slope(y: list[float] | np.ndarray) -> float:
    """Least-squares slope of y against 0, 1, 2, ..."""
    y = np.asarray(y)
    x = np.arange(y.size, dtype=np.float64) - (y.size - 1) / 2.0
    return float(np.sum(x * (y - y.mean())) / np.sum(x * x))


@dataclass
class OneLayerRun:
    """A simulation of the scheme: network loss (6) and ‖K‖ at every iteration (inf once overflowed)."""

    loss: np.ndarray
    norm: np.ndarray
    kernel: np.ndarray


@dataclass
class Outcome:
    """How a run of a scheme ended: ``overflowed`` (the loss left the float range, at ``overflow_step``)
    or ``converged`` (‖K‖ shrank 1000×); ``norm0``/``norm_end`` the first and last finite ‖K‖."""

    overflowed: bool
    converged: bool
    overflow_step: int
    final_loss: float
    norm0: float
    norm_end: float


def outcome(run: OneLayerRun) -> Outcome:
    """The outcome of a run of scheme (10) or (51)–(52) (the claims' test: inside the stable interval
    ‖K‖ shrinks 1000×, outside it the loss overflows)."""
    overflowed = not np.isfinite(run.loss[-1])
    finite = run.norm[np.isfinite(run.norm)]
    converged = not overflowed and finite[-1] < 1e-3 * finite[0]
    return Outcome(bool(overflowed), bool(converged), int(np.argmax(~np.isfinite(run.loss))), run.loss[-1],
                   finite[0], finite[-1])


class LinearisedCNN:
    """The windowed linearised gradient (9) of the one-layer CNN on one image, and its schemes.

    Parameters
    ----------
    image:
        The N×N input I.
    kernel_size:
        w: the kernel lives in a w×w window (8).
    a, beta:
        a = ŷ − y (held constant, Theorem 5.2) and the Swish parameter β.
    dtype:
        float32 or float64: the arithmetic of every scheme step.
    """

    def __init__(self, image: np.ndarray, kernel_size: int, a: float = -0.5, beta: float = 1.0,
                 dtype: type = np.float64) -> None:
        image = np.asarray(image, dtype=np.float64)
        if image.ndim != 2:
            raise ValueError(f"image must be 2-D, got shape {image.shape}")
        if not isinstance(kernel_size, int | np.integer) or not 1 <= kernel_size <= min(image.shape):
            raise ValueError(f"kernel_size={kernel_size!r} is not allowed; it must be an integer in "
                             f"[1, {min(image.shape)}]")
        if not beta > 0:
            raise ValueError(f"beta={beta!r} is not allowed; it must be positive")
        self.image = image
        self.w = int(kernel_size)
        self.a = float(a)
        self.beta = float(beta)
        self.dtype = np.dtype(dtype)
        self.corr = Correlator(image, self.dtype)
        self.i_bar = float(image.sum())
        valid = (image.shape[0] - self.w + 1, image.shape[1] - self.w + 1)
        self.n_positions = valid[0] * valid[1]
        self.i_bar_window = self.corr.valid(np.ones(valid, dtype=self.dtype))
        self._corr64 = self.corr if self.dtype == np.float64 else Correlator(image, np.float64)

    # -- the operator and the gradient ------------------------------------------------------------

    def operator(self, kernel: np.ndarray) -> np.ndarray:
        """``M K = [(K ∗ I) ∗ I] · W``: valid correlation, then back-correlation onto the window."""
        return self.corr.valid(self.corr.valid(kernel))

    def gradient(self, kernel: np.ndarray, alpha: float) -> np.ndarray:
        """The windowed linearised gradient, minus the right side of (9):
        ``(a/2)(Ī_W + β M K) + α K`` on the w×w window (Ī_W: see the module's docstring)."""
        kernel = np.asarray(kernel, dtype=self.dtype)
        return (self.a / 2.0) * (self.i_bar_window + self.beta * self.operator(kernel)) + alpha * kernel

    def homogeneous_gradient(self, kernel: np.ndarray, alpha: float) -> np.ndarray:
        """The gradient without its constant part ``(a/2)Ī_W``: what the difference of two runs obeys."""
        return (self.a * self.beta / 2.0) * self.operator(kernel) + alpha * kernel

    # -- schemes -----------------------------------------------------------------------------------

    def euler_step(self, kernel: np.ndarray, alpha: float, dt: float) -> np.ndarray:
        """Forward Euler (10): ``K^{n+1} = K^n − Δt [(a/2)(Ī_W + β M K^n) + α K^n]``."""
        return kernel - dt * self.gradient(kernel, alpha)

    def nesterov_step(self, kernel: np.ndarray, previous: np.ndarray, alpha: float, dt: float,
                      momentum: float) -> np.ndarray:
        """The semi-implicit scheme (51)–(52): ``V = K^n + μ(K^n − K^{n−1})``, ``K^{n+1} = V − η ∇L(V)``."""
        mu, eta = nesterov_coefficients(dt, momentum)
        v = kernel + mu * (kernel - previous)
        return v - eta * self.gradient(v, alpha)

    def network_loss(self, kernel: np.ndarray, alpha: float, y: float = 1.0) -> float:
        """Loss (6) of network (5) at K: ``ℓ(y, s(Σ_x r(K ∗ I)(x))) + (α/2)‖K‖²``, in the scheme's dtype.

        Cross-entropy is evaluated stably, ``ℓ = y·softplus(−g) + (1 − y)·softplus(g)``; y = 1 is the
        label for which a = ŷ − y = s(0) − 1 = −0.5 at K = 0 (the paper's a).  Overflow gives inf.
        """
        kernel = np.asarray(kernel, dtype=self.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            x = self.corr.valid(kernel)
            g = np.sum(x * special.expit(self.beta * x), dtype=self.dtype)
            ce = y * np.logaddexp(self.dtype.type(0), -g) + (1.0 - y) * np.logaddexp(self.dtype.type(0), g)
            reg = self.dtype.type(alpha / 2.0) * np.sum(kernel * kernel, dtype=self.dtype)
            total = ce + reg
        return float(total) if np.isfinite(total) else float("inf")

    def run(self, kernel0: np.ndarray, alpha: float, dt: float, n_steps: int, momentum: float | None = None,
            y: float = 1.0) -> OneLayerRun:
        """Iterate scheme (10) (``momentum=None``) or (51)–(52) from K⁰ (with K⁻¹ = K⁰), recording the
        network loss (6) and ‖K‖ each step; once K overflows, the rest of the record is inf."""
        k = np.asarray(kernel0, dtype=self.dtype).copy()
        if k.shape != (self.w, self.w):
            raise ValueError(f"kernel0 must have shape {(self.w, self.w)}, got {k.shape}")
        prev = k.copy()
        loss = np.full(n_steps + 1, np.inf)
        norm = np.full(n_steps + 1, np.inf)
        with np.errstate(over="ignore", invalid="ignore"):
            for n in range(n_steps + 1):
                if n > 0:
                    if momentum is None:
                        k = self.euler_step(k, alpha, dt)
                    else:
                        k, prev = self.nesterov_step(k, prev, alpha, dt, momentum), k
                nk = float(np.sqrt(np.sum(k * k, dtype=np.float64)))
                if not np.isfinite(nk) or not np.all(np.isfinite(k)):
                    break
                norm[n] = nk
                loss[n] = self.network_loss(k, alpha, y)
                if not np.isfinite(loss[n]):
                    break
        return OneLayerRun(loss=loss, norm=norm, kernel=k)

    # -- stability by simulation --------------------------------------------------------------------

    def growth_rate(self, alpha: float, dt: float, n_steps: int = 300, momentum: float | None = None,
                    seed: int = 0, max_steps: int | None = None, rtol: float = 1e-2) -> float:
        """Asymptotic growth per step of an error under the scheme, by simulation.

        The difference of two runs of (10) (or (51)–(52)) obeys the homogeneous scheme exactly — the
        constant ``(a/2)Ī_W`` cancels — so we iterate that from a random N(0, 1) kernel (K⁻¹ = K⁰).
        After every step the state (Eⁿ⁺¹, Eⁿ) is divided by its norm sₙ (a linear scheme commutes
        with scaling), so neither overflow nor underflow can end or bias the run, and log sₙ is
        accumulated.  The rate is exp of the least-squares slope of that cumulative log norm over
        the last quarter of the run.  A value > 1 is growth, however slow — no threshold on the
        error's size, no iteration budget to "blow-up".  The two-step state and the fit over many
        steps make the estimate insensitive to the rotation of complex Nesterov roots.

        Convergence: for the symmetric scheme (10) the slope rises monotonically to the log of the
        spectral radius as the slowest-growing modes die out (power iteration), so a short run can
        only mistake a weak instability for stability.  The run is therefore extended (doubled, up
        to ``max_steps``, default 32·n_steps) while the rate is < 1 and the slope of the last
        quarter still exceeds that of the quarter before by more than ``rtol`` of its size.
        Arithmetic is float64 regardless of the instance's dtype.
        """
        if n_steps < 8:
            raise ValueError(f"n_steps={n_steps!r} is not allowed; it must be >= 8")
        max_steps = max_steps or 32 * n_steps
        rng = np.random.default_rng(seed)
        e = rng.standard_normal((self.w, self.w))
        e /= np.linalg.norm(e)
        prev = e.copy()
        if momentum is not None:
            mu, eta = nesterov_coefficients(dt, momentum)
        cum: list[float] = []
        total = 0.0
        c = self.a * self.beta / 2.0
        target = n_steps
        while True:
            while len(cum) < target:
                if momentum is None:
                    new = e - dt * (c * self._corr64.valid(self._corr64.valid(e)) + alpha * e)
                else:
                    v = e + mu * (e - prev)
                    new = v - eta * (c * self._corr64.valid(self._corr64.valid(v)) + alpha * v)
                s = float(np.sqrt(np.sum(new * new) + np.sum(e * e)))
                if s == 0.0:
                    return 0.0
                total += np.log(s)
                cum.append(total)
                prev, e = e / s, new / s
            quarter = max(2, target // 4)
            last = _slope(cum[-quarter:])
            before = _slope(cum[-2 * quarter:-quarter])
            if last > 0 or last - before <= rtol * abs(last) or target >= max_steps:
                return float(np.exp(last))
            target = min(2 * target, max_steps)

    # -- the spectrum of the windowed operator --------------------------------------------------------

    def spectrum(self, tol: float = 1e-12) -> tuple[float, float]:
        """(λ_min, λ_max) of the symmetric PSD operator M = C⊤C on the w² kernel entries, float64.

        Lanczos (``scipy.sparse.linalg.eigsh``) on the FFT operator, never a dense w²×w² matrix,
        with a fixed start vector (reproducible): λ_max directly, λ_min as λ_max − λ_max(λ_max·1 − M).
        Below w² = 64 the dense matrix is built from its columns and diagonalised exactly.
        """
        n = self.w * self.w

        def matvec(v: np.ndarray) -> np.ndarray:
            return self._corr64.valid(self._corr64.valid(v.reshape(self.w, self.w))).ravel()

        if n <= 64:
            dense = np.stack([matvec(col) for col in np.eye(n)], axis=1)
            ev = np.linalg.eigvalsh((dense + dense.T) / 2.0)
            return float(max(ev[0], 0.0)), float(ev[-1])
        v0 = np.random.default_rng(0).standard_normal(n)
        op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        lam_max = float(eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0])
        shifted = LinearOperator((n, n), matvec=lambda v: lam_max * v - matvec(v), dtype=np.float64)
        top = float(eigsh(shifted, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0])
        return float(max(lam_max - top, 0.0)), lam_max


# -- stability bounds of the windowed schemes: exact (from the spectrum) and by simulation -----------


def windowed_alpha_bounds(image: ArrayLike, kernel_size: int, dt: float, a: float = -0.5, beta: float = 1.0,
                          momentum: float | None = None,
                          spectrum: tuple[float, float] | None = None) -> AlphaBounds:
    """The **exact** stability interval of the windowed linearised scheme, for a kernel of w×w support.

    Scheme (10) (``momentum=None``) or (51)–(52) (``momentum=μ``) acts on the w² kernel entries
    through the windowed operator ``M K = [(K ∗ I) ∗ I]·W`` (valid correlation, sum over positions;
    see this module's docstring), which is symmetric PSD: in its eigenbasis each mode is an
    independent scalar recursion with ``z = α + ½aβλ``.  The scheme is stable iff every mode is, so
    the bounds are :func:`alpha_interval` of M's extreme eigenvalues, computed by Lanczos on the FFT
    operator (:meth:`LinearisedCNN.spectrum`) — the quantity the paper could only measure
    (Table 2's α^e, Table 6's).  For the pixel checkerboard, λ_max = (N−w+1)²·w² and λ_min = 0.

    ``spectrum=(λ_min, λ_max)`` skips the eigen-solve when it is already known.  ``momentum=0.0``
    is Nesterov with μ = 0 — gradient descent with step Δt²/2, *not* scheme (10).
    """
    if spectrum is None:
        spectrum = LinearisedCNN(np.asarray(image), kernel_size, a, beta).spectrum()
    return alpha_interval(spectrum[0], spectrum[1], z_limit(dt, momentum), a, beta)


def empirical_alpha_bounds(image: ArrayLike, kernel_size: int, dt: float, a: float = -0.5, beta: float = 1.0,
                           momentum: float | None = None, *, n_steps: int = 300, rtol: float = 1e-4,
                           seed: int = 0, stable_alpha: float | None = None,
                           lower: bool = True) -> AlphaBounds:
    """The stability interval of the windowed scheme found by **simulation**: a bracketing search on α.

    The criterion (:meth:`LinearisedCNN.growth_rate`): α is unstable when an error grows, i.e. when
    ρ(α), the per-step growth of the (rescaled) difference of two runs over the last quarter of
    ``n_steps`` steps, exceeds 1 — any growth counts, however slow; no overflow threshold or
    iteration budget to "blow-up" biases the answer.  From a stable α (``stable_alpha``, else the
    first stable one of z_max·{1/2, 1/4, 3/4, 1/10, 1/100, 1/1000}) the bracket is widened by
    factors of 4 downwards and 2 upwards until ρ > 1, then the root of log ρ in log α is located by
    Brent's method (bisection safeguarded with secant steps: ρ(α) is smooth across a bound, so a
    handful of simulations replaces twenty bisection halvings) to relative accuracy ``rtol``.

    The remaining bias is the power-iteration error of a finite run: for the symmetric scheme (10)
    ρ_n increases monotonically to the spectral radius, so a too-short run can only call an
    unstable α stable; ``n_steps`` must be long enough for the slowest mode to separate.
    Searches α > 0 only: if α = stable_alpha·4⁻¹⁰ is still stable, alpha_min is reported as 0.0.
    ``lower=False`` skips the lower bound (reported as nan).
    """
    model = LinearisedCNN(np.asarray(image), kernel_size, a, beta)

    def log_rate(log_alpha: float) -> float:
        return float(np.log(model.growth_rate(float(np.exp(log_alpha)), dt, n_steps, momentum, seed=seed)))

    zmax = z_limit(dt, momentum)
    if stable_alpha is None:
        stable_alpha = next((zmax * f for f in (0.5, 0.25, 0.75, 0.1, 1e-2, 1e-3)
                             if log_rate(np.log(zmax * f)) <= 0), None)
        if stable_alpha is None:
            raise ValueError("no stable alpha found among z_max·{1/2, 1/4, 3/4, 1/10, 1/100, 1/1000}; "
                             "pass stable_alpha=")
    elif log_rate(np.log(stable_alpha)) > 0:
        raise ValueError(f"stable_alpha={stable_alpha!r} is not stable")

    def bound(factor: float, tries: int) -> float | None:
        inner = np.log(stable_alpha)
        for _ in range(tries):
            outer = inner + np.log(factor)
            if log_rate(outer) > 0:
                lo, hi = sorted((inner, outer))
                return float(np.exp(brentq(log_rate, lo, hi, xtol=1e-12, rtol=max(rtol, 1e-14))))
            inner = outer
        return None

    alpha_min = bound(0.25, 10) if lower else float("nan")
    alpha_max = bound(2.0, 200)
    if alpha_max is None:
        raise RuntimeError("no unstable alpha found above stable_alpha")
    return AlphaBounds(alpha_min=0.0 if alpha_min is None else alpha_min, alpha_max=alpha_max)
