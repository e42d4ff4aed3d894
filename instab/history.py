"""What a lockstep training run records (paper §4.2): :class:`History`, its canonical bytes
(:func:`dumps`), and the training loop's end-of-epoch bookkeeping that both engines share
(:func:`new_history`, :func:`is_tested`, :func:`end_epoch`, checkpoints every
:func:`checkpoint_seconds`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from instab import store
from instab.runspec import RunSpec

NOTES = ("RelL1 is over parameters only: BatchNorm running statistics are buffers and are left out. "
         "All variants start from one initial state and take their steps on the same batches in lockstep.")


# --------------------------------------------------------------------------------------- history
@dataclass
class History:
    """What a run records.  Per-epoch lists have one entry per completed epoch, except ``test_acc``:
    one per tested epoch (``test_epoch``; every epoch unless ``eval_every`` > 1); ``rel_l1`` and
    ``iter_rel_l1`` are against the reference (the first variant) and 0 for it."""

    config: dict[str, Any]
    variants: list[str]
    settings: dict[str, Any]
    notes: str = NOTES
    epoch: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train_loss: dict[str, list[float]] = field(default_factory=dict)
    test_acc: dict[str, list[float]] = field(default_factory=dict)
    test_epoch: list[int] = field(default_factory=list)
    rel_l1: dict[str, list[float]] = field(default_factory=dict)
    iter_step: list[int] = field(default_factory=list)
    iter_rel_l1: dict[str, list[float]] = field(default_factory=dict)
    iter_acc_step: list[int] = field(default_factory=list)
    iter_acc: dict[str, list[float]] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    final_state: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def reference(self) -> str:
        return self.variants[0]

    def final_acc(self) -> dict[str, float]:
        """Test accuracy after the last epoch, per variant."""
        return {v: acc[-1] for v, acc in self.test_acc.items()}

    def mean_last_acc(self, n: int = 10) -> dict[str, float]:
        """Mean test accuracy over the last ``n`` epochs (the authors' measure), per variant."""
        return {v: float(np.mean(acc[-n:])) for v, acc in self.test_acc.items()}

    def final_rel_l1(self) -> dict[str, float]:
        return {v: r[-1] for v, r in self.rel_l1.items()}


def dumps(history: History) -> bytes:
    """A canonical byte string of everything the run computed (not its wall time or the thread
    settings it ran under): equal bytes means bitwise-equal results."""
    fields = dataclasses.asdict(dataclasses.replace(history, seconds=0.0, settings={}))
    return repr(_canonical(fields)).encode()


def _canonical(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return ("ndarray", str(x.dtype), x.shape, x.tobytes())
    if torch.is_tensor(x):
        return _canonical(x.detach().cpu().numpy())
    if isinstance(x, float):
        return float.hex(x)
    if isinstance(x, dict):
        return tuple((str(k), _canonical(v)) for k, v in x.items())
    if isinstance(x, list | tuple):
        return tuple(_canonical(v) for v in x)
    return x


# ---------------------------------------------------------------------- shared by both engines


#: Seconds of training between two checkpoints of a run, unless ``$INSTAB_CHECKPOINT_SECONDS`` says
#: otherwise (0: after every epoch).  A checkpoint is an fsync'ed file of every variant's weights and
#: momentum: after each of a small grid cell's sub-second epochs it cost ~10% of the cell's time.  A
#: killed run resumes from its last checkpoint bitwise, so this bounds the work a kill loses.
CHECKPOINT_SECONDS = 30.0


def checkpoint_seconds(value: float | str | None = None) -> float:
    """The seconds between checkpoints: ``value``, else ``$INSTAB_CHECKPOINT_SECONDS``, else
    :data:`CHECKPOINT_SECONDS`; a ``ValueError`` names a value that is not a number ≥ 0."""
    if value is None:
        value = os.environ.get("INSTAB_CHECKPOINT_SECONDS") or CHECKPOINT_SECONDS
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"checkpoint seconds {value!r} (INSTAB_CHECKPOINT_SECONDS) is not allowed; "
                         "a number >= 0 (0: a checkpoint after every epoch)")
    return seconds


def end_epoch(config: RunSpec, hist: History, epoch: int, step: int, checkpoint: Path | None, bar: Any,
              on_epoch: Callable[[int, History], None] | None, state: Callable[[], dict[str, Any]]) -> None:
    """After ``epoch`` (counted from 1), in the training loop: the checkpoint with the engine's
    ``state()`` (written atomically) when ``checkpoint`` is given (the caller passes it when one is
    due), the progress bar, the caller's ``on_epoch``."""
    if checkpoint is not None:
        store.save_object(checkpoint, {"key": config.key(), "epoch": epoch, "step": step, "history": hist, **state()})
    if bar is not None:
        bar.update(1)
    if on_epoch is not None:
        on_epoch(epoch, hist)


def is_tested(config: RunSpec, epoch: int, epochs: int, step: int, total_steps: int) -> bool:
    """Whether the test pass runs after ``epoch`` (counted from 1): every ``eval_every``-th and the last."""
    return epoch % config.eval_every == 0 or epoch == epochs or step >= total_steps


def new_history(config: RunSpec, names: Sequence[str], settings: dict[str, Any]) -> History:
    """An empty :class:`History` for ``config``'s variants."""
    names = list(names)
    return History(config=config.to_dict(), variants=names, settings=settings,
                   train_loss={n: [] for n in names}, test_acc={n: [] for n in names},
                   rel_l1={n: [] for n in names}, iter_rel_l1={n: [] for n in names},
                   iter_acc={n: [] for n in names})


def cpu_state(state: Any) -> Any:
    if torch.is_tensor(state):
        return state.detach().cpu().clone()
    if isinstance(state, dict):
        return {k: cpu_state(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(cpu_state(v) for v in state)
    return state
