"""The growth controller on the k × seed grid of Tables 1/4 (``book/open_questions.md``), and the
four questions every stability controller is asked.

- :func:`comparison` — :class:`Comparison`: per arm (:class:`GridArm`: plain SGD, the growth
  controller, its median schedule replayed) RelL1 growth, accuracy [k, seed], steps; its
  ``stats(p)``, ``claims(p)``, ``report(p)``, ``value()`` and ``final_scale()``.
- Pure rules, on any :class:`Arm` (the curvature cap's arms too, :mod:`instab.studies.open_cap`):
  :func:`variance_ratio_interval`, :func:`fall_decision`, :func:`four_questions`
  (:class:`Questions`, findings (a)–(d)), :func:`feedback_decision`, :func:`question_claims`,
  :func:`feedback_claim`, :func:`controller_claims`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from instab.controllers import TrackedRun
from instab.ensemble import decided, floor_decision, paired_difference
from instab.growth import decades, ulp_floor
from instab.report import Claim
from instab.studies.open_null import disagreement_std
from instab.studies.open_questions import ARMS, Decided, OpenPlan, Params, judge
from instab.studies.sgd import network
from instab.train import Variant

__all__ = ["Arm", "GridArm", "Comparison", "comparison", "variance_ratio_interval", "fall_decision", "Questions",
           "four_questions", "feedback_decision", "ControllerStats", "controller_stats", "question_claims",
           "feedback_claim", "controller_claims", "comparison_report", "comparison_value", "final_scale"]


@dataclass
class Arm:
    """What findings (a)–(d) read of an arm: ``acc`` [k, seed] in %, ``decades`` per seed (final
    RelL1 over the one-ulp floor), ``n_test`` (test images; 0: unknown) and ``disagree`` (test
    images, summed over seeds, on which a seed's k runs differ in correctness)."""

    acc: np.ndarray
    decades: list[float]
    n_test: int = 0
    disagree: int = 0


@dataclass
class GridArm(Arm):
    """One arm of the grid, beside :class:`Arm`'s: the one-ulp ``floor``, ``final_rel`` per seed,
    ``train_loss`` (the reference's mean loss over the last window, per seed), ``seconds`` per seed
    (the reference's share of the steps plus its shadow), ``lrs`` (each seed's step per
    iteration), ``total_step`` (Σ η_t per seed), and per seed the recorded ``steps`` and ``rel``
    (median RelL1 over the members)."""

    floor: float = math.nan
    final_rel: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lrs: list[list[float]] = field(default_factory=list)
    total_step: list[float] = field(default_factory=list)
    steps: list[list[float]] = field(default_factory=list)
    rel: list[np.ndarray] = field(default_factory=list)


@dataclass
class Questions:
    """Findings (a)–(d) of an intervention against plain runs (:func:`four_questions`)."""

    a: Decided
    b: Decided
    c: Decided
    d: Decided

    @classmethod
    def undecided(cls) -> Questions:
        return cls(*(Decided.undecided() for _ in range(4)))


@dataclass
class ControllerStats:
    """The growth controller's (a)–(d) against plain SGD, ``feedback`` (against the replay arm),
    and the replay arm's own (a)–(d) (what the schedule alone does)."""

    growth: Questions
    feedback: Decided
    replay: Questions


@dataclass
class Comparison:
    """The grid per arm (:data:`~instab.studies.open_questions.ARMS`)."""

    arms: dict[str, GridArm]

    def stats(self, p: Params) -> ControllerStats:
        return controller_stats(self, p)

    def claims(self, p: Params, shown_in: str = "fig-oq-grid") -> list[Claim]:
        return controller_claims(self, p, shown_in)

    def report(self, p: Params) -> str:
        return comparison_report(self, p)

    def value(self) -> dict[str, Any]:
        return comparison_value(self)

    def final_scale(self, name: str = "growth") -> float:
        return final_scale(self, name)


def _decades(r: Mapping[str, Any], floor: float) -> float:
    """log10(final RelL1 / the one-ulp floor), the median over the members: how far above the
    floor the perturbation ended (a RelL1 of exactly 0 counts as 0 decades, at the floor: a run
    that never left its reference is kept, not dropped)."""
    out = [decades(floor, float(rel[-1])) if float(rel[-1]) > 0 else 0.0 for rel in r["rel_l1"].values()]
    return float(np.median(out))


def _disagreements(r: Mapping[str, Any], k_values: Sequence[int]) -> int:
    """Test images on which a cell's k runs differ in correctness (one right, another wrong)."""
    labels = np.asarray(r["labels"], int)
    right = np.array([np.asarray(r["predictions"][Variant(k).name], int) == labels for k in k_values])
    return int(np.sum(right.any(axis=0) != right.all(axis=0)))


def comparison(p: OpenPlan, runs: Mapping[TrackedRun, Mapping[str, Any]]) -> Comparison:
    """Per arm (``none``: plain SGD, ``growth``, ``replay``), a :class:`GridArm` from the runs'
    records."""
    out: dict[str, GridArm] = {}
    floor = ulp_floor(network(p.grid["none"][0]).parameters())
    for name in ARMS:
        cells = p.grid[name]
        acc = np.array([[100 * runs[c]["final_acc"][Variant(k).name] for c in cells] for k in p.k_values])
        per_ref = [runs[c]["seconds"]["steps"] / len(c.variants) + runs[c]["seconds"]["shadow"] for c in cells]
        out[name] = GridArm(acc=acc, decades=[_decades(runs[c], floor) for c in cells], floor=floor,
                            n_test=len(runs[cells[0]]["labels"]),
                            disagree=sum(_disagreements(runs[c], p.k_values) for c in cells),
                            final_rel=[float(np.median([v[-1] for v in runs[c]["rel_l1"].values()])) for c in cells],
                            train_loss=[float(runs[c]["train_loss"][-1]) for c in cells],
                            seconds=per_ref, lrs=[runs[c]["step_lrs"] for c in cells],
                            total_step=[float(np.sum(runs[c]["step_lrs"])) for c in cells],
                            steps=[runs[c]["steps"] for c in cells],
                            rel=[np.median(np.array(list(runs[c]["rel_l1"].values())), axis=0) for c in cells])
    return Comparison(out)


def variance_ratio_interval(a: np.ndarray, b: np.ndarray, axis: str, *, level: float = 0.95) -> tuple[
        float, float, float]:
    """STD(a)/STD(b) over k (``axis="k"``: within each seed, pooled, S(K − 1) degrees of freedom)
    or over seeds (``"seeds"``: within each k, pooled, S − 1 degrees of freedom — the k runs of a
    seed share its batches, so only the seeds are independent), with the F interval of a ratio of
    two independent variance estimates (``scipy.stats.f``).  (ratio, low, high); NaN when b has
    no spread."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    k, s = a.shape
    if axis == "k":
        va, vb, df = a.var(axis=0, ddof=1).mean(), b.var(axis=0, ddof=1).mean(), s * (k - 1)
    elif axis == "seeds":
        va, vb, df = a.var(axis=1, ddof=1).mean(), b.var(axis=1, ddof=1).mean(), s - 1
    else:
        raise ValueError(f"axis={axis!r} is not allowed; 'k' or 'seeds'")
    if not vb > 0:
        return math.nan, math.nan, math.nan
    r2 = va / vb
    f_lo, f_hi = stats.f.ppf([(1 - level) / 2, (1 + level) / 2], df, df)
    return math.sqrt(r2), math.sqrt(r2 / f_hi), math.sqrt(r2 / f_lo)


def fall_decision(interval: Sequence[float], band: float) -> bool | None:
    """Does a STD fall?  True if the ratio's interval lies below 1; False if it lies above
    ``band`` (the data exclude a fall by more than 1 − band) and reaches 1; None otherwise."""
    lo, hi = interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    if hi < 1:
        return True
    return False if lo > band else None


def _std_fall(arm: Arm, plain: Arm, axis: str, band: float) -> Decided:
    """(b) or (c): the STD over ``axis``, arm / plain, decided by :func:`fall_decision`."""
    r, lo, hi = variance_ratio_interval(arm.acc, plain.acc, axis)
    if r == 0 and axis == "k" and arm.n_test:
        # no seed's k runs differ in accuracy: the F interval degenerates to [0, 0]; bound the
        # STD instead through Jordan's null by the 95% Poisson upper bound on the disagreements
        # counted (3 when there are none: the rule of three), the S·N images taken as independent
        s_, n = arm.acc.shape[1], int(arm.n_test)
        upper = float(stats.chi2.ppf(0.95, 2 * (int(arm.disagree) + 1)) / 2)
        plain_sd = math.sqrt(float(np.asarray(plain.acc, float).var(axis=0, ddof=1).mean()))
        hi = disagreement_std(upper / (s_ * n), n) / plain_sd if plain_sd > 0 else math.nan
    return Decided(fall_decision([lo, hi], band), r, [lo, hi])


def four_questions(arm: Arm, plain: Arm, p: Params) -> Questions:
    """Findings (a)–(d) of an intervention against plain runs, each decided (:class:`Decided`):
    (a) plain's decades − the arm's (t interval over seeds) above ``decades_min``; (b), (c) the STD
    over k, over seeds, arm / plain (F interval, :func:`fall_decision`); (d) the arm's accuracy −
    plain's (mean over k, t interval over seeds) above −``acc_cost_max``."""
    m, lo, hi = paired_difference(plain.decades, arm.decades)
    a = Decided(decided([lo, hi], lambda iv: floor_decision(iv, p.decades_min)), m, [lo, hi])
    b, c = (_std_fall(arm, plain, axis, p.std_fall_band) for axis in ("k", "seeds"))
    m, lo, hi = paired_difference(arm.acc.mean(axis=0), plain.acc.mean(axis=0))
    d = Decided(decided([lo, hi], lambda iv: floor_decision(iv, -p.acc_cost_max)), m, [lo, hi])
    return Questions(a, b, c, d)


def feedback_decision(matched: Sequence[float], controlled: Sequence[float], minimum: float) -> Decided:
    """Is a controller's effect its feedback rather than its step sizes?  Per seed, the decades of
    the open-loop arm with the same steps (``matched``) minus the controller's: the t interval
    above ``minimum`` → True (the feedback removes growth the same steps leave); below it → False
    (the steps alone do it); else None."""
    m, lo, hi = paired_difference(matched, controlled)
    return Decided(decided([lo, hi], lambda iv: floor_decision(iv, minimum)), m, [lo, hi])


def controller_stats(cmp: Comparison, p: Params) -> ControllerStats:
    """The growth controller's (a)–(d), its feedback, and the replay arm's (a)–(d)."""
    arms = cmp.arms
    return ControllerStats(four_questions(arms["growth"], arms["none"], p),
                           feedback_decision(arms["replay"].decades, arms["growth"].decades, p.feedback_min),
                           four_questions(arms["replay"], arms["none"], p))


_QUESTIONS = {
    "a": ("RelL1 growth at least {dmin:g} decades smaller than {plain}'s",
          "per seed, {plain}'s log10(final RelL1 / one-ulp floor) minus the controlled run's (median over the "
          "perturbed k); 95% t interval of the mean over seeds above {dmin:g} → holds, below → refuted"),
    "b": ("STD over k falls",
          "STD over k (within seeds, pooled) controlled / {plain}: 95% F interval below 1 → holds; above "
          "{band:g} and reaching 1 → refuted"),
    "c": ("STD over seeds falls",
          "STD over seeds (within k, pooled, S − 1 degrees of freedom) controlled / {plain}: 95% F interval "
          "below 1 → holds; above {band:g} and reaching 1 → refuted"),
    "d": ("test accuracy costs at most {acc:g} point against {plain}",
          "per seed, mean accuracy over k controlled − {plain} (points); 95% t interval above −{acc:g} → holds, "
          "below → refuted"),
}


def question_claims(name: str, st: Questions, p: Params, sane: bool, shown_in: str,
                    where: str, plain: str) -> list[Claim]:
    """The claims of findings (a)–(d) of controller ``name`` against ``plain``."""
    out = []
    for key, (title, criterion) in _QUESTIONS.items():
        s: Decided = getattr(st, key)
        fmt = {"dmin": p.decades_min, "band": p.std_fall_band, "acc": p.acc_cost_max, "plain": plain}
        out.append(judge(f"{name}: " + title.format(**fmt), s.value, s.interval,
                         criterion=where + criterion.format(**fmt), holds=s.holds, sane=sane, shown_in=shown_in))
    return out


def feedback_claim(name: str, s: Decided, p: Params, what: str, alone: str, sane: bool, shown_in: str) -> Claim:
    """The claim that a controller's feedback, not its steps (``alone``), removes the growth."""
    return judge(name, s.value, s.interval,
                 criterion=(f"per seed, {what}: 95% t interval above {p.feedback_min:g} → holds; below "
                            f"{p.feedback_min:g} → refuted ({alone})"),
                 holds=s.holds, sane=sane, shown_in=shown_in)


def controller_claims(cmp: Comparison, p: Params, shown_in: str = "fig-oq-grid") -> list[Claim]:
    """The growth controller's findings (a)–(d) on the grid and whether its feedback, not its
    schedule, does it (the replay arm)."""
    st = controller_stats(cmp, p)
    sane = all(bool(np.all(np.isfinite(cmp.arms[a].acc))) for a in ARMS)
    out = question_claims("growth", st.growth, p, sane, shown_in, "minibatch grid: ", "plain SGD")
    out.append(feedback_claim("growth: its feedback, not its schedule, removes the growth", st.feedback, p,
                              "the replay arm's decades above the floor (plain SGD on the controller's median "
                              "schedule) minus the controller's", "the schedule alone does it", sane, shown_in))
    return out


def comparison_report(cmp: Comparison, p: Params) -> str:
    st = controller_stats(cmp, p)
    lines = [f"{'':8s} {'accuracy %':>11s} {'STD k':>7s} {'STD seeds':>9s} {'decades':>8s} {'Σ step':>8s} "
             f"{'train loss':>10s}"]
    for name in ARMS:
        c = cmp.arms[name]
        a = c.acc
        lines.append(f"{name:8s} {a.mean():11.2f} {a.std(axis=0, ddof=1).mean():7.3f} "
                     f"{a.std(axis=1, ddof=1).mean():9.3f} {np.nanmean(c.decades):8.2f} "
                     f"{np.mean(c.total_step):8.2f} {np.mean(c.train_loss):10.4f}")
    for label, q in (("growth vs plain", st.growth), ("replay vs plain", st.replay)):
        lines.append(f"{label}:")
        for key in "abcd":
            s: Decided = getattr(q, key)
            lines.append(f"   ({key}) {s.value:.3g}  95% interval [{s.interval[0]:.3g}, {s.interval[1]:.3g}]  → "
                         f"{s.word}")
    f = st.feedback
    lines.append(f"feedback (replay − growth decades) {f.value:.3g}  95% interval [{f.interval[0]:.3g}, "
                 f"{f.interval[1]:.3g}]  → {f.word}")
    return "\n".join(lines)


def comparison_value(cmp: Comparison) -> dict[str, Any]:
    """The results' value ``grid``: per arm, accuracy [k, seed], decades, final RelL1, Σ step, loss."""
    return {name: {k: getattr(c, k) for k in ("acc", "decades", "final_rel", "total_step", "train_loss")}
            for name, c in cmp.arms.items()}


def final_scale(cmp: Comparison, name: str = "growth") -> float:
    """The median over seeds of a controller's last step over plain SGD's last step."""
    return float(np.median([c[-1] / p[-1] for c, p in zip(cmp.arms[name].lrs, cmp.arms["none"].lrs, strict=True)]))
