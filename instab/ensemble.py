"""Decisions by ensembles: turning several perturbed runs' outcomes, or an interval, into a
verdict (holds, fails, or undecided) — the rules every chapter's chaotic claims use.

A claim about where a chaotic run ends up is never read off one run: it is a statistic over an
ensemble of perturbations with an interval, and the interval decides (:func:`band_decision`,
:func:`floor_decision`); a claim over members that each decide is :func:`unanimous`.  The ratio
of a k × seed grid's two STDs (paper Tables 1, 4, 5) has its interval from :func:`std_ratio`; a
grid's whole summary is :func:`spread` (a :class:`Spread`), with the test of a k effect common to
every seed (:func:`k_effect_p`), its share of the spread over k (:func:`k_effect_share`) and the
decision between the two (:func:`k_effect_decision`).  :func:`pairwise_disagreement` is the share
of test images several runs label differently, with its interval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["band_decision", "floor_decision", "unanimous", "mean_interval", "prediction_interval",
           "proportion_interval", "bootstrap_interval", "std_ratio", "diverged", "seeds_without", "Spread", "spread",
           "k_effect_p", "k_effect_share", "k_effect_decision", "pairwise_disagreement"]


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


def log_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Geometric mean of positive ``values`` and the Student-t interval of the mean of their log10,
    mapped back (NaN where fewer than 2 finite positive values)."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size < 2:
        return math.nan, math.nan, math.nan
    m, lo, hi = mean_interval(np.log10(x))
    return 10**m, 10**lo, 10**hi


def decided(interval: Sequence[float], decide: Callable[[Sequence[float]], bool | None]) -> bool | None:
    """``decide(interval)``, or None (undecided) where the interval is not finite."""
    return None if not np.all(np.isfinite(interval)) else decide(interval)


def paired_difference(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """Mean of the paired differences x − y (finite pairs) with its t interval; NaN if none."""
    d = np.asarray(x, float) - np.asarray(y, float)
    d = d[np.isfinite(d)]
    return mean_interval(d) if d.size else (math.nan, math.nan, math.nan)


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


def std_ratio(acc: np.ndarray | Sequence[Sequence[float]], *, level: float = 0.95, draws: int = 20_000,
              seed: int = 0) -> tuple[float, float, float]:
    """(point, low, high) of ρ = σ(k) / σ(seeds), the ratio of a [k, seed] accuracy grid's two
    population STDs (the paper's Tables 1, 4, 5): a generalized pivotal quantity (Weerahandi 1993;
    Hannig, Iyer & Patterson 2006), its median and equal-tailed ``level`` interval.

    ``acc`` is K × S (K ≥ 2 floating-point perturbations k as rows, S ≥ 2 batch-order seeds as
    columns).  The model is the crossed two-way random-effects model without replication,
    acc[k, s] = m + a_k + u_s + e_ks with variances σ_a² (a k effect shared by every seed; it may be
    0), σ_u² (the batch order) and σ_e² (each run's own outcome).  Within a seed the spread over k is
    a_k + e_ks, within a k the spread over seeds is u_s + e_ks, so

        ρ² = (σ_a² + σ_e²) / (σ_u² + σ_e²).

    Unlike the F interval it replaces (which assumed no k effect, so ρ ≤ 1) it does not assume
    σ_a = 0: ρ > 1 is estimable, and the interval can lie above 1 as well as below.

    The two-way ANOVA mean squares MS_k, MS_s, MS_e (df K − 1, S − 1, (K − 1)(S − 1)) have
    expectations θ_k = σ_e² + Sσ_a², θ_s = σ_e² + Kσ_u², θ_e = σ_e², so ρ² is a ratio of two
    combinations of them with positive coefficients, ρ² = K(θ_k + (S − 1)θ_e) / (S(θ_s + (K − 1)θ_e)).
    Each θ_x has the exact pivot R_x = MS_x · df_x / χ²(df_x) (independent chi-square draws), and

        ρ_G = √(K(R_k + (S − 1)R_e) / (S(R_s + (K − 1)R_e)))

    is the GPQ of ρ; its 50% quantile is the point and its (1 ∓ level)/2 quantiles the interval, so
    the point lies inside its own interval.  The components are not truncated at zero (σ_a², σ_u² ↦
    max(0, (R − R_e)/·)): ρ_G is positive without it, and truncating pulls ρ_G towards 1 and
    over-covers where there is neither a k nor a seed effect (ρ = 1, σ_a = σ_u = 0: 99.9% at 3 × 3,
    98.7% at 16 × 16 for a 95% interval).  Untruncated, the 95% interval covered ρ in 94.3–96.4% of
    20,000 simulated grids per case in every case ``tests/test_std_ratio.py`` checks (3 × 3, 6 × 6,
    12 × 12, 16 × 16; ρ = 0.5, 1, 1.5; with and without a k effect), and in 94–97% in boundary and
    lopsided cases (ρ from 0.2 to 5; 2 × 2, 2 × 5, 3 × 6, 6 × 3 grids).

    Deterministic: ``draws`` chi-square triples from ``numpy.random.default_rng(seed)``, the same for
    every grid of one shape, so one grid always gives bit-identical output (the Monte Carlo error of
    the quantiles at 20,000 draws: under 0.5% of the point, up to 2% of an end on a 3 × 3 grid).
    Invariant to acc → c · acc + b; transposing the grid (the roles of k and seeds swapped) gives
    1/ρ within that error.  A grid with no spread over seeds nor residual (MS_s = MS_e = 0) has
    ρ = ∞: (inf, inf, inf), or (nan, nan, nan) if it has no spread at all.  Raises ``ValueError``
    naming the value for a grid that is not 2-D with K, S ≥ 2 and finite entries, a ``level``
    outside (0, 1), or ``draws`` < 2."""
    a = np.asarray(acc, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"std_ratio: acc of shape {a.shape} is not allowed; it must be a 2-D [k, seed] grid")
    point, lo, hi = _std_ratio_grids(a, level=level, draws=draws, seed=seed)
    return float(point), float(lo), float(hi)


def _std_ratio_grids(acc: np.ndarray, *, level: float = 0.95, draws: int = 20_000,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`std_ratio` of every grid of ``acc`` [..., K, S] at once (a simulation's many grids):
    arrays (point, low, high) of shape ``acc.shape[:-2]``, each grid's values those of
    :func:`std_ratio` on it alone (the same chi-square draws for every grid)."""
    a = np.asarray(acc, dtype=float)
    if a.ndim < 2 or min(a.shape[-2:]) < 2:
        raise ValueError(f"std_ratio: acc of shape {a.shape} is not allowed; it needs K >= 2 k values (rows) "
                         "and S >= 2 seeds (columns)")
    if not np.all(np.isfinite(a)):
        bad = float(a[~np.isfinite(a)].flat[0])
        raise ValueError(f"std_ratio: acc value {bad!r} is not allowed; every accuracy must be finite")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ValueError(f"std_ratio: level={level!r} is not allowed; it must be a number in (0, 1)")
    if isinstance(draws, bool) or not isinstance(draws, int | np.integer) or draws < 2:
        raise ValueError(f"std_ratio: draws={draws!r} is not allowed; it must be an integer >= 2")
    k, s = a.shape[-2:]
    lead = a.shape[:-2]
    a = a.reshape(-1, k, s)
    # two-way ANOVA without replication: rows k, columns seeds
    rows, cols = a.mean(axis=2, keepdims=True), a.mean(axis=1, keepdims=True)
    grand = rows.mean(axis=1, keepdims=True)
    ms_k = s * ((rows - grand) ** 2).sum(axis=(1, 2)) / (k - 1)
    ms_s = k * ((cols - grand) ** 2).sum(axis=(1, 2)) / (s - 1)
    ms_e = ((a - rows - cols + grand) ** 2).sum(axis=(1, 2)) / ((k - 1) * (s - 1))
    # R_x = MS_x · df_x / χ²(df_x): the pivots' factors, drawn once for every grid
    rng = np.random.default_rng(seed)
    w_k, w_s, w_e = (df / rng.chisquare(df, draws) for df in (k - 1, s - 1, (k - 1) * (s - 1)))
    num_w, den_w = (w_k / s, (s - 1) * w_e / s), (w_s / k, (k - 1) * w_e / k)
    q = [0.5, (1 - level) / 2, (1 + level) / 2]
    out = np.empty((3, a.shape[0]))
    chunk = max(1, 1_000_000 // draws)  # grids per step: ~8 MB per array
    for i in range(0, a.shape[0], chunk):
        part = slice(i, i + chunk)
        num = ms_k[part, None] * num_w[0] + ms_e[part, None] * num_w[1]  # σ_a² + σ_e², per draw
        den = ms_s[part, None] * den_w[0] + ms_e[part, None] * den_w[1]  # σ_u² + σ_e²
        none = den[:, 0] == 0  # no spread over seeds nor residual
        ratio = np.sqrt(num / np.where(none[:, None], 1.0, den))
        out[:, part] = np.where(none, np.where(num[:, 0] > 0, math.inf, math.nan),
                                       np.quantile(ratio, q, axis=1))
    point, lo, hi = out.reshape(3, *lead)
    return point, lo, hi


def diverged(acc: np.ndarray | Sequence[float], *, chance: float, factor: float) -> np.ndarray:
    """Which runs diverged: a final test accuracy that is not finite or below ``factor`` × the
    accuracy of chance (``chance``: 1 / classes, as a share or in % like ``acc``).  A diverged run is
    data, not noise: it is counted (:func:`proportion_interval`) and kept out of a standard
    deviation (:func:`seeds_without`), never averaged into one.  Returns a boolean array shaped
    like ``acc``."""
    a = np.asarray(acc, dtype=float)
    if not (chance > 0 and factor > 0):
        raise ValueError(f"diverged: chance and factor must be positive, got chance={chance!r}, factor={factor!r}")
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(a) | (a < factor * chance)


def seeds_without(mask: np.ndarray) -> np.ndarray:
    """The columns (seeds) of a k × seed grid with no run flagged in ``mask`` (:func:`diverged`), as
    indices: the grid the STD ratio is computed on.  A whole seed is left out, not one run, so the
    grid stays balanced; the rule is fixed before the run (``sgd-diverged-runs`` in the registry)."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"seeds_without: the mask must be a k × seed grid, got shape {m.shape}")
    return np.flatnonzero(~m.any(axis=0))


# ------------------------------------------------------------------------------- k × seed grids
def k_effect_p(table: np.ndarray) -> float:
    """p-value of a k effect common to every seed (two-way ANOVA without replication, F test of
    the k rows against the residual, ``scipy.stats.f``).  Without one (the k values exchangeable:
    no perturbation shifts accuracy the same way for every batch order) the law of total variance
    gives σ(seeds)² = σ(k)² + Var_s(E[acc | s]) ≥ σ(k)², so ρ ≤ 1 in expectation; with one, ρ may
    exceed 1.  :func:`std_ratio` assumes neither."""
    k, s, ms_k, ms_e = _k_mean_squares(table)
    if ms_e == 0:
        return math.nan
    return float(stats.f.sf(ms_k / ms_e, k - 1, (k - 1) * (s - 1)))


def _k_mean_squares(table: np.ndarray) -> tuple[int, int, float, float]:
    """(K, S, MS_k, MS_e): a [k, seed] grid's two-way ANOVA mean squares of the k rows and of the
    residual (no replication)."""
    t = np.asarray(table, dtype=float)
    k, s = t.shape
    g, rows, cols = t.mean(), t.mean(axis=1, keepdims=True), t.mean(axis=0, keepdims=True)
    ms_k = s * float(((rows - g) ** 2).sum()) / (k - 1)
    ms_e = float(((t - rows - cols + g) ** 2).sum()) / ((k - 1) * (s - 1))
    return k, s, ms_k, ms_e


def k_effect_share(table: np.ndarray, *, level: float = 0.95, draws: int = 20_000,
                   seed: int = 0) -> tuple[float, float]:
    """How much of the spread over k within a seed is a k effect shared by every seed: the share
    π = σ_a² / (σ_a² + σ_e²) of the crossed model of :func:`std_ratio`, as its generalized pivotal
    quantity (R_k = MS_k·df_k/χ², R_e likewise; σ_a² = max(0, (R_k − R_e)/S), a variance),
    returned as (median, one-sided ``level`` upper bound).  (nan, nan) for a grid with no residual
    spread.  Coverage of the upper bound checked by simulation (``tests/test_k_effect_share.py``)."""
    k, s, ms_k, ms_e = _k_mean_squares(table)
    if ms_e == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    r_k = ms_k * (k - 1) / rng.chisquare(k - 1, draws)
    r_e = ms_e * (k - 1) * (s - 1) / rng.chisquare((k - 1) * (s - 1), draws)
    a = np.maximum(0.0, (r_k - r_e) / s)
    share = a / (a + r_e)
    return float(np.quantile(share, 0.5)), float(np.quantile(share, level))


def k_effect_decision(ps: Sequence[float], uppers: Sequence[float], alpha: float,
                      share_max: float) -> list[bool | None]:
    """Per grid, is there no material k effect common to every seed?  False (a k effect) when its F
    test's p < alpha / m (Bonferroni over the m grids); True when the upper bound of its share of
    the spread over k (:func:`k_effect_share`) lies below ``share_max`` (an equivalence test: absence
    shown, not merely not detected); otherwise None (the grid cannot tell)."""
    m = len(ps)
    out: list[bool | None] = []
    for q, up in zip(ps, uppers, strict=True):
        out.append(None if not np.isfinite(q) else False if q < alpha / m
                   else True if np.isfinite(up) and up < share_max else None)
    return out


@dataclass
class Spread:
    """STDs of an accuracy table [k, seed] and their ratio (:func:`spread`).

    - ``std_over_seeds``: per k, the STD over batch-order seeds (the SGD noise; Table 1's STD column);
    - ``std_over_k``: per seed, the STD over the floating-point perturbations k (Table 1's STD row);
    - ``fp_std``, ``sgd_std``: their means as the paper prints them (population STD, ddof = 0), and
      ``paper_ratio`` = fp_std / sgd_std, the paper's own statistic (shown beside its tables);
    - ``ratio`` and ``ratio_interval``: the population ratio ρ = σ(k) / σ(seeds), point and 95%
      interval from one estimator (:func:`std_ratio`: a crossed random-effects model with or
      without a k effect, so ρ > 1 is possible; coverage tested by simulation), and
      ``variance_ratio`` = ρ² with its interval (the paper speaks of variances);
    - ``k_effect_p``: the test of a k effect common to every seed (:func:`k_effect_p`), and
      ``k_effect_share``: its share of the spread over k, median and upper bound (:func:`k_effect_share`);
    - ``alternatives``: where a grid had a diverged run, the ratio's intervals computed two other
      ways, by name (empty otherwise; set by the study that left the run out).
    """

    mean: float
    std_over_seeds: np.ndarray
    std_over_k: np.ndarray
    fp_std: float
    sgd_std: float
    paper_ratio: float
    ratio: float
    ratio_interval: tuple[float, float]
    variance_ratio: float
    variance_ratio_interval: tuple[float, float]
    k_effect_p: float
    k_effect_share: tuple[float, float]
    alternatives: dict[str, tuple[float, float]] = field(default_factory=dict)

    def intervals(self) -> list[tuple[float, float]]:
        """The ratio's 95% interval, then its ``alternatives``."""
        return [self.ratio_interval, *self.alternatives.values()]

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, in order (``alternatives`` only where there are some): a results value."""
        out = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "alternatives"}
        return {**out, "alternatives": self.alternatives} if self.alternatives else out


def spread(table: np.ndarray) -> Spread:
    """The :class:`Spread` of an accuracy table [k, seed] (at least 2 × 2)."""
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or min(t.shape) < 2:
        raise ValueError(f"spread needs a [k, seed] table with at least 2×2 entries, got shape {t.shape}")
    over_seeds, over_k = t.std(axis=1), t.std(axis=0)
    fp, sgd = float(over_k.mean()), float(over_seeds.mean())
    point, lo, hi = std_ratio(t)
    return Spread(float(t.mean()), over_seeds, over_k, fp, sgd, fp / sgd if sgd > 0 else math.inf, point, (lo, hi),
                  point**2, (lo**2, hi**2), k_effect_p(t), k_effect_share(t))


def pairwise_disagreement(predictions: Sequence[np.ndarray], *, interval: bool = True,
                          level: float = 0.95) -> dict[str, float]:
    """Mean share of test images classified differently over all pairs of runs, with a 95% interval
    over the test images (given these runs) when ``interval``:

    - two runs: the share is a proportion of independent trials (each test image differs or not),
      so the Wilson interval (:func:`proportion_interval`);
    - more runs: per image, the share of the pairs that label it differently is no binomial count
      (the pairs share runs), and there are ≥ 10 images: the BCa bootstrap over the images
      (:func:`bootstrap_interval`)."""
    p = np.stack([np.asarray(x) for x in predictions])
    if p.shape[0] < 2:
        raise ValueError("pairwise_disagreement needs at least two runs")
    pairs = list(itertools.combinations(range(p.shape[0]), 2))
    diff = np.stack([p[i] != p[j] for i, j in pairs]).mean(axis=0)  # per image: share of pairs differing
    out = {"mean": float(diff.mean()), "low": math.nan, "high": math.nan, "pairs": len(pairs)}
    if interval:
        if len(pairs) == 1:
            lo, hi = proportion_interval(int(diff.sum()), diff.size, level=level)
        else:
            lo, hi = bootstrap_interval(diff, level=level)
        out.update(low=lo, high=hi)
    return out
