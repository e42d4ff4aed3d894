"""The paper's open questions (§6), answered at the book's scale: what the chapter
``book/open_questions.md`` runs.

- :func:`plan` — fixed-lr runs below and above the measured threshold (:class:`TrackedRun`: the
  reference's sharpness λ, the batch sharpness, RelL1 of every member and a shadow's finite-time
  growth rate every ``every`` iterations), and the k × seed grid of Tables 1/4 trained with plain
  SGD and with each stability controller (:mod:`instab.controllers`).
- :func:`trajectories` — per regime and seed: the stability ratio η(λ + α)/(2(1 + μ)), the onsets
  of amplification and of the edge, the growth; :func:`edge_claims` decides the edge findings.
- :func:`comparison` — the grid per controller: RelL1 growth, STD over k and over seeds, accuracy,
  wall time; :func:`controller_claims` decides findings (a)–(d) for each controller.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from scipy import stats

from instab import checks, report
from instab.controllers import TrackedRun
from instab.edge import ARMS as ARMS_EDGE
from instab.edge import EdgeRun
from instab.ensemble import band_decision, floor_decision, mean_interval
from instab.findings import tolerance
from instab.grid import run_grid
from instab.growth import amplification, decades, ulp_floor
from instab.report import Claim
from instab.stability import stability_ratio
from instab.studies.sgd import SgdParams, check_members, config, cost_row, dry_run_of, network, run_plan
from instab.studies.sgd_threshold import amplified_factor
from instab.train import RunConfig, Variant

__all__ = ["Params", "OpenPlan", "plan", "onset", "floor_multiple", "ONSET",
           "trajectories", "edge_claims",
           "edge_report", "comparison", "variance_ratio_interval", "controller_claims", "comparison_report",
           "trajectories_value", "comparison_value", "answers", "edge_sentence", "edge_stats", "controller_stats",
           "onset_decision", "fall_decision", "first_at_least", "final_scale", "dry_run", "std_interval",
           "disagreement_std", "null_model", "null_model_claims", "null_model_report", "REGIMES", "CONTROLLED",
           "ARMS", "run", "replay_cells", "median_schedule", "four_questions", "feedback_decision", "edge_gd",
           "edge_gd_stats", "edge_gd_claims", "edge_gd_report", "edge_gd_value"]


def judge(name: str, ours: Any, interval: Any, **kw: Any) -> Claim:
    """:func:`instab.report.judge` for this chapter, whose findings are all ours (§6 asks; the paper
    answers nothing): a criterion that holds is an ``extension``, never "reproduced"."""
    return report.judge(name, ours, interval, if_holds="extension", **kw)

#: the two fixed-lr regimes of the trajectories
REGIMES = ("below", "above")
#: the minibatch grid's arms: plain SGD, the growth controller, plain SGD on its median schedule
ARMS = ("none", "growth", "replay")
#: the controllers: the growth controller on the grid, the curvature cap at the edge of full-batch GD
CONTROLLED = ("cap", "growth")
#: the growth controller's settings a chapter may give
GROWTH_KEYS = ("down", "up", "step_floor", "growth_budget", "shadow_delta")


@dataclasses.dataclass
class Params(SgdParams):
    """The chapter's parameters (its parameters cell)."""

    members: list[int]
    network: dict[str, Any]
    lrs: dict[str, float]
    steps: int
    seeds: list[int]
    every: int
    tracking: dict[str, Any]
    edge_band: list[float]
    grid: dict[str, Any]
    k_values: list[int]
    grid_seeds: list[int]
    growth: dict[str, Any]
    edge: dict[str, Any]
    edge_seeds: list[int]
    decades_min: float
    feedback_min: float
    acc_cost_max: float
    std_fall_band: float

    def validate(self) -> Self:
        super().validate()
        check_members(self.members)
        if set(self.lrs) != set(REGIMES):
            raise ValueError(f"lrs={self.lrs!r} is not allowed; give one lr for each of {list(REGIMES)}")
        checks.each("lrs", list(self.lrs.values()), checks.positive)
        if not self.lrs["below"] < self.lrs["above"]:
            raise ValueError(f"lrs={self.lrs!r} is not allowed; the 'below' lr must be the smaller")
        checks.positive("steps", self.steps, integer=True)
        checks.positive("every", self.every, integer=True)
        for name, values in (("seeds", self.seeds), ("grid_seeds", self.grid_seeds), ("edge_seeds", self.edge_seeds)):
            if len(set(values)) < 3 or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in values):
                raise ValueError(f"{name}={values!r} is not allowed; at least 3 distinct integers >= 0")
        ks = [int(k) for k in self.k_values]
        if ks[:1] != [1] or len(ks) < 2 or len(set(ks)) != len(ks):
            raise ValueError(f"k_values={self.k_values!r} is not allowed; k 1 first (the reference), then >= 1 "
                             "distinct perturbation")
        check_members(ks[1:])
        bad = sorted(set(self.growth) - set(GROWTH_KEYS))
        if bad:
            raise ValueError(f"growth: {bad[0]} is not allowed; the growth controller's settings are "
                             f"{list(GROWTH_KEYS)}")
        bad = sorted(set(self.edge) - set(EdgeRun.__dataclass_fields__) | ({"init_seed"} & set(self.edge)))
        if bad:
            raise ValueError(f"edge: {bad[0]} is not allowed; EdgeRun fields (not init_seed: edge_seeds) are "
                             f"{sorted(set(EdgeRun.__dataclass_fields__) - {'init_seed'})}")
        if len(self.edge_band) != 2 or not 0 < self.edge_band[0] < 1 < self.edge_band[1]:
            raise ValueError(f"edge_band={self.edge_band!r} is not allowed; [low < 1 < high]")
        checks.positive("decades_min", self.decades_min)
        checks.positive("feedback_min", self.feedback_min)
        checks.positive("acc_cost_max", self.acc_cost_max)
        checks.in_range("std_fall_band", self.std_fall_band, 0.1, 0.99)
        plan(self)
        return self


