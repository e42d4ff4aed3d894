"""The full nonlinear one-layer CNN of §5 and its windowed gradient descent (8) (paper §5.4, Fig. 4).

The network (5) is ``f(I) = s(P_x r(K * I)(x))``: a w×w kernel K cross-correlated with one image I
(valid positions), Swish ``r(v) = v / (1 + e^{−βv})``, pooling ``P`` over the positions — the
**mean** (the authors' released code) or the **sum** (the integral the paper writes) — and the
sigmoid ``s``.  The loss (6) is cross-entropy plus ``(α/2)‖K‖²``; the cross-entropy is computed from
the logit ``g = P r(K * I)`` as a softplus, so ŷ rounding to 1 gives no NaN.  Forward Euler on (8)
is gradient descent with step Δt,

    K ← K − Δt [ (ŷ − y) c · (r'(K * I) * I) + α K ],      c = 1/M (mean) or 1 (sum),

and the perturbed update of §4.1 replaces ``Δt · G`` by ``(Δt/k) · (k G)`` (form ``"paper"``) or by
``(Δt·k) · (G/k)`` (form ``"release"``): equal in exact arithmetic, different in the last bit.

This module is the scheme, its runs and the reading of a pair's RelL1 curve (:func:`error_growth`);
:meth:`NonlinearCNN.sigma` and a run's ``sigma`` / ``perp`` record the projection ``σ = ⟨K, C⟩``
onto the checkerboard window C and the rest ``K⊥``.  The exact one-dimensional map (★) to which (8)
reduces on the checkerboard, its thresholds and Lyapunov exponent, and the thresholds measured on
the scheme are :mod:`instab.pde.sigma_map`; the chapter's experiment is
:mod:`instab.studies.nonlinear`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from instab import growth, numerics
from instab.numerics import FORMS, rel_l1  # noqa: F401 - FORMS: the forms a run accepts
from instab.pde.correlate import Correlator
from instab.pde.images import checkerboard

POOLINGS = ("mean", "sum")
REGIMES = ("activated", "transitioning", "not activated")


# ---------------------------------------------------------------------------------------------
# Swish (§4.2, App. C.2 eq. (28)–(30)), the checkerboard, RelL1 (§4.2)
# ---------------------------------------------------------------------------------------------


def swish(v: ArrayLike, beta: float) -> np.ndarray:
    """Swish ``r(v) = v / (1 + e^{−βv}) = v s(βv)`` (eq. (28))."""
    v = np.asarray(v)
    return v * expit(v.dtype.type(beta) * v) if v.dtype.kind == "f" else v * expit(beta * v)


def swish_prime(v: ArrayLike, beta: float) -> np.ndarray:
    """``r'(v) = s(βv) + βv s(βv)(1 − s(βv))`` (eq. (29)); ``r'(−v) = 1 − r'(v)``."""
    v = np.asarray(v)
    b = v.dtype.type(beta) if v.dtype.kind == "f" else beta
    e = expit(b * v)
    return e + b * v * e * (1 - e)


def swish_second(v: ArrayLike, beta: float) -> np.ndarray:
    """``r''(v) = β s'(βv) [2 + βv (1 − 2 s(βv))]`` (eq. (30)); ``r''(0) = β/2``."""
    v = np.asarray(v, dtype=float)
    e = expit(beta * v)
    return beta * e * (1 - e) * (2 + beta * v * (1 - 2 * e))


