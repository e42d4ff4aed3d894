"""The k × seed grid: cache hits, atomic results, corrupted files recomputed, kill-and-resume."""

import concurrent.futures as cf
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import instab.grid as G
from instab.grid import cell_paths, run_cell, run_grid
from instab.store import load_object
from instab.studies.sgd_variance import accuracy_table, k_seed_grid
from instab.train import RunConfig, dumps, ks

ROOT = Path(__file__).resolve().parent.parent
TINY = RunConfig(model="cnn", dataset="fashion_mnist", widths=(4, 8), train_size=256, test_size=128,
                 batch_size=64, epochs=2, variants=ks(1, 3))


@pytest.fixture
def count_training(monkeypatch):
    import instab.train as T

    calls = []
    real = T.train

    def counting(config, **kw):
        calls.append(config.key())
        return real(config, **kw)

    monkeypatch.setattr(T, "train", counting)  # RunConfig.compute, the grid's cell interface, calls it
    return calls


def test_grid_caches_cells_and_reruns_skip_them(tmp_path, count_training):
    configs = k_seed_grid(TINY, [1, 3], [0, 1])
    first = run_grid(configs, cache=tmp_path, workers=1, progress=False)
    assert len(count_training) == 2
    again = run_grid(configs, cache=tmp_path, workers=1, progress=False)
    assert len(count_training) == 2  # nothing retrained
    assert [dumps(h) for h in again] == [dumps(h) for h in first]
    table = accuracy_table(first, [1, 3], [0, 1])
    assert table.shape == (2, 2) and np.all((table >= 0) & (table <= 1))
    assert table[0, 0] == first[0].final_acc()["k=1"] and table[1, 1] == first[1].final_acc()["k=3"]
    assert not list(tmp_path.glob("*.ckpt")) and not list(tmp_path.glob(".*tmp"))


def test_cache_key_follows_every_field():
    assert TINY.key() == RunConfig(**{**TINY.__dict__}).key()
    assert TINY.key() != TINY.replace(batch_seed=1).key() != TINY.replace(lr=0.05).key()
    assert TINY.key() != TINY.replace(variants=ks(1, 5)).key()


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupted_result_is_recomputed_never_used(tmp_path, count_training, damage):
    config = TINY.replace(variants=ks(1), epochs=1)
    good = run_cell(config, tmp_path)
    result, _ = cell_paths(config, tmp_path)
    raw = result.read_bytes()
    if damage == "truncate":
        result.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        result.write_bytes(raw[:-10] + bytes([raw[-10] ^ 1]) + raw[-9:])
    else:
        result.write_bytes(b"not a result")
    assert load_object(result) is None
    again = run_grid([config], cache=tmp_path, progress=False)[0]
    assert len(count_training) == 2
    assert dumps(again) == dumps(good) and load_object(result) is not None


def test_corrupted_checkpoint_is_ignored(tmp_path):
    config = TINY.replace(variants=ks(1, 3))
    reference = run_cell(config, tmp_path / "a")
    _, ckpt = cell_paths(config, tmp_path / "b")
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"INSTAB1\n" + b"0" * 64 + b"\ntruncated")
    assert dumps(run_cell(config, tmp_path / "b")) == dumps(reference)


