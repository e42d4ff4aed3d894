"""A learning-rate threshold (paper §4.2 and §5, Figs. 2 right and 5, App. E): what the chapter
``book/sgd_threshold.md`` runs.

- :func:`fixed_lr_sweep` — fixed learning rates with lr × iterations constant.
- :func:`fig2_right` — per sweep and lr, each member's :func:`amplification`, the ensemble's
  :func:`sweep_status`, and :func:`threshold_decision`; :func:`threshold_claims` decides Fig. 2 right.
  :class:`Fig2Right` (per sweep a :class:`Sweep`, its :class:`ThresholdDecision`) reports, decides
  and records it.
- :func:`fig5` / :func:`fig5_claims` — :class:`Fig5`: test accuracy of k = 1 and the members at
  the smallest lr.

Whether the threshold is the linear stability limit of the stable trajectory (App. E's (64)):
:mod:`instab.studies.sgd_limit`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, cast

import numpy as np

from instab import checks
from instab.findings import tolerance
from instab.growth import amplification, ulp_floor
from instab.report import Claim, claim, decide, judge
from instab.studies.sgd import (
    SgdParams,
    check_members,
    config,
    cost_row,
    curve,
    dry_run_of,
    ensemble_variants,
    members,
    network,
    unanimous,
)
from instab.train import History, RunConfig, Variant, load_data

__all__ = ["Params", "ThresholdPlan", "plan", "fixed_lr_sweep", "sweep_status", "ThresholdDecision",
           "threshold_decision", "Sweep", "Fig2Right", "fig2_right", "fig2_right_report", "threshold_verdict",
           "threshold_claims", "kinked_verdicts", "sweeps_value", "trajectory", "Fig5", "fig5", "fig5_report",
           "fig5_claims", "dry_run"]


@dataclasses.dataclass
class Params(SgdParams):
    """The chapter's parameters (its parameters cell)."""

    members: list[int]
    sweeps: dict[str, dict[str, Any]]
    sweep_lrs: list[float]
    lr_times_steps: float
    sharpness_seeds: list[int]
    sharpness_points: list[float]

    def validate(self) -> Self:
        super().validate()
        checks.each("sweep_lrs", self.sweep_lrs, checks.positive)
        if len(set(self.sharpness_seeds)) < 4 or any(isinstance(x, bool) or not isinstance(x, int) or x < 0
                                                     for x in self.sharpness_seeds):
            raise ValueError(f"sharpness_seeds={self.sharpness_seeds!r} is not allowed; at least 4 distinct "
                             "integers >= 0 (the spread of λ over seeds is the prediction's uncertainty)")
        if not self.sharpness_points or any(not 0 < f <= 1 for f in self.sharpness_points):
            raise ValueError(f"sharpness_points={self.sharpness_points!r} is not allowed; fractions of the run "
                             "in (0, 1]")
        checks.positive("lr_times_steps", self.lr_times_steps)
        if "smooth" not in self.sweeps:
            raise ValueError(f"sweeps={list(self.sweeps)!r} is not allowed; "
                             "it needs the 'smooth' sweep (Swish, smooth pooling)")
        plan(self)  # every configuration, validated before any training
        return self


@dataclass
class ThresholdPlan:
    """Every run of the chapter: per sweep, one configuration per learning rate (in order)."""

    sweeps: dict[str, list[RunConfig]]
    sweep_lrs: dict[str, list[float]]
    members: list[int]
    #: the smooth sweep's smallest-lr run, k = 1 alone, per (seed, fraction of the run): the
    #: stable trajectory's states, for its curvature (:func:`instab.studies.sgd_limit.stability_limit`)
    sharpness: dict[tuple[int, float], RunConfig] = dataclasses.field(default_factory=dict)

    def configs(self) -> list[RunConfig]:
        """Every configuration of the grid."""
        return [c for cells in self.sweeps.values() for c in cells] + list(self.sharpness.values())

    def describe(self) -> str:
        return "\n".join(f"sweep {name}: {cells[0].model} {cells[0].activation}/{cells[0].pool}, lr "
                         f"{self.sweep_lrs[name]}, steps {[c.max_steps for c in cells]}"
                         for name, cells in self.sweeps.items())


