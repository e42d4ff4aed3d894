"""Perturbed-SGD training in lockstep (paper §4.2).

One call, :func:`train`, runs a :class:`RunConfig`: a network, a data set, SGD's settings with the
paper's step-decay schedule (÷10 every 40 epochs), and a list of :class:`Variant` s — typically
k = 1, 3, 5, ... of :class:`instab.optim.PerturbedSGD`, but also the other perturbations in use: a
one-ulp change of one initial weight (``init_ulp``), or another thread count (``threads``).

All variants start from one initial state and see the same batches **in lockstep**: each iteration
every variant takes its step on the same minibatch, so RelL1 (paper §4.2) between each variant and
the first (the reference) can be measured as training goes, per iteration and per epoch.

The run is deterministic: :func:`instab.determinism.configure` sets every switch, the batch order
and augmentation come from their own seeds per epoch, the initialisation from ``init_seed``.  With
a ``checkpoint`` path the state is saved atomically after an epoch every ``checkpoint_seconds`` of
training (:func:`instab.history.checkpoint_seconds`) and a rerun resumes from it,
bitwise equal to an uninterrupted run.

BatchNorm running statistics are buffers, not parameters: RelL1 leaves them out (recorded in the
history's ``notes``).

:func:`train` is the one epoch / checkpoint / progress loop; it drives an engine, a small object
with the per-step work of the variants: :class:`LoopEngine` (one model and one
:class:`~instab.optim.PerturbedSGD` per variant, one after another on each batch) or
:class:`instab.batched.StackedEngine` (``engine="stacked"``: the variants as one computation).  What
a run is and records (:class:`Variant`, :class:`History`, the losses, the schedule, the bookkeeping)
lives below both engines, in :mod:`instab.runspec`, :mod:`instab.history` and :mod:`instab.step`, and is
importable from here too.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn

from instab import determinism, history, store
from instab.batched import StackedEngine
from instab.data import Loader
from instab.history import NOTES, History, cpu_state, dumps, end_epoch, is_tested, new_history
from instab.metrics import rel_l1
from instab.optim import PerturbedSGD
from instab.runspec import DTYPES, ENGINE_VERSION, ENGINES, RunSpec, Variant, ks, load_data
from instab.step import cross_entropy, gradient, log_likelihood, lr_at, perturb_init, predict

__all__ = ["DTYPES", "ENGINES", "ENGINE_VERSION", "NOTES", "Engine", "History", "LoopEngine", "RunConfig", "Variant",
           "cross_entropy", "dumps", "end_epoch", "gradient", "is_tested", "ks", "load_data", "log_likelihood",
           "lr_at", "new_history", "perturb_init", "predict", "run", "train"]


class RunConfig(RunSpec):
    """A :class:`~instab.runspec.RunSpec` (every field, ``validate``, ``key``) that the grid can run:
    ``compute`` trains it (the cell interface of :func:`instab.grid.run_cell`)."""

    def compute(self, checkpoint: str | Path | None = None, **kwargs: Any) -> History:
        """Train this run (the grid's cell interface, :func:`instab.grid.run_cell`)."""
        return train(self, checkpoint=checkpoint, **kwargs)


class Engine(Protocol):
    """The per-step work of a run's variants, driven by :func:`train`'s loop.

    ``settings`` go into ``History.settings``; ``begin_epoch(lr)`` sets the learning rate and starts
    the epoch's loss sums; ``step(x, y)`` is one step of every variant on the batch; ``loss_sums()``,
    ``rel_l1()`` (against the first variant, 0 for it) and ``predict(x)`` (labels) give one entry per
    variant; ``state()``/``load_state()`` are the engine's part of a checkpoint; ``final_state()``
    the reference's weights and optimizer state (``keep_final``).
    """

    settings: dict[str, Any]

    def begin_epoch(self, lr: float) -> None: ...

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None: ...

    def loss_sums(self) -> list[float]: ...

    def rel_l1(self) -> list[float]: ...

    def predict(self, x: torch.Tensor) -> Sequence[torch.Tensor]: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...

    def final_state(self) -> dict[str, Any]: ...


class LoopEngine:
    """The per-model engine (``engine="loop"``): one model and one :class:`PerturbedSGD` per variant,
    each taking its step on the batch in turn, each with its own thread count."""

    def __init__(self, config: RunSpec, base: nn.Module):
        self.models: list[nn.Module] = []
        self.opts: list[PerturbedSGD] = []
        for v in config.variants:
            m = copy.deepcopy(base)
            perturb_init(m, v.init_ulp, v.init_index)
            self.models.append(m)
            self.opts.append(_optimizer(m, config, v))
        self.threads = [v.threads or config.threads for v in config.variants]
        self.settings = {"variant_threads": {v.name: t for v, t in zip(config.variants, self.threads, strict=True)}}
        self.device = torch.device(config.device)
        self.sums: list[torch.Tensor] = []

    def begin_epoch(self, lr: float) -> None:
        for o in self.opts:
            for g in o.param_groups:
                g["lr"] = lr
        self.sums = [torch.zeros((), dtype=torch.float64, device=self.device) for _ in self.models]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One step of every variant on the batch (x, y), each under its thread count."""
        for i, (m, o) in enumerate(zip(self.models, self.opts, strict=True)):
            if torch.get_num_threads() != self.threads[i]:
                torch.set_num_threads(self.threads[i])
            m.train()
            o.zero_grad(set_to_none=True)
            loss = cross_entropy(m(x), y)
            loss.backward()
            o.step()
            self.sums[i] += loss.detach()

    def loss_sums(self) -> list[float]:
        return [float(s) for s in self.sums]

    def rel_l1(self) -> list[float]:
        return [rel_l1(self.models[0], m) if i else 0.0 for i, m in enumerate(self.models)]

    def predict(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [predict(m, x) for m in self.models]

    def state(self) -> dict[str, Any]:
        return {"models": [cpu_state(m.state_dict()) for m in self.models],
                "opts": [cpu_state(o.state_dict()) for o in self.opts]}

    def load_state(self, state: dict[str, Any]) -> None:
        for m, o, ms, os_ in zip(self.models, self.opts, state["models"], state["opts"], strict=True):
            m.load_state_dict(ms)
            o.load_state_dict(os_)

    def final_state(self) -> dict[str, Any]:
        return {"model": cpu_state(self.models[0].state_dict()), "optimizer": cpu_state(self.opts[0].state_dict())}


def train(config: RunSpec, *, checkpoint: str | Path | None = None, progress: bool = False,
          on_epoch: Callable[[int, History], None] | None = None,
          checkpoint_seconds: float | None = None) -> History:
    """Train every variant of ``config`` in lockstep and return the :class:`History`.

    Parameters
    ----------
    config:
        The run (validated first: a bad value raises ``ValueError`` before any training).
    checkpoint:
        If given, the state after an epoch is written there atomically once ``checkpoint_seconds``
        of training have passed since the last write (0: after every epoch; ``None``:
        :func:`instab.runs.checkpoint_seconds`), and an existing valid checkpoint of the same
        configuration is resumed from (an invalid one is ignored).
    progress:
        Show a tqdm bar over epochs.
    on_epoch:
        Called as ``on_epoch(epoch, history)`` after each epoch (and its checkpoint).
    """
    config.validate()
    every = history.checkpoint_seconds(checkpoint_seconds)
    data = load_data(config)
    previous_threads = torch.get_num_threads()
    settings = determinism.configure(config.threads)
    try:
        return _train(config, data, settings, checkpoint, progress, on_epoch, every)
    finally:
        torch.set_num_threads(previous_threads)


def _train(config: RunSpec, data, settings: dict[str, Any], checkpoint: str | Path | None, progress: bool,
           on_epoch: Callable[[int, History], None] | None, checkpoint_every: float) -> History:
    """The one loop: epochs, the learning rate, RelL1 and accuracy on their steps, the test pass,
    checkpoints, progress — around the engine's steps."""
    device = torch.device(config.device)
    data = data.to(device, DTYPES[config.dtype])
    loader = Loader(data.x_train, data.y_train, config.batch_size, seed=config.batch_seed,
                    augment=config.augment, augment_seed=config.augment_seed)
    epochs, total_steps, record_at, acc_at = _step_plan(config, len(loader))
    base = config.network(data).to(device=device, dtype=DTYPES[config.dtype])
    engine: Engine = StackedEngine(config, base) if config.engine == "stacked" else LoopEngine(config, base)
    names = [v.name for v in config.variants]
    hist = new_history(config, names, settings)
    hist.settings.update(engine.settings)
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    hist, start_epoch, step = _resume(config, engine, hist, ckpt_path)
    if start_epoch == 0 and step == 0 and 0 in record_at:
        _record_rel_l1(hist, engine, names, 0)

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=epochs, initial=start_epoch, desc="epochs", leave=False)
    t0 = last_checkpoint = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        if step >= total_steps:
            break
        lr = lr_at(config, epoch)
        engine.begin_epoch(lr)
        n_batches = 0
        for xb, yb in loader.epoch(epoch):
            engine.step(xb, yb)
            n_batches += 1
            step += 1
            if step in record_at:
                _record_rel_l1(hist, engine, names, step)
            if step in acc_at:
                hist.iter_acc_step.append(step)
                for n, pred in zip(names, engine.predict(data.x_test), strict=True):
                    hist.iter_acc[n].append(_accuracy(pred, data.y_test))
            if step >= total_steps:
                break
        tested = is_tested(config, epoch + 1, epochs, step, total_steps)
        _record_epoch(config, hist, engine, data, names, (epoch, step, lr, n_batches), tested)
        hist.seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        due = ckpt_path is not None and time.perf_counter() - last_checkpoint >= checkpoint_every
        end_epoch(config, hist, epoch + 1, step, ckpt_path if due else None, bar, on_epoch, engine.state)
        if due:
            last_checkpoint = time.perf_counter()
    if bar is not None:
        bar.close()
    if config.keep_final:  # the reference's final weights and optimizer state (momentum buffers)
        hist.final_state = engine.final_state()
    return hist


