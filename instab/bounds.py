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
