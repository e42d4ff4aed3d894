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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instab import paths

SPECS: tuple[str, ...] = ("local", "dask-local", "tcp://HOST:PORT", "slurm", "slurm-local")
"""The executor specs :func:`make_executor` accepts (``tcp://HOST:PORT``: a Dask scheduler)."""

_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_INSTALL = "pip install 'instab[cluster]'"


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
        spec = check_spec(os.environ.get("INSTAB_EXECUTOR") or "local", "INSTAB_EXECUTOR")
    spec = check_spec(spec)
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise ValueError(f"max_workers={max_workers!r} is not allowed; it must be a positive integer")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries={retries!r} is not allowed; it must be a non-negative integer")
    if spec == "local" or "://" in spec:
        if options:
            raise ValueError(f"executor={spec!r} takes no options; got {sorted(options)}")
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


def _adopt(obj: Any, *, retries: int) -> Any:
    """Wrap a Dask client or a submitit executor given directly; pass anything else through."""
    module = type(obj).__module__
    if module.startswith("distributed"):
        return DaskExecutor(obj, owns_client=False)
    if module.startswith("submitit"):
        return SubmititExecutor(obj, retries=retries)
    return obj


def _require(module: str, spec: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"executor={spec!r} needs the optional package {module!r}: {_INSTALL}") from err


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


def _fail(future: cf.Future, err: BaseException) -> None:
    """Set ``err`` on ``future`` unless it was settled meanwhile (a shutdown races the poller)."""
    try:
        future.set_exception(err)
    except cf.InvalidStateError:
        pass


def _notify_cancelled(future: cf.Future) -> None:
    if future.cancel():
        future.set_running_or_notify_cancel()  # wakes as_completed()/wait() waiters


@dataclass
class _Cell:
    """One submitted call and its bookkeeping: the caller's future, the attempts made."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: cf.Future = field(default_factory=cf.Future)
    attempt: int = 0
    handle: Any = None  # the engine's own future or job for the current attempt
    dead_since: float | None = None


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
            cell = _Cell(fn, args, kwargs)
            cell.future.add_done_callback(lambda f: f.cancelled() and cell.handle and cell.handle.cancel())
            self._launch(cell)
            return cell.future

    def _launch(self, cell: _Cell) -> None:
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

    def _settle(self, cell: _Cell, pool: cf.ProcessPoolExecutor, inner: cf.Future) -> None:
        if cell.future.done():
            return
        if inner.cancelled():
            _notify_cancelled(cell.future)
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


class DaskExecutor(cf.Executor):
    """Cells on a ``dask.distributed`` cluster, through the client's concurrent.futures view.

    A worker that dies mid-cell is replaced (by its nanny) and the scheduler runs the cell again
    elsewhere, up to ``distributed.scheduler.allowed-failures`` times (set from ``retries`` for
    a LocalCluster; a remote scheduler keeps its own setting, default 3); past that the future
    fails with ``KilledWorker``.
    """

    def __init__(self, client: Any, cluster: Any = None, owns_client: bool = True) -> None:
        self.client = client
        self.cluster = cluster
        self._owns_client = owns_client
        self._inner = client.get_executor(pure=False)

    @classmethod
    def local(cls, n_workers: int = 2, retries: int = 2, **options: Any) -> DaskExecutor:
        """A LocalCluster of ``n_workers`` processes with one thread each."""
        dask = _require("dask", "dask-local")
        distributed = _require("distributed", "dask-local")
        settings = {"threads_per_worker": 1, "processes": True, "dashboard_address": None}
        settings.update(options)
        with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
            cluster = distributed.LocalCluster(n_workers=n_workers, **settings)
        return cls(distributed.Client(cluster), cluster)

    @classmethod
    def connect(cls, address: str) -> DaskExecutor:
        """A client of the running scheduler at ``address`` (e.g. a dask-jobqueue cluster's)."""
        distributed = _require("distributed", address)
        return cls(distributed.Client(address))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait and not cancel_futures)
        if self._owns_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address})"