def _step_plan(config: RunSpec, steps_per_epoch: int) -> tuple[int, int, set[int], set[int]]:
    """(epochs, total steps, the steps at which RelL1 is recorded, those at which accuracy is)."""
    epochs = config.epochs if config.epochs is not None else math.ceil(cast(int, config.max_steps) / steps_per_epoch)
    total_steps = epochs * steps_per_epoch if config.max_steps is None else min(config.max_steps,
                                                                                  epochs * steps_per_epoch)
    record_at = (_log_steps(total_steps) if config.rel_l1_every == "log"
                 else set(range(0, total_steps + 1, cast(int, config.rel_l1_every))) if config.rel_l1_every else set())
    acc_at = set(range(config.acc_every, total_steps + 1, config.acc_every)) if config.acc_every else set()
    return epochs, total_steps, record_at, acc_at


def _resume(config: RunSpec, engine: Engine, hist: History, ckpt_path: Path | None) -> tuple[History, int, int]:
    """(history, first epoch, step): from the checkpoint at ``ckpt_path`` when it is this run's,
    else from the start."""
    if ckpt_path is not None:
        state = store.load_object(ckpt_path)
        if state is not None and state.get("key") == config.key():
            engine.load_state(state)
            return state["history"], state["epoch"], state["step"]
    return hist, 0, 0


