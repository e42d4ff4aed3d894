"""What the three chapters on perturbed SGD (paper §4) share: run configurations from a chapter's
parameters, one grid runner, the RelL1 curves and their ensembles, the trained state of a run, and
the dry run's cost rows.

The chapters and their modules:

- :mod:`instab.studies.sgd_growth` — the last bit grows: controls, Fig. 2 (left), a constant
  learning rate, other one-ulp perturbations;
- :mod:`instab.studies.sgd_variance` — floating point against batch order: Tables 1 (left), 4, 5,
  and (:mod:`instab.studies.sgd_tables`) the relabelled share, Table 5's rows, Table 1 (right), float64;
- :mod:`instab.studies.sgd_threshold` — a learning-rate threshold: Fig. 2 (right), sharpness, Fig. 5.

Claims about chaotic outcomes (where a run ends up) are decided by ensembles: every perturbed
experiment runs several perturbations (``members``: k values) beside k = 1, and :func:`unanimous`
turns the members' outcomes into a decision — holds for all, fails for all, or undecided.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from instab import checks
from instab.ensemble import band_decision, floor_decision, mean_interval, unanimous
from instab.grid import run_grid
from instab.studies.params import StudyParams
from instab.train import History, RunConfig, Variant, load_data

__all__ = ["SgdParams", "config", "ensemble_variants", "check_members", "grid_base", "network_name", "run_plan",
           "curve", "members", "trained_state", "network", "unanimous", "band_decision",
           "floor_decision", "mean_interval", "check_decided", "cost_row", "dry_run_of"]

EXTRA_KEYS = ("lrs", "lr_times_steps")  # sweep entries may carry their own lr list and lr × steps


@dataclasses.dataclass
class SgdParams(StudyParams):
    """The parameters every sgd chapter has: ``common`` (the :class:`RunConfig` fields shared by
    every run, paper §4.2), ``decisive`` (claim-name prefixes this scale must decide), ``workers``
    and ``executor`` (the grid's engine)."""

    common: dict[str, Any]
    decisive: list[str]
    workers: int
    executor: Any

    def validate(self) -> Any:
        checks.positive("workers", self.workers, integer=True)
        if self.executor is not None:
            from instab.executors import check_spec

            check_spec(self.executor)
        d = self.decisive
        if isinstance(d, str) or not all(isinstance(x, str) and x for x in d):
            raise ValueError(f"decisive={d!r} is not allowed; it must be a list of claim-name prefixes")
        return self


def config(common: Mapping[str, Any], overrides: Mapping[str, Any], where: str, **fixed: Any) -> RunConfig:
    """A validated :class:`RunConfig`: ``common``, then ``overrides``, then ``fixed``; a bad field
    raises ``ValueError`` naming ``where``."""
    fields = {**common, **{k: v for k, v in overrides.items() if k not in EXTRA_KEYS}, **fixed}
    known = set(RunConfig.__dataclass_fields__)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{where}: {unknown[0]}={fields[unknown[0]]!r} is not allowed; "
                         f"RunConfig fields are {sorted(known)}")
    try:
        return RunConfig(**fields).validate()
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def check_members(members: Sequence[int]) -> list[int]:
    """The ensemble's k values: distinct, > 1, not powers of two (else ``ValueError``)."""
    member_ks = [int(k) for k in members]
    if not member_ks or any(k < 2 or k & (k - 1) == 0 for k in member_ks) or len(set(member_ks)) != len(member_ks):
        raise ValueError(f"members={list(members)!r} is not allowed; it must be distinct k > 1 that are not "
                         "powers of two (k = 2, 4, ... leave SGD unchanged)")
    return member_ks


def ensemble_variants(members: Sequence[int]) -> tuple[Variant, ...]:
    """k = 1 and every k of the ensemble, trained in lockstep."""
    return (Variant(1), *(Variant(k) for k in check_members(members)))


def grid_base(base: RunConfig, given: Mapping[str, Any]) -> RunConfig:
    """A grid's configuration: the stacked engine for an MLP (unless ``engine`` is given; the conv
    nets' grids stay on the loop engine, whose bits the book's conv-net results are), and the test
    pass after the last epoch only (the grids need the final accuracy and predictions)."""
    from instab.batched import unsupported

    if "engine" not in given and base.model == "mlp" and unsupported(base.replace(engine="stacked")) is None:
        base = base.replace(engine="stacked")
    if "eval_every" not in given and base.epochs is not None:
        base = base.replace(eval_every=base.epochs)
    return base.validate()


def network_name(c: RunConfig) -> str:
    """A short name of a run's network, e.g. ``MLP 64-32, Swish`` or ``cnn (8, 16), ReLU, avg-pool``."""
    act = {"relu": "ReLU", "swish": "Swish"}.get(c.activation, c.activation)
    if c.model == "mlp":
        return f"MLP {'-'.join(map(str, c.hidden or (128, 64)))}, {act}"
    widths = f" {'-'.join(map(str, c.widths))}" if c.widths else ""
    pool = f", {c.pool}-pool" if c.model in ("cnn", "cnn_bn", "vgg16_bn") else ""
    return f"{c.model}{widths}, {act}{pool}"


class HasConfigs(Protocol):
    def configs(self) -> list[RunConfig]: ...


