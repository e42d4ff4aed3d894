"""The exact one-dimensional map (★) to which the windowed gradient descent (8) of the nonlinear
one-layer CNN (:mod:`instab.pde.nonlinear`) reduces on the pixel checkerboard (paper §5.4, Fig. 4),
its thresholds and Lyapunov exponent; and the same thresholds measured on the full scheme.

On the n×n pixel checkerboard ``I(x) = (−1)^{x₁+x₂}`` one has ``I(x+z) = I(x) C(z)`` with ``C = I``
on the window, so ``(K * I)(x) = σ I(x)`` with ``σ = ⟨K, C⟩``.  The data gradient is
``(ŷ − y) G'(σ) C``, parallel to C, and the rest of the kernel, ``K⊥ = K − (σ/w²) C``, only feels the
weight decay: ``K⊥ ← (1 − αΔt) K⊥``.  Writing ``G(σ) = c (M r(σ) − Qσ)`` for the logit (M valid
positions, Q of them with I = −1; ``r(−σ) = r(σ) − σ``), the whole of (8) is the one-dimensional map

    σ ← F(σ) = (1 − αΔt) σ − Δt w² (s(G(σ)) − y) G'(σ)                                   (★)

plus the decay of K⊥ (:class:`SigmaMap`).  Hence (for y = 1) the blow-up threshold ``Δt = 2/α``
(K⊥, and σ far from 0, are multiplied by ``1 − αΔt``), and the convergence threshold ``Δt = 2/λ``
where ``λ = α + w² [ŷ(1−ŷ) G'(σ*)² + (ŷ − y) G''(σ*)]`` is the curvature of the loss along C at
the fixed point σ* of (★) (σ* solves ``α σ = w² (y − ŷ) G'(σ)`` and does not depend on Δt).
Between the two, (★) goes through period doubling into chaos; its Lyapunov exponent says whether
a last-bit perturbation is amplified.

- :class:`SigmaMap` (and :func:`sigma_map`, the map of a network) — (★) in float64: its fixed
  point, curvature, thresholds, orbits, bifurcation diagram and Lyapunov exponents;
- :func:`showcase_dts` — the steps to show, read off the Lyapunov exponent;
- :func:`measured_blowup_threshold`, :func:`measured_convergence_threshold` — both thresholds by
  bisection on the full scheme (8).

The nonlinear chapter's experiment on them is :mod:`instab.studies.nonlinear`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import expit

from instab import numerics
from instab.pde.images import checkerboard
from instab.pde.nonlinear import POOLINGS, NonlinearCNN, final_change, swish, swish_prime, swish_second

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


def sigma_map(net: NonlinearCNN) -> SigmaMap:
    """The one-dimensional map (★) of ``net`` (exact when its image is the square pixel checkerboard)."""
    n0, n1 = net.corr.shape
    if n0 != n1 or not np.array_equal(net.corr.image, checkerboard(n0).astype(net.dtype)):
        raise ValueError("the σ-map is derived for the square pixel checkerboard image only")
    return SigmaMap(image_size=n0, kernel_size=net.kernel_size, alpha=net.alpha, beta=net.beta, y=net.y,
                    pooling=net.pooling)


# ---------------------------------------------------------------------------------------------
# The thresholds measured on the full scheme (bisection)
# ---------------------------------------------------------------------------------------------


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
# Reading the map: the steps to show
# ---------------------------------------------------------------------------------------------


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
