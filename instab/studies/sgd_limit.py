"""Is the threshold the linear stability limit?  (``book/sgd_threshold.md``: App. A's explanation,
made quantitative by App. E's (64) with momentum.)

- :func:`sharpness` — the top Hessian eigenvalue λ at a run's final weights.
- :func:`momentum_lr_limit` — η < 2(1 + μ)/(λ + α), the linear stability limit of heavy-ball SGD.
- :func:`stability_limit` — :class:`StabilityLimit`: λ along the stable trajectory per seed, the
  threshold it predicts with its confidence interval beside the measured bracket; its
  ``report()``, ``claims()``, ``verdict()`` and ``value()``.
- Pure rules: :func:`stability_decision`, :func:`stability_claims`, :func:`stability_verdict`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instab.findings import tolerance
from instab.report import Claim, judge
from instab.stability import RitzPair, momentum_limit, top_hessian_eigenpair
from instab.studies.sgd import config_of, trained_state
from instab.studies.sgd_threshold import Sweep, ThresholdPlan
from instab.train import History, RunConfig, cross_entropy, load_data

__all__ = ["sharpness", "momentum_lr_limit", "StabilityLimit", "stability_limit", "stability_report", "LINEAR_LIMIT",
           "stability_decision", "stability_claims", "stability_verdict", "stability_value"]


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


@dataclass
class StabilityLimit:
    """The threshold the stable trajectory predicts (:func:`stability_limit`): ``predicted`` with
    its ``level`` confidence ``interval``, beside the measured ``bracket``; λ along the trajectory
    (``trajectory``: {seed: [(fraction, λ)]}), its maximum per seed (``lambda_star``) and the limit
    it gives (``per_seed``); λ at the end of every run of the smooth sweep (``lambda_end``, with its
    ``lrs`` and ``status``); the momentum, weight decay, Lanczos steps and relative residuals."""

    predicted: float
    interval: tuple[float, float]
    bracket: tuple[float, float]
    level: float
    lambda_star: dict[int, float]
    per_seed: dict[int, float]
    trajectory: dict[int, list[tuple[float, float]]]
    lambda_end: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    momentum: float = 0.0
    weight_decay: float = 0.0
    iters: int = 0
    worst_residual: float = math.nan
    relative_residual: list[float] = field(default_factory=list)

    def report(self) -> str:
        return stability_report(self)

    def claims(self, shown_in: str = "sec-sgd-sharpness") -> list[Claim]:
        return stability_claims(self, shown_in)

    def verdict(self) -> str:
        return stability_verdict(self)

    def value(self) -> dict[str, Any]:
        return stability_value(self)


def stability_limit(p: ThresholdPlan, runs: Mapping[RunConfig, History], sm: Sweep, *,
                    level: float = 0.95) -> StabilityLimit:
    """The threshold the stable trajectory predicts, with its uncertainty, beside the measured
    bracket of ``sm`` (the smooth sweep of :func:`instab.studies.sgd_threshold.fig2_right`).

    λ, the top Hessian eigenvalue (:func:`sharpness`, residual-checked), is measured along the
    smallest-lr run at every point of ``p.sharpness``, for every seed; per seed the sharpest point,
    λ* = max over the trajectory — a larger step that follows that trajectory turns unstable where
    it is sharpest — gives η* = 2(1 + μ)/(λ* + α).  The prediction's interval is the ``level``
    confidence interval of the threshold the trajectory predicts: Student's t over the seeds' log λ*
    (:func:`instab.ensemble.mean_interval`: the geometric mean's), mapped through η*(λ)."""
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
    out = StabilityLimit(
        predicted=momentum_lr_limit(math.exp(mid), momentum=mu, weight_decay=wd), interval=interval,
        bracket=(sm.decided.largest_attenuated, sm.decided.smallest_amplified), level=level,
        lambda_star=lam_star, per_seed=per_seed, trajectory=traj, lambda_end=[r.value for r in end], lrs=sm.lrs,
        status=sm.status, momentum=mu, weight_decay=wd, iters=end[0].iters,
        worst_residual=max(r.relative_residual for r in ritz), relative_residual=[r.relative_residual for r in ritz])
    assert out.worst_residual < 0.05, (
        f"the top Hessian eigenvalue has not converged (relative residual {out.worst_residual:.2g})")
    return out


def stability_report(s: StabilityLimit) -> str:
    lines = [f"Lanczos ({s.iters} steps): relative residual ‖Hy − λy‖/λ ≤ {s.worst_residual:.1e} "
             "at every point"]
    for lr, status, lam in zip(s.lrs, s.status, s.lambda_end, strict=False):
        lim = momentum_lr_limit(lam, momentum=s.momentum, weight_decay=s.weight_decay)
        lines.append(f"lr {lr:<6g} {status:10s} λ at the end of the run {lam:8.3f};  "
                     f"η(λ+α)/(2(1+μ)) = {lr / lim:.3f}")
    lines.append(f"the stable trajectory (lr {min(s.lrs):g}, k = 1), λ at fractions of the run:")
    for seed, pts in s.trajectory.items():
        lines.append(f"   seed {seed}: " + ", ".join(f"{f:g}: {v:.3f}" for f, v in pts)
                     + f";  η* = 2(1+μ)/(max λ + α) = {s.per_seed[seed]:.4g}")
    lo_p, hi_p = s.interval
    lo_b, hi_b = s.bracket
    lines.append(f"predicted threshold {s.predicted:.4g}, {s.level:.0%} confidence interval "
                 f"({lo_p:.4g}, {hi_p:.4g});  measured: between {lo_b:g} and {hi_b:g}")
    return "\n".join(lines)


#: The registry's finding for App. A's explanation (its tolerance: the widest bracket it is tested on).
LINEAR_LIMIT = "sgd-threshold-linear-limit"


def stability_decision(s: StabilityLimit, bracket_ratio_max: float) -> bool | None:
    """The prediction against the measured bracket: True when the confidence interval of the
    predicted threshold lies inside the bracket, False when it lies wholly outside, None when it
    straddles an end, when the bracket is undefined (no threshold in the sweep) or wider than a
    factor ``bracket_ratio_max`` (too coarse to test a prediction), or the interval is not finite."""
    (lo_p, hi_p), (lo_b, hi_b) = s.interval, s.bracket
    if not all(np.isfinite([lo_b, hi_b, lo_p, hi_p])) or hi_b / lo_b > bracket_ratio_max:
        return None
    if hi_p < lo_b or lo_p > hi_b:
        return False
    return True if lo_b <= lo_p and hi_p <= hi_b else None


def stability_claims(s: StabilityLimit, shown_in: str = "sec-sgd-sharpness") -> list[Claim]:
    """The paper's explanation (App. A: the amplification "likely results from not satisfying the
    CFL condition"), made quantitative by App. E's (64) with momentum: the threshold is the linear
    stability limit of the stable trajectory.  The data decide (:func:`stability_decision`, the
    registry's ``bracket_ratio_max``): reproduced if the predicted threshold's confidence interval
    lies inside the measured bracket, refuted if wholly outside, inconclusive if it straddles an end
    or the bracket is too coarse; the claim fails only on a λ that is not a positive finite number."""
    lo_b, hi_b = s.bracket
    ratio = tolerance(LINEAR_LIMIT, "bracket_ratio_max")
    lams = [*s.lambda_star.values()]
    sane = bool(np.all(np.isfinite(lams)) and min(lams) > 0)
    return [judge("threshold = linear stability limit 2(1+μ)/(λ+α) of the stable trajectory", s.predicted,
                  list(s.interval),
                  criterion=(f"the data decide: the {s.level:.0%} confidence interval of the predicted threshold "
                             f"(max λ along the trajectory, geometric mean over seeds) against the measured bracket "
                             f"({lo_b:g}, {hi_b:g}): inside → reproduced, wholly outside → refuted, straddling, or a "
                             f"bracket wider than ×{ratio:g} or undefined → inconclusive"),
                  holds=stability_decision(s, ratio) if sane else False, sane=sane,
                  shown_in=shown_in)]


def stability_verdict(s: StabilityLimit) -> str:
    """The sentence the chapter quotes on the prediction against the bracket."""
    (lo_b, hi_b), (lo_p, hi_p) = s.bracket, s.interval
    ratio = tolerance(LINEAR_LIMIT, "bracket_ratio_max")
    d = stability_decision(s, ratio)
    head = (f"The linear limit of the stable trajectory, over {len(s.per_seed)} seeds and "
            f"{len(next(iter(s.trajectory.values())))} points along each run, predicts a threshold of "
            f"{s.predicted:.3g} ({s.level:.0%} confidence interval {lo_p:.3g} to {hi_p:.3g}); the sweep "
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


def stability_value(s: StabilityLimit) -> dict[str, Any]:
    """The results' value ``threshold_vs_sharpness``."""
    return {"measured": list(s.bracket), "predicted": s.predicted, "confidence_interval": list(s.interval),
            "level": s.level,
            "formula": "2(1+mu)/(lambda*+alpha), lambda* the largest along the smallest-lr run, per seed",
            "trajectory": {str(k): v for k, v in s.trajectory.items()},
            "per_seed": {str(k): v for k, v in s.per_seed.items()},
            "lambda_end": dict(zip(map(str, s.lrs), s.lambda_end, strict=False)),
            "relative_residual": s.relative_residual,
            "momentum": s.momentum, "weight_decay": s.weight_decay}