@pytest.mark.slow
def test_killed_run_resumes_bitwise_equal(tmp_path):
    """A real process is killed (SIGKILL) after its epoch-2 checkpoint; the rerun resumes from the
    checkpoint and its result is bitwise equal to an uninterrupted run's."""
    config = TINY.replace(epochs=4, variants=ks(1, 3), rel_l1_every=2)
    script = textwrap.dedent(f"""
        import sys, time
        from instab.grid import run_cell
        from instab.train import RunConfig, Variant
        config = {config!r}
        def on_epoch(epoch, history):
            print(epoch, flush=True)
            if epoch == 2:
                time.sleep(120)
        run_cell(config, {str(tmp_path / "killed")!r}, on_epoch=on_epoch)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(180, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        for line in proc.stdout:
            if line.strip() == "2":
                break
        else:
            pytest.fail(f"the training process ended early (rc={proc.wait()})")
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
    result, ckpt = cell_paths(config, tmp_path / "killed")
    assert ckpt.exists() and not result.exists()
    seen = []
    resumed = run_cell(config, tmp_path / "killed", on_epoch=lambda e, h: seen.append(e))
    assert seen == [3, 4]  # it resumed after epoch 2, it did not start over
    uninterrupted = run_cell(config, tmp_path / "clean")
    assert dumps(resumed) == dumps(uninterrupted)
    assert resumed.iter_step == [0, 2, 4, 6, 8, 10, 12, 14, 16]


class InlineExecutor:
    """Anything with submit() will do: here, run at once and return a finished future."""

    def __init__(self):
        self.submitted = 0

    def submit(self, fn, *args, **kwargs):
        self.submitted += 1
        f = cf.Future()
        f.set_result(fn(*args, **kwargs))
        return f


def test_any_executor_with_submit(tmp_path):
    ex = InlineExecutor()
    out = run_grid(k_seed_grid(TINY.replace(epochs=1), [1, 3], [0, 1], lockstep=False), cache=tmp_path,
                   executor=ex, progress=False)
    assert ex.submitted == 4 and [h.variants for h in out] == [["k=1"], ["k=1"], ["k=3"], ["k=3"]]
    table = accuracy_table(out, [1, 3], [0, 1])
    assert table.shape == (2, 2)


@pytest.mark.slow
def test_default_process_pool_matches_in_process_run(tmp_path):
    configs = k_seed_grid(TINY.replace(epochs=1), [1, 3], [0, 1])
    pooled = run_grid(configs, cache=tmp_path / "pool", workers=2, progress=False)
    inline = run_grid(configs, cache=tmp_path / "inline", workers=1, progress=False)
    assert [dumps(h) for h in pooled] == [dumps(h) for h in inline]
    assert all(h.settings["threads"] == 1 for h in pooled)


def test_bad_configuration_fails_before_any_cell(tmp_path, count_training):
    configs = [TINY, TINY.replace(model="alexnet")]
    with pytest.raises(ValueError, match="alexnet"):
        run_grid(configs, cache=tmp_path, progress=False)
    assert count_training == [] and not list(tmp_path.glob("*.result"))


def test_default_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("INSTAB_CACHE", str(tmp_path))
    assert G.default_cache() == tmp_path
    monkeypatch.delenv("INSTAB_CACHE")
    assert G.default_cache() == ROOT / "_build" / "cache"



#: The moments of the kill: a random time into the run (mid-epoch or mid-write, wherever it falls),
#: or inside the n-th checkpoint write, after half its bytes reached the disk.
KILL_MOMENTS = [("random", 11), ("random", 12), ("write", 1), ("write", 2)]


@pytest.mark.slow
@pytest.mark.parametrize(("how", "seed"), KILL_MOMENTS)
def test_killed_at_any_moment_resumes_bitwise_equal(tmp_path, how, seed):
    """SIGKILL at a seeded random moment, or in the middle of a checkpoint write; the rerun of the
    cell is bitwise equal to an uninterrupted run's (a torn write is never read back)."""
    config = TINY.replace(epochs=3, variants=ks(1, 3), rel_l1_every=2)
    if how == "random":
        delay = np.random.default_rng(seed).uniform(0.0, 1.0)  # fraction of the run's training time
        hook = f"""
            import threading, time
            t0 = time.monotonic()
            def arm(epoch, history):
                if epoch == 1:  # the first epoch measured how long one takes: die within the next two
                    took = time.monotonic() - t0
                    threading.Timer({delay!r} * 2 * took, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
        """
    else:
        hook = f"""
            import instab.store as S
            real, calls = S.atomic_write, []
            def torn(path, payload):
                calls.append(path)
                if len(calls) == {seed}:  # half of it reaches the file itself (worse than a torn tmp file)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with open(path, "wb") as f:
                        f.write(payload[: len(payload) // 2]); f.flush(); os.fsync(f.fileno())
                    os.kill(os.getpid(), signal.SIGKILL)
                real(path, payload)
            S.atomic_write = torn
            def arm(epoch, history):
                pass
        """
    script = "import os, signal\n" + textwrap.dedent(hook) + textwrap.dedent(f"""
        from instab.grid import run_cell
        from instab.train import RunConfig, Variant
        run_cell({config!r}, {str(tmp_path / "killed")!r}, on_epoch=arm)
        print("finished", flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180)
    result, _ = cell_paths(config, tmp_path / "killed")
    if proc.returncode == 0:  # the random moment fell after the end: nothing to resume, the result stands
        assert how == "random" and "finished" in proc.stdout and result.exists()
    else:
        assert proc.returncode == -9, proc.stderr[-2000:]
    resumed = run_cell(config, tmp_path / "killed")
    assert dumps(resumed) == dumps(run_cell(config, tmp_path / "clean"))


#: For every field of a run's configuration, another allowed value (a new field must be added here).
OTHER_VALUES = {"model": "cnn_bn", "dataset": "cifar10", "variants": ks(1, 5), "epochs": 3, "max_steps": 7,
                "batch_size": 32, "lr": 0.05, "momentum": 0.5, "weight_decay": 1e-4, "nesterov": True,
                "dampening": 0.1, "lr_decay": 0.5, "lr_decay_every": 1, "init_seed": 1, "batch_seed": 1,
                "augment": True, "augment_seed": 1, "train_size": 128, "test_size": 64, "pad_to": 32,
                "activation": "swish", "beta": 2.0, "pool": "avg", "shortcut": "pad", "widths": (4, 16),
                "hidden": (8,), "threads": 2, "device": "cuda", "rel_l1_every": 5, "foreach": False,
                "keep_final": True, "acc_every": 2, "eval_every": 2, "dtype": "float64", "engine": "stacked"}


@pytest.mark.parametrize("field", sorted(OTHER_VALUES))
def test_every_field_of_a_cell_changes_its_key(field):
    import dataclasses

    assert {f.name for f in dataclasses.fields(RunConfig)} == set(OTHER_VALUES)  # no field forgotten
    other = TINY.replace(**{field: OTHER_VALUES[field]})
    assert getattr(other, field) != getattr(TINY, field)
    assert other.key() != TINY.key()
