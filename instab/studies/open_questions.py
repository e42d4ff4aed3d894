"""The paper's open questions (§6), answered at the book's scale: what the chapter
``book/open_questions.md`` runs, and what its studies share.

- :class:`Params`, :func:`plan` — fixed-lr runs below and above the measured threshold
  (:class:`TrackedRun`: the reference's sharpness λ, the batch sharpness, RelL1 of every member
  and a shadow's finite-time growth rate every ``every`` iterations), the k × seed grid of Tables
  1/4 trained with plain SGD, the growth controller and its median schedule replayed
  (:func:`replay_cells`), and the full-batch edge runs; :func:`run` runs them all.
- :class:`Decided` — one statistic with its 95% interval and its decision (holds / fails /
  undecided), the unit every finding of the chapter is decided on (:func:`decided`,
  :func:`log_interval`, :func:`difference`).

The questions, one module each: :mod:`instab.studies.open_trajectories` (the edge along the
trajectory), :mod:`instab.studies.open_controllers` (the growth controller on the grid),
:mod:`instab.studies.open_cap` (the curvature cap at the edge of full-batch GD),
:mod:`instab.studies.open_null` (Jordan's null model).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from instab import checks, report
from instab.controllers import TrackedRun
from instab.edge import ARMS as ARMS_EDGE
from instab.edge import EdgeRun
from instab.grid import run_grid
from instab.report import Claim
from instab.studies.sgd import SgdParams, check_members, config, cost_row, dry_run_of, run_plan
from instab.train import RunConfig, Variant

__all__ = ["Params", "OpenPlan", "plan", "REGIMES", "CONTROLLED", "ARMS", "run", "replay_cells", "median_schedule",
           "dry_run", "judge", "Decided"]


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


@dataclass(frozen=True)
class Decided:
    """A statistic decided by its interval: ``holds`` (True, False, or None: undecided), the
    ``value`` and its 95% ``interval`` [low, high]."""

    holds: bool | None
    value: float
    interval: list[float]

    @classmethod
    def undecided(cls) -> Decided:
        """No data: undecided, NaN."""
        return cls(None, math.nan, [math.nan, math.nan])

    @property
    def word(self) -> str:
        """holds, fails or undecided."""
        return {True: "holds", False: "fails", None: "undecided"}[self.holds]


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


# ----------------------------------------------------------------------------------------- dry run
def _rows(p: Params) -> tuple[list[dict[str, Any]], list[RunConfig]]:
    t = plan(p)
    rows = [cost_row(f"trajectories ({regime})", list(cells)) for regime, cells in t.trajectories.items()]
    rows += [cost_row(f"grid ({name})", list(t.grid[name if name != "replay" else "none"])) for name in ARMS]
    return rows, list(t.configs())


def dry_run(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every configuration and estimate the cost, training nothing."""
    return dry_run_of(params, Params, _rows)
