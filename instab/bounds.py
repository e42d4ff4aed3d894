"""Stability formulas of the paper, as plain functions of NumPy arrays (no torch).

Each function cites the equation it implements.  Section 3 (heat equation) comes first; the
one-layer CNN bounds of §5 / App. C–D and the multilayer bound of App. E follow.
"""

from __future__ import annotations

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
