"""The experiments of paper §4 built on the training engine: what the chapter on perturbed SGD runs.

- :func:`plan` turns the chapter's parameters into every :class:`~instab.train.RunConfig` it needs
  (validated before any training): the k × seed grids of Tables 1 (left) / 4 / 5, the step-decay
  runs of Fig. 2 (left), the fixed-lr sweeps of Fig. 2 (right) with lr × iterations constant, and the
  other perturbations side by side.  :func:`run_plan` runs them all as one grid (cached, parallel).
- :func:`spread` — STD over k (floating point) against STD over seeds (batch selection), their
  ratio, robust spreads and a bootstrap interval (paper Table 1 left, Table 4, Table 5).
- :func:`growth` — how far and how fast RelL1(k=1, k=3) grows, and whether it levels off (Fig. 2 left).
- :func:`amplification` / :func:`sweep_status` / :func:`threshold_decision` — attenuated or amplified at a
  fixed lr, over the ensemble, and whether one threshold separates them (Fig. 2 right).
- :func:`floating_point_error` / :func:`batch_fluctuation` — the two relative gradient errors of
  Table 1 (right).
- :func:`pairwise_disagreement` — share of test images two runs classify differently, with a
  bootstrap interval.

Claims about chaotic outcomes (where a run ends up) are decided by ensembles: every perturbed
experiment runs several perturbations (``members``: k values) beside k = 1, and :func:`unanimous`
turns the members' outcomes into a decision — holds for all, fails for all, or undecided.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from instab.data import batch_order
from instab.ensemble import band_decision, floor_decision, mean_interval, unanimous
from instab.grid import fixed_lr_sweep, k_seed_grid, run_grid
from instab.models import build_model
from instab.optim import perturbed_update
from instab.stability import RitzPair, top_hessian_eigenpair
from instab.train import History, RunConfig, Variant, cross_entropy, gradient, load_data

__all__ = ["Plan", "plan", "run_plan", "spread", "growth", "amplification",
           "floating_point_error", "batch_fluctuation", "trained_state", "pairwise_disagreement", "curve",
           "unanimous", "members", "sweep_status", "threshold_decision", "restraint", "unrelated_rel_l1",
           "disagreement_over_k", "mean_interval", "band_decision", "floor_decision", "network_name",
           "sources", "sharpness", "table5_row"]

_EXTRA_KEYS = ("lrs", "lr_times_steps")  # sweep entries may carry their own lr list and lr × steps


def _config(common: Mapping[str, Any], overrides: Mapping[str, Any], where: str, **fixed: Any) -> RunConfig:
    fields = {**common, **{k: v for k, v in overrides.items() if k not in _EXTRA_KEYS}, **fixed}
    known = set(RunConfig.__dataclass_fields__)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{where}: {unknown[0]}={fields[unknown[0]]!r} is not allowed; "
                         f"RunConfig fields are {sorted(known)}")
    try:
        return RunConfig(**fields).validate()
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


@dataclass
class Plan:
    """Every run of the chapter, by experiment.  ``tables``/``growth``/``sweeps`` map a name to a
    list of configurations; ``sweep_lrs`` gives each sweep's learning rates in order."""

    tables: dict[str, list[RunConfig]]
    growth: dict[str, RunConfig]
    sweeps: dict[str, list[RunConfig]]
    sweep_lrs: dict[str, list[float]]
    controls: RunConfig
    perturbations: RunConfig
    ks: list[int]
    seeds: list[int]
    restraint: RunConfig | None = None
    members: list[int] = dataclasses.field(default_factory=lambda: [3])
    float64: list[RunConfig] = dataclasses.field(default_factory=list)
    float64_ks: list[int] = dataclasses.field(default_factory=list)
    float64_seeds: list[int] = dataclasses.field(default_factory=list)

    def configs(self) -> list[RunConfig]:
        """Every configuration of the grid (the controls run apart: they are trained twice)."""
        out = [c for cells in self.tables.values() for c in cells]
        out += list(self.growth.values())
        out += [c for cells in self.sweeps.values() for c in cells]
        out += [self.restraint] if self.restraint is not None else []
        return out + self.float64 + [self.perturbations]

    def describe(self) -> str:
        lines = []
        for name, cells in self.tables.items():
            c = cells[0]
            lines.append(f"table {name}: {network_name(c)} on {c.dataset}, {len(self.ks)} k × "
                         f"{len(self.seeds)} seeds, {c.epochs} epochs ({len(cells)} cells, {c.engine} engine)")
        if self.float64:
            c = self.float64[0]
            lines.append(f"float64: {network_name(c)} on {c.dataset}, {len(self.float64_ks)} k × "
                         f"{len(self.float64_seeds)} seeds, {c.epochs} epochs ({c.engine} engine)")
        for name, c in self.growth.items():
            lines.append(f"growth {name}: {c.model} {c.activation} on {c.dataset}, {c.epochs} epochs, "
                         f"k = 1 and {self.members}")
        if self.restraint is not None:
            r = self.restraint
            lines.append(f"restraint: {r.model} {r.activation}, constant lr {r.lr}, {r.epochs} epochs, "
                         f"k = 1 and {self.members}")
        for name, cells in self.sweeps.items():
            lines.append(f"sweep {name}: {cells[0].model} {cells[0].activation}/{cells[0].pool}, lr "
                         f"{self.sweep_lrs[name]}, steps {[c.max_steps for c in cells]}")
        return "\n".join(lines)