class _Resumable:
    """A cell as submitit runs it; on a Slurm time-out or pre-emption it is requeued as is.

    submitit calls ``checkpoint`` before requeueing; the cell resumes from its own epoch
    checkpoint in the grid's cache, so the same call is all there is to resubmit.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


class SubmititExecutor(cf.Executor):
    """Cells as submitit jobs: on Slurm, the cells submitted together go out as one job array.

    ``submit`` only queues a cell; a background thread gathers the cells submitted within
    ``batch_window_s`` of each other into one ``executor.batch()`` (a Slurm job array), then
    polls the jobs and settles each caller's future.  A job that ends without a result (its
    process was killed, the node was lost) is submitted again, at most ``retries`` more times;
    a job whose function raised fails its future with submitit's ``FailedJobError`` (its text
    carries the cell's traceback).
    """

    def __init__(
        self,
        executor: Any,
        *,
        retries: int = 2,
        max_in_flight: int | None = None,
        poll_s: float | None = None,
        grace_s: float | None = None,
        batch_window_s: float = 0.2,
    ) -> None:
        self.executor = executor
        self.retries = retries
        local = getattr(executor, "cluster", type(executor).__name__.lower()) in ("local", "localexecutor")
        self.max_in_flight = max_in_flight
        self.poll_s = poll_s if poll_s is not None else (0.2 if local else 15.0)
        # how long a finished job may lack its result file before it counts as dead (shared
        # file systems show files late; a local one does not)
        self.grace_s = grace_s if grace_s is not None else (1.0 if local else 60.0)
        self.batch_window_s = batch_window_s
        self.arrays_submitted = 0
        self._pending: list[_Cell] = []
        self._running: list[_Cell] = []
        self._last_submit = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._shutdown = False
        self._thread = threading.Thread(target=self._loop, name="instab-submitit", daemon=True)
        self._thread.start()

    @classmethod
    def create(
        cls,
        cluster: str,
        *,
        folder: str | os.PathLike[str] | None = None,
        max_workers: int | None = None,
        retries: int = 2,
        poll_s: float | None = None,
        grace_s: float | None = None,
        **options: Any,
    ) -> SubmititExecutor:
        """A submitit ``AutoExecutor`` for ``cluster`` ("slurm" or "local") with our defaults.

        ``poll_s`` (how often job states are read) and ``grace_s`` (how long an ended job may
        lack its result file before it counts as dead) default to 0.2 s and 1 s locally, 15 s
        and 60 s on Slurm; ``options`` go to submitit's ``update_parameters``.
        """
        submitit = _require("submitit", f"slurm{'' if cluster == 'slurm' else '-local'}")
        default = os.environ.get("INSTAB_SUBMITIT") or paths.build_root() / "submitit"
        folder = Path(folder or default).absolute()
        params: dict[str, Any] = {"name": "instab-grid", "timeout_min": 24 * 60, "cpus_per_task": 1}
        max_in_flight = None
        if cluster == "slurm":
            # one GPU per cell; a time-out or pre-emption requeues the cell, which resumes
            params.update(timeout_min=4 * 60, gpus_per_node=1, cpus_per_task=2, mem_gb=16)
            if max_workers:
                params["slurm_array_parallelism"] = max_workers
        else:
            max_in_flight = max_workers or os.cpu_count() or 1
        params.update(options)
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster, slurm_max_num_timeout=20)
        try:
            executor.update_parameters(**params)
        except (NameError, AssertionError) as err:
            raise ValueError(f"bad submitit option for executor={cluster!r}: {err}") from err
        return cls(executor, retries=retries, max_in_flight=max_in_flight, poll_s=poll_s, grace_s=grace_s)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        cell = _Cell(fn, args, kwargs)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._pending.append(cell)
            self._last_submit = time.monotonic()
        self._wake.set()
        return cell.future

    # -- the background thread ------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            try:
                self._submit_ready()
                self._poll()
            except Exception as err:  # never let the thread die silently: fail what is open
                with self._lock:
                    open_cells = self._pending + self._running
                    self._pending, self._running = [], []
                for cell in open_cells:
                    _fail(cell.future, err)
            with self._lock:
                if self._shutdown and not self._pending and not self._running:
                    return

    def _room(self) -> int:
        if self.max_in_flight is None:
            return len(self._pending)
        return max(0, min(len(self._pending), self.max_in_flight - len(self._running)))

    def _next_wait(self) -> float:
        with self._lock:
            if self._pending and self._room():
                quiet = time.monotonic() - self._last_submit
                return max(0.01, min(self.poll_s, self.batch_window_s - quiet))
            return self.poll_s

    def _submit_ready(self) -> None:
        with self._lock:
            quiet = time.monotonic() - self._last_submit
            if not self._room() or (quiet < self.batch_window_s and not self._shutdown):
                return
            room = self._room()
            batch, self._pending = self._pending[:room], self._pending[room:]
        # a first attempt starts its caller's future now (a caller may have cancelled it)
        batch = [c for c in batch if c.attempt or c.future.set_running_or_notify_cancel()]
        if not batch:
            return
        if len(batch) == 1:
            jobs = [self.executor.submit(_Resumable(batch[0].fn), *batch[0].args, **batch[0].kwargs)]
        else:
            with self.executor.batch():
                jobs = [self.executor.submit(_Resumable(c.fn), *c.args, **c.kwargs) for c in batch]
            self.arrays_submitted += 1
        with self._lock:
            for cell, job in zip(batch, jobs, strict=True):
                cell.handle, cell.dead_since = job, None
                self._running.append(cell)

    def _poll(self) -> None:
        with self._lock:
            running = list(self._running)
        for cell in running:
            outcome = self._outcome(cell)
            if outcome is None:
                continue
            with self._lock:
                if cell not in self._running:  # shut down meanwhile
                    continue
                self._running.remove(cell)
                if outcome == "retry":
                    cell.attempt += 1  # the caller's future stays the same; it goes first
                    self._pending.insert(0, cell)
                    self._last_submit = 0.0
                    self._wake.set()

    def _outcome(self, cell: _Cell) -> str | None:
        """Settle ``cell``'s future if its job ended: None (still running), "done" or "retry"."""
        from submitit.core.utils import UncompletedJobError

        job = cell.handle
        if job.paths.result_pickle.exists():
            try:
                cell.future.set_result(job.result())
            except UncompletedJobError as err:  # FailedJobError: the cell raised; again it would too
                _fail(cell.future, err)
            except cf.InvalidStateError:  # cancelled by a shutdown meanwhile
                pass
            return "done"
        if not job.done():
            return None
        now = time.monotonic()
        if cell.dead_since is None:
            cell.dead_since = now
        if now - cell.dead_since < self.grace_s:
            return None
        if cell.attempt < self.retries:
            return "retry"
        _fail(cell.future, UncompletedJobError(
            f"cell died {cell.attempt + 1} time(s) without a result (job {job.job_id}); "
            f"its log: {job.paths.stderr}"))
        return "done"

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                for cell in self._pending + self._running:
                    if cell.handle is not None:
                        try:
                            cell.handle.cancel(check=False)  # scancel, or SIGINT locally
                        except OSError:
                            pass
                    if cell.future.running():
                        _fail(cell.future, cf.CancelledError())
                    elif not cell.future.done():
                        _notify_cancelled(cell.future)
                self._pending, self._running = [], []
        self._wake.set()
        if wait:
            self._thread.join()

    def __repr__(self) -> str:
        return f"SubmititExecutor({type(self.executor).__name__}, folder={self.executor.folder})"
