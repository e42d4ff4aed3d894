"""The heat equation u_t = u_xx discretised by scheme (2) of the paper (§3, Fig. 1).

Forward Euler in time, the three-point Laplacian in space, homogeneous Dirichlet boundaries:
``u^{n+1}(x) = u^n(x) + r [u^n(x+Δx) − 2u^n(x) + u^n(x−Δx)]`` with ``r = Δt/Δx²``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from instab import numerics


def spatial_grid(length: float = 30.0, dx: float = 1.0) -> np.ndarray:
    """Points 0, Δx, ..., L of the interval [0, L] (boundaries included)."""
    if length <= 0 or dx <= 0:
        raise ValueError(f"length and dx must be positive, got length={length}, dx={dx}")
    n = round(length / dx)
    if not np.isclose(n * dx, length):
        raise ValueError(f"length={length} is not a multiple of dx={dx}")
    return np.linspace(0.0, length, n + 1)


def triangle(x: ArrayLike, peak: float | None = None, half_width: float | None = None,
             height: float = 1.0) -> np.ndarray:
    """A triangle (hat) initial condition centred at ``peak``, zero outside ``peak ± half_width``.

    Defaults: centred on the interval, reaching its ends (Fig. 1's blue curve).
    """
    x = np.asarray(x, dtype=float)
    lo, hi = float(x[0]), float(x[-1])
    peak = 0.5 * (lo + hi) if peak is None else peak
    half_width = 0.5 * (hi - lo) if half_width is None else half_width
    if half_width <= 0:
        raise ValueError(f"half_width must be positive, got {half_width}")
    return height * np.clip(1.0 - np.abs(x - peak) / half_width, 0.0, None)


def step(u: np.ndarray, r: float) -> np.ndarray:
    """One step of scheme (2), Dirichlet boundaries u[0] = u[-1] = 0 kept fixed. Returns a new array."""
    out = np.zeros_like(u)
    # Evaluated in the order written in (2): u + r * (u₊ − 2u + u₋).
    out[1:-1] = u[1:-1] + u.dtype.type(r) * (u[2:] - 2 * u[1:-1] + u[:-2])
    return out


@dataclass
class HeatRun:
    """A run of scheme (2): ``snapshots[i]`` is u at step ``steps[i]``; ``sup[n]`` is max|u^n|."""

    r: float
    x: np.ndarray
    steps: np.ndarray
    snapshots: np.ndarray
    sup: np.ndarray


def simulate(u0: ArrayLike, r: float, n_steps: int, snapshot_steps: ArrayLike = (),
             dtype: type = np.float64) -> HeatRun:
    """Run scheme (2) for ``n_steps`` steps from ``u0`` (boundary values are forced to 0).

    Records max|u^n| at every step and full profiles at ``snapshot_steps``.  Overflow to ±inf is
    allowed (it is what an unstable scheme does) and is silenced.
    """
    if r <= 0:
        raise ValueError(f"r = dt/dx^2 must be positive, got {r}")
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    u: np.ndarray = np.array(u0, dtype=dtype)
    if u.ndim != 1 or u.size < 3:
        raise ValueError(f"u0 must be a 1-D array of at least 3 points, got shape {u.shape}")
    u[0] = u[-1] = 0
    # snapshot_steps must be iterable here (a sequence or 1-D array of step numbers)
    wanted = sorted({int(s) for s in cast(Iterable[Any], snapshot_steps) if 0 <= int(s) <= n_steps})
    keep = set(wanted)
    snaps, sup = [], np.empty(n_steps + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(n_steps + 1):
            if n:
                u = step(u, r)
            sup[n] = np.max(np.abs(u))
            if n in keep:
                snaps.append(u.copy())
    return HeatRun(r=r, x=np.arange(u.size), steps=np.array(wanted, dtype=int),
                   snapshots=np.array(snaps), sup=sup)


def one_ulp_difference(u0: ArrayLike, r: float, n_steps: int, index: int | None = None,
                       dtype: type = np.float64) -> np.ndarray:
    """max|u^n − u'^n| for n = 0..n_steps, where u'^0 differs from u^0 by one ulp at one point.

    ``index`` is the perturbed point (default: the middle); the perturbation is
    ``numpy.nextafter(u0[index], +inf)`` — the smallest representable change.
    """
    u: np.ndarray = np.array(u0, dtype=dtype)
    u[0] = u[-1] = 0
    v = u.copy()
    i = u.size // 2 if index is None else index
    if not 0 < i < u.size - 1:
        raise ValueError(f"index must be an interior point 1..{u.size - 2}, got {i}")
    v[i] = np.nextafter(v[i], dtype(np.inf))
    diff = np.empty(n_steps + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(n_steps + 1):
            if n:
                u, v = step(u, r), step(v, r)
            diff[n] = np.max(np.abs(u - v))
    return diff


def is_attenuating(r: float, n_points: int, n_steps: int = 20000, seed: int = 0) -> bool:
    """Does scheme (2) shrink a random initial condition over ``n_steps`` steps?"""
    u = np.random.default_rng(seed).standard_normal(n_points)
    u[0] = u[-1] = 0
    sup0 = np.max(np.abs(u))
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(n_steps):
            u = step(u, r)
    return bool(np.max(np.abs(u)) <= sup0)


def empirical_cfl(n_points: int, lo: float = 0.05, hi: float = 2.0,
                  rel_tol: float = 1e-4, n_steps: int = 20000) -> float:
    """Bisection, by simulation, for the largest r = Δt/Δx² at which (2) still attenuates a random
    initial condition on an ``n_points`` grid — the measured counterpart of the CFL bound."""
    try:
        return numerics.bisect(lambda r: is_attenuating(r, n_points, n_steps), lo, hi, rtol=rel_tol).mid
    except ValueError:
        raise ValueError(f"the bracket [{lo}, {hi}] does not contain the stability threshold") from None