def _record_epoch(config: RunSpec, hist: History, engine: Engine, data, names: list[str],
                  at: tuple[int, int, float, int], tested: bool) -> None:
    """The end of an epoch in the history: its step and lr, every variant's mean training loss and
    RelL1, and (when ``tested``) its test accuracy and predictions.  ``at``: (epoch, step, lr,
    batches)."""
    epoch, step, lr, n_batches = at
    if torch.get_num_threads() != config.threads:  # the loop engine's variants may run on others
        torch.set_num_threads(config.threads)
    hist.epoch.append(epoch + 1)
    hist.steps.append(step)
    hist.lr.append(lr)
    if tested:
        hist.test_epoch.append(epoch + 1)
    losses, distances = engine.loss_sums(), engine.rel_l1()
    preds = engine.predict(data.x_test) if tested else None
    for i, n in enumerate(names):
        hist.train_loss[n].append(losses[i] / max(n_batches, 1))
        hist.rel_l1[n].append(distances[i])
        if preds is not None:
            hist.test_acc[n].append(_accuracy(preds[i], data.y_test))
            hist.predictions[n] = preds[i].to(torch.int16).cpu().numpy()


def _accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).double().mean())


def _log_steps(total: int, per_decade: int = 20) -> set[int]:
    if total < 1:
        return set()
    decades = max(1, math.ceil(math.log10(total + 1)))
    grid = np.unique(np.round(np.logspace(0, math.log10(total), per_decade * decades)))
    return {int(s) for s in grid} | {total}


def _record_rel_l1(hist: History, engine: Engine, names: Sequence[str], step: int) -> None:
    hist.iter_step.append(step)
    for n, d in zip(names, engine.rel_l1(), strict=True):
        hist.iter_rel_l1[n].append(d)


def _optimizer(m: nn.Module, config: RunSpec, v: Variant) -> PerturbedSGD:
    with warnings.catch_warnings():  # a power-of-two k is a deliberate control here, no warning
        warnings.filterwarnings("ignore", message=".*power of two", category=UserWarning)
        return PerturbedSGD(m.parameters(), lr=config.lr, momentum=config.momentum,
                            dampening=config.dampening, weight_decay=config.weight_decay,
                            nesterov=config.nesterov, foreach=config.foreach, k=v.k, form=v.form)


def run(config: RunConfig | None = None, **changes: Any) -> History:
    """Shorthand: ``train(RunConfig(**changes))`` or ``train(config.replace(**changes))``."""
    return train((config or RunConfig()).replace(**changes) if changes else (config or RunConfig()))
