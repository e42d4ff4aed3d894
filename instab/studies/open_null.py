"""Jordan's null model for Tables 1/4 (``book/open_questions.md``, {cite}`jordan2024variance`): the
spread of test accuracy that independent errors alone would give, against the spread measured.

- :func:`null_model` — :class:`NullModel`: per arm of the grid (:class:`NullArm`) the null's STD
  over k and over seeds and the measured STDs with their χ² intervals; its ``report()`` and
  ``claims()``.
- Pure rules: :func:`std_interval` (:class:`Spread`), :func:`disagreement_std`,
  :func:`null_model_claims`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from instab.controllers import TrackedRun
from instab.ensemble import band_decision
from instab.findings import tolerance
from instab.report import Claim
from instab.studies.open_questions import OpenPlan, judge
from instab.train import Variant

__all__ = ["NULL_FINDINGS", "Spread", "std_interval", "disagreement_std", "NullArm", "NullModel", "null_model",
           "null_model_claims", "null_model_report"]

#: The registry's findings for the null model (their tolerance: a factor either way).
NULL_FINDINGS = {"seeds": "oq-null-model-seeds", "k": "oq-null-model-k"}


class Spread(NamedTuple):
    """A STD (or a ratio of STDs) with its interval."""

    value: float
    low: float
    high: float


def std_interval(acc: np.ndarray, axis: str, *, level: float = 0.95) -> Spread:
    """The pooled STD of accuracies ``acc`` [k, seed] over k (``axis="k"``: within each seed,
    S(K − 1) degrees of freedom) or over seeds (``"seeds"``: within each k, S − 1 — only the seeds
    are independent), with its χ² interval (``scipy.stats.chi2``): (std, low, high)."""
    acc = np.asarray(acc, float)
    k, s = acc.shape
    if axis == "k":
        v, df = acc.var(axis=0, ddof=1).mean(), s * (k - 1)
    elif axis == "seeds":
        v, df = acc.var(axis=1, ddof=1).mean(), s - 1
    else:
        raise ValueError(f"axis={axis!r} is not allowed; 'k' or 'seeds'")
    hi_q, lo_q = stats.chi2.ppf([(1 + level) / 2, (1 - level) / 2], df)
    return Spread(math.sqrt(v), math.sqrt(v * df / hi_q), math.sqrt(v * df / lo_q))


def disagreement_std(rate: float, n: int) -> float:
    """Jordan's null model (ICLR 2024): if two runs differ in *correctness* on a test example (one
    right, the other wrong) at ``rate`` (the mean over pairs of runs) and each example errs
    independently, one run's test accuracy has the STD 100·√(rate / (2n)) points over ``n`` test
    examples (Σ pᵢ(1 − pᵢ) = n·rate/2 for runs drawn alike).  Two wrong labels that differ are no
    disagreement in correctness."""
    return float(100 * math.sqrt(rate / (2 * n)))


def _mean_disagreement(errors: np.ndarray) -> float:
    """Mean over the leading axis of the mean pairwise disagreement in correctness along the next
    one: ``errors`` [group, run, example] (booleans: the run is wrong on the example)."""
    g, r, _ = errors.shape
    pairs = [(a, b) for a in range(r) for b in range(a + 1, r)]
    return float(np.mean([np.mean(errors[:, a] != errors[:, b], axis=-1) for a, b in pairs]))


@dataclass
class NullArm:
    """One arm's null model: the predicted STD per axis (``"k"``, ``"seeds"``), the disagreement
    rates it is drawn from, and the measured STDs over ``seeds`` and over ``k`` (:class:`Spread`),
    in points."""

    predicted: dict[str, float]
    seeds: Spread
    k: Spread
    disagreement: dict[str, float] | None = None

    def spread(self, axis: str) -> Spread:
        """The measured STD over ``axis`` (``"seeds"`` or ``"k"``)."""
        return {"seeds": self.seeds, "k": self.k}[axis]


@dataclass
class NullModel:
    """The null model of every arm of the grid, by arm name."""

    arms: dict[str, NullArm]

    def report(self) -> str:
        return null_model_report(self)

    def claims(self, shown_in: str = "fig-oq-null") -> list[Claim]:
        return null_model_claims(self, shown_in)


def null_model(p: OpenPlan, runs: Mapping[TrackedRun, Mapping[str, Any]]) -> NullModel:
    """Per optimizer, the null model's STD per axis (``predicted``: :func:`disagreement_std`) — over
    k from the disagreement in correctness between the k runs *of one seed* (they share its batch order: the null
    is within the seed), over seeds from the disagreement between seeds at one k — and the measured
    ``seeds`` and ``k`` STDs with their intervals (:func:`std_interval`), in points."""
    out = {}
    for name, cells in p.grid.items():
        labels = np.asarray(runs[cells[0]]["labels"], int)
        preds = np.array([[runs[c]["predictions"][Variant(k).name] for c in cells] for k in p.k_values], int)
        errors = preds != labels  # [k, seed, example]
        acc = 100 * (1 - errors.mean(axis=-1))
        within, between = _mean_disagreement(errors.transpose(1, 0, 2)), _mean_disagreement(errors)
        out[name] = NullArm(predicted={"k": disagreement_std(within, labels.size),
                                       "seeds": disagreement_std(between, labels.size)},
                            disagreement={"k": within, "seeds": between},
                            seeds=std_interval(acc, "seeds"), k=std_interval(acc, "k"))
    return NullModel(out)


def null_model_claims(nm: NullModel, shown_in: str = "fig-oq-null") -> list[Claim]:
    """Measured STD over seeds, and over k, against the null model of the same axis
    (:func:`null_model`), per optimizer: the 95% interval of measured / predicted inside [1/f, f]
    (f: the registry's tolerance) → holds (``extension``), wholly outside → refuted, else
    inconclusive; plain SGD's rows decide."""
    out = []
    for axis, fid in NULL_FINDINGS.items():
        f = tolerance(fid, "factor")
        for name, m in nm.arms.items():
            pred, (sd, lo, hi) = m.predicted[axis], m.spread(axis)
            sane = bool(np.all(np.isfinite([sd, lo, hi])))
            # runs that never disagree predict no spread: with none measured either, nothing to compare
            usable = sane and pred > 0
            iv = [lo / pred, hi / pred] if usable else [math.nan, math.nan]
            out.append(judge(f"null model, {name}: STD over {axis} / null prediction",
                             sd / pred if usable else math.nan, iv,
                             criterion=f"95% χ² interval of measured / predicted STD inside [1/{f:g}, {f:g}] → "
                                       "holds, outside → refuted, else inconclusive (no disagreement: nothing "
                                       "to compare)",
                             holds=band_decision(iv, [1 / f, f]) if usable else None, sane=sane,
                             shown_in=shown_in))
    return out


def null_model_report(nm: NullModel) -> str:
    lines = [f"{'':8s} {'STD over seeds [95%]':>26s} {'null':>6s} {'STD over k [95%]':>26s} {'null':>6s}   (points)"]
    for name, m in nm.arms.items():
        cells = [f"{s.value:7.3f} [{s.low:.3f}, {s.high:.3f}] {m.predicted[a]:6.3f}"
                 for a, s in (("seeds", m.seeds), ("k", m.k))]
        lines.append(f"{name:8s} {cells[0]:>33s} {cells[1]:>33s}")
    return "\n".join(lines)
