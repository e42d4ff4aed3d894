"""App. E (Fig. 6): the largest stable learning rate of multilayer networks against 2/α and
2/(α + λ₀) — the experiment of the multilayer chapter.

One cell (:class:`ThresholdConfig`) is one (network, α): λ₀, the top Hessian eigenvalue of the
training loss at initialisation, then a bisection for the largest non-divergent learning rate of
full-batch gradient descent with weight decay α (:func:`instab.stability.max_stable_lr_gd`), or a
sharpness trace along one run.  Cells run through the one runner, :func:`instab.grid.run_grid`, on
any engine; their results are plain numbers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instab import determinism, store
from instab.stability import (
    Divergence,
    max_stable_lr_gd,
    parameters,
    sharpness_trace,
    top_hessian_eigenvalue,
)


@dataclass(frozen=True)
class ThresholdConfig:
    """One cell of Fig. 6: the largest non-divergent learning rate of full-batch gradient descent
    with weight decay ``alpha`` on ``network``, trained on the first ``train_size`` images.

    ``downsample`` average-pools the images by that factor (2: Fashion-MNIST at 14×14, a quarter of
    the cost); ``hidden`` / ``widths`` override the network's default widths.  The bisection runs
    ``steps`` steps per trial and stops at ``hi / lr ≤ 1 + rtol``; ``norm_factor`` is the
    divergence criterion's weight-norm growth.  λ₀ is estimated with ``lanczos_iters`` Lanczos steps.
    ``device``: ``"cpu"`` or ``"cuda"`` (paper scale).
    ``trace_lr_factor > 0`` instead runs one gradient-descent run at ``trace_lr_factor · 2/(α + λ₀)``
    for ``steps`` steps and records its sharpness every ``trace_every`` steps.
    """

    network: str = "mlp"
    alpha: float = 1.0
    dataset: str = "fashion_mnist"
    train_size: int = 256
    downsample: int = 1
    pad_to: int | None = None
    hidden: tuple[int, ...] | None = None
    widths: tuple[int, ...] | None = None
    activation: str = "relu"
    pool: str = "avg"
    init_seed: int = 0
    steps: int = 200
    rtol: float = 0.01
    norm_factor: float = 10.0
    lanczos_iters: int = 20
    trace_lr_factor: float = 0.0
    trace_every: int = 10
    device: str = "cpu"

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def key(self) -> str:
        """SHA-256 of the configuration, the source of the modules the cell runs
        (:func:`instab.store.code_hash`), the library versions and the floating-point environment
        (:func:`instab.determinism.environment_key`): the cell's cache key."""
        blob = json.dumps(["stability", self.to_dict(), store.code_hash(__name__), store.library_versions(),
                           determinism.environment_key()], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def compute(self, checkpoint: Path | None = None) -> dict:
        """Run the cell (the grid's cell interface; a cell is short and keeps no checkpoint)."""
        return run_threshold_cell(self)

    def validate(self) -> ThresholdConfig:
        from instab import checks, models

        models.validate_model_name(self.network)
        checks.positive("alpha", self.alpha)
        checks.positive("train_size", self.train_size, integer=True)
        checks.one_of("downsample", self.downsample, [1, 2, 4])
        checks.positive("steps", self.steps, integer=True)
        checks.in_range("rtol", self.rtol, 1e-4, 1.0)
        checks.in_range("norm_factor", self.norm_factor, 1.0 + 1e-9, 1e6)
        checks.positive("lanczos_iters", self.lanczos_iters, integer=True)
        checks.in_range("trace_lr_factor", self.trace_lr_factor, 0.0, 100.0)
        checks.positive("trace_every", self.trace_every, integer=True)
        checks.one_of("device", self.device, ["cpu", "cuda"])
        return self


def problem(config: ThresholdConfig) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The cell's network (seeded initialisation) and full training batch (x, y)."""
    from instab import data, models

    d = data.load(config.dataset, train_size=config.train_size, test_size=1, pad_to=config.pad_to)
    x, y = d.x_train, d.y_train
    if config.downsample > 1:
        x = torch.nn.functional.avg_pool2d(x, config.downsample)
    model = models.build_model(config.network, in_channels=d.in_channels, num_classes=d.num_classes,
                               activation=config.activation, input_size=int(x.shape[-1]), pool=config.pool,
                               widths=config.widths, hidden=config.hidden, seed=config.init_seed)
    return model.to(config.device), x.to(config.device), y.to(config.device)


def run_threshold_cell(config: ThresholdConfig) -> dict:
    """Run one cell (in this process, one thread): λ₀ at initialisation, then either the bisection for
    the largest non-divergent step (bracket ``[0.5 · 2/(α+λ₀), 1.05 · 2/α]``, widened if needed) or,
    if ``trace_lr_factor > 0``, the sharpness trace.  Returns plain numbers."""
    from instab import determinism
    from instab.bounds import multilayer_lr_bound
    from instab.train import cross_entropy

    determinism.configure(threads=1)
    config.validate()
    model, x, y = problem(config)
    crit = Divergence(config.norm_factor)
    lam0 = top_hessian_eigenvalue(model, cross_entropy, x, y, iters=config.lanczos_iters)
    prediction = float(multilayer_lr_bound(config.alpha, lam0))
    out: dict[str, Any] = dict(config=config.to_dict(), parameters=sum(p.numel() for p in parameters(model)),
                               lambda0=lam0, prediction=prediction,
                               bound=float(multilayer_lr_bound(config.alpha)), resolution=crit.resolution(config.steps))
    if config.trace_lr_factor > 0:
        lr = config.trace_lr_factor * prediction
        tr = sharpness_trace(model, cross_entropy, x, y, lr=lr, alpha=config.alpha, steps=config.steps,
                             every=config.trace_every, iters=config.lanczos_iters, criterion=crit)
        out.update(lr=lr, steps=tr.steps.tolist(), sharpness=tr.sharpness.tolist(), loss=tr.run.loss.tolist(),
                   weight_norm=tr.run.weight_norm.tolist(), diverged=tr.run.diverged, reason=tr.run.reason)
        return out
    b = max_stable_lr_gd(model, cross_entropy, x, y, alpha=config.alpha, steps=config.steps,
                         lo=0.5 * prediction, hi=1.05 * out["bound"], rtol=config.rtol, criterion=crit)
    out.update(lr=b.lr, hi=b.hi, trials=[list(t) for t in b.trials])
    return out


# ------------------------------------------------------------------------------- the chapter's plan
@dataclass
class Plan:
    """The multilayer chapter's cells, built and validated from its parameters: one
    :class:`ThresholdConfig` per (network, α), and the sharpness traces."""

    cells: list[ThresholdConfig]
    traces: list[ThresholdConfig]
    shared: dict[str, Any]
    widths: dict[str, Any]

    def config(self, network: str, alpha: float, **overrides: Any) -> ThresholdConfig:
        """One more cell (e.g. at α = 10 λ₀, known only once λ₀ is measured)."""
        w = self.widths.get(network)
        shape = {"hidden" if network == "mlp" else "widths": tuple(w) if w else None}
        return ThresholdConfig(**{**self.shared, "network": network, "alpha": float(alpha), **shape,
                                  **overrides}).validate()


def plan(*, networks: list[str], widths: dict[str, Any], alphas: list[float], dataset: str, train_size: int,
         downsample: int, pad_to: int | None, steps: int, rtol: float, norm_factor: float, lanczos_iters: int,
         trace_network: str, trace_alphas: list[float], trace_lr_factor: float, trace_steps: int,
         trace_every: int, device: str, **_: Any) -> Plan:
    """Validate the chapter's parameters (``ValueError`` naming the bad one, before any work) and
    build its cells.  Parameters the plan does not use (``workers``, ``executor``) are ignored."""
    from instab import checks, models

    checks.each("networks", networks, lambda _, n: models.validate_model_name(n))
    for n in networks:
        if widths.get(n) is not None:
            checks.each(f"widths[{n!r}]", widths[n], checks.positive, integer=True)
    checks.each("alphas", alphas, checks.positive)
    if len(alphas) < 2 or list(alphas) != sorted(alphas):
        raise ValueError(f"alphas={alphas!r} is not allowed; it must be increasing, with at least two values")
    checks.one_of("dataset", dataset, ["fashion_mnist", "cifar10"])
    checks.positive("train_size", train_size, integer=True)
    checks.one_of("downsample", downsample, [1, 2, 4])
    checks.positive("steps", steps, integer=True)
    checks.in_range("rtol", rtol, 1e-4, 0.1)
    checks.in_range("norm_factor", norm_factor, 1.5, 1e6)
    checks.positive("lanczos_iters", lanczos_iters, integer=True)
    checks.one_of("trace_network", trace_network, networks)
    checks.each("trace_alphas", trace_alphas, checks.positive)
    checks.in_range("trace_lr_factor", trace_lr_factor, 1.0, 100.0)
    checks.in_range("trace_every", trace_every, 1, trace_steps)
    shared = dict(dataset=dataset, train_size=train_size, downsample=downsample, pad_to=pad_to, steps=steps,
                  rtol=rtol, norm_factor=norm_factor, lanczos_iters=lanczos_iters, device=device)
    p = Plan([], [], shared, dict(widths))
    p.cells = [p.config(n, a) for n in networks for a in alphas]
    p.traces = [p.config(trace_network, a, steps=trace_steps, trace_lr_factor=trace_lr_factor,
                         trace_every=trace_every) for a in trace_alphas]
    return p


def dry_run(params: dict[str, Any]) -> dict[str, Any]:
    """Build and validate the chapter's cells, check device, engine and data, and estimate the cost
    — training nothing.  A cell's bisection runs about log(hi/lo)/log(1 + rtol) ≈ 12 trials of
    ``steps`` full-batch steps on ``train_size`` images (and λ₀'s Lanczos steps); a trace runs once.
    The α = 10 λ₀ cells and the last trace depend on measured λ₀ and are counted as one more cell
    per network and one more trace."""
    from instab import cost

    p = plan(**params)
    trials = 12

    def hours(c: ThresholdConfig, runs: float) -> float:
        image_epochs = runs * c.steps * c.train_size / cost.IMAGES.get(c.dataset, 50_000)
        return image_epochs * cost.model_epoch_seconds(c.network, c.dataset) / 3600

    cells = p.cells + [p.config(n, 1.0) for n in params["networks"]]
    traces = p.traces + [p.traces[0]] if p.traces else []
    rows = [{"what": "bisection cells (network, α), incl. α = 10 λ₀", "cells": len(cells), "runs": len(cells) * trials,
             "model_epochs": sum(trials * c.steps * c.train_size / cost.IMAGES.get(c.dataset, 50_000) for c in cells),
             "gpu_hours": sum(hours(c, trials) for c in cells)},
            {"what": "sharpness traces", "cells": len(traces), "runs": len(traces),
             "model_epochs": sum(c.steps * c.train_size / cost.IMAGES.get(c.dataset, 50_000) for c in traces),
             "gpu_hours": sum(hours(c, 1) for c in traces)}]
    checks = cost.environment_checks(params["device"], {params["dataset"]}, params.get("executor"))
    return {"rows": rows, "total": cost.summary(rows), "checks": checks}
