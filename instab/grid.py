"""The one runner: grids of cells with a resumable, hash-keyed cache (paper §4.2's k × seed grids,
App. E's (network, α) cells, any other experiment).

A cell is any configuration with ``key()`` (its cache key: the configuration, the code it runs,
the library versions and the floating-point environment), ``validate()`` (raises ``ValueError``
naming a bad value), ``to_dict()`` and ``compute(checkpoint)`` (runs it, in a worker, and returns
its result); :class:`instab.train.RunConfig` and :class:`instab.threshold.ThresholdConfig` are
cells.  Its result is written atomically to ``<cache>/<key>.result``.  A rerun skips finished
cells; a cell in progress may checkpoint to ``<cache>/<key>.ckpt`` and a rerun resumes from
there, bitwise equal to an uninterrupted run.  Every file carries a SHA-256 of its payload: a
truncated or corrupted file is detected and recomputed, never used.

Cells run on any executor with ``submit()`` (``concurrent.futures``, dask, submitit, ...); the
default is a local process pool, one process per core, each pinned to one thread.  The cache folder
is ``$INSTAB_CACHE`` if set, else ``_build/cache`` in the repository.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from instab import paths
from instab.store import load_object, save_object


def default_cache() -> Path:
    """``$INSTAB_CACHE`` if set, else ``<build>/cache`` (:func:`instab.paths.cache_root`)."""
    return paths.cache_root()


class Cell(Protocol):
    """What :func:`run_grid` runs: a configuration that knows its key and how to compute itself."""

    def key(self) -> str: ...

    def validate(self) -> Any: ...

    def to_dict(self) -> dict[str, Any]: ...

    def compute(self, checkpoint: Path | None = None, **kwargs: Any) -> Any: ...


def check_cell(config: Any) -> None:
    """Raise ``ValueError`` unless ``config`` is a cell (has key, validate, to_dict and compute)."""
    missing = [m for m in ("key", "validate", "to_dict", "compute") if not callable(getattr(config, m, None))]
    if missing:
        raise ValueError(f"run_grid takes cells (configurations with key(), validate(), to_dict() and "
                         f"compute()); a {type(config).__name__} has no {', '.join(missing)}")


def cell_paths(config: Cell, cache: str | Path | None = None) -> tuple[Path, Path]:
    """(result file, checkpoint file) of a cell."""
    folder = Path(cache) if cache is not None else default_cache()
    key = config.key()
    return folder / f"{key}.result", folder / f"{key}.ckpt"


def cached(config: Cell, cache: str | Path | None = None) -> Any | None:
    """The cell's cached result if a valid one exists (same configuration), else ``None``."""
    result, _ = cell_paths(config, cache)
    stored = load_object(result)
    if isinstance(stored, dict) and stored.get("config") == config.to_dict() and "result" in stored:
        return stored["result"]
    return None


def run_cell(config: Cell, cache: str | Path | None = None, **kwargs: Any) -> Any:
    """Run one cell through the cache: return the cached result, else compute it (resuming from a
    valid checkpoint), store it atomically with its configuration, remove the checkpoint.
    ``kwargs`` go to the cell's ``compute`` (e.g. ``on_epoch`` for a training run)."""
    h = cached(config, cache)
    if h is not None:
        return h
    result, ckpt = cell_paths(config, cache)
    h = config.compute(checkpoint=ckpt, **kwargs)
    save_object(result, {"config": config.to_dict(), "result": h})
    ckpt.unlink(missing_ok=True)
    return h


def run_grid(configs: Iterable[Cell], *, cache: str | Path | None = None, executor: Any = None,
             workers: int | None = None, progress: bool = True, desc: str = "cells") -> list[Any]:
    """Run every cell through the cache and return their results in order (a
    :class:`~instab.train.History` for a training run).

    Every cell is validated (and, for a cell with ``data_key()``/``check_data()``, its data set
    located once per data set) before any cell starts, so a bad value fails at once.  Finished
    cells are read from the cache; the others are submitted to ``executor``: anything with
    ``submit(fn, *args)`` returning an object with ``result()``, or a spec for
    :func:`instab.executors.make_executor` (``"local"``, ``"dask-local"``, ``"tcp://HOST:PORT"``,
    ``"slurm"``, ``"slurm-local"``); ``None`` means ``$INSTAB_EXECUTOR`` if set, else a local pool
    of ``workers`` processes that reruns a cell whose process died — or this process when
    ``workers == 1`` or only one cell is left.
    """
    from instab.executors import check_spec, environment_spec

    configs = list(configs)
    if executor is None:
        executor = environment_spec()
    if isinstance(executor, str):
        check_spec(executor)
    _validate_cells(configs)
    folder = (Path(cache) if cache is not None else default_cache()).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    results, pending = _from_cache(configs, folder)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(results) + len(pending), initial=len(results), desc=desc)
    try:
        if pending:
            _run_pending(pending, folder, executor, workers, results, bar)
    finally:
        if bar is not None:
            bar.close()
    return [results[c.key()] for c in configs]


def _validate_cells(configs: list[Cell]) -> None:
    """Every cell validated, and each data set located once, before any cell starts."""
    seen_data: set[Any] = set()
    for c in configs:
        check_cell(c)
        c.validate()
        if hasattr(c, "data_key"):
            data_key = c.data_key()
            if data_key not in seen_data:
                c.check_data()  # type: ignore[attr-defined]  # a cell with data_key() has check_data() too
                seen_data.add(data_key)


def _from_cache(configs: list[Cell], folder: Path) -> tuple[dict[str, Any], dict[str, Cell]]:
    """({key: cached result}, {key: cell still to run}), each distinct cell once."""
    results: dict[str, Any] = {}
    pending: dict[str, Cell] = {}
    for c in configs:
        key = c.key()
        if key in results or key in pending:
            continue
        h = cached(c, folder)
        if h is not None:
            results[key] = h
        else:
            pending[key] = c
    return results, pending


def _run_pending(pending: dict[str, Cell], folder: Path, executor: Any, workers: int | None,
                 results: dict[str, Any], bar: Any) -> None:
    """Run the ``pending`` cells into ``results``: in this process, or on ``executor`` (a spec is
    made into one here and shut down after)."""
    from instab.executors import make_executor

    own = executor is None or isinstance(executor, str)
    if executor is None and ((workers or os.cpu_count() or 1) == 1 or len(pending) == 1):
        for key, c in pending.items():
            results[key] = run_cell(c, folder)
            if bar is not None:
                bar.update(1)
        return
    spec = executor or "local"  # a Slurm array is not throttled to this machine's cores
    n = workers if spec == "slurm" else min(workers or os.cpu_count() or 1, len(pending))
    ex = make_executor(spec, max_workers=n) if own else executor
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
