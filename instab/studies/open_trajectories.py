"""The edge along the trajectory (§6 of the paper, ``book/open_questions.md``): fixed-lr runs below
and above the measured threshold, per seed.

- :func:`trajectories` — :class:`Trajectories`: per regime (:class:`Regime`) and seed
  (:class:`SeedTrajectory`) the stability ratio η(λ + α)/(2(1 + μ)), the onsets of amplification
  and of the edge, the shadow's growth rate; its ``report()``, ``claims(p)``, ``sentence(p)`` and
  ``value()``.
- Claim rules (pure, synthetic rows in): :func:`onset`, :func:`onset_decision`, :func:`edge_stats`
  (:class:`EdgeStats`), :func:`edge_claims`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instab.controllers import TrackedRun
from instab.ensemble import band_decision, decided, floor_decision, log_interval
from instab.findings import tolerance
from instab.growth import amplification, ulp_floor
from instab.report import Claim
from instab.stability import stability_ratio
from instab.studies.open_questions import REGIMES, Decided, OpenPlan, Params, judge
from instab.studies.sgd import network
from instab.studies.sgd_threshold import amplified_factor

__all__ = ["ONSET", "floor_multiple", "onset", "first_at_least", "SeedTrajectory", "Regime", "Trajectories",
           "trajectories", "onset_decision", "EdgeStats", "edge_stats", "edge_claims", "edge_report",
           "edge_sentence", "VALUE_KEYS"]

#: The registry's finding on where amplification begins (``floor_multiple``, ``agree``).
ONSET = "oq-onset-at-edge"
#: a seed's statistics written to ``results.json`` (value ``trajectories``)
VALUE_KEYS = ("seed", "amp_onset", "edge_onset", "rate_onset_ratio", "late_ratio", "late_batch_ratio", "max_ratio",
              "amplification", "residual")


def floor_multiple() -> float:
    """How many one-ulp floors RelL1 must reach to count as amplified (the registry's)."""
    return tolerance(ONSET, "floor_multiple")


def onset(steps: Sequence[float] | np.ndarray, rel: Sequence[float] | np.ndarray, floor: float,
          multiple: float) -> float:
    """The first recorded iteration at which RelL1 reaches ``multiple`` × the network's one-ulp
    ``floor`` (:func:`instab.growth.ulp_floor`): below the floor a perturbation has only spread
    over the weights, and the re-injected roundings alone keep it within a few floors; NaN if it
    never does."""
    return first_at_least(steps, rel, multiple * floor)


def first_at_least(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                   level: float) -> float:
    """The first recorded iteration where ``values`` reach ``level`` (NaN if never)."""
    v = np.asarray(values, float)
    hit = np.isfinite(v) & (v >= level)
    return float(np.asarray(steps, float)[np.argmax(hit)]) if hit.any() else math.nan


def _empty() -> np.ndarray:
    return np.empty(0)


@dataclass
class SeedTrajectory:
    """One seed's run: its statistics (``amp_onset``: :func:`onset`; ``edge_onset``: first ratio
    ≥ 1; ``rate_onset_ratio``: the ratio at the start of the first window with a positive growth
    rate; ``late_ratio`` / ``late_batch_ratio``: medians over the second half; ``max_ratio``;
    ``amplification`` per member, as in Fig. 2 right; ``residual``: the worst Lanczos relative
    residual), then its curves per record (empty in synthetic rows): ``steps``, ``ratio`` (λ on the
    fixed subset of ``sharp_size`` images), ``batch_ratio`` (batch sharpness), ``stepped_ratio`` (λ
    of the minibatch stepped on next), ``rel`` (median RelL1 over the members), ``lambda_min``,
    ``rate`` (the shadow's growth rate per iteration over the window ending at each record) and
    ``rate_per_time`` (÷ lr); ``floor`` is the network's one-ulp floor."""

    seed: int
    amp_onset: float
    edge_onset: float
    rate_onset_ratio: float
    late_ratio: float
    late_batch_ratio: float
    max_ratio: float
    amplification: list[float]
    residual: float
    floor: float = math.nan
    steps: np.ndarray = field(default_factory=_empty)
    ratio: np.ndarray = field(default_factory=_empty)
    batch_ratio: np.ndarray = field(default_factory=_empty)
    stepped_ratio: np.ndarray = field(default_factory=_empty)
    rel: np.ndarray = field(default_factory=_empty)
    lambda_min: np.ndarray = field(default_factory=_empty)
    rate: np.ndarray = field(default_factory=_empty)
    rate_per_time: np.ndarray = field(default_factory=_empty)

    def value(self) -> dict[str, Any]:
        """The statistics written to ``results.json`` (:data:`VALUE_KEYS`)."""
        return {k: getattr(self, k) for k in VALUE_KEYS}


@dataclass
class Regime:
    """One regime's learning rate and its runs, one per seed."""

    lr: float
    rows: list[SeedTrajectory]


@dataclass
class Trajectories:
    """The trajectories below and above the threshold (:data:`~instab.studies.open_questions.REGIMES`)."""

    regimes: dict[str, Regime]

    @property
    def floor(self) -> float:
        """The network's one-ulp floor (the first run above the threshold)."""
        return self.regimes["above"].rows[0].floor

    def report(self) -> str:
        return edge_report(self)

    def stats(self, p: Params) -> EdgeStats:
        return edge_stats(self, p)

    def claims(self, p: Params, shown_in: str = "fig-oq-edge") -> list[Claim]:
        return edge_claims(self, p, shown_in)

    def sentence(self, p: Params) -> str:
        return edge_sentence(self, p)

    def value(self) -> dict[str, Any]:
        """The results' value ``trajectories``: per regime and seed, the summary statistics."""
        return {regime: {"lr": self.regimes[regime].lr, "rows": [r.value() for r in self.regimes[regime].rows]}
                for regime in REGIMES}


def _seed_trajectory(c: TrackedRun, r: Mapping[str, Any], floor: float, multiple: float) -> SeedTrajectory:
    """One tracked run's record, read (:class:`SeedTrajectory`)."""
    steps = np.asarray(r["steps"], float)
    ratio = stability_ratio(r["lr"], r["lambda"], momentum=c.momentum, weight_decay=c.weight_decay)
    bratio = stability_ratio(r["lr"], r["batch_sharpness"], momentum=c.momentum, weight_decay=c.weight_decay)
    stepped = stability_ratio(r["lr"], r["lambda_batch"], momentum=c.momentum, weight_decay=c.weight_decay)
    rel = np.median(np.array([r["rel_l1"][m] for m in r["rel_l1"]]), axis=0)
    rate = np.asarray(r["rate"], float)
    pos = np.flatnonzero(np.isfinite(rate) & (rate > 0))
    half = steps >= steps[-1] / 2
    return SeedTrajectory(
        seed=c.init_seed, amp_onset=onset(steps, rel, floor, multiple), edge_onset=first_at_least(steps, ratio, 1.0),
        rate_onset_ratio=float(ratio[pos[0] - 1]) if pos.size else math.nan,
        late_ratio=float(np.median(ratio[half])), late_batch_ratio=float(np.median(bratio[half])),
        max_ratio=float(np.max(ratio)),
        amplification=[amplification(steps, np.asarray(r["rel_l1"][m], float), floor=floor) for m in r["rel_l1"]],
        residual=float(np.max(r["residual"])), floor=floor, steps=steps, ratio=ratio, batch_ratio=bratio,
        stepped_ratio=stepped, rel=rel, lambda_min=np.asarray(r["lambda_min"], float), rate=rate,
        rate_per_time=rate / np.asarray(r["lr"], float))


def trajectories(p: OpenPlan, runs: Mapping[TrackedRun, Mapping[str, Any]]) -> Trajectories:
    """Per regime, one :class:`SeedTrajectory` per seed, from the tracked runs' records."""
    out: dict[str, Regime] = {}
    multiple = floor_multiple()
    for regime, cells in p.trajectories.items():
        floor = ulp_floor(network(cells[0]).parameters())
        out[regime] = Regime(cells[0].lr, [_seed_trajectory(c, runs[c], floor, multiple) for c in cells])
    return Trajectories(out)


def onset_decision(rows: Sequence[SeedTrajectory], agree: float) -> Decided:
    """Amplification begins when the ratio reaches 1?  Over the seeds whose RelL1 is amplified
    (an ``amp_onset``): False if most of them amplify with no edge at all; else the 95% interval of
    the mean log10(amp_onset/edge_onset) inside ±log10(agree) → True, wholly outside → False,
    else (or with some seeds edgeless) None; fewer than 2 amplified seeds → None.  The value: the
    share of the amplified seeds that never reach the edge (NaN if none is amplified)."""
    amp = [r for r in rows if np.isfinite(r.amp_onset)]
    share = sum(not np.isfinite(r.edge_onset) for r in amp) / len(amp) if amp else math.nan
    if len(amp) < 2:
        return Decided(None, share, [math.nan, math.nan])
    edgeless = sum(not np.isfinite(r.edge_onset) for r in amp)
    both = [r.amp_onset / r.edge_onset for r in amp if np.isfinite(r.edge_onset)]
    if edgeless > len(amp) / 2:
        return Decided(False, share, [math.nan, math.nan])
    _, lo, hi = log_interval(both)
    d = decided([lo, hi], lambda iv: band_decision(iv, [1 / agree, agree]))
    return Decided(None if d is True and edgeless else d, share, [lo, hi])


@dataclass
class EdgeStats:
    """Every edge statistic with its interval and decision (what :func:`edge_claims` records)."""

    onset: Decided
    hover: Decided
    hover_batch: Decided
    amplified_above: Decided
    amplified_below: Decided
    below_max: Decided
    rate_onset: Decided
    residual: float


def _log_decided(values: Sequence[float], decide: Callable[[Sequence[float]], bool | None]) -> Decided:
    """The geometric mean of ``values`` with its interval (:func:`log_interval`), decided."""
    m, lo, hi = log_interval(values)
    return Decided(decided([lo, hi], decide), m, [lo, hi])


def edge_stats(t: Trajectories, p: Params) -> EdgeStats:
    """The edge statistics over the seeds (geometric means with their 95% intervals)."""
    above, below = t.regimes["above"].rows, t.regimes["below"].rows

    def in_band(iv: Sequence[float]) -> bool | None:
        return band_decision(iv, p.edge_band)

    amplified = {regime: _log_decided([float(np.median(r.amplification)) for r in t.regimes[regime].rows],
                                      lambda iv: floor_decision(iv, amplified_factor())) for regime in REGIMES}
    return EdgeStats(
        onset=onset_decision(above, tolerance(ONSET, "agree")),
        hover=_log_decided([r.late_ratio for r in above], in_band),
        hover_batch=_log_decided([r.late_batch_ratio for r in above], in_band),
        amplified_above=amplified["above"], amplified_below=amplified["below"],
        below_max=_log_decided([r.max_ratio for r in below], lambda iv: not floor_decision(iv, 1.0)
                               if floor_decision(iv, 1.0) is not None else None),
        rate_onset=_log_decided([r.rate_onset_ratio for r in above], in_band),
        residual=max(r.residual for regime in REGIMES for r in t.regimes[regime].rows))


def _onset_and_hover_claims(t: Trajectories, p: Params, e: EdgeStats, sane: bool, shown_in: str) -> list[Claim]:
    lo_b, hi_b = p.edge_band
    above = t.regimes["above"].lr
    multiple, agree = floor_multiple(), tolerance(ONSET, "agree")
    out = [judge("onset: amplification begins when the stability ratio reaches 1", e.onset.value, e.onset.interval,
                 criterion=(f"lr {above:g}: over the seeds whose RelL1 reaches {multiple:g} × the one-ulp floor "
                            f"(ours: the share of them that never reach ratio 1), 95% interval of the geometric "
                            f"mean of t(amplified)/t(ratio ≥ 1) inside [1/{agree:g}, {agree:g}]; "
                            "most amplified seeds never reaching ratio 1, or the interval wholly outside → refuted"),
                 holds=e.onset.holds, sane=sane, shown_in=shown_in)]
    for s, name, what in ((e.hover, "above: the stability ratio hovers near 1 (λ on the fixed subset)", "late_ratio"),
                          (e.hover_batch, "above: the batch-sharpness ratio hovers near 1", "late_batch_ratio")):
        out.append(judge(name, s.value, s.interval,
                         criterion=(f"lr {above:g}: median of η(λ+α)/(2(1+μ)) over the second half "
                                    f"of each run ({what}); 95% interval of the geometric mean over "
                                    f"seeds inside [{lo_b:g}, {hi_b:g}]; wholly outside → refuted"),
                         holds=s.holds, sane=sane, shown_in=shown_in))
    return out


def edge_claims(t: Trajectories, p: Params, shown_in: str = "fig-oq-edge") -> list[Claim]:
    """The edge-of-stability findings, each decided by a 95% interval over the seeds (the data
    decide: reproduced / refuted / inconclusive; a claim fails only when its numbers are not sane:
    a Lanczos residual above 5%)."""
    e = edge_stats(t, p)
    sane = bool(e.residual < 0.05)
    lo_b, hi_b = p.edge_band
    above, below = t.regimes["above"].lr, t.regimes["below"].lr
    out = _onset_and_hover_claims(t, p, e, sane, shown_in)
    s = e.amplified_above
    out.append(judge("above: RelL1 is amplified", s.value, s.interval,
                     criterion=(f"lr {above:g}: RelL1 growth (last 10% / first 10%, median over members) above "
                                f"×{amplified_factor():g}: 95% interval of the geometric mean over seeds"),
                     holds=s.holds, sane=sane, shown_in=shown_in))
    s = e.amplified_below
    out.append(judge("below: RelL1 is not amplified", s.value, s.interval,
                     criterion=(f"lr {below:g}: the same growth below ×{amplified_factor():g} (interval wholly "
                                "below → holds, wholly above → refuted)"),
                     holds=None if s.holds is None else not s.holds, sane=sane, shown_in=shown_in))
    s = e.below_max
    out.append(judge("below: the stability ratio stays below 1", s.value, s.interval,
                     criterion=(f"lr {below:g}: the largest ratio along each run; 95% interval of the geometric "
                                "mean over seeds wholly below 1 → holds, wholly above → refuted"),
                     holds=s.holds, sane=sane, shown_in=shown_in))
    s = e.rate_onset
    out.append(judge("growth rate: amplification starts at the quadratic limit", s.value, s.interval,
                     criterion=(f"lr {above:g}: the stability ratio where the shadow's growth rate first turns "
                                f"positive; 95% interval of the geometric mean over seeds inside [{lo_b:g}, "
                                f"{hi_b:g}] → holds; wholly below (amplified before the limit) or above → refuted"),
                     holds=s.holds, sane=sane, shown_in="fig-oq-rate"))
    return out


def edge_report(t: Trajectories) -> str:
    lines = []
    for regime in REGIMES:
        lines.append(f"{regime} the threshold, lr {t.regimes[regime].lr:g}:")
        for r in t.regimes[regime].rows:
            lines.append(f"   seed {r.seed}: ratio max {r.max_ratio:.3f}, late {r.late_ratio:.3f} "
                         f"(batch {r.late_batch_ratio:.3f}); RelL1 growth ×{np.median(r.amplification):.3g}; "
                         f"amplified at {r.amp_onset:g}, ratio ≥ 1 at {r.edge_onset:g}; growth rate > 0 at "
                         f"ratio {r.rate_onset_ratio:.3f}; Lanczos residual ≤ {r.residual:.1e}")
    return "\n".join(lines)


def edge_sentence(t: Trajectories, p: Params) -> str:
    """The sentence the chapter quotes on where amplification starts."""
    e = edge_stats(t, p)
    d, m, (lo, hi) = e.rate_onset.holds, e.rate_onset.value, e.rate_onset.interval
    where = ("at the quadratic limit" if d else "below the quadratic limit" if np.isfinite(hi) and hi < p.edge_band[0]
             else "above the quadratic limit" if np.isfinite(lo) and lo > p.edge_band[1] else "undecided")
    hm, (hlo, hhi) = e.hover.value, e.hover.interval
    hb = e.hover_batch
    return (f"The shadow's growth rate turns positive at a stability ratio of {m:.2g} (95% interval {lo:.2g} to "
            f"{hi:.2g}): amplification starts {where}.  Over the second half of the runs above the threshold "
            f"the ratio from λ on the fixed subset is {hm:.2g} ({hlo:.2g} to {hhi:.2g}), the batch-sharpness ratio "
            f"{hb.value:.2g} ({hb.interval[0]:.2g} to {hb.interval[1]:.2g}).")
