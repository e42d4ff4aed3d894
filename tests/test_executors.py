"""The grid on every engine: same bits as the local pool, a killed worker retried, a restart free.

A 2 × 2 ci-scale grid (k ∈ {1, 3} × batch seed ∈ {0, 1}, one cell each) runs in this process, one
thread (the reference), then on each engine of :func:`instab.executors.make_executor`: the local
process pool, a Dask LocalCluster with 2 workers, submitit's local executor.  On
each engine the worker running the first cell is killed (SIGKILL, from inside, right after the
cell's epoch-1 checkpoint): the engine must run the cell again, the cell must resume from its
checkpoint, and every history must equal the reference bit for bit.  Then the grid is restarted
on the same engine and cache: nothing may be submitted.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from instab.cluster import DaskExecutor
from instab.executors import SPECS, LocalPool, check_spec, make_executor
from instab.grid import cached, cell_paths, run_cell, run_grid
from instab.studies.sgd_variance import k_seed_grid
from instab.train import RunConfig, dumps, ks

pytest.importorskip("distributed", reason="the cluster extra: pip install 'instab[cluster]'")
pytest.importorskip("submitit", reason="the cluster extra: pip install 'instab[cluster]'")
import cloudpickle  # noqa: E402  (a dependency of both engines)

# Dask and submitit ship functions with cloudpickle; this module is not importable on their
# workers, so its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = RunConfig(model="cnn", dataset="fashion_mnist", widths=(4, 8), train_size=256, test_size=128,
                 batch_size=64, epochs=3, variants=ks(1))
GRID = k_seed_grid(TINY, [1, 3], [0, 1], lockstep=False)  # 4 cells, one (k, seed) each
ENGINES = ["local", "dask-local", "slurm-local"]


def run_cell_killed_once(config: RunConfig, cache: Path, log: Path):
    """``run_cell``, but the first attempt's process is SIGKILLed after its epoch-1 checkpoint.

    Every attempt appends the epochs it finishes to ``log/epochs``: ``1 2 3`` means the retry
    resumed from the checkpoint; ``1 1 2 3`` would mean it started over.
    """

    def on_epoch(epoch: int, history) -> None:
        with open(log / "epochs", "a") as f:
            f.write(f"{epoch}\n")
        if epoch == 1:
            try:
                os.close(os.open(log / "killed", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
            os.kill(os.getpid(), signal.SIGKILL)

    return run_cell(config, cache, on_epoch=on_epoch)


class Relay:
    """Hands the grid's cells to an engine, counting them; the ``victim`` cell dies once."""

    def __init__(self, engine: cf.Executor, victim: RunConfig | None = None, log: Path | None = None):
        self.engine, self.victim, self.log, self.submitted = engine, victim, log, 0
        self.futures: list = []

    def submit(self, fn, config, cache):
        self.submitted += 1
        if config == self.victim:
            future = self.engine.submit(run_cell_killed_once, config, cache, self.log)
        else:
            future = self.engine.submit(fn, config, cache)
        self.futures.append(future)
        return future


@dataclass
class EngineRun:
    histories: list
    epochs_of_victim: list[int]
    killed: bool
    engine: cf.Executor
    restart_histories: list
    restart_submitted: int
    mtimes: dict[str, float]
    restart_mtimes: dict[str, float]
    cache: Path
    futures: list


