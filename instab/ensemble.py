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
from scipy import stats

__all__ = ["band_decision", "floor_decision", "unanimous", "mean_interval", "prediction_interval",
           "proportion_interval", "bootstrap_interval"]


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


def mean_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its Student-t interval (``scipy.stats.t``).

    For the mean over a few independent runs (seeds, 2 ≤ n ≲ 20) whose values are themselves
    averages (so near normal): the t interval covers the mean at its level for any n ≥ 2, where a
    percentile bootstrap over n = 3 values lies inside [min, max] and covers a symmetric mean only
    about 75% of the time.  n = 1 has no estimate of the spread: (value, nan, nan), which every
    decision (:func:`band_decision`, :func:`floor_decision`) reads as undecided.  n values that are
    all equal give the degenerate interval (value, value, value)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_interval needs at least one value")
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    se = float(stats.sem(x))
    if se == 0:
        return m, m, m
    lo, hi = stats.t.interval(level, x.size - 1, loc=m, scale=se)
    return m, float(lo), float(hi)


def prediction_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): where one more draw of the population of ``values`` falls with
    probability ``level`` — Student's t prediction interval mean ± t_{n−1} · s · √(1 + 1/n), exact
    for normal draws at every n ≥ 2 (scipy.stats.t).  NaN bounds for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return (float(x.mean()) if x.size else math.nan), math.nan, math.nan
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1)) * float(x.std(ddof=1)) * math.sqrt(1 + 1 / x.size)
    m = float(x.mean())
    return m, m - half, m + half


def proportion_interval(successes: int, trials: int, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion of ``trials`` independent trials
    (``scipy.stats.binomtest``): e.g. the share of test images two runs label differently, each
    image one trial.  Unlike a bootstrap it stays inside [0, 1] and keeps its coverage near 0 and 1."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"proportion_interval: {successes} of {trials} trials is not allowed")
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(level, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap_interval(values: Sequence[float] | np.ndarray, *, level: float = 0.95, n_resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of ``values`` (``scipy.stats.bootstrap``), for n ≥ 10
    values with no parametric form (e.g. per test image, the share of several runs' pairs that
    label it differently: not a binomial count).  Raises ``ValueError`` below n = 10, where the
    bootstrap does not know the tails (use :func:`mean_interval`)."""
    x = np.asarray(values, dtype=float)
    if x.size < 10:
        raise ValueError(f"bootstrap_interval needs n >= 10 values, got {x.size}; use mean_interval")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap((x,), np.mean, confidence_level=level, n_resamples=n_resamples, method="BCa",
                          batch=max(1, 2_000_000 // x.size), rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
