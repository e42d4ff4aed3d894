"""The exact windowed bounds of the linearised one-layer CNN measured across windows, image sizes
and steps (§5.3, Table 2; App. C.3): the computations behind the linear chapter's table and figures.

- :class:`Row` / :func:`window_row` — one window w of Table 2: M's extreme eigenvalues (Lanczos),
  the exact interval (:func:`instab.pde.onelayer.windowed_alpha_bounds`) and the one found by
  simulation (:func:`instab.pde.onelayer.empirical_alpha_bounds`);
- :func:`window_minima` — the exact windowed α_min against the window size (the paper's conjecture);
- :func:`top_eigenvalue` / :func:`continuum_ratios` — λ_max(M) of the valid correlation on any
  (padded) image, and the windowed α_min over (13) with the full and the circular correlation;
- :class:`StabilityMap` / :func:`stability_map` — simulated stability of scheme (10) over an
  (α, Δt) grid against the exact bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from instab import bounds
from instab.bounds import AlphaBounds
from instab.pde import images
from instab.pde.correlate import Correlator, padded
from instab.pde.onelayer import LinearisedCNN, empirical_alpha_bounds, windowed_alpha_bounds


@dataclass
class Row:
    """One window w of Table 2: M's extreme eigenvalues, the exact interval and the bisected one."""

    w: int
    spectrum: tuple[float, float]
    exact: AlphaBounds
    found: AlphaBounds


def window_row(image: np.ndarray, w: int, dt: float, a: float, beta: float, *, n_steps: int, seed: int) -> Row:
    """Table 2 at window w: the exact windowed interval from M's spectrum (Lanczos) and the one
    found by simulation of scheme (10), ``n_steps`` steps per α (:func:`empirical_alpha_bounds`)."""
    spectrum = LinearisedCNN(image, w, a, beta).spectrum()
    exact = windowed_alpha_bounds(image, w, dt, a, beta, spectrum=spectrum)
    found = empirical_alpha_bounds(image, w, dt, a, beta, n_steps=n_steps, seed=seed)
    return Row(w, spectrum, exact, found)


def window_minima(image: np.ndarray, windows: Sequence[int], dt: float, a: float, beta: float) -> np.ndarray:
    """The exact windowed α_min for each window w of ``windows``."""
    return np.array([windowed_alpha_bounds(image, w, dt, a, beta).alpha_min for w in windows])


def top_eigenvalue(image: np.ndarray, w: int) -> float:
    """λ_max(M) of M = C⊤C, C the valid correlation of a w×w kernel with ``image`` (float64;
    Lanczos with a fixed start, a dense eigensolver below w² = 64)."""
    corr, n = Correlator(np.asarray(image, dtype=np.float64)), w * w

    def matvec(v: np.ndarray) -> np.ndarray:
        return corr.valid(corr.valid(v.reshape(w, w))).ravel()

    if n <= 64:
        dense = np.stack([matvec(col) for col in np.eye(n)], axis=1)
        return float(np.linalg.eigvalsh((dense + dense.T) / 2.0)[-1])
    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n)
    return float(eigsh(op, k=1, which="LA", tol=1e-10, v0=v0, return_eigenvectors=False)[0])


def continuum_ratios(kind: str, sizes: Sequence[int], factors: Sequence[float],
                     seed: int) -> tuple[np.ndarray, list[float]]:
    """For each image size N of ``sizes`` (a ``kind`` image, :func:`instab.pde.images.make`) and
    window w = factor · N of ``factors``: the windowed α_min with the **full** correlation over
    (13)'s α_min, λ_max(M)/max|Î|² (a and β cancel); and the same with the circular correlation
    at w = N.  Returns (ratios: len(sizes) × len(factors), circular: one per size)."""
    ratio, circular = [], []
    for n in sizes:
        image = images.make(kind, n, seed).astype(np.float64)
        peak = float(bounds.fourier_spectrum(image).max())
        ratio.append([top_eigenvalue(padded(image, w, "full"), w) / peak
                      for w in (max(1, round(c * n)) for c in factors)])
        circular.append(top_eigenvalue(padded(image, n, "circular"), n) / peak)
    return np.array(ratio), circular


@dataclass
class StabilityMap:
    """Simulated growth (``grows``) and the exact bounds' prediction (``predicted``: unstable) on the
    grid ``dts`` × ``alphas``; ``spectrum`` is M's (λ_min, λ_max) at the map's window."""

    alphas: np.ndarray
    dts: np.ndarray
    grows: np.ndarray
    predicted: np.ndarray
    spectrum: tuple[float, float]


def stability_map(image: np.ndarray, w: int, a: float, beta: float, alpha_range: Sequence[float],
                  dt_range: Sequence[float], *, cells: int, steps: int, seed: int) -> StabilityMap:
    """One simulation of scheme (10) at window w per (α, Δt) cell of a ``cells`` × ``cells``
    geometric grid over ``alpha_range`` × ``dt_range`` (growth per step over ``steps`` steps > 1:
    unstable) and the exact windowed bounds' verdict on it."""
    model = LinearisedCNN(image, w, a, beta)
    spectrum = model.spectrum()
    (alo, ahi), (dlo, dhi) = alpha_range, dt_range
    alphas = np.geomspace(alo, ahi, cells)
    dts = np.geomspace(dlo, dhi, cells)
    grows = np.array([[model.growth_rate(al, d, steps, seed=seed) > 1.0 for al in alphas] for d in dts])
    predicted = np.array([[not windowed_alpha_bounds(image, w, d, a, beta, spectrum=spectrum).contains(al)
                           for al in alphas] for d in dts])
    return StabilityMap(alphas, dts, grows, predicted, spectrum)