@dataclass
class OpenPlan:
    """Every run of the chapter: the trajectories {regime: [cell per seed]}, the grid {arm: [cell
    per seed]} (``none``: plain SGD; ``growth``; ``replay``: filled by :func:`replay_cells` once the
    growth arm has run) and the full-batch edge runs (one per seed)."""

    trajectories: dict[str, list[TrackedRun]]
    grid: dict[str, list[TrackedRun]]
    edge: list[EdgeRun]
    seeds: list[int]
    grid_seeds: list[int]
    k_values: list[int]

    def configs(self) -> list[TrackedRun]:
        """The tracked runs (trajectories and grid) that can run now (not the replay arm)."""
        return [c for cells in (*self.trajectories.values(), self.grid["none"], self.grid["growth"]) for c in cells]

    def describe(self) -> str:
        t = self.trajectories["above"][0]
        g = self.grid["none"][0]
        e = self.edge[0]
        steps = {r: c[0].max_steps for r, c in self.trajectories.items()}
        return (f"trajectories: {t.model} {t.hidden} {t.activation}, lr "
                f"{[c[0].lr for c in self.trajectories.values()]}, {list(steps.values())} iterations (equal lr × "
                f"iterations), {len(self.seeds)} seeds × k {[v.k for v in t.variants]}\n"
                f"grid: k {self.k_values} × {len(self.grid_seeds)} seeds, {g.epochs} epochs, lr {g.lr} "
                f"(÷10 every {g.lr_decay_every}), {g.test_size} test images; arms {list(ARMS)}\n"
                f"edge: full-batch GD on {e.train_size} images, lr {e.lr}, momentum {e.momentum}, "
                f"{len(self.edge)} seeds; arms {list(ARMS_EDGE)}, {e.arm_steps} iterations each")


def plan(p: Params) -> OpenPlan:
    """Build and validate every configuration (``ValueError`` naming the bad parameter)."""
    fields = set(TrackedRun.__dataclass_fields__)
    track_over = dict(p.tracking)
    unknown = sorted(set(track_over) - fields)
    if unknown:
        raise ValueError(f"tracking: {unknown[0]} is not allowed; TrackedRun fields are {sorted(fields)}")
    variants = (Variant(1), *(Variant(int(k)) for k in p.members))

    def cell(over: Mapping[str, Any], where: str, **fixed: Any) -> TrackedRun:
        c = config(p.common, over, where)
        try:
            return TrackedRun(**{**c.to_dict(), **track_over, "engine": "loop", "every": p.every,
                                 **fixed}).validate()
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None

    top = float(p.lrs["above"])
    traj = {}
    for regime in REGIMES:
        lr = float(p.lrs[regime])
        stretch = round(top / lr)  # equal lr × iterations: the smaller lr runs (and records) stretch × longer
        traj[regime] = [cell(p.network, "network", lr=lr, lr_decay_every=0, epochs=None,
                             max_steps=int(p.steps) * stretch, every=p.every * stretch, init_seed=int(s),
                             batch_seed=int(s), variants=variants, controller="none", sharpness=True, shadow=True)
                        for s in p.seeds]
    grid_variants = tuple(Variant(int(k)) for k in p.k_values)
    grid = {name: [cell(p.grid, "grid", variants=grid_variants, batch_seed=int(s), controller=name,
                        sharpness=False, shadow=name == "growth", **(p.growth if name == "growth" else {}))
                   for s in p.grid_seeds] for name in ("none", "growth")}
    grid["replay"] = []
    try:
        shared: dict[str, Any] = {k: p.common[k] for k in ("momentum", "weight_decay", "threads", "device")
                                  if k in p.common}
        edge_fields: dict[str, Any] = {**shared, **p.edge}
        edge = [EdgeRun(**edge_fields, init_seed=int(seed)).validate() for seed in p.edge_seeds]
    except (TypeError, ValueError) as e:
        raise ValueError(f"edge: {e}") from None
    return OpenPlan(traj, grid, edge, [int(s) for s in p.seeds], [int(s) for s in p.grid_seeds],
                    [int(k) for k in p.k_values])


def median_schedule(schedules: Sequence[Sequence[float]]) -> list[float]:
    """The median over runs of each iteration's step: the open-loop schedule the replay arm takes."""
    return [float(v) for v in np.median(np.asarray(schedules, float), axis=0)]


def replay_cells(p: OpenPlan, runs: Mapping[TrackedRun, Mapping[str, Any]]) -> list[TrackedRun]:
    """The replay arm: every grid seed's plain-SGD cell, trained on the growth arm's median schedule
    (the same total step without the feedback).  Also stored in ``p.grid["replay"]``."""
    sched = median_schedule([runs[c]["step_lrs"] for c in p.grid["growth"]])
    p.grid["replay"] = [c.replace(controller="replay", replay=tuple(sched)).validate() for c in p.grid["none"]]
    return p.grid["replay"]


@dataclass
class _Cells:
    cells: list[Any]

    def configs(self) -> list[Any]:
        return self.cells


def run(p: OpenPlan, *, workers: int | None = None, executor: Any = None) -> tuple[
        dict[TrackedRun, dict[str, Any]], dict[EdgeRun, dict[str, Any]]]:
    """Run every cell (cached, resumable): the trajectories and the grid's plain and growth arms,
    then the replay arm on the growth arm's median schedule, then the edge runs.  Returns
    ({tracked run: record}, {edge run: record})."""
    runs: dict[Any, Any] = dict(run_plan(_Cells(p.configs()), workers=workers, executor=executor))
    runs.update(run_plan(_Cells(replay_cells(p, runs)), workers=workers, executor=executor))
    edge = run_grid(p.edge, workers=workers, executor=executor, desc="edge runs")
    return runs, dict(zip(p.edge, edge, strict=True))


# --------------------------------------------------------------------------- trajectories


#: The registry's finding on where amplification begins (``floor_multiple``, ``agree``).
ONSET = "oq-onset-at-edge"


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