def plan(*, common: Mapping[str, Any], tables: Mapping[str, Mapping[str, Any]], k_values: Sequence[int],
         seeds: Sequence[int], growth: Mapping[str, Mapping[str, Any]],
         sweeps: Mapping[str, Mapping[str, Any]], sweep_lrs: Sequence[float], lr_times_steps: float,
         controls: Mapping[str, Any], perturbations: Mapping[str, Any],
         members: Sequence[int] = (3,), restraint: Mapping[str, Any] | None = None,
         float64: Mapping[str, Any] | None = None) -> Plan:
    """Build and validate every configuration from the chapter's parameters.

    ``common`` holds the :class:`RunConfig` fields shared by all runs; every other entry overrides
    them.  ``tables`` are the k × seed grids (Table 1 left: ``"relu"``, Table 4: ``"swish"``, further
    names: Table 5 rows), ``growth`` the Fig. 2 (left) runs of k = 1, 3 with per-iteration RelL1,
    ``sweeps`` the Fig. 2 (right) runs (an entry may set its own ``lrs`` and ``lr_times_steps``),
    ``restraint`` one constant-lr run long enough for RelL1 to reach its plateau, ``float64`` a
    k × seed grid of the table it names (``table``) in float64 (its own ``k_values``, ``seeds`` and
    RunConfig overrides, e.g. a longer schedule).  The growth, sweep and restraint runs train k = 1
    and every k of ``members`` (the ensemble) in lockstep; the grids of MLPs run on the stacked
    engine (:mod:`instab.batched`) unless an ``engine`` is given, and test only after the last epoch.
    Raises ``ValueError`` naming the bad parameter before any training.
    """
    member_ks = [int(k) for k in members]
    if not member_ks or any(k < 2 or k & (k - 1) == 0 for k in member_ks) or len(set(member_ks)) != len(member_ks):
        raise ValueError(f"members={list(members)!r} is not allowed; it must be distinct k > 1 that are not "
                         "powers of two (k = 2, 4, ... leave SGD unchanged)")
    ensemble = (Variant(1), *(Variant(k) for k in member_ks))
    ks = [int(k) for k in k_values]
    if 1 not in ks or 3 not in ks:
        raise ValueError(f"k_values={list(k_values)!r} is not allowed; it must hold 1 (SGD) and 3")
    if len(set(ks)) != len(ks) or len(set(seeds)) != len(list(seeds)):
        raise ValueError("k_values and seeds must not repeat values")
    if len(list(seeds)) < 2 or len(ks) < 2:
        raise ValueError("k_values and seeds need at least two values each (STDs)")
    grids = {}
    for name, over in tables.items():
        base = _grid_base(_config(common, over, f"tables[{name!r}]", rel_l1_every="log"), {**common, **over})
        grids[name] = k_seed_grid(base, ks, [int(s) for s in seeds])
        grids[name][0] = grids[name][0].replace(keep_final=True)  # Table 1 right: the trained network
    f64: list[RunConfig] = []
    f64_ks: list[int] = []
    f64_seeds: list[int] = []
    if float64 is not None:
        table = float64.get("table")
        if not isinstance(table, str) or table not in tables:
            raise ValueError(f"float64: table={table!r} is not allowed; choose one of {list(tables)}")
        f64_ks = [int(k) for k in float64.get("k_values", ks)]
        f64_seeds = [int(x) for x in float64.get("seeds", seeds)]
        if 1 not in f64_ks or len(f64_ks) < 2 or len(f64_seeds) < 2:
            raise ValueError(f"float64: k_values={f64_ks!r} / seeds={f64_seeds!r} are not allowed; "
                             "k_values must hold 1, and both need two values or more")
        over = {**tables[table], **{k: v for k, v in float64.items() if k not in ("table", "k_values", "seeds")}}
        base = _grid_base(_config(common, over, "float64", rel_l1_every="log", dtype="float64"),
                          {**common, **over})
        f64 = k_seed_grid(base, f64_ks, f64_seeds)
    curves = {name: _config(common, over, f"growth[{name!r}]", variants=ensemble,
                            rel_l1_every="log") for name, over in growth.items()}
    swept, lrs_of = {}, {}
    for name, over in sweeps.items():
        base = _config(common, over, f"sweeps[{name!r}]", variants=ensemble)
        lrs = [float(x) for x in over.get("lrs", sweep_lrs)]
        c = float(over.get("lr_times_steps", lr_times_steps))
        if not lrs or any(not lr > 0 for lr in lrs) or not c > 0:
            raise ValueError(f"sweeps[{name!r}]: learning rates and lr_times_steps must be positive")
        cells = fixed_lr_sweep(base, lrs, c)
        # ~200 RelL1 samples per run, evenly spaced, so windows at its start and end are well sampled
        # ~200 RelL1 samples per run; the final weights kept for the sharpness at the end of the run
        # ~20 test passes per run for Fig. 5's accuracy curves
        swept[name] = [cell.replace(rel_l1_every=max(1, cast(int, cell.max_steps) // 200), keep_final=True,
                                    acc_every=max(1, cast(int, cell.max_steps) // 20)).validate()
                       for cell in cells]
        lrs_of[name] = lrs
    ctrl = _config(common, controls, "controls",
                   variants=(Variant(1), Variant(1, threads=common.get("threads", 1)), Variant(2), Variant(3),
                             Variant(4)), rel_l1_every=1)
    threads = int(common.get("threads", 1))
    # each re-injected source with the ensemble's k; the initial weight moved at as many entries
    inits = [None, *(int(i) for i in np.random.default_rng(0).integers(0, 2**16, len(member_ks) - 1))]
    pert = _config(common, perturbations, "perturbations", rel_l1_every="log",
                   variants=(Variant(1), *(Variant(k) for k in member_ks),
                             *(Variant(k, form="release") for k in member_ks),
                             *(Variant(1, init_ulp=1, init_index=i) for i in inits),
                             Variant(1, threads=2 if threads == 1 else 1)))
    held = None
    if restraint is not None:
        held = _config(common, restraint, "restraint", variants=ensemble, rel_l1_every=1)
        if held.lr_decay_every != 0 or held.max_steps is not None:
            raise ValueError(f"restraint: lr_decay_every={held.lr_decay_every!r} is not allowed; the restraint "
                             "run keeps its learning rate constant (lr_decay_every: 0, no max_steps)")
    return Plan(grids, curves, swept, lrs_of, ctrl, pert, ks, [int(s) for s in seeds], held, member_ks,
                f64, f64_ks, f64_seeds)


def _grid_base(base: RunConfig, given: Mapping[str, Any]) -> RunConfig:
    """A grid's configuration: the stacked engine for an MLP (unless ``engine`` is given), and the
    test pass after the last epoch only (the grids need the final accuracy and predictions)."""
    from instab.batched import unsupported

    if "engine" not in given and unsupported(base.replace(engine="stacked")) is None:
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


def table5_row(name: str, config: RunConfig, sp: Mapping[str, Any],
               disagreement: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One row of Table 5 from a k × seed grid: the network, the data set, mean accuracy, STD over k
    (floating point), STD over seeds (batch selection), their ratio and its 95% bootstrap interval
    (:func:`spread`), and the share of test images the k runs label differently, if given."""
    row = {"name": name, "network": network_name(config), "dataset": config.dataset, "mean": sp["mean"],
           "fp_std": sp["fp_std"], "sgd_std": sp["sgd_std"], "ratio": sp["ratio"],
           "ratio_ci95": [float(x) for x in sp["ratio_interval"]], "dtype": config.dtype}
    if disagreement is not None:
        row["disagreement"] = disagreement["mean"]
        row["disagreement_ci95"] = [disagreement["low"], disagreement["high"]]
    return row


def sources(h: History) -> dict[str, list[str]]:
    """The perturbation run's variants by source: ``"k (paper form)"``, ``"k (release form)"``,
    ``"initial weight"``, ``"thread count"`` (k = 1, the reference, left out)."""
    out: dict[str, list[str]] = {}
    for name, v in zip(h.variants[1:], h.config["variants"][1:], strict=True):
        source = ("initial weight" if v["init_ulp"] else "thread count" if v["threads"] is not None
                  else "k (release form)" if v["form"] == "release" else "k (paper form)")
        out.setdefault(source, []).append(name)
    return out


def run_plan(p: Plan, *, workers: int | None = None, cache: str | Path | None = None, executor: Any = None,
             progress: bool = True) -> dict[RunConfig, History]:
    """Run every configuration of the plan as one grid on ``executor`` (an engine spec or object,
    :func:`instab.grid.run_grid`; cached; the costliest cells first so the process pool stays
    busy).  Returns {configuration: history}."""
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


# ------------------------------------------------------------------------- Table 1 left, 4, 5
def spread(table: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """STDs of an accuracy table [k, seed] as the paper computes them (population STD, ddof = 0).

    - ``std_over_seeds``: per k, the STD over batch-order seeds (the SGD noise; Table 1's STD column);
    - ``std_over_k``: per seed, the STD over the floating-point perturbations k (Table 1's STD row);
    - ``fp_std``, ``sgd_std``: their means, and ``ratio`` = fp_std / sgd_std;
    - ``fp_mad``, ``sgd_mad``, ``robust_ratio``: the same with 1.4826 × the median absolute
      deviation (insensitive to one outlying run);
    - ``ratio_interval``: 95% bootstrap interval of ``ratio``, resampling seeds and k values.
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or min(t.shape) < 2:
        raise ValueError(f"spread needs a [k, seed] table with at least 2×2 entries, got shape {t.shape}")
    over_seeds, over_k = t.std(axis=1), t.std(axis=0)

    def mad(x: np.ndarray, axis: int) -> np.ndarray:
        return 1.4826 * np.median(np.abs(x - np.median(x, axis=axis, keepdims=True)), axis=axis)

    fp, sgd = float(over_k.mean()), float(over_seeds.mean())
    fp_mad, sgd_mad = float(mad(t, 0).mean()), float(mad(t, 1).mean())
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        r = t[rng.integers(0, t.shape[0], t.shape[0])][:, rng.integers(0, t.shape[1], t.shape[1])]
        s = r.std(axis=1).mean()
        if s > 0:
            ratios.append(r.std(axis=0).mean() / s)
    lo, hi = np.quantile(ratios, [0.025, 0.975]) if ratios else (math.nan, math.nan)
    return {"mean": float(t.mean()), "std_over_seeds": over_seeds, "std_over_k": over_k, "fp_std": fp,
            "sgd_std": sgd, "ratio": fp / sgd if sgd > 0 else math.inf, "fp_mad": fp_mad, "sgd_mad": sgd_mad,
            "robust_ratio": fp_mad / sgd_mad if sgd_mad > 0 else math.inf,
            "ratio_interval": (float(lo), float(hi))}


def paper_table(key: str, ks: Sequence[int] = (1, 3, 5, 7, 9, 11)) -> np.ndarray:
    """A k × seed accuracy table the paper reports (``reported.yml``), as an array [k, seed]."""
    from instab.report import paper

    return np.array([paper(f"{key}.k{k}") for k in ks], dtype=float)


# ----------------------------------------------------------------------------------- Fig. 2 left
def curve(h: History, variant: str = "k=3") -> tuple[np.ndarray, np.ndarray]:
    """(iterations, RelL1 of ``variant`` against the reference) recorded during a run."""
    return np.asarray(h.iter_step, dtype=float), np.asarray(h.iter_rel_l1[variant], dtype=float)


def growth(steps: np.ndarray, rel: np.ndarray, *, late: float = 1 / 3) -> dict[str, float]:
    """How RelL1 grows over a run (Fig. 2 left).

    ``first``: RelL1 after the first iteration that differs; ``peak``: the largest value;
    ``decades``: log10(peak / first).  ``early_rate``: decades per iteration from the first value to
    the first time RelL1 comes within a decade of its final value; ``late_rate``: |decades| per
    iteration over the last ``late`` fraction of the iterations; ``late_over_early``: their ratio
    (≪ 1: the growth is restrained).
    """
    steps, rel = np.asarray(steps, float), np.asarray(rel, float)
    ok = np.isfinite(rel) & (rel > 0) & (steps > 0)
    s, r = steps[ok], rel[ok]
    if s.size < 3:
        return {"first": math.nan, "peak": math.nan, "final": math.nan, "decades": math.nan,
                "early_rate": math.nan, "late_rate": math.nan, "late_over_early": math.nan}
    first, final = float(r[0]), float(r[-1])
    reach = int(np.argmax(r >= final / 10))
    early = math.log10(r[reach] / first) / max(s[reach] - s[0], 1.0)
    start = s[-1] - late * (s[-1] - s[0])
    i0 = int(np.searchsorted(s, start))
    late_rate = abs(math.log10(r[-1] / r[i0])) / max(s[-1] - s[i0], 1.0)
    return {"first": first, "peak": float(r.max()), "final": final, "decades": math.log10(r.max() / first),
            "early_rate": early, "late_rate": late_rate,
            "late_over_early": late_rate / early if early > 0 else math.inf}


# ---------------------------------------------------------------------------------- Fig. 2 right
def amplification(steps: np.ndarray, rel: np.ndarray, *, window: float = 0.1) -> float:
    """Median RelL1 over the last ``window`` of a fixed-lr run over its median over the first
    ``window`` (iterations from 1).  The one-ulp perturbations are re-injected at every step, so an
    error that is merely accumulated grows about in proportion to the iterations (×10 over this
    span, a random walk ×3); an amplified one grows by orders of magnitude more."""
    steps, rel = np.asarray(steps, float), np.asarray(rel, float)
    keep = steps > 0
    steps, rel = steps[keep], rel[keep]
    if steps.size < 2 or not np.all(np.isfinite(rel)):
        return math.nan
    n = steps[-1]
    head = rel[steps <= max(window * n, steps[0])]
    tail = rel[steps >= (1 - window) * n]
    lo = float(np.median(head))
    if lo <= 0:
        lo = float(np.min(rel[rel > 0])) if np.any(rel > 0) else math.nan
    return float(np.median(tail)) / lo


# ---------------------------------------------------------------------------------- Table 1 right
def trained_state(h: History) -> tuple[nn.Module, list[torch.Tensor]]:
    """The trained reference network of a run that kept its final state (``keep_final``) and the
    optimizer's final momentum buffers (the direction v of the last update)."""
    if not h.final_state:
        raise ValueError("trained_state needs a run trained with keep_final=True")
    model = network(_config_of(h))
    model.load_state_dict(h.final_state["model"])
    opt = h.final_state["optimizer"]["state"]
    return model, [opt[i]["momentum_buffer"] for i in sorted(opt)]


def _config_of(h: History) -> RunConfig:
    return RunConfig(**{**h.config, "variants": tuple(Variant(**v) for v in h.config["variants"])})


def network(config: RunConfig) -> nn.Module:
    """The run's network at its seeded initialisation (on the CPU)."""
    data = load_data(config)
    return build_model(config.model, in_channels=data.in_channels, num_classes=data.num_classes,
                       activation=config.activation, beta=config.beta, input_size=data.input_size, pool=config.pool,
                       shortcut=config.shortcut, widths=config.widths, hidden=config.hidden, seed=config.init_seed)


def sharpness(h: History, *, iters: int = 20) -> RitzPair:
    """λ_max, the top eigenvalue of the Hessian of the mean training loss (over the run's whole
    training subset, without weight decay) at the run's final reference weights, with its residual
    (Lanczos on Hessian-vector products, :func:`instab.stability.top_hessian_eigenpair`)."""
    model, _ = trained_state(h)
    data = load_data(_config_of(h))
    model.train()
    return top_hessian_eigenpair(model, cross_entropy, data.x_train, data.y_train, iters=iters)


def momentum_lr_limit(curvature: float, *, momentum: float, weight_decay: float) -> float:
    """The largest stable learning rate of heavy-ball SGD (PyTorch's: v ← μv + g + αθ, θ ← θ − ηv)
    on a quadratic of curvature λ: η < 2(1 + μ)/(λ + α).  With μ = 0 this is App. E's (64),
    Δt < 2/(α + λ₀); the factor 1 + μ is the momentum's (the eigenvalues of the 2 × 2 iteration
    matrix stay in the unit disc iff 0 < η(λ + α) < 2(1 + μ))."""
    return 2.0 * (1.0 + momentum) / (curvature + weight_decay)


def floating_point_error(v: Sequence[torch.Tensor], lr: float, k: int = 3,
                         form: str = "paper") -> dict[str, float]:
    """Relative error of the perturbed update against SGD's (paper §4.1, Table 1 right):
    ‖Δθ_k − Δθ_1‖ / ‖Δθ_1‖ over all parameters (``norm``), and elementwise |Δθ_k − Δθ_1| / |Δθ_1|
    over the nonzero entries (``mean``, ``max``, ``share_changed``).  Bounded by 2⁻²³ = 2^-(s-1)."""
    num = den = 0.0
    rel_max, rel_sum, changed, count = 0.0, 0.0, 0, 0
    for t in v:
        u1 = perturbed_update(t, lr, 1, form).double()
        uk = perturbed_update(t, lr, k, form).double()
        num += float(((uk - u1) ** 2).sum())
        den += float((u1 ** 2).sum())
        nz = u1 != 0
        r = ((uk - u1).abs()[nz] / u1.abs()[nz])
        if r.numel():
            rel_max = max(rel_max, float(r.max()))
            rel_sum += float(r.sum())
            changed += int((r > 0).sum())
            count += r.numel()
    return {"norm": math.sqrt(num / den) if den > 0 else math.nan, "mean": rel_sum / max(count, 1),
            "max": rel_max, "share_changed": changed / max(count, 1)}


def batch_fluctuation(model: nn.Module, config: RunConfig, *, n_batches: int = 50,
                      seed: int = 0) -> dict[str, float]:
    """Relative fluctuation of the minibatch gradient from batch selection (Table 1 right):
    E_B ‖g_B − g‖ / ‖g‖ with g the gradient of the mean loss over the whole training subset and
    g_B over a minibatch of ``config.batch_size`` drawn by a batch-order seed; the mean over
    ``n_batches`` batches (and the median).  The network is in training mode (BatchNorm uses batch
    statistics, as in SGD's steps)."""
    data = load_data(config)
    model.train()
    full = gradient(model, data.x_train, data.y_train)
    norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in full))
    ratios: list[float] = []
    epoch = 0
    while len(ratios) < n_batches:
        for idx in batch_order(len(data.y_train), config.batch_size, seed=seed, epoch=epoch, drop_last=True):
            gb = gradient(model, data.x_train[idx], data.y_train[idx], batch_size=len(idx))
            d = math.sqrt(sum(float(((a.double() - b.double()) ** 2).sum())
                              for a, b in zip(gb, full, strict=True)))
            ratios.append(d / norm)
            if len(ratios) == n_batches:
                break
        epoch += 1
    return {"mean": float(np.mean(ratios)), "median": float(np.median(ratios)), "full_grad_norm": norm}


# --------------------------------------------------------------------------- prediction disagreement
def pairwise_disagreement(predictions: Sequence[np.ndarray], *, n_boot: int = 1000, level: float = 0.95,
                          seed: int = 0) -> dict[str, float]:
    """Mean share of test images classified differently over all pairs of runs, with a percentile
    bootstrap interval (test images resampled, the same resample for every pair)."""
    p = np.stack([np.asarray(x) for x in predictions])
    if p.shape[0] < 2:
        raise ValueError("pairwise_disagreement needs at least two runs")
    pairs = list(itertools.combinations(range(p.shape[0]), 2))
    diff = np.stack([p[i] != p[j] for i, j in pairs]).mean(axis=0)  # per image: share of pairs differing
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(diff.mean()), "low": float(lo), "high": float(hi), "pairs": len(pairs)}


def members(h: History) -> list[str]:
    """The ensemble members of a run: every perturbed variant of the paper's form (not k = 1,
    not a moved initial weight or another thread count)."""
    out = []
    for name, v in zip(h.variants, h.config["variants"], strict=True):
        if v["k"] > 1 and v["form"] == "paper" and not v["init_ulp"] and v["threads"] is None:
            out.append(name)
    return out


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
    ensembles contradict a threshold (an amplified lr below an attenuated one, or the smallest
    lr amplified / the largest attenuated).  None: an end of the sweep is mixed."""
    pairs = sorted(zip((float(x) for x in lrs), status, strict=True))
    amp = [lr for lr, st in pairs if st == "amplified"]
    att = [lr for lr, st in pairs if st == "attenuated"]
    ends = (pairs[0][1], pairs[-1][1])
    if (amp and att and min(amp) < max(att)) or ends[0] == "amplified" or ends[1] == "attenuated":
        decision: bool | None = False
    elif ends == ("attenuated", "amplified"):
        decision = True
    else:
        decision = None
    below = max((lr for lr in att if not amp or lr < min(amp)), default=math.nan)
    above = min((lr for lr in amp if not att or lr > max(att)), default=math.nan)
    return {"decision": decision, "largest_attenuated": below, "smallest_amplified": above,
            "threshold": math.sqrt(below * above) if decision else math.nan}


def restraint(h: History, *, tail: float = 0.1) -> dict[str, Any]:
    """A constant-lr run's restraint, per ensemble member (RelL1 recorded at every iteration):

    - ``plateau``: the median RelL1 against k = 1 over the last ``tail`` of the iterations;
    - ``early_rate``: decades per iteration from the first value until RelL1 first comes within a
      decade of ``plateau`` (the exponential phase); ``late_rate``: |decades| per iteration between
      the median over the ``tail`` window at the middle of the run and ``plateau``;
      ``late_over_early``: their ratio (≪ 1: the exponential growth has stopped);
    - ``decades``: log10(plateau / first);

    and whether every variant's training loss stayed finite and ended below its first epoch's
    (``loss_bounded``)."""
    out: dict[str, Any] = {"members": {}}
    for name in members(h):
        s, r = curve(h, name)
        keep = (s > 0) & np.isfinite(r) & (r > 0)
        s, r = s[keep], r[keep]
        n = s[-1]
        plateau = float(np.median(r[s >= (1 - tail) * n]))
        mid = float(np.median(r[(s >= (0.5 - tail / 2) * n) & (s <= (0.5 + tail / 2) * n)]))
        reach = int(np.argmax(r >= plateau / 10))
        early = math.log10(r[reach] / r[0]) / max(s[reach] - s[0], 1.0)
        late = abs(math.log10(plateau / mid)) / max((1 - tail / 2) * n - 0.5 * n, 1.0)
        out["members"][name] = {"first": float(r[0]), "plateau": plateau, "middle": mid,
                                "decades": math.log10(plateau / r[0]), "early_rate": early, "late_rate": late,
                                "late_over_early": late / early if early > 0 else math.inf}
    losses = [np.asarray(v, float) for v in h.train_loss.values()]
    out["loss_bounded"] = bool(all(np.all(np.isfinite(x)) and x[-1] < x[0] for x in losses))
    out["final_loss"] = {k: float(v[-1]) for k, v in h.train_loss.items()}
    return out


def unrelated_rel_l1(config: RunConfig, seeds: tuple[int, int] = (0, 1)) -> float:
    """RelL1 between two initialisations of ``config``'s network (init seeds ``seeds``): the
    level of two unrelated networks, to read a RelL1 plateau against."""
    from instab.metrics import rel_l1

    data = load_data(config)
    nets = [build_model(config.model, in_channels=data.in_channels, num_classes=data.num_classes,
                        activation=config.activation, beta=config.beta, input_size=data.input_size,
                        pool=config.pool, shortcut=config.shortcut, widths=config.widths, hidden=config.hidden,
                        seed=s) for s in seeds]
    return float(rel_l1(nets[0], nets[1]))


def disagreement_over_k(histories: Sequence[History]) -> dict[str, Any]:
    """Share of test images that runs differing only in k label differently: per seed (one
    lockstep cell), the mean over its pairs of k; then the mean over seeds with a bootstrap
    interval over seeds.  Beside it, the same share between runs differing only in batch order
    (k = 1 of every seed), with an interval over test images."""
    per_seed = [pairwise_disagreement([h.predictions[v] for v in h.variants])["mean"] for h in histories]
    mean, lo, hi = mean_interval(per_seed)
    seeds = pairwise_disagreement([h.predictions[h.variants[0]] for h in histories])
    return {"per_seed": per_seed, "mean": mean, "low": lo, "high": hi, "over_seeds": seeds}


# ------------------------------------------------------------------------------------------ dry run
def dry_run(params: Mapping[str, Any]) -> dict[str, Any]:
    """Build and validate every configuration of the chapter's parameters, check the device, the
    engine and the data, and estimate the cost — training nothing.  Returns ``{"rows", "total",
    "checks"}``; each row is one experiment with its runs (a run: one variant of one cell), its
    model-epochs and GPU-hours (:mod:`instab.cost`)."""
    from instab import cost

    keys = ("common", "tables", "k_values", "seeds", "growth", "sweeps", "sweep_lrs", "lr_times_steps",
            "controls", "perturbations", "members", "restraint", "float64")
    device = params["common"].get("device", "cpu")
    on_cpu = {k: params[k] for k in keys if k in params}
    on_cpu["common"] = {**params["common"], "device": "cpu"}  # validate without needing CUDA here
    p = plan(**on_cpu)

    def row(what: str, cells: list[RunConfig], twice: bool = False) -> dict[str, Any]:
        runs = model_epochs = hours = 0.0
        for c in cells:
            n = c.train_size or cost.IMAGES.get(c.dataset, 50_000)
            epochs = c.max_steps / math.ceil(n / c.batch_size) if c.max_steps else float(c.epochs or 1)
            m = len(c.variants) * epochs * (2 if twice else 1)
            runs += len(c.variants) * (2 if twice else 1)
            model_epochs += m
            hours += m * cost.model_epoch_seconds(c.model, c.dataset, n) / 3600
        return {"what": what, "cells": len(cells), "runs": int(runs), "model_epochs": model_epochs, "gpu_hours": hours}

    rows = [row(f"table {name} ({cells[0].model}, {cells[0].dataset})", cells) for name, cells in p.tables.items()]
    if p.float64:
        rows.append(row(f"float64 ({p.float64[0].model}, {p.float64[0].dataset})", p.float64))
    rows += [row(f"growth {name}", [c]) for name, c in p.growth.items()]
    rows += [row(f"sweep {name}", cells) for name, cells in p.sweeps.items()]
    if p.restraint is not None:
        rows.append(row("restraint (constant lr)", [p.restraint]))
    rows += [row("perturbations side by side", [p.perturbations]), row("controls (trained twice)", [p.controls], True)]
    datasets = {c.dataset for c in p.configs()}
    checks = cost.environment_checks(device, datasets, params.get("executor"))
    return {"rows": rows, "total": cost.summary(rows), "checks": checks}
