"""Stability formulas of the paper, as plain functions of NumPy arrays (no torch).

Each function cites the equation it implements.  Section 3 (heat equation) comes first; the
one-layer CNN bounds of §5 / App. C–D and the multilayer bound of App. E follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

# ---------------------------------------------------------------------------------------------
# §3 — the heat equation u_t = u_xx, forward Euler in time, central differences in space, eq. (2)
# ---------------------------------------------------------------------------------------------


def heat_amplifier(omega_dx: ArrayLike, r: float) -> np.ndarray:
    """Von Neumann amplifier of scheme (2), with r = Δt/Δx².

    Substituting u^n(x) = Â^n e^{iωx} into (2) gives
    ``A(ω) = 1 + r (e^{iωΔx} − 2 + e^{−iωΔx}) = 1 − 2r [1 − cos(ωΔx)] = 1 − 4r sin²(ωΔx/2)``.

    The paper prints ``1 − r [1 − cos(ωΔx)]`` (§3, after eq. (3)): that formula lacks the factor 2
    and would put the stability limit at r < 1 instead of the CFL limit r < 1/2 that the paper
    states.  :func:`heat_amplifier_as_printed` keeps the printed form for comparison.
    """
    return 1.0 - 2.0 * r * (1.0 - np.cos(np.asarray(omega_dx, dtype=float)))


def heat_amplifier_as_printed(omega_dx: ArrayLike, r: float) -> np.ndarray:
    """The amplifier exactly as printed in the paper (§3): ``1 − r [1 − cos(ωΔx)]`` (off by 2)."""
    return 1.0 - r * (1.0 - np.cos(np.asarray(omega_dx, dtype=float)))


def heat_dirichlet_modes(n_interior: int) -> np.ndarray:
    """The frequencies ωΔx = jπ/(n+1), j = 1..n, of the sine modes that diagonalise scheme (2)
    on n interior points with homogeneous Dirichlet boundaries."""
    if n_interior < 1:
        raise ValueError(f"n_interior must be >= 1, got {n_interior}")
    return np.arange(1, n_interior + 1) * np.pi / (n_interior + 1)


def heat_max_amplification(r: float, n_interior: int | None = None) -> float:
    """max_ω |A(ω)| — over the Dirichlet modes of an n-point grid, or over all ω if n is None.

    This is the factor by which the worst error mode grows (or shrinks) per step.
    """
    omega = np.linspace(0.0, np.pi, 4097) if n_interior is None else heat_dirichlet_modes(n_interior)
    return float(np.max(np.abs(heat_amplifier(omega, r))))


def cfl_bound(dx: float = 1.0) -> float:
    """Largest stable step of scheme (2): Δt < Δx²/2, i.e. r = Δt/Δx² < 1/2 (the CFL condition, §3)."""
    if dx <= 0:
        raise ValueError(f"dx must be positive, got {dx}")
    return 0.5 * dx * dx


def heat_dirichlet_threshold(n_interior: int) -> float:
    """Exact stability limit of (2) on n interior points: the r at which the highest Dirichlet mode
    reaches A = −1, ``r* = 1 / (2 sin²(nπ / (2(n+1))))`` — slightly above 1/2, tending to it as n grows."""
    top = heat_dirichlet_modes(n_interior)[-1]
    return float(1.0 / (2.0 * np.sin(top / 2.0) ** 2))


# ---------------------------------------------------------------------------------------------
# §5.4, Table 3 and App. C.5 — the three regimes of the nonlinear PDE (8) and the linear stability
# condition of each: bounds (α_min, α_max) on the weight decay for a step Δt, and the largest
# stable Δt for a weight decay α.
# ---------------------------------------------------------------------------------------------


def table3_alpha_bounds(dt: float, *, Ibar: float, a: float, beta: float, ihat2_min: float,
                        ihat2_max: float) -> dict[str, tuple[float, float]]:
    """Table 3: the interval (α_min, α_max) on α in which each regime's linear PDE is stable.

    - activated (r' = 1, App. C.5, amplifier 1 − Δt(α + Ī²/8) at ω = 0):
      ``−Ī²/8 < α < 2/Δt − Ī²/8``;
    - transitioning (K ≈ 0, eq. (13)): ``−½aβ max|Î|² < α < 2/Δt − ½aβ min|Î|²``;
    - not activated (r' = 0, pure weight decay): ``0 < α < 2/Δt`` (α > 0 is the model's assumption).

    ``a = ŷ − y``; ``Ī`` is the sum of the image, ``|Î|²`` its power spectrum.
    """
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    i8 = Ibar * Ibar / 8.0
    return {
        "activated": (-i8, 2.0 / dt - i8),
        "transitioning": (-0.5 * a * beta * ihat2_max, 2.0 / dt - 0.5 * a * beta * ihat2_min),
        "not activated": (0.0, 2.0 / dt),
    }


def table3_max_dt(alpha: float, *, Ibar: float, a: float, beta: float, ihat2_min: float,
                  ihat2_max: float) -> dict[str, float]:
    """Table 3 solved for the step: the largest stable Δt of each regime at weight decay α
    (0 where the regime is unstable at every Δt because α is below its α_min)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    i8 = Ibar * Ibar / 8.0
    trans_ok = alpha > -0.5 * a * beta * ihat2_max
    return {
        "activated": 2.0 / (alpha + i8),
        "transitioning": 2.0 / (alpha + 0.5 * a * beta * ihat2_min) if trans_ok else 0.0,
        "not activated": 2.0 / alpha,
    }


# =============================================================================================
# §5.2–5.3, App. C.3 and App. D — the one-layer CNN linearised around K = 0, scheme (10) and the
# Nesterov scheme (51)–(52): Fourier bounds (13), (38)–(41), (59)–(61); exact windowed bounds from
# the spectrum of the windowed operator.  The schemes, the spectrum of their windowed operator (Lanczos),
# the exact windowed bounds and the search by simulation live in instab.pde.onelayer.
# =============================================================================================


@dataclass(frozen=True)
class AlphaBounds:
    """A stability interval ``alpha_min < α < alpha_max`` for the weight decay α (empty if min ≥ max)."""

    alpha_min: float
    alpha_max: float

    def contains(self, alpha: float) -> bool:
        return self.alpha_min < alpha < self.alpha_max

    @property
    def empty(self) -> bool:
        return not self.alpha_min < self.alpha_max


def fourier_spectrum(image: ArrayLike) -> np.ndarray:
    """|Î(ω)|² on the N×N DFT grid, with the **unnormalised** (sum) DFT ``Î(ω) = Σ_x I(x) e^{−iω·x}``
    (``numpy.fft.fft2``'s default).

    This is the normalisation that reproduces the paper's α_min = 1.07e9 (Table 2): for the ±1 pixel
    checkerboard Î = N²·δ(ω − (π, π)), so max|Î|² = N⁴ = 256⁴ = 4.295e9 and
    −½aβ·max|Î|² = ¼·4.295e9 = 1.074e9 with a = −0.5, β = 1.  A unitary DFT (÷N) would give 1.6e4,
    a mean over pixels (÷N²) 0.25.  |Î(ω)|² is also the spectrum of the *circular* (periodic)
    autocorrelation operator K ↦ (K ⋆ I) ⋆ I on the whole N×N grid — the w → ∞ limit of (11)–(12).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    return np.abs(np.fft.fft2(image)) ** 2


def gradient_z_limit(dt: float) -> float:
    """Forward Euler (10) on a mode with gradient amplifier z is stable iff 0 < z < 2/Δt: the mode
    is multiplied by A = 1 − Δt z each step (12), and |A| < 1 ⇔ 0 < Δt z < 2 (C.3, (38))."""
    if not dt > 0:
        raise ValueError(f"dt={dt!r} is not allowed; it must be positive")
    return 2.0 / dt


def nesterov_z_limit(dt: float, momentum: float) -> float:
    """Exact stability limit of the Nesterov scheme (51)–(52) on a quadratic, for momentum μ ∈ [0, 1).

    On a mode with gradient amplifier z (58), with q = 1 − ηz and η = (1 + μ)Δt²/2, the scheme is
    ``K^{n+1} = q[(1 + μ)K^n − μK^{n−1}]``, characteristic polynomial ``r² − (1 + μ)q r + μq``.  Both
    roots lie in the open unit disc (Jury: |μq| < 1 and (1 + μ)|q| < 1 + μq) iff
    ``−1/(1 + 2μ) < q < 1``, i.e. ``0 < ηz < 2(1 + μ)/(1 + 2μ)``, i.e.

        0 < z < 4 / ((1 + 2μ) Δt²).

    At z = 0 a root crosses +1; at the upper limit a root crosses −1 (the other is μ/(1 + 2μ)).  As
    μ → 1 this is the paper's 4/(3Δt²) of (59)–(60); at μ = 0.9, Δt = 1e-4 it is 1.4286e8 — the
    paper's *measured* α_max^e = 1.42e8 of Table 6, which (60) (1.33e8) underestimates.
    """
    mu, _ = _check_momentum(dt, momentum)
    return 4.0 / ((1.0 + 2.0 * mu) * dt * dt)


def paper_momentum_z_limit(dt: float) -> float:
    """The paper's Nesterov limit (59): ``Δt < 2/√(3z)``, i.e. ``z < 4/(3Δt²)`` — the μ → 1 form."""
    if not dt > 0:
        raise ValueError(f"dt={dt!r} is not allowed; it must be positive")
    return 4.0 / (3.0 * dt * dt)


def _check_momentum(dt: float, momentum: float) -> tuple[float, float]:
    if not dt > 0:
        raise ValueError(f"dt={dt!r} is not allowed; it must be positive")
    if isinstance(momentum, bool) or not isinstance(momentum, int | float) or not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum={momentum!r} is not allowed; it must be a number in [0, 1)")
    return float(momentum), dt


def z_limit(dt: float, momentum: float | None = None) -> float:
    """Upper limit on the gradient amplifier z: 2/Δt for scheme (10) (``momentum=None``), the exact
    Nesterov limit 4/((1 + 2μ)Δt²) for scheme (51)–(52) with momentum μ."""
    return gradient_z_limit(dt) if momentum is None else nesterov_z_limit(dt, momentum)


def alpha_interval(lam_min: float, lam_max: float, z_max: float, a: float = -0.5,
                   beta: float = 1.0) -> AlphaBounds:
    """The α for which every mode is stable, given the range [λ_min, λ_max] of the operator's spectrum.

    A mode of the linearised operator with eigenvalue λ has gradient amplifier ``z = α + ½aβλ``
    ((12), (58)); it is stable iff ``0 < z < z_max``.  For every λ in the range:

        α > max_λ (−½aβλ)   and   α < z_max − max_λ (½aβλ).

    With a < 0 this is exactly (13) / (40)–(41): α_min = −½aβ·λ_max, α_max = z_max − ½aβ·λ_min.
    (The paper writes this a < 0 form for either sign of a; for a > 0 the roles of λ_min and λ_max
    swap, which this function does.)
    """
    if lam_min > lam_max:
        raise ValueError(f"lam_min={lam_min} > lam_max={lam_max}")
    c = 0.5 * a * beta
    return AlphaBounds(alpha_min=max(-c * lam_min, -c * lam_max),
                       alpha_max=z_max - max(c * lam_min, c * lam_max))


def alpha_bounds(image: ArrayLike, dt: float, a: float = -0.5, beta: float = 1.0) -> AlphaBounds:
    """Theorem 5.4, eq. (13) (= (40)–(41)): the w → ∞ bounds of scheme (10) from |Î(ω)|²,

        α_max = 2/Δt − ½aβ·min_ω |Î(ω)|²,   α_min = −½aβ·max_ω |Î(ω)|²,

    with the DFT normalisation of :func:`fourier_spectrum`.  Table 2 (Δt = 1e-8, a = −0.5, β = 1,
    256² checkerboard): α_min = 1.07e9, α_max = 2e8 — an *empty* interval: no α is stable for w → ∞.
    """
    s = fourier_spectrum(image)
    return alpha_interval(float(s.min()), float(s.max()), gradient_z_limit(dt), a, beta)


def momentum_alpha_bounds(image: ArrayLike, dt: float, a: float = -0.5, beta: float = 1.0,
                          momentum: float | None = None) -> AlphaBounds:
    """Theorem D.3, (60)–(61), from |Î(ω)|²: ``α < 4/(3Δt²) − ½aβ·min|Î|²`` and ``α > −½aβ·max|Î|²``
    (``momentum=None``, the paper's μ → 1 form; the paper labels these α_min and α_max the other way
    round), or with the exact limit :func:`nesterov_z_limit` for a given μ."""
    s = fourier_spectrum(image)
    zmax = paper_momentum_z_limit(dt) if momentum is None else nesterov_z_limit(dt, momentum)
    return alpha_interval(float(s.min()), float(s.max()), zmax, a, beta)


def cfl_dt_bound(image: ArrayLike, alpha: float, a: float = -0.5, beta: float = 1.0,
                 momentum: bool = False) -> float:
    """Largest stable step for weight decay α, w → ∞: (38)–(39) ``Δt < 2 / max_ω z(ω)`` for scheme (10),
    or (59) ``Δt < 2/√(3 max_ω z(ω))`` for Nesterov (μ → 1), with ``z(ω) = α + ½aβ|Î(ω)|²``.

    (39) writes the maximum as ‖Î‖²_{L¹}; the CFL condition needs max_ω z.  Returns 0.0 when some
    z(ω) ≤ 0 (α below α_min: no step is stable).
    """
    z = alpha + 0.5 * a * beta * fourier_spectrum(image)
    if z.min() <= 0:
        return 0.0
    zmax = float(z.max())
    return 2.0 / np.sqrt(3.0 * zmax) if momentum else 2.0 / zmax


# ---------------------------------------------------------------------------------------------
# App. E — multilayer networks: gradient descent with weight decay α, eqs. (63)–(65)
# ---------------------------------------------------------------------------------------------


def multilayer_lr_bound(alpha: ArrayLike, sharpness: ArrayLike = 0.0) -> np.ndarray | float:
    """Largest stable learning rate of gradient descent with weight decay α, eq. (64):
    ``Δt < 2 / (α + F̂)``, where the amplifier (63) is ``A = 1 − Δt (α + F̂)``.

    ``sharpness`` is the top eigenvalue λ₀ of the data-loss Hessian (the largest F̂ of the
    linearisation); with the default 0 this is the large-α limit ``Δt < 2/α``, eq. (65).
    """
    a = np.asarray(alpha, dtype=float)
    s = np.asarray(sharpness, dtype=float)
    total = a + s
    if np.any(total <= 0):
        raise ValueError(f"alpha + sharpness must be positive, got alpha={alpha!r}, sharpness={sharpness!r}")
    out = 2.0 / total
    return float(out) if out.ndim == 0 else out