def trajectories(p: OpenPlan, runs: Mapping[TrackedRun, Mapping[str, Any]]) -> dict[str, Any]:
    """Per regime, one record per seed: ``steps``, ``ratio`` (λ on the fixed subset of ``sharp_size``
    images), ``batch_ratio`` (batch sharpness), ``rel`` (median RelL1 over the members), ``rate``
    (the shadow's growth rate per iteration over the window ending at each record), ``amp_onset`` (:func:`onset`),
    ``edge_onset`` (first ratio ≥ 1), ``rate_onset_ratio`` (the ratio at the start of the first
    window with a positive growth rate), ``late_ratio`` / ``late_batch_ratio`` (medians over the
    second half), ``max_ratio``, ``amplification`` (per member, as in Fig. 2 right) and
    ``residual`` (the worst Lanczos relative residual)."""
    out: dict[str, Any] = {}
    multiple = floor_multiple()
    for regime, cells in p.trajectories.items():
        rows = []
        floor = ulp_floor(network(cells[0]).parameters())
        for c in cells:
            r = runs[c]
            steps = np.asarray(r["steps"], float)
            ratio = stability_ratio(r["lr"], r["lambda"], momentum=c.momentum, weight_decay=c.weight_decay)
            bratio = stability_ratio(r["lr"], r["batch_sharpness"], momentum=c.momentum,
                                     weight_decay=c.weight_decay)
            stepped = stability_ratio(r["lr"], r["lambda_batch"], momentum=c.momentum,
                                      weight_decay=c.weight_decay)
            rel = np.median(np.array([r["rel_l1"][m] for m in r["rel_l1"]]), axis=0)
            rate = np.asarray(r["rate"], float)
            pos = np.flatnonzero(np.isfinite(rate) & (rate > 0))
            half = steps >= steps[-1] / 2
            rows.append({"seed": c.init_seed, "steps": steps, "ratio": ratio, "batch_ratio": bratio, "rel": rel,
                         "stepped_ratio": stepped, "lambda_min": np.asarray(r["lambda_min"], float),
                         "rate": rate, "rate_per_time": rate / np.asarray(r["lr"], float),
                         "amp_onset": onset(steps, rel, floor, multiple), "floor": floor,
                         "edge_onset": first_at_least(steps, ratio, 1.0),
                         "rate_onset_ratio": float(ratio[pos[0] - 1]) if pos.size else math.nan,
                         "late_ratio": float(np.median(ratio[half])),
                         "late_batch_ratio": float(np.median(bratio[half])), "max_ratio": float(np.max(ratio)),
                         "amplification": [amplification(steps, np.asarray(r["rel_l1"][m], float), floor=floor)
                                           for m in r["rel_l1"]],
                         "residual": float(np.max(r["residual"]))})
        out[regime] = {"lr": cells[0].lr, "rows": rows}
    return out


def _log_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Geometric mean of positive ``values`` and the Student-t interval of the mean of their log10,
    mapped back (NaN where fewer than 2 finite positive values)."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size < 2:
        return math.nan, math.nan, math.nan
    m, lo, hi = mean_interval(np.log10(x))
    return 10**m, 10**lo, 10**hi


def _decided(interval: Sequence[float], decide: Any) -> bool | None:
    return None if not np.all(np.isfinite(interval)) else decide(interval)


def onset_decision(rows: Sequence[Mapping[str, Any]], agree: float) -> tuple[bool | None, list[float]]:
    """Amplification begins when the ratio reaches 1?  Over the seeds whose RelL1 is amplified
    (an ``amp_onset``): False if most of them amplify with no edge at all; else the 95% interval of
    the mean log10(amp_onset/edge_onset) inside ±log10(agree) → True, wholly outside → False,
    else (or with some seeds edgeless) None; fewer than 2 amplified seeds → None."""
    amp = [r for r in rows if np.isfinite(r["amp_onset"])]
    if len(amp) < 2:
        return None, [math.nan, math.nan]
    edgeless = sum(not np.isfinite(r["edge_onset"]) for r in amp)
    both = [r["amp_onset"] / r["edge_onset"] for r in amp if np.isfinite(r["edge_onset"])]
    if edgeless > len(amp) / 2:
        return False, [math.nan, math.nan]
    _, lo, hi = _log_interval(both)
    d = _decided([lo, hi], lambda iv: band_decision(iv, [1 / agree, agree]))
    return (None if d is True and edgeless else d), [lo, hi]


def edge_stats(t: Mapping[str, Any], p: Params) -> dict[str, Any]:
    """Every edge statistic with its interval and decision (what :func:`edge_claims` records)."""
    above, below = t["above"]["rows"], t["below"]["rows"]
    out: dict[str, Any] = {}
    out["onset"] = onset_decision(above, tolerance(ONSET, "agree"))
    for key, col in (("hover", "late_ratio"), ("hover_batch", "late_batch_ratio")):
        m, lo, hi = _log_interval([r[col] for r in above])
        out[key] = (_decided([lo, hi], lambda iv: band_decision(iv, p.edge_band)), m, [lo, hi])
    for regime in REGIMES:
        per_seed = [float(np.median(r["amplification"])) for r in t[regime]["rows"]]
        m, lo, hi = _log_interval(per_seed)
        out[f"amplified_{regime}"] = (_decided([lo, hi], lambda iv: floor_decision(iv, amplified_factor())),
                                      m, [lo, hi])
    m, lo, hi = _log_interval([r["max_ratio"] for r in below])
    out["below_max"] = (_decided([lo, hi], lambda iv: not floor_decision(iv, 1.0)
                                 if floor_decision(iv, 1.0) is not None else None), m, [lo, hi])
    m, lo, hi = _log_interval([r["rate_onset_ratio"] for r in above])
    out["rate_onset"] = (_decided([lo, hi], lambda iv: band_decision(iv, p.edge_band)), m, [lo, hi])
    out["residual"] = max(r["residual"] for regime in REGIMES for r in t[regime]["rows"])
    return out


