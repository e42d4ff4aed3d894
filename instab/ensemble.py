"""Decisions by ensembles: turning several perturbed runs' outcomes, or an interval, into a
verdict (holds, fails, or undecided) — the rules every chapter's chaotic claims use.

A claim about where a chaotic run ends up is never read off one run: it is a statistic over an
ensemble of perturbations with an interval, and the interval decides (:func:`band_decision`,
:func:`floor_decision`); a claim over members that each decide is :func:`unanimous`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["band_decision", "floor_decision", "unanimous", "mean_interval", "prediction_interval"]


def band_decision(interval: Sequence[float], band: Sequence[float]) -> bool | None:
    """An equivalence test on an interval: True if it lies inside ``band`` = [low, high], False if
    it lies wholly outside, None (undecided) if it straddles an end."""
    lo, hi = interval
    if band[0] <= lo and hi <= band[1]:
        return True
    return False if hi < band[0] or lo > band[1] else None


def floor_decision(interval: Sequence[float], floor: float) -> bool | None:
    """True if an interval lies above ``floor``, False if below it, None if it contains it."""
    lo, hi = interval
    return True if lo > floor else False if hi < floor else None


def unanimous(outcomes: Sequence[bool]) -> bool | None:
    """An ensemble's decision: True if every member's outcome holds, False if none does, None
    (undecided) if the members disagree."""
    o = [bool(x) for x in outcomes]
    if not o:
        raise ValueError("unanimous needs at least one outcome")
    return True if all(o) else False if not any(o) else None


def mean_interval(values: Sequence[float], *, level: float = 0.95, n_boot: int = 2000,
                  seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its percentile bootstrap interval."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        v = float(x.mean()) if x.size else math.nan
        return v, v, v
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(x.mean()), float(lo), float(hi)


def prediction_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): where one more draw of the population of ``values`` falls with
    probability ``level`` — Student's t prediction interval mean ± t_{n−1} · s · √(1 + 1/n), exact
    for normal draws at every n ≥ 2 (scipy.stats.t).  NaN bounds for fewer than 2 values."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return (float(x.mean()) if x.size else math.nan), math.nan, math.nan
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1)) * float(x.std(ddof=1)) * math.sqrt(1 + 1 / x.size)
    m = float(x.mean())
    return m, m - half, m + half