def fixed_lr_sweep(base: RunConfig, lrs: Sequence[float], lr_times_steps: float) -> list[RunConfig]:
    """Fixed learning rates with lr × iterations constant (paper §4.2, Fig. 2 right): one cell per
    lr, constant schedule, ``max_steps = round(lr_times_steps / lr)``."""
    out = []
    for lr in lrs:
        steps = max(1, round(lr_times_steps / lr))
        out.append(base.replace(lr=float(lr), lr_decay_every=0, epochs=None, max_steps=int(steps)))
    return out


def plan(p: Params) -> ThresholdPlan:
    """Build and validate every configuration from the parameters: the Fig. 2 (right) sweeps (an
    entry may set its own ``lrs`` and ``lr_times_steps``), each run training k = 1 and every k of
    ``members`` in lockstep, with ~200 RelL1 samples, its final weights (for the sharpness) and ~20
    test passes (Fig. 5).  Raises ``ValueError`` naming the bad parameter."""
    member_ks = check_members(p.members)
    swept, lrs_of = {}, {}
    for name, over in p.sweeps.items():
        base = config(p.common, over, f"sweeps[{name!r}]", variants=ensemble_variants(member_ks))
        lrs = [float(x) for x in over.get("lrs", p.sweep_lrs)]
        c = float(over.get("lr_times_steps", p.lr_times_steps))
        if not lrs or any(not lr > 0 for lr in lrs) or not c > 0:
            raise ValueError(f"sweeps[{name!r}]: learning rates and lr_times_steps must be positive")
        # ~200 RelL1 samples per run, evenly spaced, so windows at its start and end are well sampled;
        # the final weights kept for the sharpness at the end of the run; ~20 test passes for Fig. 5
        swept[name] = [cell.replace(rel_l1_every=max(1, cast(int, cell.max_steps) // 200), keep_final=True,
                                    acc_every=max(1, cast(int, cell.max_steps) // 20)).validate()
                       for cell in fixed_lr_sweep(base, lrs, c)]
        lrs_of[name] = lrs
    return ThresholdPlan(swept, lrs_of, member_ks, trajectory(swept["smooth"], lrs_of["smooth"], p))


def trajectory(cells: Sequence[RunConfig], lrs: Sequence[float], p: Params) -> dict[tuple[int, float], RunConfig]:
    """The stable trajectory's states: the smallest-lr run of the smooth sweep, k = 1 alone, with
    initialisation and batch order from each of ``sharpness_seeds``, stopped after each fraction
    ``sharpness_points`` of its iterations (at a constant lr a run stopped early is the longer
    run's trajectory up to there), keeping its final weights."""
    base = cells[int(np.argmin(lrs))]
    steps = cast(int, base.max_steps)
    return {(seed, float(f)): base.replace(variants=(Variant(1),), init_seed=int(seed), batch_seed=int(seed),
                                           max_steps=max(1, round(f * steps)), rel_l1_every=0, acc_every=0,
                                           eval_every=10**6, keep_final=True).validate()
            for seed in p.sharpness_seeds for f in sorted(p.sharpness_points)}


# ---------------------------------------------------------------------------------- Fig. 2 right
def sweep_status(amplifications: Sequence[float], factor: float) -> str:
    """One learning rate of a fixed-lr sweep, over its ensemble: ``"amplified"`` when every
    member's growth exceeds ``factor``, ``"attenuated"`` when none does, else ``"mixed"``."""
    d = unanimous([a > factor for a in amplifications])
    return {True: "amplified", False: "attenuated", None: "mixed"}[d]


@dataclass
class ThresholdDecision:
    """Does one learning rate separate attenuated from amplified runs (:func:`threshold_decision`)?
    ``decision`` (True, False or None: undecided), the bracket (``largest_attenuated``,
    ``smallest_amplified``) and its geometric middle ``threshold`` (NaN unless decided)."""

    decision: bool | None
    largest_attenuated: float
    smallest_amplified: float
    threshold: float

    def value(self) -> dict[str, float]:
        """The results' value ``threshold``."""
        return {"threshold": self.threshold, "largest_attenuated": self.largest_attenuated,
                "smallest_amplified": self.smallest_amplified}


def threshold_decision(lrs: Sequence[float], status: Sequence[str]) -> ThresholdDecision:
    """Does one learning rate separate attenuated from amplified runs (Fig. 2 right)?

    ``decision`` True: the smallest lr is attenuated and the largest amplified (each by the whole
    ensemble), and every unanimously amplified lr lies above every unanimously attenuated one —
    the threshold is then in (``largest_attenuated``, ``smallest_amplified``).  False: the
    ensembles contradict a threshold (an amplified lr below an attenuated one).  None: an end of the
    sweep is mixed, or on the wrong side — a sweep whose smallest lr is amplified did not reach low
    enough to find the threshold (the paper's stable lr is 3e-6), which does not contradict one."""
    pairs = sorted(zip((float(x) for x in lrs), status, strict=True))
    amp = [lr for lr, st in pairs if st == "amplified"]
    att = [lr for lr, st in pairs if st == "attenuated"]
    ends = (pairs[0][1], pairs[-1][1])
    if amp and att and min(amp) < max(att):
        decision: bool | None = False
    elif ends == ("attenuated", "amplified"):
        decision = True
    else:
        decision = None
    below = max((lr for lr in att if not amp or lr < min(amp)), default=math.nan)
    above = min((lr for lr in amp if not att or lr > max(att)), default=math.nan)
    return ThresholdDecision(decision, below, above, math.sqrt(below * above) if decision else math.nan)


#: The registry's finding whose tolerance ``amplified_factor`` says when a fixed-lr run is amplified.
THRESHOLD = "sgd-fig2-right-threshold"


def amplified_factor() -> float:
    """The growth factor above which a fixed-lr run counts as amplified (:func:`amplification`;
    the registry's ``amplified_factor`` of Fig. 2 right's finding, fixed before the run)."""
    return tolerance(THRESHOLD, "amplified_factor")


@dataclass
class Sweep:
    """One fixed-lr sweep of Fig. 2 (right): ``lrs``, ``amplification`` [lr, member] (from no lower
    than the network's one-ulp floor, :func:`amplification`), ``status`` per lr (:func:`sweep_status`
    with :func:`amplified_factor`), the :func:`threshold_decision` (``decided``), and ``curves``:
    (lr, iterations, RelL1(k = 1, k = 3), max_steps) per lr."""

    lrs: list[float]
    amplification: np.ndarray
    status: list[str]
    decided: ThresholdDecision
    curves: list[tuple[Any, ...]] = field(default_factory=list)

    def verdict(self) -> str:
        return threshold_verdict(self.decided)


@dataclass
class Fig2Right:
    """Paper Fig. 2 (right): every sweep, by name (``smooth`` first: the chapter's assertion)."""

    sweeps: dict[str, Sweep]

    @property
    def smooth(self) -> Sweep:
        return self.sweeps["smooth"]

    def report(self) -> str:
        return fig2_right_report(self)

    def claims(self, shown_in: str = "fig-sgd-threshold") -> list[Claim]:
        return threshold_claims(self, shown_in)

    def kinked_verdicts(self) -> str:
        return kinked_verdicts(self)

    def value(self) -> dict[str, Any]:
        return sweeps_value(self)


def fig2_right(p: ThresholdPlan, runs: Mapping[RunConfig, History]) -> Fig2Right:
    """Paper Fig. 2 (right): a :class:`Sweep` per sweep of the plan."""
    factor = amplified_factor()
    out = {}
    for name, cells in p.sweeps.items():
        lrs = p.sweep_lrs[name]
        floor = ulp_floor(network(cells[0]).parameters())
        amp = np.array([[amplification(*curve(runs[c], m), floor=floor) for m in members(runs[c])] for c in cells])
        status = [sweep_status(a, factor) for a in amp]
        curves = [(lr, *curve(runs[c], "k=3"), c.max_steps) for lr, c in zip(lrs, cells, strict=False)]
        out[name] = Sweep(lrs, amp, status, threshold_decision(lrs, status), curves)
    return Fig2Right(out)


def threshold_verdict(st: ThresholdDecision) -> str:
    """One sweep's outcome in words."""
    return {True: f"threshold between {st.largest_attenuated:g} and {st.smallest_amplified:g}",
            False: "no single threshold", None: "undecided at an end of the sweep"}[st.decision]


def fig2_right_report(stats: Fig2Right) -> str:
    lines = []
    for name, st in stats.sweeps.items():
        lines.append(f"{name}:")
        lines += [f"   lr {lr:<6g} growth ×{np.min(a):.3g} … ×{np.max(a):.3g}  → {status}"
                  for lr, a, status in zip(st.lrs, st.amplification, st.status, strict=False)]
        lines.append(f"   {st.verdict()}")
    return "\n".join(lines)


def threshold_claims(stats: Fig2Right, shown_in: str = "fig-sgd-threshold") -> list[Claim]:
    """One claim per sweep, each by the same rule (:func:`threshold_decision`): one threshold
    separates attenuated from amplified learning rates, each lr decided by its whole ensemble.

    The smooth (Swish) sweep is the chapter's assertion: it fails the chapter if its ensembles
    contradict a threshold (inconclusive where an end of the sweep is mixed).  Every other sweep
    (ReLU, max-pooling: the paper's own ResNet-56 uses ReLU) is decided by its data — its verdict
    may differ from the smooth sweep's, so it is its own claim: ``reproduced`` (a threshold),
    ``refuted`` (an amplified lr below an attenuated one), ``inconclusive`` (an end of the sweep
    mixed or on the wrong side); it fails only on a non-finite growth."""
    criterion = ("smallest lr attenuated, largest amplified, no amplified lr below an attenuated one "
                 "(each by the whole ensemble)")
    out = []
    for name, st in stats.sweeps.items():
        d = st.decided
        bracket = [d.largest_attenuated, d.smallest_amplified]
        if name == "smooth":
            out.append(decide("Fig. 2 right (Swish): one threshold separates attenuated from amplified",
                              d.threshold, bracket, criterion=criterion, decision=d.decision,
                              verdict="reproduced", shown_in=shown_in))
            continue
        amp = np.asarray(st.amplification, float)
        out.append(judge(f"Fig. 2 right ({name}): one threshold separates attenuated from amplified",
                         d.threshold, bracket, criterion=f"the data decide: {criterion}",
                         holds=d.decision, sane=bool(np.all(np.isfinite(amp))), shown_in=shown_in))
    return out


def kinked_verdicts(stats: Fig2Right) -> str:
    """The sentence the chapter quotes on the sweeps other than the smooth one."""
    words = {True: "reproduced", False: "refuted", None: "inconclusive"}
    parts = [f"{name}: {st.verdict()} ({words[st.decided.decision]})" for name, st in stats.sweeps.items()
             if name != "smooth"]
    return ("; ".join(parts) + ".") if parts else "no other sweep at this scale."


def sweeps_value(stats: Fig2Right) -> dict[str, Any]:
    """Every sweep's learning rates, amplifications and statuses (the results' value ``sweeps``)."""
    return {name: {"lrs": st.lrs, "amplification": st.amplification, "status": st.status}
            for name, st in stats.sweeps.items()}


# ------------------------------------------------------------------------------------------- Fig. 5
@dataclass
class Fig5:
    """Paper Fig. 5: k = 1's accuracy in % (``acc``) and each member's largest gap to it in points
    (``gaps``), the accuracy of chance in % (``chance``), at the smallest lr of the smooth sweep
    (``lr``), and its run (``history``: test accuracy every few iterations per variant)."""

    gaps: dict[str, float]
    acc: np.ndarray
    chance: float
    lr: float = math.nan
    history: History | None = None

    def report(self, predicted: float) -> str:
        return fig5_report(self, predicted)

    def claims(self, shown_in: str = "fig-sgd-fig5") -> list[Claim]:
        return fig5_claims(self, shown_in)


def fig5(p: ThresholdPlan, runs: Mapping[RunConfig, History], sm: Sweep) -> Fig5:
    """Paper Fig. 5 at the smallest lr of the smooth sweep ``sm``."""
    lrs = sm.lrs
    stable = min(lrs)
    config = p.sweeps["smooth"][lrs.index(stable)]
    h = runs[config]
    a1 = 100 * np.array(h.iter_acc["k=1"])
    gaps = {m: float(np.max(np.abs(a1 - 100 * np.array(h.iter_acc[m])))) for m in members(h)}
    return Fig5(gaps, a1, 100 / load_data(config).num_classes, stable, h)


def fig5_report(f: Fig5, predicted: float) -> str:
    a1, h, gaps = f.acc, f.history, f.gaps
    assert h is not None, "Fig. 5's report needs its run"
    return (f"lr {f.lr:g} (predicted limit {predicted:.3g}): accuracy {a1[0]:.2f}% → {a1[-1]:.2f}% over "
            f"{h.iter_acc_step[-1]} iterations, tested every {h.iter_acc_step[0]}; largest gap to k=1: "
            + ", ".join(f"{m} {g:.2f}" for m, g in gaps.items()) + " points")


def fig5_claims(f: Fig5, shown_in: str = "fig-sgd-fig5") -> list[Claim]:
    """At the smallest lr the k = 1 and perturbed accuracy curves overlap (every member within
    ``gap_points``) and rise (≥ ``gain_points``, ending at ≥ ``chance_factor`` × chance): the registry's."""
    a1, gaps = f.acc, f.gaps
    gap, gain, times = (tolerance("sgd-fig5-not-stuck", k) for k in ("gap_points", "gain_points", "chance_factor"))
    chance = f.chance
    return [decide("Fig. 5: k=1 and perturbed curves overlap at the smallest lr", max(gaps.values()),
                   [min(gaps.values()), max(gaps.values())], criterion=f"every member: gap ≤ {gap:g} points",
                   decision=unanimous([g <= gap for g in gaps.values()]), verdict="reproduced", shown_in=shown_in),
            claim("Fig. 5: accuracy rises (not stuck)", float(a1[-1] - a1[0]), None,
                  criterion=f"gain ≥ {gain:g} points and final ≥ {times:g} × chance",
                  ok=a1[-1] - a1[0] >= gain and a1[-1] >= times * chance,
                  verdict="reproduced", shown_in=shown_in)]


# ----------------------------------------------------------------------------------------- dry run
def _rows(p: Params) -> tuple[list[dict[str, Any]], list[RunConfig]]:
    t = plan(p)
    rows = [cost_row(f"sweep {name}", cells) for name, cells in t.sweeps.items()]
    rows.append(cost_row("stable trajectory (k = 1, seeds × points)", list(t.sharpness.values())))
    return rows, t.configs()


def dry_run(params: Mapping[str, Any]) -> dict[str, Any]:
    """Build and validate every configuration of the chapter's parameters, check the device, the
    engine and the data, and estimate the cost — training nothing (``{"rows", "total", "checks"}``)."""
    return dry_run_of(params, Params, _rows)