def edge_claims(t: Mapping[str, Any], p: Params, shown_in: str = "fig-oq-edge") -> list[Claim]:
    """The edge-of-stability findings, each decided by a 95% interval over the seeds (the data
    decide: reproduced / refuted / inconclusive; a claim fails only when its numbers are not sane:
    a Lanczos residual above 5%)."""
    e = edge_stats(t, p)
    sane = bool(e["residual"] < 0.05)
    lo_b, hi_b = p.edge_band
    above, below = t["above"]["lr"], t["below"]["lr"]
    onset_d, onset_iv = e["onset"]
    amp = [r for r in t["above"]["rows"] if np.isfinite(r["amp_onset"])]
    edgeless = sum(not np.isfinite(r["edge_onset"]) for r in amp) / len(amp) if amp else math.nan
    multiple, agree = floor_multiple(), tolerance(ONSET, "agree")
    out = [judge("onset: amplification begins when the stability ratio reaches 1", edgeless, onset_iv,
                 criterion=(f"lr {above:g}: over the seeds whose RelL1 reaches {multiple:g} × the one-ulp floor "
                            f"(ours: the share of them that never reach ratio 1), 95% interval of the geometric "
                            f"mean of t(amplified)/t(ratio ≥ 1) inside [1/{agree:g}, {agree:g}]; "
                            "most amplified seeds never reaching ratio 1, or the interval wholly outside → refuted"),
                 holds=onset_d, sane=sane, shown_in=shown_in)]
    for key, name, what in (("hover", "above: the stability ratio hovers near 1 (λ on the fixed subset)", "late_ratio"),
                            ("hover_batch", "above: the batch-sharpness ratio hovers near 1", "late_batch_ratio")):
        d, m, iv = e[key]
        out.append(judge(name, m, iv, criterion=(f"lr {above:g}: median of η(λ+α)/(2(1+μ)) over the second half "
                                                 f"of each run ({what}); 95% interval of the geometric mean over "
                                                 f"seeds inside [{lo_b:g}, {hi_b:g}]; wholly outside → refuted"),
                         holds=d, sane=sane, shown_in=shown_in))
    d, m, iv = e["amplified_above"]
    out.append(judge("above: RelL1 is amplified", m, iv,
                     criterion=(f"lr {above:g}: RelL1 growth (last 10% / first 10%, median over members) above "
                                f"×{amplified_factor():g}: 95% interval of the geometric mean over seeds"),
                     holds=d, sane=sane, shown_in=shown_in))
    d, m, iv = e["amplified_below"]
    out.append(judge("below: RelL1 is not amplified", m, iv,
                     criterion=(f"lr {below:g}: the same growth below ×{amplified_factor():g} (interval wholly "
                                "below → holds, wholly above → refuted)"),
                     holds=None if d is None else not d, sane=sane, shown_in=shown_in))
    d, m, iv = e["below_max"]
    out.append(judge("below: the stability ratio stays below 1", m, iv,
                     criterion=(f"lr {below:g}: the largest ratio along each run; 95% interval of the geometric "
                                "mean over seeds wholly below 1 → holds, wholly above → refuted"),
                     holds=d, sane=sane, shown_in=shown_in))
    d, m, iv = e["rate_onset"]
    out.append(judge("growth rate: amplification starts at the quadratic limit", m, iv,
                     criterion=(f"lr {above:g}: the stability ratio where the shadow's growth rate first turns "
                                f"positive; 95% interval of the geometric mean over seeds inside [{lo_b:g}, "
                                f"{hi_b:g}] → holds; wholly below (amplified before the limit) or above → refuted"),
                     holds=d, sane=sane, shown_in="fig-oq-rate"))
    return out


def edge_report(t: Mapping[str, Any]) -> str:
    lines = []
    for regime in REGIMES:
        lines.append(f"{regime} the threshold, lr {t[regime]['lr']:g}:")
        for r in t[regime]["rows"]:
            lines.append(f"   seed {r['seed']}: ratio max {r['max_ratio']:.3f}, late {r['late_ratio']:.3f} "
                         f"(batch {r['late_batch_ratio']:.3f}); RelL1 growth ×{np.median(r['amplification']):.3g}; "
                         f"amplified at {r['amp_onset']:g}, ratio ≥ 1 at {r['edge_onset']:g}; growth rate > 0 at "
                         f"ratio {r['rate_onset_ratio']:.3f}; Lanczos residual ≤ {r['residual']:.1e}")
    return "\n".join(lines)


def edge_sentence(t: Mapping[str, Any], p: Params) -> str:
    """The sentence the chapter quotes on where amplification starts."""
    e = edge_stats(t, p)
    d, m, (lo, hi) = e["rate_onset"]
    where = ("at the quadratic limit" if d else "below the quadratic limit" if np.isfinite(hi) and hi < p.edge_band[0]
             else "above the quadratic limit" if np.isfinite(lo) and lo > p.edge_band[1] else "undecided")
    hm, (hlo, hhi) = e["hover"][1], e["hover"][2]
    return (f"The shadow's growth rate turns positive at a stability ratio of {m:.2g} (95% interval {lo:.2g} to "
            f"{hi:.2g}): amplification starts {where}.  Over the second half of the runs above the threshold "
            f"the ratio from λ on the fixed subset is {hm:.2g} ({hlo:.2g} to {hhi:.2g}), the batch-sharpness ratio "
            f"{e['hover_batch'][1]:.2g} ({e['hover_batch'][2][0]:.2g} to {e['hover_batch'][2][1]:.2g}).")


# ------------------------------------------------------------------------------ the grid
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