def _mtimes(cache: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in cache.glob("*.result")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The grid run in this process (one thread, as every cell pins), nothing killed.

    Running it here rather than in a second pool saves two process starts; the grid's own tests
    show its default pool equals the in-process run, and each engine below is compared with it.
    """
    return run_grid(GRID, cache=tmp_path_factory.mktemp("reference"), workers=1, progress=False)


@pytest.fixture(scope="module", params=ENGINES)
def engine_run(request, tmp_path_factory):
    spec = request.param
    tmp = tmp_path_factory.mktemp(spec)
    cache, log = tmp / "cache", tmp / "log"
    log.mkdir()
    with make_executor(spec, max_workers=2, retries=2, folder=tmp / "submitit") as engine:
        relay = Relay(engine, GRID[0], log)
        histories = run_grid(GRID, cache=cache, executor=relay, progress=False)
        before = _mtimes(cache)
        again = Relay(engine)
        restart = run_grid(GRID, cache=cache, executor=again, progress=False)
        epochs = [int(line) for line in (log / "epochs").read_text().split()]
        yield EngineRun(histories, epochs, (log / "killed").exists(), engine, restart, again.submitted,
                        before, _mtimes(cache), cache, relay.futures)


@pytest.mark.slow
def test_engine_results_are_bitwise_equal_to_the_local_pool(engine_run, reference):
    """Same bits as the reference, hence as the ``local`` pool (itself one of the engines)."""
    assert [h.config for h in engine_run.histories] == [h.config for h in reference]
    assert [dumps(h) for h in engine_run.histories] == [dumps(h) for h in reference]
    assert all(h.settings["threads"] == 1 for h in engine_run.histories)


@pytest.mark.slow
def test_every_engine_returns_concurrent_futures(engine_run):
    """Genuine ``concurrent.futures.Future`` objects: the grid waits on them with
    ``as_completed`` and moves its one progress bar as cells finish, whatever the engine."""
    assert len(engine_run.futures) == len(GRID)
    assert all(type(f) is cf.Future and f.done() for f in engine_run.futures)


@pytest.mark.slow
def test_worker_killed_mid_cell_is_retried_and_resumes(engine_run):
    assert engine_run.killed, "the victim cell's worker was never killed"
    assert engine_run.epochs_of_victim == [1, 2, 3], "the retried cell did not resume from its checkpoint"
    if isinstance(engine_run.engine, LocalPool):
        assert engine_run.engine.pools_started == 2  # the broken pool was replaced once


@pytest.mark.slow
def test_restarted_grid_recomputes_nothing(engine_run):
    assert engine_run.restart_submitted == 0
    assert engine_run.restart_mtimes == engine_run.mtimes and len(engine_run.mtimes) == len(GRID)
    assert [dumps(h) for h in engine_run.restart_histories] == [dumps(h) for h in engine_run.histories]
    assert not any(cell_paths(c, engine_run.cache)[1].exists() for c in GRID)  # checkpoints removed


@pytest.mark.slow
def test_two_workers_on_one_cell_leave_one_whole_result(engine_run, tmp_path):
    """The same cell computed by two workers at once into one cache (a restarted grid while the
    old jobs still run, a worker wrongly presumed dead): files are replaced whole, so the one
    result left is a valid one, equal to both."""
    if not isinstance(engine_run.engine, LocalPool | DaskExecutor):
        pytest.skip("a fresh process per cell here: two more process starts for what the pools show")
    config = GRID[0].replace(batch_seed=7)
    twins = [engine_run.engine.submit(run_cell, config, tmp_path) for _ in range(2)]
    first, second = (f.result(timeout=120) for f in twins)
    assert dumps(first) == dumps(second) == dumps(cached(config, tmp_path))
    assert not list(tmp_path.glob(".*")) and not cell_paths(config, tmp_path)[1].exists()


# ------------------------------------------------------------------------------ specs and errors
@pytest.mark.parametrize("spec", ["dask", "tcp://host", "tcp://host:99999", "slurm_local", "", None, 3])
def test_a_bad_spec_is_named_and_the_allowed_ones_listed(spec):
    with pytest.raises(ValueError) as err:
        check_spec(spec) if spec is None else make_executor(spec)
    assert repr(spec) in str(err.value)
    assert all(repr(s) in str(err.value) for s in SPECS)


def test_good_specs_and_the_environment_default(monkeypatch):
    for spec in ["local", "dask-local", "slurm", "slurm-local", "tcp://10.1.2.3:8786", "tcp://[::1]:8786",
                 "tls://scheduler.example:8786"]:
        assert check_spec(spec) == spec
    monkeypatch.setenv("INSTAB_EXECUTOR", "slurm-locale")
    with pytest.raises(ValueError, match="INSTAB_EXECUTOR='slurm-locale'"):
        make_executor()
    monkeypatch.delenv("INSTAB_EXECUTOR")
    with make_executor(max_workers=1) as pool:
        assert isinstance(pool, LocalPool) and pool.submit(pow, 2, 10).result() == 1024


def test_bad_options_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="max_workers=0"):
        make_executor("local", max_workers=0)
    with pytest.raises(ValueError, match="retries=-1"):
        make_executor("local", retries=-1)
    with pytest.raises(ValueError, match="takes no options"):
        make_executor("local", gpus_per_node=1)
    with pytest.raises(ValueError, match="bad submitit option"):
        make_executor("slurm-local", folder=tmp_path, gpu_per_node=1)


def count_and_raise(log: Path):
    with open(log, "a") as f:
        f.write("attempt\n")
    raise ArithmeticError("a bug in the cell")


def test_a_cell_that_raises_is_not_retried(tmp_path):
    """An exception is the cell's own (it would raise again): it reaches the caller at once."""
    log = tmp_path / "attempts"
    with make_executor("slurm-local", max_workers=1, retries=2, folder=tmp_path / "submitit") as engine:
        with pytest.raises(Exception, match="a bug in the cell"):
            engine.submit(count_and_raise, log).result(timeout=120)
    assert log.read_text().split() == ["attempt"]
    with make_executor("local", max_workers=1, retries=2) as pool:
        with pytest.raises(ValueError, match="invalid literal"):
            pool.submit(int, "not a number").result(timeout=120)
        assert pool.pools_started == 1


# ------------------------------------------------------------------ Slurm's code path, Slurm faked
FAKE_SBATCH = r"""#!/bin/bash
# sbatch stand-in: runs the job (each task of an array, one after another) here, in the background,
# with the variables Slurm sets; states in $FAKE_SLURM/<id> for the sacct stand-in.
script="${@: -1}"; st="$FAKE_SLURM"
id=$(cat "$st/next" 2>/dev/null || echo 1000); echo $((id + 1)) > "$st/next"
array=$(sed -n 's/^#SBATCH --array=\([0-9]*\)-\([0-9]*\).*/\1 \2/p' "$script")
echo "$id ${array:-single}" >> "$st/submissions"
run() {  # $1: the id sacct shows; the rest: variables for the task
  local jid=$1; shift
  echo "$jid|RUNNING|localhost" > "$st/$jid"
  env "$@" SLURM_NTASKS=1 SLURM_JOB_NUM_NODES=1 SLURM_NODEID=0 SLURM_PROCID=0 SLURM_LOCALID=0 \
      SLURM_JOB_NODELIST=localhost bash "$script"
  if [ $? -eq 0 ]; then s=COMPLETED; else s=FAILED; fi
  echo "$jid|$s|localhost" > "$st/$jid"
}
if [ -z "$array" ]; then
  echo "$id|PENDING|" > "$st/$id"
  (run "$id" SLURM_JOB_ID="$id") > /dev/null 2>&1 &
else
  set -- $array
  for i in $(seq "$1" "$2"); do echo "${id}_$i|PENDING|" > "$st/${id}_$i"; done
  (for i in $(seq "$1" "$2"); do
     run "${id}_$i" SLURM_JOB_ID="$id$i" SLURM_ARRAY_JOB_ID="$id" SLURM_ARRAY_TASK_ID="$i"
   done) > /dev/null 2>&1 &
fi
echo "Submitted batch job $id"
"""
FAKE_SRUN = r"""#!/bin/bash
while [[ "$1" == --* ]]; do case "$1" in --output|--error) shift 2;; *) shift;; esac; done
exec "$@" >> "$FAKE_SLURM/log" 2>&1
"""
FAKE_SACCT = r"""#!/bin/bash
echo "JobID|State|NodeList"
while [ $# -gt 0 ]; do
  if [ "$1" = -j ]; then cat "$FAKE_SLURM/$2" "$FAKE_SLURM/$2"_* 2>/dev/null; shift; fi; shift
done
"""


def square_or_die_once(x: int, marker: Path | None = None) -> int:
    """x²; with a ``marker``, the first call (the one that creates it) kills its own process."""
    if marker is not None:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return x * x
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def test_slurm_sends_a_grid_as_one_job_array_and_resubmits_a_dead_task(tmp_path, monkeypatch):
    """``slurm`` with sbatch/srun/sacct stand-ins: the cells go out as one job array; the task
    killed mid-cell is submitted again on its own; every result comes back in place."""
    bin_, state = tmp_path / "bin", tmp_path / "slurm"
    bin_.mkdir()
    state.mkdir()
    for name, text in [("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN), ("sacct", FAKE_SACCT),
                       ("scancel", "#!/bin/bash\n")]:
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(state))
    with make_executor("slurm", max_workers=2, folder=tmp_path / "submitit", poll_s=0.2, grace_s=0.5,
                       slurm_partition="gpu", timeout_min=60) as engine:
        futures = [engine.submit(square_or_die_once, x, tmp_path / "died" if x == 2 else None)
                   for x in range(4)]
        assert [f.result(timeout=120) for f in futures] == [0, 1, 4, 9]
    submissions = (state / "submissions").read_text().splitlines()
    assert submissions == ["1000 0 3", "1001 single"]  # the array, then the dead task again
    assert (tmp_path / "died").exists()
    script = next((tmp_path / "submitit").glob("1000_*submission.sh")).read_text()
    assert "#SBATCH --array=0-3%2" in script and "#SBATCH --partition=gpu" in script
    assert "#SBATCH --gpus-per-node=1" in script and "#SBATCH --time=60" in script


def test_a_scheduler_address_reaches_a_running_dask_cluster():
    """``tcp://HOST:PORT`` (as a dask-jobqueue cluster prints it) connects to that scheduler; its
    shutdown closes the connection, not the cluster."""
    with make_executor("dask-local", max_workers=1) as cluster:
        address = cluster.client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        with make_executor(address) as remote:
            assert remote.submit(pow, 3, 4).result(timeout=60) == 81
            assert remote.submit(os.getpid).result(timeout=60) != os.getpid()
        assert cluster.submit(pow, 2, 5).result(timeout=60) == 32  # still up


@pytest.mark.slow
def test_shutdown_with_cancel_stops_the_jobs(tmp_path):
    """An interrupted grid (the grid shuts its engine down with ``cancel_futures=True``) cancels
    its submitit jobs rather than leaving them running."""
    import time

    engine = make_executor("slurm-local", max_workers=1, folder=tmp_path)
    try:
        running, queued = engine.submit(time.sleep, 60), engine.submit(time.sleep, 60)
        deadline = time.monotonic() + 60
        while not engine._running and time.monotonic() < deadline:
            time.sleep(0.05)
        job = engine._running[0].handle
    finally:
        start = time.monotonic()
        engine.shutdown(wait=True, cancel_futures=True)
    assert time.monotonic() - start < 10
    assert queued.cancelled() and isinstance(running.exception(timeout=1), cf.CancelledError)
    deadline = time.monotonic() + 90  # submitit polls the job's process: slow on a loaded machine
    while job.state == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.state != "RUNNING"