def _checkerboard(n: int, dtype: type = np.float64) -> np.ndarray:
    """The n×n pixel checkerboard of §5.3, ``I(x) = (−1)^{x₁+x₂}`` (I = +1 at the origin)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"image_size={n!r} is not allowed; it must be a positive integer")
    return checkerboard(n).astype(dtype)


# ---------------------------------------------------------------------------------------------
# The full scheme (8)
# ---------------------------------------------------------------------------------------------


@dataclass
class NonlinearCNN:
    """The one-layer CNN (5) with loss (6) on one image, and forward-Euler steps of (8).

    Arithmetic is in ``dtype`` (float32 or float64) throughout, as a deep-learning package would do
    it; the correlations run through :class:`~instab.pde.correlate.Correlator` (FFT).
    """

    image: np.ndarray
    kernel_size: int
    alpha: float
    beta: float = 1.0
    y: float = 1.0
    pooling: str = "mean"
    dtype: type = np.float32
    corr: Correlator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r} is not allowed; choose one of {list(POOLINGS)}")
        for name in ("alpha", "beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; it must be positive")
        if self.y not in (0, 1):
            raise ValueError(f"y={self.y!r} is not allowed; the label is 0 or 1")
        w = self.kernel_size
        if not isinstance(w, int) or not 1 <= w <= min(np.shape(self.image)):
            raise ValueError(f"kernel_size={w!r} is not allowed; it must be an integer in [1, image size]")
        self.corr = Correlator(self.image, self.dtype)
        self.dtype = self.corr.dtype.type
        n0, n1 = self.corr.shape
        self.n_positions = (n0 - w + 1) * (n1 - w + 1)
        self._c = self.dtype(1.0 / self.n_positions if self.pooling == "mean" else 1.0)
        self._t = {name: self.dtype(getattr(self, name)) for name in ("alpha", "beta", "y")}

    @classmethod
    def checkerboard(cls, image_size: int = 256, kernel_size: int = 32, **kw) -> NonlinearCNN:
        """The §5.3/§5.4 set-up: an image_size² pixel checkerboard of ±1."""
        return cls(_checkerboard(image_size), kernel_size, **kw)

    def initial_kernel(self, seed: int) -> np.ndarray:
        """A w×w kernel drawn from N(0, 1) (§5.3) with ``numpy.random.default_rng(seed)``."""
        w = self.kernel_size
        return np.random.default_rng(seed).standard_normal((w, w)).astype(self.dtype)

    def response(self, K: np.ndarray) -> np.ndarray:
        """``(K * I)(x)`` at the valid positions."""
        return self.corr.valid(K)

    def logit(self, v: np.ndarray) -> np.floating:
        """``g = P_x r(v(x))`` — the pooled Swish of the response, the sigmoid's argument."""
        return self._c * swish(v, self.beta).sum(dtype=self.dtype)

    def cross_entropy(self, g: float | np.floating) -> float:
        """``ℓ(y, s(g))`` as a softplus: ``y·log(1+e^{−g}) + (1−y)·log(1+e^{g})`` (never NaN)."""
        return float(np.logaddexp(0.0, -float(g)) if self.y == 1 else np.logaddexp(0.0, float(g)))

    def loss(self, K: np.ndarray, v: np.ndarray | None = None) -> float:
        """Loss (6), ``ℓ + (α/2)‖K‖²``, in float64 (inf once K has overflowed)."""
        v = self.response(K) if v is None else v
        with np.errstate(over="ignore", invalid="ignore"):
            g = self.logit(v)
            k2 = float(np.sum(np.asarray(K, dtype=np.float64) ** 2))
            out = self.cross_entropy(g) + 0.5 * self.alpha * k2
        return out if np.isfinite(out) else float("inf")

    def gradient(self, K: np.ndarray, v: np.ndarray | None = None) -> np.ndarray:
        """``∇_K L = (ŷ − y) c [r'(K * I) * I] + αK`` (eq. (25), windowed as in (8)).

        ``ŷ − y`` is the derivative of the softplus form of ℓ: ``−s(−g)`` for y = 1, ``s(g)`` for
        y = 0 (equal to ``s(g) − y`` without its cancellation)."""
        v = self.response(K) if v is None else v
        g = self.logit(v)
        dl = -expit(-g) if self.y == 1 else expit(g)
        back = self.corr.valid(swish_prime(v, self.beta))
        return (self.dtype(dl) * self._c) * back + self._t["alpha"] * K

    def step(self, K: np.ndarray, dt: float, k: int = 1, form: str = "paper",
             v: np.ndarray | None = None) -> np.ndarray:
        """One forward-Euler step of (8): ``K − Δt ∇L``; with k ≠ 1, the perturbed update of §4.1,
        ``K − (Δt/k)(k ∇L)`` (form "paper") or ``K − (Δt·k)(∇L/k)`` (form "release")."""
        return numerics.perturbed_step(K, dt, self.gradient(K, v), k, form, dtype=self.dtype)

    def regime_shares(self, v: np.ndarray, width: float = 1.0) -> np.ndarray:
        """Table 3's regimes: the shares of positions x with ``β(K*I)(x) > width`` (activated,
        r' ≈ 1), ``|β(K*I)(x)| ≤ width`` (transitioning, r' ≈ its tangent at 0) and
        ``β(K*I)(x) < −width`` (not activated, r' ≈ 0).  Non-finite responses count as none."""
        bv = np.asarray(v, dtype=np.float64) * self.beta
        n = bv.size
        return np.array([np.sum(bv > width), np.sum(np.abs(bv) <= width), np.sum(bv < -width)]) / n

    # --- the exact reduction for the checkerboard ------------------------------------------------
    def sigma(self, K: np.ndarray) -> float:
        """``σ = ⟨K, C⟩``, the kernel's component along the checkerboard window C (float64)."""
        w = self.kernel_size
        return float(np.sum(np.asarray(K, dtype=np.float64) * _checkerboard(w)))