def comparison(p: OpenPlan, runs: Mapping[TrackedRun, Mapping[str, Any]]) -> dict[str, Any]:
    """Per arm (``none``: plain SGD, ``growth``, ``replay``): ``acc`` [k, seed] in %, ``decades``
    per seed (final RelL1 over the one-ulp floor), ``final_rel`` per seed, ``train_loss`` (the
    reference's mean loss over the last window, per seed), ``seconds`` per seed (the reference's
    share of the steps plus its shadow), ``lrs`` (each seed's step per iteration), ``total_step``
    (Σ η_t per seed), ``n_test`` and ``disagree`` (test images, summed over seeds, on which a
    seed's k runs differ in correctness)."""
    out: dict[str, Any] = {}
    floor = ulp_floor(network(p.grid["none"][0]).parameters())
    for name in ARMS:
        cells = p.grid[name]
        acc = np.array([[100 * runs[c]["final_acc"][Variant(k).name] for c in cells] for k in p.k_values])
        per_ref = [runs[c]["seconds"]["steps"] / len(c.variants) + runs[c]["seconds"]["shadow"] for c in cells]
        out[name] = {"acc": acc, "decades": [_decades(runs[c], floor) for c in cells], "floor": floor,
                     "n_test": len(runs[cells[0]]["labels"]),
                     "disagree": sum(_disagreements(runs[c], p.k_values) for c in cells),
                     "final_rel": [float(np.median([v[-1] for v in runs[c]["rel_l1"].values()])) for c in cells],
                     "train_loss": [float(runs[c]["train_loss"][-1]) for c in cells],
                     "seconds": per_ref, "lrs": [runs[c]["step_lrs"] for c in cells],
                     "total_step": [float(np.sum(runs[c]["step_lrs"])) for c in cells],
                     "steps": [runs[c]["steps"] for c in cells],
                     "rel": [np.median(np.array(list(runs[c]["rel_l1"].values())), axis=0) for c in cells]}
    return out


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