def run_plan(p: HasConfigs, *, workers: int | None = None, cache: str | Path | None = None, executor: Any = None,
             progress: bool = True) -> dict[RunConfig, History]:
    """Run every configuration of a chapter's plan as one grid on ``executor`` (an engine spec or
    object, :func:`instab.grid.run_grid`; cached by key, so a cell two chapters share runs once;
    the costliest cells first so the process pool stays busy).  Returns {configuration: history}."""
    configs = list(dict.fromkeys(p.configs()))
    order = sorted(configs, key=_cost, reverse=True)
    histories = run_grid(order, cache=cache, workers=workers, executor=executor, progress=progress, desc="runs")
    return dict(zip(order, histories, strict=True))


def _cost(c: RunConfig) -> float:
    """A rough relative cost (model size × steps × variants) to order the cells."""
    size = {"mlp": 1.0, "cnn": 8.0, "cnn_bn": 10.0}.get(c.model,
                                                         40.0 if c.model.startswith("resnet") else 500.0)
    n = c.train_size or 50000
    steps = c.max_steps or (c.epochs or 1) * math.ceil(n / c.batch_size)
    return size * steps * len(c.variants)


# ------------------------------------------------------------------------------------- RelL1 curves
def curve(h: History, variant: str = "k=3") -> tuple[np.ndarray, np.ndarray]:
    """(iterations, RelL1 of ``variant`` against the reference) recorded during a run."""
    return np.asarray(h.iter_step, dtype=float), np.asarray(h.iter_rel_l1[variant], dtype=float)


def members(h: History) -> list[str]:
    """The ensemble members of a run: every perturbed variant of the paper's form (not k = 1,
    not a moved initial weight or another thread count)."""
    out = []
    for name, v in zip(h.variants, h.config["variants"], strict=True):
        if v["k"] > 1 and v["form"] == "paper" and not v["init_ulp"] and v["threads"] is None:
            out.append(name)
    return out


# ---------------------------------------------------------------------------------- trained state
def trained_state(h: History) -> tuple[nn.Module, list[torch.Tensor]]:
    """The trained reference network of a run that kept its final state (``keep_final``) and the
    optimizer's final momentum buffers (the direction v of the last update)."""
    if not h.final_state:
        raise ValueError("trained_state needs a run trained with keep_final=True")
    model = network(config_of(h))
    model.load_state_dict(h.final_state["model"])
    opt = h.final_state["optimizer"]["state"]
    return model, [opt[i]["momentum_buffer"] for i in sorted(opt)]


def config_of(h: History) -> RunConfig:
    """The :class:`RunConfig` a history was trained with."""
    return RunConfig(**{**h.config, "variants": tuple(Variant(**v) for v in h.config["variants"])})


def network(config: RunConfig, seed: int | None = None) -> nn.Module:
    """The run's network at its seeded initialisation (on the CPU; ``seed`` overrides the run's
    ``init_seed``)."""
    data = load_data(config)
    return config.network(data, seed=seed)


# ---------------------------------------------------------------------------------------- decisive
def check_decided(claims: Sequence[Any], decisive: Sequence[str]) -> None:
    """Raise ``AssertionError`` if a prefix of ``decisive`` names no claim, or a claim it names is
    inconclusive (a scale's parameter ``decisive``: the claims it must decide)."""
    unmatched = [d for d in decisive if not any(c.name.startswith(d) for c in claims)]
    assert not unmatched, f"decisive names no claim with these prefixes: {unmatched}"
    undecided = [c.name for c in claims if c.verdict == "inconclusive" and c.name.startswith(tuple(decisive))]
    assert not undecided, ("this scale must decide these claims (parameter decisive), "
                           f"but they are inconclusive: {undecided}")


# ----------------------------------------------------------------------------------------- dry run
def cost_row(what: str, cells: list[RunConfig], twice: bool = False) -> dict[str, Any]:
    """One row of a dry run: an experiment's cells, runs (a run: one variant of one cell),
    model-epochs and GPU-hours (:mod:`instab.cost`)."""
    from instab import cost

    runs = model_epochs = hours = 0.0
    for c in cells:
        n = c.train_size or cost.IMAGES.get(c.dataset, 50_000)
        epochs = c.max_steps / math.ceil(n / c.batch_size) if c.max_steps else float(c.epochs or 1)
        m = len(c.variants) * epochs * (2 if twice else 1)
        runs += len(c.variants) * (2 if twice else 1)
        model_epochs += m
        hours += m * cost.model_epoch_seconds(c.model, c.dataset, n) / 3600
    return {"what": what, "cells": len(cells), "runs": int(runs), "model_epochs": model_epochs, "gpu_hours": hours}


def dry_run_of(params: Mapping[str, Any], params_class: type[SgdParams],
               rows_of: Callable[[Any], tuple[list[dict[str, Any]], list[RunConfig]]]) -> dict[str, Any]:
    """A chapter's dry run: its parameters validated (on the CPU: CUDA is not needed to build the
    plan), ``rows_of(params)`` → (cost rows, every configuration), the environment checked —
    training nothing.  Returns ``{"rows", "total", "checks"}``."""
    from instab import cost

    device = params["common"].get("device", "cpu")
    names = [f.name for f in dataclasses.fields(params_class)]
    on_cpu = {**{k: params[k] for k in names if k in params}, "common": {**params["common"], "device": "cpu"}}
    p = params_class.from_namespace(on_cpu).validate()
    rows, configs = rows_of(p)
    checks_ = cost.environment_checks(device, {c.dataset for c in configs}, params.get("executor"))
    return {"rows": rows, "total": cost.summary(rows, {(c.model, c.dataset) for c in configs}), "checks": checks_}
