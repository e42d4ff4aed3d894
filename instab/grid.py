"""Grids of runs (paper §4.2: k × batch-order seed) with a resumable, hash-keyed cache.

Each cell is a :class:`instab.train.RunConfig`; its result is written atomically to
``<cache>/<key>.result`` where ``key`` is the configuration's SHA-256 (:meth:`RunConfig.key`).  A
rerun skips finished cells; a cell in progress checkpoints after each epoch to
``<cache>/<key>.ckpt`` and a rerun resumes from there, bitwise equal to an uninterrupted run.  Every
file carries a SHA-256 of its payload: a truncated or corrupted file is detected and recomputed,
never used.

Cells run on any executor with ``submit()`` (``concurrent.futures``, dask, submitit, ...); the
default is a local process pool, one process per core, each pinned to one thread.  The cache folder
is ``$INSTAB_CACHE`` if set, else ``_build/cache`` in the repository.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instab.train import History, RunConfig, Variant, load_object, save_object, train


def default_cache() -> Path:
    """``$INSTAB_CACHE`` if set, else ``<repository>/_build/cache``."""
    env = os.environ.get("INSTAB_CACHE")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "_build" / "cache"


def cell_paths(config: RunConfig, cache: str | Path | None = None) -> tuple[Path, Path]:
    """(result file, checkpoint file) of a cell."""
    folder = Path(cache) if cache is not None else default_cache()
    key = config.key()
    return folder / f"{key}.result", folder / f"{key}.ckpt"


def cached(config: RunConfig, cache: str | Path | None = None) -> History | None:
    """The cell's cached history if a valid one exists, else ``None``."""
    result, _ = cell_paths(config, cache)
    h = load_object(result)
    if isinstance(h, History) and h.config == config.to_dict():
        return h
    return None


def run_cell(config: RunConfig, cache: str | Path | None = None, *,
             on_epoch: Callable[[int, History], None] | None = None) -> History:
    """Run one cell through the cache: return the cached result, else train (resuming from a valid
    checkpoint), store the result atomically, remove the checkpoint."""
    h = cached(config, cache)
    if h is not None:
        return h
    result, ckpt = cell_paths(config, cache)
    h = train(config, checkpoint=ckpt, on_epoch=on_epoch)
    save_object(result, h)
    ckpt.unlink(missing_ok=True)
    return h


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def process_pool(workers: int | None = None) -> cf.ProcessPoolExecutor:
    """A local process pool (spawned processes, one thread each), ``workers`` defaulting to the
    number of cores."""
    return cf.ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                                  mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)


def run_grid(configs: Iterable[RunConfig], *, cache: str | Path | None = None, executor: Any = None,
             workers: int | None = None, progress: bool = True, desc: str = "cells") -> list[History]:
    """Run every configuration through the cache and return their histories in order.

    Every configuration is validated (and its data set located) before any cell starts, so a bad
    value fails at once.  Finished cells are read from the cache; the others are submitted to
    ``executor`` (anything with ``submit(fn, *args)`` returning an object with ``result()``),
    by default a :func:`process_pool` of ``workers`` processes — or run in this process when
    ``workers == 1`` or only one cell is left.
    """
    configs = list(configs)
    seen_data: set[tuple[Any, ...]] = set()
    for c in configs:
        if not isinstance(c, RunConfig):
            raise ValueError(f"run_grid takes RunConfig objects, got {type(c).__name__}")
        c.validate()
        data_key = (c.dataset, c.train_size, c.test_size, c.pad_to)
        if data_key not in seen_data:
            c.validate(check_data=True)
            seen_data.add(data_key)
    folder = Path(cache) if cache is not None else default_cache()
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, History] = {}
    pending: dict[str, RunConfig] = {}
    for c in configs:
        key = c.key()
        if key in results or key in pending:
            continue
        h = cached(c, folder)
        if h is not None:
            results[key] = h
        else:
            pending[key] = c
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(results) + len(pending), initial=len(results), desc=desc)
    try:
        if pending:
            own = executor is None and (workers or os.cpu_count() or 1) > 1 and len(pending) > 1
            if executor is None and not own:
                for key, c in pending.items():
                    results[key] = run_cell(c, folder)
                    if bar is not None:
                        bar.update(1)
            else:
                ex = process_pool(min(workers or os.cpu_count() or 1, len(pending))) if own else executor
                try:
                    futures = {ex.submit(run_cell, c, folder): key for key, c in pending.items()}
                    if all(isinstance(f, cf.Future) for f in futures):
                        done: Iterable[Any] = cf.as_completed(futures)
                    else:
                        done = list(futures)
                    for f in done:
                        results[futures[f]] = f.result()
                        if bar is not None:
                            bar.update(1)
                finally:
                    if own:
                        ex.shutdown(wait=True, cancel_futures=True)
    finally:
        if bar is not None:
            bar.close()
    return [results[c.key()] for c in configs]


# -------------------------------------------------------------------------------- k × seed grids
def k_seed_grid(base: RunConfig, ks: Sequence[int], seeds: Sequence[int], *,
                lockstep: bool = True) -> list[RunConfig]:
    """The paper's Table 1 / 4 grid: perturbations k × batch-order seeds, initialisation fixed.

    ``lockstep=True``: one cell per seed training all k together on shared batches (RelL1
    measured); ``False``: one cell per (k, seed), k-major order (more parallel cells).
    """
    variants = [Variant(k=int(k), form=base.variants[0].form) for k in ks]
    if lockstep:
        return [base.replace(variants=tuple(variants), batch_seed=int(s)) for s in seeds]
    return [base.replace(variants=(v,), batch_seed=int(s)) for v in variants for s in seeds]


def fixed_lr_sweep(base: RunConfig, lrs: Sequence[float], lr_times_steps: float) -> list[RunConfig]:
    """Fixed learning rates with lr × iterations constant (paper §4.2, Fig. 2 right): one cell per
    lr, constant schedule, ``max_steps = round(lr_times_steps / lr)``."""
    out = []
    for lr in lrs:
        steps = max(1, round(lr_times_steps / lr))
        out.append(base.replace(lr=float(lr), lr_decay_every=0, epochs=None, max_steps=int(steps)))
    return out


def accuracy_table(histories: Sequence[History], ks: Sequence[int], seeds: Sequence[int], *,
                   last: int | None = None) -> np.ndarray:
    """Test accuracy as an array [k, seed] from :func:`k_seed_grid`'s results (either layout).

    ``last=None``: final accuracy; ``last=n``: mean over the last n epochs (the authors' measure).
    """
    table = np.full((len(ks), len(seeds)), np.nan)
    for h in histories:
        seed = h.config["batch_seed"]
        accs = h.final_acc() if last is None else h.mean_last_acc(last)
        for name, v in zip(h.variants, h.config["variants"], strict=True):
            if v["k"] in ks and seed in seeds:
                table[list(ks).index(v["k"]), list(seeds).index(seed)] = accs[name]
    if np.isnan(table).any():
        raise ValueError("accuracy_table: some (k, seed) cells are missing from the histories")
    return table
