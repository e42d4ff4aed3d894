"""Where a grid's cells run: a local process pool, Dask, or Slurm through submitit.

:func:`make_executor` turns a chapter's ``executor`` parameter into a
:class:`concurrent.futures.Executor` whose ``submit`` returns genuine
:class:`concurrent.futures.Future` objects, whatever the engine.  The grid therefore drives every
engine the same way (``submit`` each cell, then ``as_completed`` under one progress bar), and
the engine never changes a result: each cell pins its own threads and seeds
(:func:`instab.determinism.configure`), so the same cell computes the same bits on any engine.

===================  =========================================================================
spec                 engine
===================  =========================================================================
``local``            a process pool on this machine, one process per core, one thread each
``dask-local``       a ``dask.distributed`` LocalCluster (processes, one thread each)
``tcp://HOST:PORT``  a running Dask scheduler, e.g. one started by ``dask-jobqueue``'s
                     ``SLURMCluster``/``PBSCluster`` or by ``dask scheduler`` + ``dask worker``
``slurm``            Slurm through submitit: the grid's cells go out as one job array
``slurm-local``      submitit's local executor (one process per cell): Slurm's code path on a
                     machine without Slurm, for tests
===================  =========================================================================

Fault tolerance: a cell whose worker dies (killed, out of memory, node lost, pre-empted) is run
again, up to ``retries`` more times; a cell that *raises* is not retried (it would raise again)
and its exception reaches the caller.  A re-run cell resumes from its own epoch checkpoint,
which the grid keeps in its cache folder, so a retry costs at most one epoch.

The Dask and submitit engines are optional: ``pip install 'instab[cluster]'``.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from instab.cluster import DaskExecutor, SubmititExecutor, Submitted, notify_cancelled

SPECS: tuple[str, ...] = ("local", "dask-local", "tcp://HOST:PORT", "slurm", "slurm-local")
"""The executor specs :func:`make_executor` accepts (``tcp://HOST:PORT``: a Dask scheduler)."""

_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


#: The environment variable that names the grids' engine for a whole build (``make book`` passes
#: the driver's setting to the chapters' kernels through it).
EXECUTOR_VAR = "INSTAB_EXECUTOR"


def environment_spec() -> str | None:
    """The engine ``$INSTAB_EXECUTOR`` names, validated (``None`` when unset or empty): the one
    place a kernel reads it; a bad value raises ``ValueError`` naming the variable."""
    value = os.environ.get(EXECUTOR_VAR)
    return check_spec(value, EXECUTOR_VAR) if value else None


def check_spec(spec: Any, name: str = "executor") -> str:
    """Validate an executor spec without starting anything; return the spec.

    Raises ``ValueError`` naming the parameter, the bad value and the allowed specs, so a chapter
    fails on a typo before any work (and before any cluster is contacted).
    """
    if isinstance(spec, str):
        if spec in ("local", "dask-local", "slurm", "slurm-local"):
            return spec
        match = _ADDRESS.match(spec)
        if match and 0 < int(match.group(3)) < 65536:
            return spec
    allowed = ", ".join(repr(s) for s in SPECS)
    raise ValueError(
        f"{name}={spec!r} is not allowed; choose one of {allowed} "
        "(tcp://HOST:PORT is the address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786)"
    )


def make_executor(
    spec: Any = None,
    *,
    max_workers: int | None = None,
    retries: int = 2,
    folder: str | os.PathLike[str] | None = None,
    **options: Any,
) -> cf.Executor:
    """An executor for the grid's cells, chosen by ``spec`` (see the module docstring).

    Parameters
    ----------
    spec:
        One of :data:`SPECS`; ``None`` means ``$INSTAB_EXECUTOR`` if set, else ``local`` (so
        ``INSTAB_EXECUTOR=slurm make book PARAMS=paper`` moves a whole build).  An object that
        already has ``submit`` is accepted too: a ``distributed.Client`` or a submitit executor
        is wrapped like the specs that make them; any other such object is returned unchanged.
    max_workers:
        Cells run at once: pool processes (``local``), LocalCluster workers (``dask-local``),
        submitit processes (``slurm-local``), each defaulting to the core count; or the job
        array's ``%`` throttle (``slurm``, default: none).  Not used for a scheduler address.
    retries:
        How many more times a cell whose worker died is run before its future fails.
    folder:
        submitit only: where job scripts, pickles and logs go (on Slurm a folder every node
        sees).  Default: ``$INSTAB_SUBMITIT``, else the repository's ``_build/submitit``.
    options:
        Engine options: for ``slurm``/``slurm-local`` submitit's ``update_parameters`` names
        (``timeout_min``, ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``,
        ``slurm_partition``, ``slurm_account``, ``slurm_qos``, ``slurm_setup`` ...); for
        ``dask-local`` LocalCluster arguments.  Not accepted for ``local`` or a scheduler
        address.

    Returns
    -------
    concurrent.futures.Executor
        Use it as a context manager (or call ``shutdown``) to release workers and clusters.
    """
    if not isinstance(spec, str) and callable(getattr(spec, "submit", None)):
        return _adopt(spec, retries=retries)
    if spec is None:
        spec = environment_spec() or "local"
    spec = check_spec(spec)
    _check_engine_args(spec, max_workers, retries, options)
    if spec == "local":
        return LocalPool(max_workers=max_workers, retries=retries)
    if spec == "dask-local":
        return DaskExecutor.local(n_workers=max_workers or os.cpu_count() or 1, retries=retries, **options)
    if "://" in spec:
        return DaskExecutor.connect(spec)
    cluster = "slurm" if spec == "slurm" else "local"
    return SubmititExecutor.create(
        cluster, folder=folder, max_workers=max_workers, retries=retries, **options
    )


def _check_engine_args(spec: str, max_workers: Any, retries: Any, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming a bad ``max_workers``, ``retries`` or an option ``spec`` takes none of."""
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise ValueError(f"max_workers={max_workers!r} is not allowed; it must be a positive integer")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries={retries!r} is not allowed; it must be a non-negative integer")
    if spec == "local" or "://" in spec:
        if options:
            raise ValueError(f"executor={spec!r} takes no options; got {sorted(options)}")


def _adopt(obj: Any, *, retries: int) -> Any:
    """Wrap a Dask client or a submitit executor given directly; pass anything else through."""
    module = type(obj).__module__
    if module.startswith("distributed"):
        return DaskExecutor(obj, owns_client=False)
    if module.startswith("submitit"):
        return SubmititExecutor(obj, retries=retries)
    return obj


def _pin_one_thread() -> None:
    """One BLAS/OpenMP thread per process (set before torch is imported)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


#: How often a pool worker checks that the process that started it is alive (seconds).
ORPHAN_POLL_S = 0.5


def _exit_when_orphaned(parent: int, poll: float = ORPHAN_POLL_S) -> None:
    """Watch (in a daemon thread) for the parent's death and end this process then: a worker whose
    grid was killed (SIGKILL, out of memory) is re-parented and would otherwise finish its cell and
    idle until killed by hand.  With the workers gone, the resource tracker they share with the
    parent sees its pipe close and ends too.  The watch only reads the parent's pid: no numerics."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(70)

    threading.Thread(target=watch, name="instab-orphan-watch", daemon=True).start()


def _worker_init(parent: int) -> None:
    """Pool initializer: one thread, and an end with the parent (:func:`_exit_when_orphaned`)."""
    _pin_one_thread()
    _exit_when_orphaned(parent)


class LocalPool(cf.Executor):
    """A process pool (``spawn``, one thread per process) that survives a worker's death.

    :class:`concurrent.futures.ProcessPoolExecutor` breaks for good when one of its processes
    dies, failing every cell in flight with ``BrokenProcessPool``.  Here a broken pool is
    replaced by a fresh one and the cells it held are submitted again, each at most
    ``retries`` more times; they resume from their epoch checkpoints.
    """

    def __init__(self, max_workers: int | None = None, retries: int = 2, mp_context: str = "spawn") -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self.retries = retries
        self._context = multiprocessing.get_context(mp_context)
        self._lock = threading.RLock()
        self._shutdown = False
        self._pool = self._new_pool()
        self.pools_started = 1

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            self.max_workers, mp_context=self._context, initializer=_worker_init, initargs=(os.getpid(),)
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            cell = Submitted(fn, args, kwargs)
            cell.future.add_done_callback(lambda f: f.cancelled() and cell.handle and cell.handle.cancel())
            self._launch(cell)
            return cell.future

    def _launch(self, cell: Submitted) -> None:
        with self._lock:
            pool = self._pool
            try:
                inner = pool.submit(cell.fn, *cell.args, **cell.kwargs)
            except BrokenProcessPool:
                pool = self._replace(pool)
                inner = pool.submit(cell.fn, *cell.args, **cell.kwargs)
            cell.handle = inner
        inner.add_done_callback(functools.partial(self._settle, cell, pool))

    def _replace(self, broken: cf.ProcessPoolExecutor) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._pool is broken and not self._shutdown:
                self._pool = self._new_pool()
                self.pools_started += 1
                broken.shutdown(wait=False)
            return self._pool

    def _settle(self, cell: Submitted, pool: cf.ProcessPoolExecutor, inner: cf.Future) -> None:
        if cell.future.done():
            return
        if inner.cancelled():
            notify_cancelled(cell.future)
            return
        err = inner.exception()
        if isinstance(err, BrokenProcessPool) and cell.attempt < self.retries and not self._shutdown:
            cell.attempt += 1
            self._replace(pool)
            self._launch(cell)
        elif err is not None:
            cell.future.set_exception(err)
        else:
            cell.future.set_result(inner.result())

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            pool = self._pool
        pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __repr__(self) -> str:
        return f"LocalPool(max_workers={self.max_workers}, retries={self.retries})"
