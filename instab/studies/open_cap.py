"""The curvature cap where the edge is reached: full-batch gradient descent with momentum
(``book/open_questions.md``), three arms from the edge (none, cap, constant: the cap's mean step).

- :func:`edge_gd` — :class:`EdgeGD`: per arm (:class:`EdgeArm`) decades above the one-ulp floor,
  accuracy, the share of iterations where the cap binds, the mean step; the hover ratio and the
  iteration each seed reached the edge; its ``stats(p)``, ``claims(p)``, ``report()``, ``value()``.
- Pure rules: :func:`edge_gd_stats` (:class:`CapStats`), :func:`edge_gd_claims`.
- :func:`answers` — the chapter's closing paragraph, from the cap and the grid
  (:mod:`instab.studies.open_controllers`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instab.edge import ARMS as ARMS_EDGE
from instab.edge import EdgeRun
from instab.ensemble import band_decision, decided, log_interval
from instab.findings import tolerance
from instab.growth import decades
from instab.report import Claim
from instab.studies.open_controllers import (
    Arm,
    Comparison,
    Questions,
    controller_stats,
    feedback_claim,
    feedback_decision,
    final_scale,
    four_questions,
    question_claims,
)
from instab.studies.open_questions import Decided, OpenPlan, Params, judge

__all__ = ["CAP_APPLIED", "LOST_FACTOR", "EdgeArm", "EdgeGD", "edge_gd", "CapStats", "edge_gd_stats",
           "edge_gd_claims", "edge_gd_report", "edge_gd_value", "answers"]

#: The registry's finding on whether the curvature cap is applied at all (``applied_min``: the share
#: of the iterations it must bind on; below it the cap's findings are no verdict).
CAP_APPLIED = "oq-cap-binds"


#: an edge arm counts as destabilised when its final training loss is above this multiple of the
#: loss at the state the arms start from (it lost its training rather than hovered)
LOST_FACTOR = 3.0


@dataclass
class EdgeArm(Arm):
    """One arm from the edge, over the seeds that reached it; beside :class:`Arm`'s ``acc`` [k, seed]
    (k = 1 and the perturbed k) and ``decades`` (log10 of the median RelL1 over the arm's last 10%
    over the one-ulp floor): ``binds`` (share of the arm's iterations where the cap bound),
    ``mean_lr``, ``final_loss``, ``ratio`` (median over the arm), ``lost`` (final loss above
    :data:`LOST_FACTOR` × the arms' start), ``residual``, ``diverged`` (runs whose final loss is not
    below the loss of the best constant output, the run's ``chance``, fixed before the run: counted
    on the page, never averaged into a spread unseen), ``above`` (share of the arm's iterations at
    ratio ≥ 1, from the estimated λ)."""

    binds: list[float] = field(default_factory=list)
    mean_lr: list[float] = field(default_factory=list)
    final_loss: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    lost: list[bool] = field(default_factory=list)
    residual: list[float] = field(default_factory=list)
    diverged: int = 0
    above: list[float] = field(default_factory=list)


@dataclass
class CapStats:
    """The edge findings: ``hover`` (the hover ratio inside ``edge_band``?), the cap's ``binds``,
    its (a)–(d) against the uncapped arm (``questions``) and its ``feedback`` (against the constant
    step); ``unreached``: the seeds that never reached the edge."""

    questions: Questions
    feedback: Decided
    binds: Decided
    hover: Decided
    unreached: int


@dataclass
class EdgeGD:
    """The edge runs: per arm (:data:`instab.edge.ARMS`) an :class:`EdgeArm`; ``hover`` per seed
    (median ratio over the warm-up's probes from the first one at the edge on; NaN if never);
    ``reached`` (every seed's iteration at the edge, None where it never did); the raw
    ``records`` of every seed and those (``at_edge``) of the seeds that reached it."""

    arms: dict[str, EdgeArm]
    hover: list[float]
    reached: list[int | None]
    records: list[Mapping[str, Any]] = field(default_factory=list)
    at_edge: list[Mapping[str, Any]] = field(default_factory=list)

    def stats(self, p: Params) -> CapStats:
        return edge_gd_stats(self, p)

    def claims(self, p: Params, shown_in: str = "fig-oq-gd") -> list[Claim]:
        return edge_gd_claims(self, p, shown_in)

    def report(self) -> str:
        return edge_gd_report(self)

    def value(self) -> dict[str, Any]:
        return edge_gd_value(self)


def _edge_arm(arm: str, records: list[Mapping[str, Any]]) -> EdgeArm:
    """One arm over the records of the seeds that reached the edge."""
    rows: dict[str, list[Any]] = {"decades": [], "acc": [], "binds": [], "mean_lr": [], "final_loss": [],
                                  "ratio": [], "lost": [], "residual": [], "diverged": [], "above": [],
                                  "disagree": []}
    for r in records:
        rec = r["arms"][arm]
        rel = np.asarray(rec["rel_l1"], float)
        med = float(np.median(rel[-max(1, len(rel) // 10):]))
        rows["decades"].append(decades(r["floor"], med) if med > 0 else 0.0)
        rows["acc"].append([100 * a for a in rec["test_acc"]])
        rows["binds"].append(rec["binds"] / len(rec["lr"]))
        rows["mean_lr"].append(float(np.mean(rec["lr"])))
        rows["final_loss"].append(rec["final_loss"])
        rows["ratio"].append(float(np.median(rec["ratio"])))
        rows["above"].append(float(np.mean(np.asarray(rec["ratio"], float) >= 1)))
        rows["disagree"].append(rec["disagree"])
        rows["lost"].append(bool(not rec["final_loss"] < LOST_FACTOR * r["start"]["loss"]))
        rows["residual"].append(rec["residual"])
        rows["diverged"].append(not (math.isfinite(rec["final_loss"]) and rec["final_loss"] < r["chance"]))
    return EdgeArm(**{**rows, "acc": np.asarray(rows["acc"], float).reshape(-1, 2).T,
                      "diverged": sum(rows["diverged"]), "disagree": sum(rows["disagree"]),
                      "n_test": min((r["n_test"] for r in records), default=0)})


def edge_gd(p: OpenPlan, runs: Mapping[EdgeRun, Mapping[str, Any]]) -> EdgeGD:
    """The edge runs, over the seeds whose reference reached the edge (the experiment's
    precondition)."""
    hover: list[float] = []
    reached: list[int | None] = []
    for c in p.edge:
        w = runs[c]["warmup"]
        steps, ratio = np.asarray(w["steps"]), np.asarray(w["ratio"], float)
        at = w["reached"]
        reached.append(at)
        hover.append(float(np.median(ratio[steps >= at])) if at is not None else math.nan)
    at_edge = [runs[c] for c, at in zip(p.edge, reached, strict=True) if at is not None]
    return EdgeGD({arm: _edge_arm(arm, at_edge) for arm in ARMS_EDGE}, hover, reached,
                  records=[runs[c] for c in p.edge], at_edge=at_edge)


def edge_gd_stats(e: EdgeGD, p: Params) -> CapStats:
    """The edge findings over the seeds that reached the edge (fewer than 2: undecided)."""
    n = len(e.arms["cap"].decades)
    if n >= 2:
        questions = four_questions(e.arms["cap"], e.arms["none"], p)
        feedback = feedback_decision(e.arms["constant"].decades, e.arms["cap"].decades, p.feedback_min)
    else:
        questions, feedback = Questions.undecided(), Decided.undecided()
    binds = e.arms["cap"].binds
    share = float(np.mean(binds)) if binds else math.nan
    applied = Decided((share >= tolerance(CAP_APPLIED, "applied_min")) if n >= 2 else None, share,
                      [float(np.min(binds)), float(np.max(binds))] if binds else [math.nan, math.nan])
    if not applied.holds:  # a cap that (almost) never binds is the uncapped run again: no verdict
        questions = Questions(*(dataclasses.replace(getattr(questions, k), holds=None) for k in "abcd"))
        feedback = dataclasses.replace(feedback, holds=None)
    unreached = sum(r is None for r in e.reached)
    m, lo, hi = log_interval(e.hover)
    # seeds that never reach the edge (they fit the data first): the statement's precondition is
    # unmet there, so they leave it undecided rather than refute it
    hover = Decided(None if unreached else decided([lo, hi], lambda iv: band_decision(iv, p.edge_band)), m,
                    [lo, hi])
    return CapStats(questions, feedback, applied, hover, unreached)


def edge_gd_claims(e: EdgeGD, p: Params, shown_in: str = "fig-oq-gd") -> list[Claim]:
    """Full-batch GD reaches the edge and hovers; the cap binds there; its (a)–(d) against the
    uncapped arm; its feedback against the constant step."""
    st = edge_gd_stats(e, p)
    sane = all(bool(np.all(np.isfinite(e.arms[a].acc))) for a in ARMS_EDGE)
    lo_b, hi_b = p.edge_band
    out = [judge("full-batch GD: the stability ratio reaches 1 and hovers", st.hover.value, st.hover.interval,
                 criterion=(f"per seed, the median ratio η(λ+α)/(2(1+μ)) from the first probe at the edge on "
                            f"(λ of the whole training subset); 95% interval of the geometric mean over the seeds "
                            f"that reach it inside [{lo_b:g}, {hi_b:g}] → holds, wholly outside → refuted; any "
                            f"seed never at the edge ({st.unreached} of {len(e.reached)}: it fit the data "
                            "first, the statement's precondition) → undecided"),
                 holds=st.hover.holds, sane=sane, shown_in=shown_in)]
    applied_min = tolerance(CAP_APPLIED, "applied_min")
    out.append(judge("cap: the curvature cap is applied", st.binds.value, st.binds.interval,
                     criterion=(f"full-batch GD at the edge: mean share over the seeds of the capped arm's iterations "
                                f"where c·2(1+μ)/(λ_t+α) < η (interval: the range over the seeds): ≥ "
                                f"{100 * applied_min:g}% → applied; below → not applied (refuted), and then the cap's "
                                "findings decide nothing"),
                     holds=st.binds.holds, sane=sane, shown_in=shown_in))
    out += question_claims("cap", st.questions, p, sane, shown_in, "full-batch GD from the edge, capped arm against "
                                                                    "the uncapped arm: ", "the uncapped arm")
    out.append(feedback_claim("cap: its λ-tracking schedule, not its mean step, removes the growth", st.feedback, p,
                              "the constant-step arm's decades above the floor (the capped arm's mean step) minus "
                              "the capped arm's", "the smaller step alone does it", sane, shown_in))
    return out


def edge_gd_report(e: EdgeGD) -> str:
    n = len(e.arms["cap"].decades)
    lines = [f"{n} of {len(e.reached)} seeds reached the edge; over them, per arm (means over seeds):",
             f"{'arm':9s} {'decades':>8s} {'accuracy %':>11s} {'|Δacc| k':>9s} {'binds':>6s} {'mean η':>8s} "
             f"{'ratio':>6s} {'loss':>9s} {'diverged':>8s} {'lost':>5s}"]
    for arm in ARMS_EDGE if n else ():
        a = e.arms[arm]
        lines.append(f"{arm:9s} {np.nanmean(a.decades):8.2f} {a.acc.mean():11.2f} "
                     f"{np.abs(a.acc[0] - a.acc[-1]).mean():9.2f} {np.mean(a.binds):6.1%} "
                     f"{np.mean(a.mean_lr):8.4f} {np.median(a.ratio):6.3f} {np.mean(a.final_loss):9.4g} "
                     f"{a.diverged:8d} {sum(a.lost):5d}")
    res = [x for arm in ARMS_EDGE for x in e.arms[arm].residual if np.isfinite(x)]
    lines.append(f"lost: final loss above {LOST_FACTOR:g} × the loss at the arms' start; the largest relative "
                 f"Lanczos residual of an arm's λ estimates: {max(res, default=math.nan):.2g}")
    if n:
        lines.append("share of the iterations at ratio ≥ 1 (estimated λ): " + ", ".join(
            f"{arm} {np.mean(e.arms[arm].above):.1%}" for arm in ARMS_EDGE) + "; test images on which an arm's k "
            "runs differ in correctness (all seeds): " + ", ".join(f"{arm} {e.arms[arm].disagree}"
                                                                   for arm in ARMS_EDGE))
    lines.append("per seed: reached the edge at " + ", ".join(str(r) for r in e.reached)
                 + "; hover ratio " + ", ".join(f"{h:.3g}" for h in e.hover))
    return "\n".join(lines)


def edge_gd_value(e: EdgeGD) -> dict[str, Any]:
    """The results' value ``edge``: per arm, decades, accuracy, binds, mean step; hover, reached."""
    return {**{arm: {k: getattr(e.arms[arm], k) for k in ("decades", "acc", "binds", "mean_lr", "final_loss",
                                                          "diverged")}
               for arm in ARMS_EDGE}, "hover": e.hover, "reached": e.reached}


def _iv(v: Decided, fmt: str = ".2g", sign: str = "") -> str:
    m, (lo, hi) = v.value, v.interval
    if not math.isfinite(m):  # e.g. a ratio of spreads where neither arm's runs differ
        return "undefined (no spread in either arm)"
    return f"{m:{sign}{fmt}} ({lo:{sign}{fmt}} to {hi:{sign}{fmt}})"


def _edge_answer(e: EdgeGD, c: CapStats) -> str:
    n, total = len(e.arms["cap"].decades), len(e.reached)
    q = c.questions
    if n >= 2:
        return (f"At the edge of full-batch gradient descent ({n} of {total} seeds reached it) the curvature cap "
                f"binds on {100 * c.binds.value:.2g}% of its iterations; against the uncapped runs it ends "
                f"{_iv(q.a)} decades closer to the one-ulp floor, and {_iv(c.feedback)} decades closer than "
                f"a constant step equal to its mean step (at ratio ≥ 1 on {np.mean(e.arms['constant'].above):.0%} "
                f"of its iterations, the cap on {np.mean(e.arms['cap'].above):.0%}); its STD over k is "
                f"×{_iv(q.b)}, over seeds ×{_iv(q.c)}, its accuracy {_iv(q.d, sign='+')} points.")
    lost = sum(e.arms["none"].lost) if n else 0
    return (f"Full-batch gradient descent reached the edge in {n} of {total} seeds (the others fit the training "
            f"subset first), too few to decide the curvature cap"
            + (f"; in that seed the uncapped arm lost its training ({lost} of {n}), while the cap (binding "
               f"on {100 * c.binds.value:.2g}% of the iterations) and its mean step held constant ended "
               f"{e.arms['cap'].decades[0]:.2g} and {e.arms['constant'].decades[0]:.2g} decades above the floor"
               if n else "") + ".")


def answers(cmp: Comparison, e: EdgeGD, p: Params) -> str:
    """The paragraph the chapter quotes: the answers to the paper's open questions, with intervals."""
    st, c = controller_stats(cmp, p), edge_gd_stats(e, p)
    g, r = st.growth, st.replay
    return (f"{_edge_answer(e, c)}  On the minibatch grid the growth controller (last step ×{final_scale(cmp):.2g} "
            f"of plain SGD's, median over seeds) ends {_iv(g.a)} decades closer to the floor than plain SGD and "
            f"{_iv(st.feedback)} decades closer than plain SGD on its median schedule; its STD over k is "
            f"×{_iv(g.b)}, over seeds ×{_iv(g.c)}, its accuracy {_iv(g.d, sign='+')} points; the schedule "
            f"alone gives STD over k ×{_iv(r.b)}, over seeds ×{_iv(r.c)}, accuracy {_iv(r.d, sign='+')} "
            "points.")
