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

**The exact picture for the checkerboard.**  For ``I(x) = (−1)^{x₁+x₂}``, ``I(x+z) = I(x) C(z)``
with ``C = I`` on the window, so ``(K * I)(x) = σ I(x)`` with ``σ = ⟨K, C⟩``.  The data gradient is
``(ŷ − y) G'(σ) C``, parallel to C, and the rest of the kernel, ``K⊥ = K − (σ/w²) C``, only feels the
weight decay: ``K⊥ ← (1 − αΔt) K⊥``.  Writing ``G(σ) = c (M r(σ) − Qσ)`` for the logit (M valid
positions, Q of them with I = −1; ``r(−σ) = r(σ) − σ``), the whole of (8) is the one-dimensional map

    σ ← F(σ) = (1 − αΔt) σ − Δt w² (s(G(σ)) − y) G'(σ)                                   (★)

plus the decay of K⊥.  Hence (for y = 1) the blow-up threshold ``Δt = 2/α`` (K⊥, and σ far from
0, are multiplied by ``1 − αΔt``), and the convergence threshold ``Δt = 2/λ`` where
``λ = α + w² [ŷ(1−ŷ) G'(σ*)² + (ŷ − y) G''(σ*)]`` is the curvature of the loss along C at the
fixed point σ* of (★) (σ* solves ``α σ = w² (y − ŷ) G'(σ)`` and does not depend on Δt).  Between
the two, (★) goes through period doubling into chaos; its Lyapunov exponent says whether a
last-bit perturbation is amplified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import expit

from instab import numerics
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

    def sigma_map(self) -> SigmaMap:
        """The one-dimensional map (★) of this network (exact when the image is the checkerboard)."""
        n0, n1 = self.corr.shape
        if n0 != n1 or not np.array_equal(self.corr.image, _checkerboard(n0, self.dtype)):
            raise ValueError("the σ-map is derived for the square pixel checkerboard image only")
        return SigmaMap(image_size=n0, kernel_size=self.kernel_size, alpha=self.alpha, beta=self.beta,
                        y=self.y, pooling=self.pooling)


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


def measured_blowup_threshold(net: NonlinearCNN, K0: np.ndarray, lo: float, hi: float, n_iter: int,
                              rtol: float = 1e-3) -> tuple[float, int]:
    """Bisect the full scheme for the largest Δt at which ``‖Kⁿ‖ ≤ ‖K⁰‖`` after n_iter steps
    (beyond it the kernel grows without bound)."""
    b = numerics.bisect(lambda dt: final_change(net, K0, dt, n_iter)[1] <= 1.0, lo, hi, rtol=rtol)
    return b.mid, len(b.trials)


def measured_convergence_threshold(net: NonlinearCNN, K0: np.ndarray, lo: float, hi: float,
                                   n_iter: int, tol: float = 1e-4, rtol: float = 1e-3) -> tuple[float, int]:
    """Bisect the full scheme for the largest Δt at which the kernel has converged after n_iter
    steps: ``‖Kⁿ − Kⁿ⁻¹‖ ≤ tol ‖Kⁿ‖``.  Slow convergence just below the threshold (|F'(σ*)| → 1)
    biases the result low by about ``ln(1/tol) / (2 n_iter)`` relative."""
    b = numerics.bisect(lambda dt: final_change(net, K0, dt, n_iter)[0] <= tol, lo, hi, rtol=rtol)
    return b.mid, len(b.trials)


# ---------------------------------------------------------------------------------------------
# The exact one-dimensional map (★) for the checkerboard, in float64
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigmaMap:
    """The map (★) ``σ ← F(σ) = (1 − αΔt)σ − Δt w² (s(G(σ)) − y) G'(σ)`` to which (8) reduces on the
    n×n pixel checkerboard with a w×w kernel; ``G(σ) = c (M r(σ) − Qσ)``, M = (n − w + 1)²
    positions, Q = ⌊M/2⌋ of them with I = −1, c = 1/M (mean pooling) or 1 (sum)."""

    image_size: int = 256
    kernel_size: int = 32
    alpha: float = 20.0
    beta: float = 1.0
    y: float = 1.0
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r} is not allowed; choose one of {list(POOLINGS)}")
        if not 1 <= self.kernel_size <= self.image_size:
            raise ValueError(f"kernel_size={self.kernel_size!r} must be in [1, image_size={self.image_size}]")
        if self.y != 1:
            raise ValueError(f"y={self.y!r} is not allowed; the σ-map's thresholds are derived for y = 1")

    @property
    def M(self) -> int:
        return (self.image_size - self.kernel_size + 1) ** 2

    @property
    def Q(self) -> int:
        return self.M // 2

    @property
    def c(self) -> float:
        return 1.0 / self.M if self.pooling == "mean" else 1.0

    @property
    def w2(self) -> int:
        return self.kernel_size ** 2

    def G(self, s: ArrayLike) -> np.ndarray:
        """The logit as a function of σ: ``c (M r(σ) − Qσ)``."""
        s = np.asarray(s, dtype=float)
        return self.c * (self.M * swish(s, self.beta) - self.Q * s)

    def G1(self, s: ArrayLike) -> np.ndarray:
        """``G'(σ) = c (M r'(σ) − Q)``."""
        s = np.asarray(s, dtype=float)
        return self.c * (self.M * swish_prime(s, self.beta) - self.Q)

    def G2(self, s: ArrayLike) -> np.ndarray:
        """``G''(σ) = c M r''(σ)``."""
        return self.c * self.M * swish_second(s, self.beta)

    def _err(self, s: ArrayLike) -> np.ndarray:
        """``ŷ − y = −s(−G)`` for y = 1, computed without cancellation."""
        return -expit(-self.G(s))

    def __call__(self, s: ArrayLike, dt: ArrayLike) -> np.ndarray:
        """F(σ) for arrays of σ and Δt (broadcast)."""
        s = np.asarray(s, dtype=float)
        dt = np.asarray(dt, dtype=float)
        return (1 - self.alpha * dt) * s - dt * self.w2 * self._err(s) * self.G1(s)

    def curvature(self, s: ArrayLike) -> np.ndarray:
        """``λ(σ) = α + w² [ŷ(1−ŷ) G'² + (ŷ − y) G'']``, so that ``F'(σ) = 1 − Δt λ(σ)``."""
        s = np.asarray(s, dtype=float)
        yh = expit(self.G(s))
        return self.alpha + self.w2 * (yh * (1 - yh) * self.G1(s) ** 2 + self._err(s) * self.G2(s))

    def derivative(self, s: ArrayLike, dt: ArrayLike) -> np.ndarray:
        """``F'(σ) = 1 − Δt λ(σ)``."""
        return 1 - np.asarray(dt, dtype=float) * self.curvature(s)

    def fixed_point(self, sign: int = 1) -> float:
        """The outermost fixed point σ* of sign ``sign``: the root of ``ασ = w² (y − ŷ) G'(σ)``
        (independent of Δt).  σ ≈ 0 is a fixed point too (off 0 by the I = +1 surplus); it repels
        when α < w²β/4 (as in §5.4), and is then the only one when α > w²β/4."""
        h = lambda s: self.alpha * s + self.w2 * self._err(s) * self.G1(s)  # noqa: E731
        # h < 0 just off 0 (the data term pushes σ away from 0) and h > 0 far out (weight decay wins).
        lo, hi = 1e-12, 1.0
        while h(sign * hi) * sign <= 0:
            hi *= 2
            if hi > 1e12:
                raise RuntimeError("σ-map: no fixed point found")
        # the outermost sign change (near 0 there is the repelling root, off 0 by the I = +1 surplus)
        grid = np.geomspace(lo, hi, 4000)
        vals = h(sign * grid) * sign
        if not np.any(vals <= 0):
            raise ValueError(f"σ-map: no fixed point of sign {sign}")
        j = int(np.nonzero(vals <= 0)[0][-1])
        return float(brentq(lambda t: h(sign * t) * sign, grid[j], grid[j + 1], xtol=1e-300) * sign)

    def curvature_terms(self, s: float) -> dict[str, float]:
        """The three terms of λ(σ): weight decay α, the sigmoid's curvature ``w² ŷ(1−ŷ) G'(σ)²`` (Table 3's
        activated-regime term ``Ī²/8`` with s'(0) = 1/4 and Ī → w G'(σ)) and the Swish's curvature
        ``w² (ŷ − y) G''(σ)``."""
        yh = float(expit(self.G(s)))
        return {"weight decay": self.alpha, "sigmoid": float(self.w2 * yh * (1 - yh) * self.G1(s) ** 2),
                "swish": float(self.w2 * self._err(s) * self.G2(s))}

    def classify(self, dt: float, s0: float, n_transient: int, n_keep: int, margin: float = 0.0) -> str:
        """The regime of (8) at step Δt according to the map: "blows up" (Δt > 2/α), "converges"
        (Δt < the convergence threshold), else "chaotic" (Lyapunov exponent > margin) or "periodic"."""
        if dt > self.blowup_threshold():
            return "blows up"
        if dt < self.convergence_threshold(int(np.sign(s0)) or 1):
            return "converges"
        return "chaotic" if self.lyapunov(s0, [dt], n_transient, n_keep)[0] > margin else "periodic"

    def blowup_threshold(self) -> float:
        """``Δt = 2/α``: above it, K⊥ (and σ far from 0) are multiplied by ``|1 − αΔt| > 1``."""
        return 2.0 / self.alpha

    def convergence_threshold(self, sign: int = 1) -> float:
        """``Δt = 2/λ(σ*)``: below it ``|F'(σ*)| < 1`` and the kernel converges; above it σ* loses
        stability by period doubling (F'(σ*) = −1)."""
        lam = float(self.curvature(self.fixed_point(sign)))
        if lam <= 0:
            raise RuntimeError(f"σ-map: the fixed point is not a minimum along C (λ = {lam})")
        return 2.0 / lam

    def orbit(self, s0: float, dt: ArrayLike, n: int) -> np.ndarray:
        """``n + 1`` iterates σ₀, F(σ₀), … for each Δt (shape (n + 1,) + shape(dt)); inf after escape."""
        dt = np.asarray(dt, dtype=float)
        out = np.empty((n + 1,) + dt.shape)
        s = np.full(dt.shape, float(s0))
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(n + 1):
                out[i] = s
                if i < n:
                    s = self(s, dt)
                    s = np.where(np.isfinite(s) & (np.abs(s) < 1e150), s, np.inf)
        return out

    def bifurcation(self, s0: float, dts: ArrayLike, n_transient: int, n_keep: int) -> np.ndarray:
        """The last ``n_keep`` iterates after ``n_transient`` for each Δt: shape (n_keep, len(dts))."""
        return self.orbit(s0, dts, n_transient + n_keep - 1)[n_transient:]

    def lyapunov(self, s0: float, dts: ArrayLike, n_transient: int, n_keep: int) -> np.ndarray:
        """Lyapunov exponent ``(1/n) Σ log|F'(σᵢ)|`` per step along the orbit (after a transient),
        for each Δt; +inf where the orbit escapes.  Per-step growth factor of a perturbation of σ."""
        dts = np.asarray(dts, dtype=float)
        orb = self.orbit(s0, dts, n_transient + n_keep - 1)[n_transient:]
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(np.abs(self.derivative(orb, dts)))
            lam = np.mean(np.maximum(logs, -745.0), axis=0)
        return np.where(np.all(np.isfinite(orb), axis=0), lam, np.inf)

    def full_lyapunov(self, s0: float, dts: ArrayLike, n_transient: int, n_keep: int) -> np.ndarray:
        """Largest Lyapunov exponent of the whole scheme (8): the σ-map's, or that of K⊥,
        ``log|1 − αΔt|``, whichever is larger."""
        dts = np.asarray(dts, dtype=float)
        with np.errstate(divide="ignore"):
            perp = np.log(np.abs(1 - self.alpha * dts))
        return np.maximum(self.lyapunov(s0, dts, n_transient, n_keep), perp)


# ---------------------------------------------------------------------------------------------
# Reading the runs and the map: error growth, showcase steps
# ---------------------------------------------------------------------------------------------


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
        return float(np.log10(self.peak / self.first)) if self.first > 0 else 0.0


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


def showcase_dts(m: SigmaMap, dts: np.ndarray, lyap: np.ndarray, sign: int = 1) -> dict[str, float]:
    """Δt values to show, read off the Lyapunov exponent of the map (not chosen by hand):

    - "converges": 0.8 × the convergence threshold;
    - "period-2": midway between the convergence threshold and the first Δt of positive exponent;
    - "chaotic": the Δt of largest exponent below 2/α;
    - "periodic window": the middle of the widest run of negative exponent inside the chaotic range;
    - "blows up": 1.1 × 2/α.

    Each is rounded to 3 significant digits.
    """
    dts = np.asarray(dts, dtype=float)
    lyap = np.asarray(lyap, dtype=float)
    dtc, dtb = m.convergence_threshold(sign), m.blowup_threshold()
    inside = (dts > dtc) & (dts < dtb)
    chaos = np.nonzero(inside & (lyap > 0))[0]
    if chaos.size == 0:
        raise ValueError("no Δt with a positive Lyapunov exponent between the two thresholds")
    onset = dts[chaos[0]]
    out = {"converges": 0.8 * dtc, "period-2": 0.5 * (dtc + onset)}
    j = int(np.argmax(np.where(inside, lyap, -np.inf)))
    out["chaotic"] = dts[j]
    # the widest window of negative exponent after the onset of chaos
    neg = inside & (dts > onset) & (lyap < 0)
    best, cur, best_span = None, None, 0
    for i in range(dts.size):
        if neg[i]:
            cur = i if cur is None else cur
            if i - cur + 1 > best_span:
                best, best_span = (cur, i), i - cur + 1
        else:
            cur = None
    if best is not None:
        out["periodic window"] = 0.5 * (dts[best[0]] + dts[best[1]])
    out["blows up"] = 1.1 * dtb
    return {k: float(f"{v:.3g}") for k, v in out.items()}