def _difference(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """Mean of the paired differences x − y (finite pairs) with its t interval; NaN if none."""
    d = np.asarray(x, float) - np.asarray(y, float)
    d = d[np.isfinite(d)]
    return mean_interval(d) if d.size else (math.nan, math.nan, math.nan)


def four_questions(arm: Mapping[str, Any], plain: Mapping[str, Any], p: Params) -> dict[str, Any]:
    """Findings (a)–(d) of an intervention against plain runs, each (decision, value, interval):
    (a) plain's decades − the arm's (t interval over seeds) above ``decades_min``; (b), (c) the STD
    over k, over seeds, arm / plain (F interval, :func:`fall_decision`); (d) the arm's accuracy −
    plain's (mean over k, t interval over seeds) above −``acc_cost_max``."""
    st: dict[str, Any] = {}
    m, lo, hi = _difference(plain["decades"], arm["decades"])
    st["a"] = (_decided([lo, hi], lambda iv: floor_decision(iv, p.decades_min)), m, [lo, hi])
    for key, axis in (("b", "k"), ("c", "seeds")):
        r, lo, hi = variance_ratio_interval(arm["acc"], plain["acc"], axis)
        if r == 0 and axis == "k" and arm.get("n_test"):
            # no seed's k runs differ in accuracy: the F interval degenerates to [0, 0]; bound the
            # STD instead through Jordan's null by the 95% Poisson upper bound on the disagreements
            # counted (3 when there are none: the rule of three), the S·N images taken as independent
            s_, n = arm["acc"].shape[1], int(arm["n_test"])
            upper = float(stats.chi2.ppf(0.95, 2 * (int(arm["disagree"]) + 1)) / 2)
            plain_sd = math.sqrt(float(np.asarray(plain["acc"], float).var(axis=0, ddof=1).mean()))
            hi = disagreement_std(upper / (s_ * n), n) / plain_sd if plain_sd > 0 else math.nan
        st[key] = (fall_decision([lo, hi], p.std_fall_band), r, [lo, hi])
    m, lo, hi = _difference(arm["acc"].mean(axis=0), plain["acc"].mean(axis=0))
    st["d"] = (_decided([lo, hi], lambda iv: floor_decision(iv, -p.acc_cost_max)), m, [lo, hi])
    return st


def feedback_decision(matched: Sequence[float], controlled: Sequence[float], minimum: float) -> tuple[
        bool | None, float, list[float]]:
    """Is a controller's effect its feedback rather than its step sizes?  Per seed, the decades of
    the open-loop arm with the same steps (``matched``) minus the controller's: the t interval
    above ``minimum`` → True (the feedback removes growth the same steps leave); below it → False
    (the steps alone do it); else None."""
    m, lo, hi = _difference(matched, controlled)
    return _decided([lo, hi], lambda iv: floor_decision(iv, minimum)), m, [lo, hi]


def controller_stats(cmp: Mapping[str, Any], p: Params) -> dict[str, Any]:
    """The growth controller's (a)–(d) against plain SGD, ``feedback`` (against the replay arm),
    and the replay arm's own (a)–(d) (what the schedule alone does)."""
    st = four_questions(cmp["growth"], cmp["none"], p)
    st["feedback"] = feedback_decision(cmp["replay"]["decades"], cmp["growth"]["decades"], p.feedback_min)
    st["replay"] = four_questions(cmp["replay"], cmp["none"], p)
    return st


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


def _question_claims(name: str, st: Mapping[str, Any], p: Params, sane: bool, shown_in: str,
                     where: str, plain: str) -> list[Claim]:
    out = []
    for key, (title, criterion) in _QUESTIONS.items():
        d, m, iv = st[key]
        fmt = {"dmin": p.decades_min, "band": p.std_fall_band, "acc": p.acc_cost_max, "plain": plain}
        out.append(judge(f"{name}: " + title.format(**fmt), m, iv, criterion=where + criterion.format(**fmt),
                         holds=d, sane=sane, shown_in=shown_in))
    return out


def controller_claims(cmp: Mapping[str, Any], p: Params, shown_in: str = "fig-oq-grid") -> list[Claim]:
    """The growth controller's findings (a)–(d) on the grid and whether its feedback, not its
    schedule, does it (the replay arm)."""
    st = controller_stats(cmp, p)
    sane = all(bool(np.all(np.isfinite(cmp[a]["acc"]))) for a in ARMS)
    out = _question_claims("growth", st, p, sane, shown_in, "minibatch grid: ", "plain SGD")
    out.append(_feedback_claim("growth: its feedback, not its schedule, removes the growth", st["feedback"], p,
                               "the replay arm's decades above the floor (plain SGD on the controller's median "
                               "schedule) minus the controller's", "the schedule alone does it", sane, shown_in))
    return out


def _feedback_claim(name: str, decided: tuple[Any, float, Sequence[float]], p: Params, what: str, alone: str,
                    sane: bool, shown_in: str) -> Claim:
    d, m, iv = decided
    return judge(name, m, iv, criterion=(f"per seed, {what}: 95% t interval above {p.feedback_min:g} → holds; below "
                                         f"{p.feedback_min:g} → refuted ({alone})"),
                 holds=d, sane=sane, shown_in=shown_in)


def comparison_report(cmp: Mapping[str, Any], p: Params) -> str:
    st = controller_stats(cmp, p)
    lines = [f"{'':8s} {'accuracy %':>11s} {'STD k':>7s} {'STD seeds':>9s} {'decades':>8s} {'Σ step':>8s} "
             f"{'train loss':>10s}"]
    for name in ARMS:
        c = cmp[name]
        a = c["acc"]
        lines.append(f"{name:8s} {a.mean():11.2f} {a.std(axis=0, ddof=1).mean():7.3f} "
                     f"{a.std(axis=1, ddof=1).mean():9.3f} {np.nanmean(c['decades']):8.2f} "
                     f"{np.mean(c['total_step']):8.2f} {np.mean(c['train_loss']):10.4f}")
    for label, q in (("growth vs plain", st), ("replay vs plain", st["replay"])):
        lines.append(f"{label}:")
        for key in "abcd":
            d, m, iv = q[key]
            word = {True: "holds", False: "fails", None: "undecided"}[d]
            lines.append(f"   ({key}) {m:.3g}  95% interval [{iv[0]:.3g}, {iv[1]:.3g}]  → {word}")
    d, m, iv = st["feedback"]
    lines.append(f"feedback (replay − growth decades) {m:.3g}  95% interval [{iv[0]:.3g}, {iv[1]:.3g}]  → "
                 f"{ {True: 'holds', False: 'fails', None: 'undecided'}[d]}")
    return "\n".join(lines)


# ------------------------------------------------------------------- the edge of full-batch GD
#: The registry's finding on whether the curvature cap is applied at all (``applied_min``: the share
#: of the iterations it must bind on; below it the cap's findings are no verdict).
CAP_APPLIED = "oq-cap-binds"


#: an edge arm counts as destabilised when its final training loss is above this multiple of the
#: loss at the state the arms start from (it lost its training rather than hovered)
LOST_FACTOR = 3.0


def edge_gd(p: OpenPlan, runs: Mapping[EdgeRun, Mapping[str, Any]]) -> dict[str, Any]:
    """The edge runs, over the seeds whose reference reached the edge (the experiment's
    precondition; ``reached`` lists every seed's iteration, None where it never did): per arm
    ``decades`` per seed (log10 of the median RelL1 over the arm's last 10% over the one-ulp
    floor), ``acc`` [k, seed] in % (k = 1 and the perturbed k), ``binds`` (share of the arm's
    iterations where the cap bound), ``mean_lr``, ``final_loss``, ``diverged`` (runs whose final
    loss is not below the loss of the best constant output, the run's ``chance``, fixed before the
    run: counted on the page, never averaged into a spread unseen), ``ratio`` (median over the arm),
    ``above`` (share of the arm's iterations at ratio ≥ 1, from the estimated λ), ``disagree``
    (test images on which the arm's two runs differ in correctness, summed over seeds); ``hover`` per seed
    (median ratio over the warm-up's probes from the first one at the edge on; NaN if never), and
    the raw records of every seed."""
    out: dict[str, Any] = {"hover": [], "reached": [], "records": [runs[c] for c in p.edge]}
    for c in p.edge:
        w = runs[c]["warmup"]
        steps, ratio = np.asarray(w["steps"]), np.asarray(w["ratio"], float)
        at = w["reached"]
        out["reached"].append(at)
        out["hover"].append(float(np.median(ratio[steps >= at])) if at is not None else math.nan)
    at_edge = [c for c, at in zip(p.edge, out["reached"], strict=True) if at is not None]
    out["at_edge"] = [runs[c] for c in at_edge]
    for arm in ARMS_EDGE:
        rows: dict[str, list[Any]] = {"decades": [], "acc": [], "binds": [], "mean_lr": [], "final_loss": [],
                                      "ratio": [], "lost": [], "residual": [], "diverged": [], "above": [],
                                      "disagree": []}
        for c in at_edge:
            r = runs[c]
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
        out[arm] = {**rows, "acc": np.asarray(rows["acc"], float).reshape(-1, 2).T,
                    "diverged": sum(rows["diverged"]), "disagree": sum(rows["disagree"]),
                    "n_test": min((runs[c]["n_test"] for c in at_edge), default=0)}
    return out


def edge_gd_stats(e: Mapping[str, Any], p: Params) -> dict[str, Any]:
    """The edge findings: ``hover`` (geometric mean of the hover ratio with its interval, inside
    ``edge_band``?), the cap's ``binds``, its (a)–(d) against the uncapped arm and its ``feedback``
    (against the constant step), over the seeds that reached the edge (fewer than 2: undecided)."""
    n = len(e["cap"]["decades"])
    nan3 = (None, math.nan, [math.nan, math.nan])
    if n >= 2:
        st = four_questions(e["cap"], e["none"], p)
        st["feedback"] = feedback_decision(e["constant"]["decades"], e["cap"]["decades"], p.feedback_min)
    else:
        st = {key: nan3 for key in ("a", "b", "c", "d", "feedback")}
    binds = e["cap"]["binds"]
    share = float(np.mean(binds)) if binds else math.nan
    st["binds"] = ((share >= tolerance(CAP_APPLIED, "applied_min")) if n >= 2 else None, share,
                   [float(np.min(binds)), float(np.max(binds))] if binds else [math.nan, math.nan])
    if not st["binds"][0]:  # a cap that (almost) never binds is the uncapped run again: no verdict
        st.update({key: (None, *st[key][1:]) for key in ("a", "b", "c", "d", "feedback")})
    unreached = sum(r is None for r in e["reached"])
    m, lo, hi = _log_interval(e["hover"])
    st["hover"] = (None if unreached else _decided([lo, hi], lambda iv: band_decision(iv, p.edge_band)), m, [lo, hi])
    # seeds that never reach the edge (they fit the data first): the statement's precondition is
    # unmet there, so they leave it undecided rather than refute it
    st["unreached"] = unreached
    return st


def edge_gd_claims(e: Mapping[str, Any], p: Params, shown_in: str = "fig-oq-gd") -> list[Claim]:
    """Full-batch GD reaches the edge and hovers; the cap binds there; its (a)–(d) against the
    uncapped arm; its feedback against the constant step."""
    st = edge_gd_stats(e, p)
    sane = all(bool(np.all(np.isfinite(e[a]["acc"]))) for a in ARMS_EDGE)
    lo_b, hi_b = p.edge_band
    out = [judge("full-batch GD: the stability ratio reaches 1 and hovers", st["hover"][1], st["hover"][2],
                 criterion=(f"per seed, the median ratio η(λ+α)/(2(1+μ)) from the first probe at the edge on "
                            f"(λ of the whole training subset); 95% interval of the geometric mean over the seeds "
                            f"that reach it inside [{lo_b:g}, {hi_b:g}] → holds, wholly outside → refuted; any "
                            f"seed never at the edge ({st['unreached']} of {len(e['reached'])}: it fit the data "
                            "first, the statement's precondition) → undecided"),
                 holds=st["hover"][0], sane=sane, shown_in=shown_in)]
    d, m, iv = st["binds"]
    applied_min = tolerance(CAP_APPLIED, "applied_min")
    out.append(judge("cap: the curvature cap is applied", m, iv,
                     criterion=(f"full-batch GD at the edge: mean share over the seeds of the capped arm's iterations "
                                f"where c·2(1+μ)/(λ_t+α) < η (interval: the range over the seeds): ≥ "
                                f"{100 * applied_min:g}% → applied; below → not applied (refuted), and then the cap's "
                                "findings decide nothing"),
                     holds=d, sane=sane, shown_in=shown_in))
    out += _question_claims("cap", st, p, sane, shown_in, "full-batch GD from the edge, capped arm against the "
                                                         "uncapped arm: ", "the uncapped arm")
    out.append(_feedback_claim("cap: its λ-tracking schedule, not its mean step, removes the growth", st["feedback"], p,
                               "the constant-step arm's decades above the floor (the capped arm's mean step) minus "
                               "the capped arm's", "the smaller step alone does it", sane, shown_in))
    return out


def edge_gd_report(e: Mapping[str, Any]) -> str:
    n = len(e["cap"]["decades"])
    lines = [f"{n} of {len(e['reached'])} seeds reached the edge; over them, per arm (means over seeds):",
             f"{'arm':9s} {'decades':>8s} {'accuracy %':>11s} {'|Δacc| k':>9s} {'binds':>6s} {'mean η':>8s} "
             f"{'ratio':>6s} {'loss':>9s} {'diverged':>8s} {'lost':>5s}"]
    for arm in ARMS_EDGE if n else ():
        a = e[arm]
        lines.append(f"{arm:9s} {np.nanmean(a['decades']):8.2f} {a['acc'].mean():11.2f} "
                     f"{np.abs(a['acc'][0] - a['acc'][-1]).mean():9.2f} {np.mean(a['binds']):6.1%} "
                     f"{np.mean(a['mean_lr']):8.4f} {np.median(a['ratio']):6.3f} {np.mean(a['final_loss']):9.4g} "
                     f"{a['diverged']:8d} {sum(a['lost']):5d}")
    res = [x for arm in ARMS_EDGE for x in e[arm]["residual"] if np.isfinite(x)]
    lines.append(f"lost: final loss above {LOST_FACTOR:g} × the loss at the arms' start; the largest relative "
                 f"Lanczos residual of an arm's λ estimates: {max(res, default=math.nan):.2g}")
    if n:
        lines.append("share of the iterations at ratio ≥ 1 (estimated λ): " + ", ".join(
            f"{arm} {np.mean(e[arm]['above']):.1%}" for arm in ARMS_EDGE) + "; test images on which an arm's k runs "
            "differ in correctness (all seeds): " + ", ".join(f"{arm} {e[arm]['disagree']}" for arm in ARMS_EDGE))
    lines.append("per seed: reached the edge at " + ", ".join(str(r) for r in e["reached"])
                 + "; hover ratio " + ", ".join(f"{h:.3g}" for h in e["hover"]))
    return "\n".join(lines)


# --------------------------------------------------------------------------- Jordan's null model
#: The registry's findings for the null model (their tolerance: a factor either way).
NULL_FINDINGS = {"seeds": "oq-null-model-seeds", "k": "oq-null-model-k"}


def std_interval(acc: np.ndarray, axis: str, *, level: float = 0.95) -> tuple[float, float, float]:
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
    return math.sqrt(v), math.sqrt(v * df / hi_q), math.sqrt(v * df / lo_q)


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


def null_model(p: OpenPlan, runs: Mapping[TrackedRun, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
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
        out[name] = {"predicted": {"k": disagreement_std(within, labels.size),
                                   "seeds": disagreement_std(between, labels.size)},
                     "disagreement": {"k": within, "seeds": between},
                     "seeds": std_interval(acc, "seeds"), "k": std_interval(acc, "k")}
    return out


def null_model_claims(nm: Mapping[str, Mapping[str, Any]], shown_in: str = "fig-oq-null") -> list[Claim]:
    """Measured STD over seeds, and over k, against the null model of the same axis
    (:func:`null_model`), per optimizer: the 95% interval of measured / predicted inside [1/f, f]
    (f: the registry's tolerance) → holds (``extension``), wholly outside → refuted, else
    inconclusive; plain SGD's rows decide."""
    out = []
    for axis, fid in NULL_FINDINGS.items():
        f = tolerance(fid, "factor")
        for name, m in nm.items():
            pred, (sd, lo, hi) = m["predicted"][axis], m[axis]
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


def null_model_report(nm: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [f"{'':8s} {'STD over seeds [95%]':>26s} {'null':>6s} {'STD over k [95%]':>26s} {'null':>6s}   (points)"]
    for name, m in nm.items():
        cells = [f"{m[a][0]:7.3f} [{m[a][1]:.3f}, {m[a][2]:.3f}] {m['predicted'][a]:6.3f}" for a in ("seeds", "k")]
        lines.append(f"{name:8s} {cells[0]:>33s} {cells[1]:>33s}")
    return "\n".join(lines)


def _iv(v: tuple[Any, float, Sequence[float]], fmt: str = ".2g", sign: str = "") -> str:
    d, m, (lo, hi) = v
    if not math.isfinite(m):  # e.g. a ratio of spreads where neither arm's runs differ
        return "undefined (no spread in either arm)"
    return f"{m:{sign}{fmt}} ({lo:{sign}{fmt}} to {hi:{sign}{fmt}})"


def answers(cmp: Mapping[str, Any], e: Mapping[str, Any], p: Params) -> str:
    """The paragraph the chapter quotes: the answers to the paper's open questions, with intervals."""
    g, c = controller_stats(cmp, p), edge_gd_stats(e, p)
    r = g["replay"]
    n, total = len(e["cap"]["decades"]), len(e["reached"])
    if n >= 2:
        edge = (f"At the edge of full-batch gradient descent ({n} of {total} seeds reached it) the curvature cap "
                f"binds on {100 * c['binds'][1]:.2g}% of its iterations; against the uncapped runs it ends "
                f"{_iv(c['a'])} decades closer to the one-ulp floor, and {_iv(c['feedback'])} decades closer than "
                f"a constant step equal to its mean step (at ratio ≥ 1 on {np.mean(e['constant']['above']):.0%} of "
                f"its iterations, the cap on {np.mean(e['cap']['above']):.0%}); its STD over k is ×{_iv(c['b'])}, "
                f"over seeds "
                f"×{_iv(c['c'])}, its accuracy {_iv(c['d'], sign='+')} points.")
    else:
        lost = sum(e["none"]["lost"]) if n else 0
        edge = (f"Full-batch gradient descent reached the edge in {n} of {total} seeds (the others fit the training "
                f"subset first), too few to decide the curvature cap"
                + (f"; in that seed the uncapped arm lost its training ({lost} of {n}), while the cap (binding "
                   f"on {100 * c['binds'][1]:.2g}% of the iterations) and its mean step held constant ended "
                   f"{e['cap']['decades'][0]:.2g} and {e['constant']['decades'][0]:.2g} decades above the floor"
                   if n else "") + ".")
    return (f"{edge}  On the minibatch grid the growth controller (last step ×{final_scale(cmp):.2g} of plain "
            f"SGD's, median over seeds) ends {_iv(g['a'])} decades closer to the floor than plain SGD and "
            f"{_iv(g['feedback'])} decades closer than plain SGD on its median schedule; its STD over k is "
            f"×{_iv(g['b'])}, over seeds ×{_iv(g['c'])}, its accuracy {_iv(g['d'], sign='+')} points; the schedule "
            f"alone gives STD over k ×{_iv(r['b'])}, over seeds ×{_iv(r['c'])}, accuracy {_iv(r['d'], sign='+')} "
            "points.")


def final_scale(cmp: Mapping[str, Any], name: str = "growth") -> float:
    """The median over seeds of a controller's last step over plain SGD's last step."""
    return float(np.median([c[-1] / p[-1] for c, p in zip(cmp[name]["lrs"], cmp["none"]["lrs"], strict=True)]))


# ----------------------------------------------------------------------------------------- dry run
def _rows(p: Params) -> tuple[list[dict[str, Any]], list[RunConfig]]:
    t = plan(p)
    rows = [cost_row(f"trajectories ({regime})", list(cells)) for regime, cells in t.trajectories.items()]
    rows += [cost_row(f"grid ({name})", list(t.grid[name if name != "replay" else "none"])) for name in ARMS]
    return rows, list(t.configs())


def dry_run(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every configuration and estimate the cost, training nothing."""
    return dry_run_of(params, Params, _rows)


def trajectories_value(t: Mapping[str, Any]) -> dict[str, Any]:
    """The results' value ``trajectories``: per regime and seed, the summary statistics."""
    keys = ("seed", "amp_onset", "edge_onset", "rate_onset_ratio", "late_ratio", "late_batch_ratio", "max_ratio",
            "amplification", "residual")
    return {regime: {"lr": t[regime]["lr"], "rows": [{k: r[k] for k in keys} for r in t[regime]["rows"]]}
            for regime in REGIMES}


def comparison_value(cmp: Mapping[str, Any]) -> dict[str, Any]:
    """The results' value ``grid``: per arm, accuracy [k, seed], decades, final RelL1, Σ step, loss."""
    return {name: {k: c[k] for k in ("acc", "decades", "final_rel", "total_step", "train_loss")}
            for name, c in cmp.items()}


def edge_gd_value(e: Mapping[str, Any]) -> dict[str, Any]:
    """The results' value ``edge``: per arm, decades, accuracy, binds, mean step; hover, reached."""
    return {**{arm: {k: e[arm][k] for k in ("decades", "acc", "binds", "mean_lr", "final_loss", "diverged")}
               for arm in ARMS_EDGE}, "hover": e["hover"], "reached": e["reached"]}