# ---------------------------------------------------------------------------------------------
# Runs: one trajectory, or an unperturbed / perturbed pair in lockstep
# ---------------------------------------------------------------------------------------------


@dataclass
class NonlinearRun:
    """A run of (8).  Per iteration n = 0..n_iter: ``loss[n]``, ``sigma[n]`` (= ⟨Kⁿ, C⟩),
    ``perp[n]`` (‖K⊥ⁿ‖, the part of Kⁿ orthogonal to C), ``change[n]`` (‖Kⁿ − Kⁿ⁻¹‖/‖Kⁿ‖, NaN at
    n = 0), ``shares[n]`` (Table 3 regimes), and for a pair ``rel_l1[n]`` between the unperturbed
    and the perturbed kernel.  ``kernel`` is the final (unperturbed) kernel; ``blew_up_at`` the
    iteration at which the loss overflowed or passed ``stop_above`` (None if it never did)."""

    dt: float
    loss: np.ndarray
    sigma: np.ndarray
    perp: np.ndarray
    change: np.ndarray
    shares: np.ndarray
    rel_l1: np.ndarray | None
    kernel: np.ndarray
    blew_up_at: int | None


def simulate(net: NonlinearCNN, K0: np.ndarray, dt: float, n_iter: int, *, k: int | None = None,
          form: str = "paper", regime_width: float = 1.0, stop_above: float = np.inf) -> NonlinearRun:
    """Run (8) for ``n_iter`` steps from K0 with step Δt.  With ``k`` (an odd integer > 1), a
    perturbed run of §4.1 goes in lockstep and RelL1 between the two is recorded every iteration.

    Once the loss is not finite (overflow: the scheme blew up) or exceeds ``stop_above``, the run
    stops and the remaining entries are inf (loss) or NaN.
    """
    if not dt > 0:
        raise ValueError(f"dt={dt!r} is not allowed; it must be positive")
    if not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"n_iter={n_iter!r} is not allowed; it must be a non-negative integer")
    if k is not None and numerics.is_power_of_two(numerics.check_k(k)):
        raise ValueError(f"k={k!r} is not allowed; a perturbed run needs k > 1 not a power of two "
                         "(k = 1, 2, 4, ... change nothing)")
    numerics.check_form(form)
    loss = np.full(n_iter + 1, np.inf)
    sig = np.full(n_iter + 1, np.nan)
    perp = np.full(n_iter + 1, np.nan)
    change = np.full(n_iter + 1, np.nan)
    C = _checkerboard(net.kernel_size) / net.kernel_size
    shares = np.full((n_iter + 1, 3), np.nan)
    rl = None if k is None else np.full(n_iter + 1, np.nan)
    K: np.ndarray = np.array(K0, dtype=net.dtype)
    Kp = None if k is None else K.copy()
    blew_up = None
    prev = K.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(n_iter + 1):
            v = net.response(K)
            loss[n] = net.loss(K, v)
            sig[n] = net.sigma(K)
            K64 = K.astype(np.float64)
            perp[n] = np.linalg.norm(K64 - sig[n] * C / net.kernel_size)
            if n:
                change[n] = np.linalg.norm(K64 - prev) / np.linalg.norm(K64)
            prev = K64
            shares[n] = net.regime_shares(v, regime_width)
            if rl is not None:
                assert Kp is not None  # rl and Kp are both None exactly when k is None
                rl[n] = rel_l1(K, Kp)
            if not loss[n] <= stop_above or not np.all(np.isfinite(K)):
                blew_up = n
                loss[n:] = np.inf
                break
            if n == n_iter:
                break
            K_next = net.step(K, dt, 1, v=v)
            if Kp is not None:
                assert k is not None  # Kp is None exactly when k is None
                Kp = net.step(Kp, dt, k, form)
            K = K_next
    return NonlinearRun(dt=float(dt), loss=loss, sigma=sig, perp=perp, change=change, shares=shares, rel_l1=rl,
               kernel=K, blew_up_at=blew_up)


