"""One cell of App. E (Fig. 6): the largest stable learning rate of a network, beside the
tools it runs (:mod:`instab.stability`).

A cell (:class:`ThresholdConfig`) is one (network, α): λ₀, the top Hessian eigenvalue of the
training loss at initialisation, then a bisection for the largest non-divergent learning rate of
full-batch gradient descent with weight decay α (:func:`instab.stability.max_stable_lr_gd`), or a
sharpness trace along one run.  Cells run through the one runner, :func:`instab.grid.run_grid`, on
any engine; their results are plain numbers.  The multilayer chapter's plan of cells and its
claim rules are :mod:`instab.studies.multilayer`.
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

    def compute(self, checkpoint: Path | None = None, **kwargs: Any) -> dict:
        """Run the cell (the grid's cell interface; a cell is short and keeps no checkpoint, and
        takes no other argument)."""
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

    # Subnormals flushed to zero: a stable trial's weights decay geometrically through the subnormal
    # range on their way to 0 (up to 99.8% of a ResNet-8's weights were subnormal at a step of the
    # default grid), where each operation on them costs a microcode assist on Intel CPUs (this
    # chapter ran 3x slower on an Intel Xeon than on an AMD EPYC, the others 1.3-1.5x).  Whether a
    # run diverges does not depend on numbers below 1.2e-38 (float32's smallest normal); the
    # perturbation experiments keep them (instab.determinism).
    determinism.configure(threads=1, flush_denormal=True)
    try:
        return _threshold_cell(config)
    finally:
        torch.set_flush_denormal(False)  # the project's default (a cell may run in the chapter's kernel)


def _threshold_cell(config: ThresholdConfig) -> dict:
    from instab.bounds import multilayer_lr_bound
    from instab.train import cross_entropy

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
