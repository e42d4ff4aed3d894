"""A learning-rate threshold (paper §4.2 and §5, Figs. 2 right and 5, App. E): what the chapter
``book/sgd_threshold.md`` runs.

- :func:`fixed_lr_sweep` — fixed learning rates with lr × iterations constant.
- :func:`fig2_right` — per sweep and lr, each member's :func:`amplification`, the ensemble's
  :func:`sweep_status`, and :func:`threshold_decision`; :func:`threshold_claims` decides Fig. 2 right.
- :func:`stability_limit` — the top Hessian eigenvalue at the end of every run of the smooth sweep
  (:func:`sharpness`) and the linear stability limit (:func:`momentum_lr_limit`, App. E's (64) with
  momentum) of the stable trajectory; :func:`stability_claims` compares it with the measured bracket.
- :func:`fig5` / :func:`fig5_claims` — test accuracy of k = 1 and the members at the smallest lr.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, cast

import numpy as np

from instab import checks
from instab.findings import tolerance
from instab.growth import amplification, ulp_floor
from instab.report import Claim, claim, decide, judge
from instab.stability import RitzPair, momentum_limit, top_hessian_eigenpair
from instab.studies.sgd import (
    SgdParams,
    check_members,
    config,
    config_of,
    cost_row,
    curve,
    dry_run_of,
    ensemble_variants,
    members,
    network,
    trained_state,
    unanimous,
)
from instab.train import History, RunConfig, Variant, cross_entropy, load_data

__all__ = ["Params", "ThresholdPlan", "plan", "fixed_lr_sweep", "sweep_status",
           "threshold_decision", "fig2_right", "fig2_right_report", "threshold_verdict", "threshold_claims",
           "kinked_verdicts", "sweeps_value", "sharpness", "momentum_lr_limit", "stability_limit",
           "stability_report", "stability_claims", "stability_decision", "stability_verdict", "trajectory", "fig5",
           "fig5_report", "fig5_claims", "dry_run"]


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
    #: stable trajectory's states, for its curvature (:func:`stability_limit`)
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


def threshold_decision(lrs: Sequence[float], status: Sequence[str]) -> dict[str, Any]:
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
    return {"decision": decision, "largest_attenuated": below, "smallest_amplified": above,
            "threshold": math.sqrt(below * above) if decision else math.nan}


#: The registry's finding whose tolerance ``amplified_factor`` says when a fixed-lr run is amplified.
THRESHOLD = "sgd-fig2-right-threshold"


def amplified_factor() -> float:
    """The growth factor above which a fixed-lr run counts as amplified (:func:`amplification`;
    the registry's ``amplified_factor`` of Fig. 2 right's finding, fixed before the run)."""
    return tolerance(THRESHOLD, "amplified_factor")


def fig2_right(p: ThresholdPlan, runs: Mapping[RunConfig, History]) -> dict[str, dict[str, Any]]:
    """Paper Fig. 2 (right), per sweep: ``lrs``, ``amplification`` [lr, member] (from no lower than
    the network's one-ulp floor, :func:`amplification`), ``status`` per lr
    (:func:`sweep_status` with :func:`amplified_factor`), the :func:`threshold_decision`, and
    ``curves``: (lr, iterations, RelL1(k = 1, k = 3), max_steps) per lr."""
    factor = amplified_factor()
    out = {}
    for name, cells in p.sweeps.items():
        lrs = p.sweep_lrs[name]
        floor = ulp_floor(network(cells[0]).parameters())
        amp = np.array([[amplification(*curve(runs[c], m), floor=floor) for m in members(runs[c])] for c in cells])
        status = [sweep_status(a, factor) for a in amp]
        curves = [(lr, *curve(runs[c], "k=3"), c.max_steps) for lr, c in zip(lrs, cells, strict=False)]
        out[name] = dict(lrs=lrs, amplification=amp, status=status, curves=curves,
                         **threshold_decision(lrs, status))
    return out


def threshold_verdict(st: Mapping[str, Any]) -> str:
    """One sweep's outcome in words."""
    return {True: f"threshold between {st['largest_attenuated']:g} and {st['smallest_amplified']:g}",
            False: "no single threshold", None: "undecided at an end of the sweep"}[st["decision"]]


def fig2_right_report(stats: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for name, st in stats.items():
        lines.append(f"{name}:")
        lines += [f"   lr {lr:<6g} growth ×{np.min(a):.3g} … ×{np.max(a):.3g}  → {status}"
                  for lr, a, status in zip(st["lrs"], st["amplification"], st["status"], strict=False)]
        lines.append(f"   {threshold_verdict(st)}")
    return "\n".join(lines)


def threshold_claims(stats: Mapping[str, Mapping[str, Any]], shown_in: str = "fig-sgd-threshold") -> list[Claim]:
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
    for name, st in stats.items():
        bracket = [st["largest_attenuated"], st["smallest_amplified"]]
        if name == "smooth":
            out.append(decide("Fig. 2 right (Swish): one threshold separates attenuated from amplified",
                              st["threshold"], bracket, criterion=criterion, decision=st["decision"],
                              verdict="reproduced", shown_in=shown_in))
            continue
        amp = np.asarray(st["amplification"], float)
        out.append(judge(f"Fig. 2 right ({name}): one threshold separates attenuated from amplified",
                         st["threshold"], bracket, criterion=f"the data decide: {criterion}",
                         holds=st["decision"], sane=bool(np.all(np.isfinite(amp))), shown_in=shown_in))
    return out


def kinked_verdicts(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """The sentence the chapter quotes on the sweeps other than the smooth one."""
    words = {True: "reproduced", False: "refuted", None: "inconclusive"}
    parts = [f"{name}: {threshold_verdict(st)} ({words[st['decision']]})" for name, st in stats.items()
             if name != "smooth"]
    return ("; ".join(parts) + ".") if parts else "no other sweep at this scale."


def sweeps_value(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every sweep's learning rates, amplifications and statuses (the results' value ``sweeps``)."""
    return {name: {"lrs": st["lrs"], "amplification": st["amplification"], "status": st["status"]}
            for name, st in stats.items()}


# ------------------------------------------------------------------------- sharpness (App. E, (64))
def sharpness(h: History, *, iters: int = 20) -> RitzPair:
    """λ_max, the top eigenvalue of the Hessian of the mean training loss (over the run's whole
    training subset, without weight decay) at the run's final reference weights, with its residual
    (Lanczos on Hessian-vector products, :func:`instab.stability.top_hessian_eigenpair`)."""
    model, _ = trained_state(h)
    data = load_data(config_of(h))
    model.train()
    return top_hessian_eigenpair(model, cross_entropy, data.x_train, data.y_train, iters=iters)


def momentum_lr_limit(curvature: float, *, momentum: float, weight_decay: float) -> float:
    """The largest stable learning rate of heavy-ball SGD (PyTorch's: v ← μv + g + αθ, θ ← θ − ηv)
    on a quadratic of curvature λ: η < 2(1 + μ)/(λ + α).  With μ = 0 this is App. E's (64),
    Δt < 2/(α + λ₀); the factor 1 + μ is the momentum's (the eigenvalues of the 2 × 2 iteration
    matrix stay in the unit disc iff 0 < η(λ + α) < 2(1 + μ)).  :func:`instab.stability.momentum_limit`."""
    return momentum_limit(curvature, momentum=momentum, weight_decay=weight_decay)


def stability_limit(p: ThresholdPlan, runs: Mapping[RunConfig, History], sm: Mapping[str, Any], *,
                    level: float = 0.95) -> dict[str, Any]:
    """The threshold the stable trajectory predicts, with its uncertainty, beside the measured
    bracket (``bracket``) of ``sm`` (:func:`fig2_right`).

    λ, the top Hessian eigenvalue (:func:`sharpness`, residual-checked), is measured along the
    smallest-lr run at every point of ``p.sharpness`` (``trajectory``: {seed: [(fraction, λ)]}),
    for every seed; per seed the sharpest point, λ* = max over the trajectory (``lambda_star``) —
    a larger step that follows that trajectory turns unstable where it is sharpest — gives
    η* = 2(1 + μ)/(λ* + α) (``per_seed``).  The prediction's interval (``interval``) is the
    ``level`` confidence interval of the threshold the trajectory predicts: Student's t over the
    seeds' log λ* (:func:`instab.ensemble.mean_interval`: the geometric mean's), mapped through
    η*(λ).  Also λ at the end of every run of the smooth sweep (``lambda_end``, the picture of
    where each lr ends)."""
    from instab.ensemble import mean_interval

    mu, wd = p.sweeps["smooth"][0].momentum, p.sweeps["smooth"][0].weight_decay
    end = [sharpness(runs[c]) for c in p.sweeps["smooth"]]
    along = {key: sharpness(runs[c]) for key, c in p.sharpness.items()}
    traj: dict[int, list[tuple[float, float]]] = {}
    for (seed, f), r in sorted(along.items()):
        traj.setdefault(seed, []).append((f, r.value))
    lam_star = {seed: max(v for _, v in pts) for seed, pts in traj.items()}
    per_seed = {seed: momentum_lr_limit(lam, momentum=mu, weight_decay=wd) for seed, lam in lam_star.items()}
    logs = [math.log(x) if x > 0 else math.nan for x in lam_star.values()]
    mid, lo, hi = mean_interval(logs, level=level)
    # η* falls as λ grows: the interval's ends swap
    interval = (momentum_lr_limit(math.exp(hi), momentum=mu, weight_decay=wd),
                momentum_lr_limit(math.exp(lo), momentum=mu, weight_decay=wd))
    ritz = [*end, *along.values()]
    out = {"lambda_end": [r.value for r in end], "trajectory": traj, "lambda_star": lam_star, "per_seed": per_seed,
           "predicted": momentum_lr_limit(math.exp(mid), momentum=mu, weight_decay=wd), "interval": interval,
           "level": level, "momentum": mu, "weight_decay": wd, "iters": end[0].iters,
           "bracket": (sm["largest_attenuated"], sm["smallest_amplified"]), "lrs": sm["lrs"], "status": sm["status"],
           "worst_residual": max(r.relative_residual for r in ritz), "relative_residual": [r.relative_residual
                                                                                        for r in ritz]}
    assert out["worst_residual"] < 0.05, (
        f"the top Hessian eigenvalue has not converged (relative residual {out['worst_residual']:.2g})")
    return out


def stability_report(s: Mapping[str, Any]) -> str:
    lines = [f"Lanczos ({s['iters']} steps): relative residual ‖Hy − λy‖/λ ≤ {s['worst_residual']:.1e} "
             "at every point"]
    for lr, status, lam in zip(s["lrs"], s["status"], s["lambda_end"], strict=False):
        lim = momentum_lr_limit(lam, momentum=s["momentum"], weight_decay=s["weight_decay"])
        lines.append(f"lr {lr:<6g} {status:10s} λ at the end of the run {lam:8.3f};  "
                     f"η(λ+α)/(2(1+μ)) = {lr / lim:.3f}")
    lines.append(f"the stable trajectory (lr {min(s['lrs']):g}, k = 1), λ at fractions of the run:")
    for seed, pts in s["trajectory"].items():
        lines.append(f"   seed {seed}: " + ", ".join(f"{f:g}: {v:.3f}" for f, v in pts)
                     + f";  η* = 2(1+μ)/(max λ + α) = {s['per_seed'][seed]:.4g}")
    lo_p, hi_p = s["interval"]
    lo_b, hi_b = s["bracket"]
    lines.append(f"predicted threshold {s['predicted']:.4g}, {s['level']:.0%} confidence interval "
                 f"({lo_p:.4g}, {hi_p:.4g});  measured: between {lo_b:g} and {hi_b:g}")
    return "\n".join(lines)


#: The registry's finding for App. A's explanation (its tolerance: the widest bracket it is tested on).
LINEAR_LIMIT = "sgd-threshold-linear-limit"


def stability_decision(s: Mapping[str, Any], bracket_ratio_max: float) -> bool | None:
    """The prediction against the measured bracket: True when the confidence interval of the
    predicted threshold lies inside the bracket, False when it lies wholly outside, None when it
    straddles an end, when the bracket is undefined (no threshold in the sweep) or wider than a
    factor ``bracket_ratio_max`` (too coarse to test a prediction), or the interval is not finite."""
    (lo_p, hi_p), (lo_b, hi_b) = s["interval"], s["bracket"]
    if not all(np.isfinite([lo_b, hi_b, lo_p, hi_p])) or hi_b / lo_b > bracket_ratio_max:
        return None
    if hi_p < lo_b or lo_p > hi_b:
        return False
    return True if lo_b <= lo_p and hi_p <= hi_b else None


def stability_claims(s: Mapping[str, Any], shown_in: str = "sec-sgd-sharpness") -> list[Claim]:
    """The paper's explanation (App. A: the amplification "likely results from not satisfying the
    CFL condition"), made quantitative by App. E's (64) with momentum: the threshold is the linear
    stability limit of the stable trajectory.  The data decide (:func:`stability_decision`, the
    registry's ``bracket_ratio_max``): reproduced if the predicted threshold's confidence interval
    lies inside the measured bracket, refuted if wholly outside, inconclusive if it straddles an end
    or the bracket is too coarse; the claim fails only on a λ that is not a positive finite number."""
    lo_b, hi_b = s["bracket"]
    ratio = tolerance(LINEAR_LIMIT, "bracket_ratio_max")
    lams = [*s["lambda_star"].values()]
    sane = bool(np.all(np.isfinite(lams)) and min(lams) > 0)
    return [judge("threshold = linear stability limit 2(1+μ)/(λ+α) of the stable trajectory", s["predicted"],
                  list(s["interval"]),
                  criterion=(f"the data decide: the {s['level']:.0%} confidence interval of the predicted threshold "
                             f"(max λ along the trajectory, geometric mean over seeds) against the measured bracket "
                             f"({lo_b:g}, {hi_b:g}): inside → reproduced, wholly outside → refuted, straddling, or a "
                             f"bracket wider than ×{ratio:g} or undefined → inconclusive"),
                  holds=stability_decision(s, ratio) if sane else False, sane=sane,
                  shown_in=shown_in)]


def stability_verdict(s: Mapping[str, Any]) -> str:
    """The sentence the chapter quotes on the prediction against the bracket."""
    (lo_b, hi_b), (lo_p, hi_p) = s["bracket"], s["interval"]
    ratio = tolerance(LINEAR_LIMIT, "bracket_ratio_max")
    d = stability_decision(s, ratio)
    head = (f"The linear limit of the stable trajectory, over {len(s['per_seed'])} seeds and "
            f"{len(next(iter(s['trajectory'].values())))} points along each run, predicts a threshold of "
            f"{s['predicted']:.3g} ({s['level']:.0%} confidence interval {lo_p:.3g} to {hi_p:.3g}); the sweep "
            f"measures it between {lo_b:g} and {hi_b:g}")
    if d is True:
        return f"{head}: the interval lies inside, and the paper's explanation is reproduced at this scale."
    if d is False:
        far = max(lo_p / hi_b, lo_b / hi_p)
        return (f"{head}: the prediction lies wholly outside, by a factor {far:.2g} at least, and the paper's "
                "explanation is refuted at this scale.")
    if all(np.isfinite([lo_b, hi_b])) and hi_b / lo_b > ratio:
        return f"{head}: the bracket is wider than a factor {ratio:g}, too coarse to say: inconclusive."
    return f"{head}: the interval straddles an end of the bracket (or there is none): inconclusive."


def stability_value(s: Mapping[str, Any]) -> dict[str, Any]:
    """The results' value ``threshold_vs_sharpness``."""
    return {"measured": list(s["bracket"]), "predicted": s["predicted"], "confidence_interval": list(s["interval"]),
            "level": s["level"],
            "formula": "2(1+mu)/(lambda*+alpha), lambda* the largest along the smallest-lr run, per seed",
            "trajectory": {str(k): v for k, v in s["trajectory"].items()},
            "per_seed": {str(k): v for k, v in s["per_seed"].items()},
            "lambda_end": dict(zip(map(str, s["lrs"]), s["lambda_end"], strict=False)),
            "relative_residual": s["relative_residual"],
            "momentum": s["momentum"], "weight_decay": s["weight_decay"]}


# ------------------------------------------------------------------------------------------- Fig. 5
def fig5(p: ThresholdPlan, runs: Mapping[RunConfig, History], sm: Mapping[str, Any]) -> dict[str, Any]:
    """Paper Fig. 5: the smallest lr of the smooth sweep (``lr``), its run (``history``: test
    accuracy every few iterations per variant), k = 1's accuracy in % (``acc``) and each member's
    largest gap to it in points (``gaps``), and the accuracy of chance in % (``chance``)."""
    lrs = sm["lrs"]
    stable = min(lrs)
    config = p.sweeps["smooth"][lrs.index(stable)]
    h = runs[config]
    a1 = 100 * np.array(h.iter_acc["k=1"])
    gaps = {m: float(np.max(np.abs(a1 - 100 * np.array(h.iter_acc[m])))) for m in members(h)}
    return {"lr": stable, "history": h, "acc": a1, "gaps": gaps, "chance": 100 / load_data(config).num_classes}


def fig5_report(f: Mapping[str, Any], predicted: float) -> str:
    a1, h, gaps = f["acc"], f["history"], f["gaps"]
    return (f"lr {f['lr']:g} (predicted limit {predicted:.3g}): accuracy {a1[0]:.2f}% → {a1[-1]:.2f}% over "
            f"{h.iter_acc_step[-1]} iterations, tested every {h.iter_acc_step[0]}; largest gap to k=1: "
            + ", ".join(f"{m} {g:.2f}" for m, g in gaps.items()) + " points")


def fig5_claims(f: Mapping[str, Any], shown_in: str = "fig-sgd-fig5") -> list[Claim]:
    """At the smallest lr the k = 1 and perturbed accuracy curves overlap (every member within
    ``gap_points``) and rise (≥ ``gain_points``, ending at ≥ ``chance_factor`` × chance): the registry's."""
    a1, gaps = f["acc"], f["gaps"]
    gap, gain, times = (tolerance("sgd-fig5-not-stuck", k) for k in ("gap_points", "gain_points", "chance_factor"))
    chance = f["chance"]
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
