"""The cluster engines of :mod:`instab.executors` — Dask (a LocalCluster or a running scheduler)
and Slurm through submitit — and the bookkeeping of a submitted call every engine shares.

The Dask and submitit engines are optional: ``pip install 'instab[cluster]'``.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instab import paths

_INSTALL = "pip install 'instab[cluster]'"


def require(module: str, spec: str) -> Any:
    """The optional ``module`` an engine ``spec`` needs, imported; ``ImportError`` saying how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"executor={spec!r} needs the optional package {module!r}: {_INSTALL}") from err


def fail_future(future: cf.Future, err: BaseException) -> None:
    """Set ``err`` on ``future`` unless it was settled meanwhile (a shutdown races the poller)."""
    try:
        future.set_exception(err)
    except cf.InvalidStateError:
        pass


def notify_cancelled(future: cf.Future) -> None:
    if future.cancel():
        future.set_running_or_notify_cancel()  # wakes as_completed()/wait() waiters


@dataclass
class Submitted:
    """One submitted call and its bookkeeping: the caller's future, the attempts made."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: cf.Future = field(default_factory=cf.Future)
    attempt: int = 0
    handle: Any = None  # the engine's own future or job for the current attempt
    dead_since: float | None = None


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
        dask = require("dask", "dask-local")
        distributed = require("distributed", "dask-local")
        settings = {"threads_per_worker": 1, "processes": True, "dashboard_address": None}
        settings.update(options)
        with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
            cluster = distributed.LocalCluster(n_workers=n_workers, **settings)
        return cls(distributed.Client(cluster), cluster)

    @classmethod
    def connect(cls, address: str) -> DaskExecutor:
        """A client of the running scheduler at ``address`` (e.g. a dask-jobqueue cluster's)."""
        distributed = require("distributed", address)
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
        self._pending: list[Submitted] = []
        self._running: list[Submitted] = []
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
        submitit = require("submitit", f"slurm{'' if cluster == 'slurm' else '-local'}")
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
        cell = Submitted(fn, args, kwargs)
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
                    fail_future(cell.future, err)
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

    def _outcome(self, cell: Submitted) -> str | None:
        """Settle ``cell``'s future if its job ended: None (still running), "done" or "retry"."""
        from submitit.core.utils import UncompletedJobError

        job = cell.handle
        if job.paths.result_pickle.exists():
            try:
                cell.future.set_result(job.result())
            except UncompletedJobError as err:  # FailedJobError: the cell raised; again it would too
                fail_future(cell.future, err)
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
        fail_future(cell.future, UncompletedJobError(
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
                        fail_future(cell.future, cf.CancelledError())
                    elif not cell.future.done():
                        notify_cancelled(cell.future)
                self._pending, self._running = [], []
        self._wake.set()
        if wait:
            self._thread.join()

    def __repr__(self) -> str:
        return f"SubmititExecutor({type(self.executor).__name__}, folder={self.executor.folder})"