def final_change(net: NonlinearCNN, K0: np.ndarray, dt: float, n_iter: int) -> tuple[float, float]:
    """Run (8) for ``n_iter`` steps (no recording); return ``(‖Kⁿ − Kⁿ⁻¹‖/‖Kⁿ‖, ‖Kⁿ‖/‖K⁰‖)`` — the
    last relative change (0 at a fixed point) and the growth of the kernel (inf on overflow)."""
    K: np.ndarray = np.array(K0, dtype=net.dtype)
    prev = K
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(n_iter):
            prev, K = K, net.step(K, dt)
            if not np.all(np.isfinite(K)):
                return float("inf"), float("inf")
        norm = float(np.linalg.norm(K.astype(np.float64)))
        change = float(np.linalg.norm(K.astype(np.float64) - prev.astype(np.float64))) / norm if norm else 0.0
        return change, norm / float(np.linalg.norm(np.asarray(K0, dtype=np.float64)))


@dataclass(frozen=True)
class Growth:
    """How RelL1 between the unperturbed and the perturbed run evolved: ``first`` (the first non-zero
    value, the perturbation's own size), ``peak`` (its maximum), ``plateau`` (median over the last
    quarter), ``rate`` (least-squares slope of ln RelL1 per step while it climbs from 10×first to
    1e-2, NaN if it never does)."""

    first: float
    peak: float
    plateau: float
    rate: float

    @property
    def decades(self) -> float:
        """log10(peak / first): how many decades the error was amplified (0 if never non-zero)."""
        return growth.decades(self.first, self.peak) if self.first > 0 else 0.0


def error_growth(rl: np.ndarray) -> Growth:
    """Summarise a RelL1 curve (entries after a blow-up are NaN and ignored)."""
    rl = np.asarray(rl, dtype=float)
    finite = rl[np.isfinite(rl)]
    nz = np.nonzero(finite[1:] > 0)[0]
    if nz.size == 0:
        return Growth(0.0, 0.0, 0.0, float("nan"))
    first = float(finite[1 + nz[0]])
    peak = float(np.max(finite))
    plateau = float(np.median(finite[-max(1, finite.size // 4):]))
    rate = float("nan")
    start = np.nonzero(finite >= 10 * first)[0]
    if start.size and peak >= 1e-2:
        i0 = int(start[0])
        i1 = int(np.nonzero(finite >= 1e-2)[0][0])
        if i1 > i0 + 1:
            n = np.arange(i0, i1 + 1)
            rate = float(np.polyfit(n, np.log(finite[i0:i1 + 1]), 1)[0])
    return Growth(first, peak, plateau, rate)
