"""The book driver goes on past a failing chapter and names what failed (no chapter is executed here)."""

import json
import os
import sys

import pytest

from instab import book


def test_execute_all_goes_on_past_a_failing_chapter(monkeypatch):
    ran = []

    def fake(chapter, scale, force=False, settings=None):
        ran.append(chapter)
        if chapter == "b":
            raise book.ChapterFailed("chapter 'b' (ci) failed in cell 3: AssertionError")
        return True

    monkeypatch.setattr(book.execution, "execute", fake)
    assert book.execute_all(["a", "b", "c"], "ci") == ["b"]
    assert ran == ["a", "b", "c"]


def test_failures_name_the_failed_claims(tmp_path, monkeypatch):
    monkeypatch.setattr(book.sources, "out_dir", lambda c, scale, env="native": tmp_path / c)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps({"claims": [
        {"name": "threshold", "ok": False}, {"name": "growth", "ok": True}]}))
    text = book.failures(["a", "b"], "ci")
    assert "a: stopped before writing results.json" in text and "b: claim not sane: threshold" in text
    assert "growth" not in text


def test_build_roots_keep_the_native_build_apart(tmp_path, monkeypatch):
    from instab import paths

    assert book.build_root("native") == paths.build_root()
    assert book.out_dir("heat", "ci", "avx2") == paths.build_root() / "robust" / "avx2" / "executed" / "ci" / "heat"
    monkeypatch.setenv("INSTAB_BUILD", str(tmp_path))  # read at each call, not frozen at import
    assert book.build_root() == tmp_path and book.build_root("avx2") == tmp_path / "robust" / "avx2"
    assert book.build_root("avx2", tmp_path / "b") == tmp_path / "b" / "robust" / "avx2"


def test_settings_are_resolved_once_and_exported_for_the_kernels(tmp_path, monkeypatch):
    from instab.determinism import FP_VARS, environment_vars

    monkeypatch.setenv("INSTAB_BUILD", str(tmp_path))
    monkeypatch.setenv("INSTAB_CACHE", str(tmp_path / "cells"))
    monkeypatch.setenv("INSTAB_EXECUTOR", "dask-local")
    native = book.Settings.resolve()
    assert (native.build, native.cache, native.executor, native.env) == (tmp_path, tmp_path / "cells", "dask-local",
                                                                        "native")
    avx2 = book.Settings.resolve("avx2", timeout="60")
    assert avx2.cache == tmp_path / "robust" / "avx2" / "cache" and avx2.root() == tmp_path / "robust" / "avx2"
    assert avx2.root("native") == tmp_path
    gone = (*FP_VARS, "IPYTHONDIR", book.TIMEOUT_VAR)
    # export writes into a copy: the process's own environment (which later tests and the workers
    # and kernels they start inherit) is untouched
    monkeypatch.setattr(book.settings.os, "environ", {k: v for k, v in os.environ.items() if k not in gone})
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as before torch is imported; restored after
    avx2.export(kernels=True)
    assert {v: book.settings.os.environ.get(v, "") for v in FP_VARS} == environment_vars("avx2")
    assert book.settings.os.environ["INSTAB_CACHE"] == str(tmp_path / "robust" / "avx2" / "cache")
    assert book.settings.os.environ["IPYTHONDIR"] == str(tmp_path / "robust" / "avx2" / "ipython")
    assert book.settings.os.environ[book.TIMEOUT_VAR] == "60"


def test_bad_environment_is_named():
    with pytest.raises(SystemExit):
        book.main(["robust", "--env", "fast"])


def test_a_chapter_key_covers_the_modules_it_imports_and_not_the_driver():
    from instab import store

    for name in book.chapters():
        mods = store.module_closure(book.chapter_modules((book.ROOT / "book" / f"{name}.md").read_text()))
        assert "instab.report" in mods and "instab.book" not in mods
    pde = store.module_closure(book.chapter_modules((book.ROOT / "book" / "heat.md").read_text()))
    assert not any(m in pde for m in ("instab.train", "instab.optim", "instab.models"))  # no torch training


def test_the_reader_sees_one_progress_bar_and_no_parameter_code():
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [], "source": "x = 1"},
                    {"cell_type": "code", "metadata": {}, "source": "run()", "outputs": [
                        {"output_type": "stream", "name": "stderr", "text": "\rcells:   0%| 0/2"},
                        {"output_type": "stream", "name": "stderr", "text": "\rcells:  50%| 1/2"},
                        {"output_type": "stream", "name": "stderr", "text": "\rcells: 100%| 2/2\n"},
                        {"output_type": "stream", "name": "stdout", "text": "done\n"},
                        {"output_type": "stream", "name": "stderr", "text": "\n"}]}]}
    out = json.loads(book.for_reader(json.dumps(nb)))
    assert "hide-input" in out["cells"][0]["metadata"]["tags"]
    streams = out["cells"][1]["outputs"]
    assert [(o["name"], o["text"]) for o in streams] == [("stderr", "cells: 100%| 2/2\n"), ("stdout", "done\n")]


def test_the_lock_file_is_in_the_chapter_key(tmp_path, monkeypatch):
    from instab import lockfile, paths

    lock = tmp_path / "lock.txt"
    monkeypatch.setattr(paths, "LOCK", lock)
    lock.write_text("numpy==2.4.6 \\\n    --hash=sha256:aaaa\n")
    first = book.content_hash("heat", "ci")
    assert book.content_hash("heat", "ci") == first  # a key, not a timestamp
    lock.write_text("numpy==2.4.7 \\\n    --hash=sha256:bbbb\n")
    assert book.content_hash("heat", "ci") != first
    lock.unlink()  # an installed copy of the package has no lock: a stable marker stands in
    assert lockfile.digest() == lockfile.NO_LOCK
    missing = book.content_hash("heat", "ci")
    assert missing not in (first, book.content_hash("heat", "default")) and book.content_hash("heat", "ci") == missing


def test_execution_timeout_per_scale_and_its_override():
    assert book.execution_timeout("ci", {}) == 600
    assert book.execution_timeout("default", {}) == 1800
    assert book.execution_timeout("paper", {}) is None
    assert all(book.execution_timeout(s, {}) == book.EXECUTION_TIMEOUTS[s] for s in book.SCALES)
    var = book.TIMEOUT_VAR
    assert book.execution_timeout("paper", {var: "120"}) == 120
    assert book.execution_timeout("ci", {var: " 0 "}) is None and book.execution_timeout("ci", {var: "None"}) is None
    assert book.execution_timeout("ci", {var: ""}) == 600  # set but empty: the scale's
    for bad in ("-5", "1.5", "ten"):
        with pytest.raises(SystemExit, match=var):
            book.execution_timeout("ci", {var: bad})


def test_a_bad_timeout_fails_before_any_work(monkeypatch):
    monkeypatch.setenv(book.TIMEOUT_VAR, "")  # main() sets it for the chapters' processes: undone after
    monkeypatch.setattr(book.execution, "execute_all", lambda *a, **k: pytest.fail("executed with a bad timeout"))
    with pytest.raises(SystemExit, match="not a whole number of seconds"):
        book.main(["execute", "--params", "ci", "--chapter", "heat", "--timeout", "soon"])


def test_a_bad_engine_in_the_environment_fails_before_any_work(monkeypatch, capsys):
    monkeypatch.setenv("INSTAB_EXECUTOR", "slurm-locale")
    monkeypatch.setattr(book.execution, "execute_all", lambda *a, **k: pytest.fail("executed with a bad engine"))
    with pytest.raises(SystemExit):
        book.main(["execute", "--params", "ci", "--chapter", "heat"])
    assert "INSTAB_EXECUTOR='slurm-locale' is not allowed" in capsys.readouterr().err


def test_papermill_runs_a_chapter_with_the_shared_values_it_takes(monkeypatch, tmp_path):
    import papermill

    from instab.book import sources

    seen = {}
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, out, parameters=None, **k: seen.update(parameters))
    nb = {"cells": []}
    book.execution.run_papermill("sgd_growth", "ci", tmp_path / "in.ipynb", tmp_path, nb)
    shared = sources.read_params_file(sources.shared_file("ci"))["common"]
    assert seen["common"] == shared and seen["members"] == book.chapter_parameters("sgd_growth", "ci")["members"]


def test_papermill_injects_its_cell_after_the_parameters_cell():
    nb = {"cells": [{"cell_type": "markdown", "source": "# Title"},
                    {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "n = 1\nm = 2"},
                    {"cell_type": "code", "metadata": {}, "source": ["\n", "run(n)\n", "plot()"]}]}
    assert book.cells_as_run(nb, injected=False) == [("markdown", "# Title"), ("code", "n = 1"), ("code", "run(n)")]
    assert book.cells_as_run(nb, injected=True)[2] == ("code", "# Parameters (injected by papermill)")


def test_progress_shows_cells_lines_and_a_bar_at_most_every_so_often():
    import logging

    now = [0.0]
    lines: list[str] = []
    cells = [("markdown", "# Title"), ("code", "n = 1"), ("code", "runs = study.run(plan)      # all runs")]
    progress = book.ChapterProgress("sgd (ci)", cells, every=10.0, clock=lambda: now[0], write=lines.append)
    out, err = progress.stream("stdout"), progress.stream("stderr")

    def log(msg: str, level: int = logging.INFO, func: str = "cell_start") -> None:
        progress.handle(logging.LogRecord("papermill", level, __file__, 1, msg, None, None, func))

    log("Executing Cell 1---------")  # markdown: no line
    now[0] = 3.0
    log("Executing Cell 3---------")
    assert lines == ["sgd (ci): cell 2/2: runs = study.run(plan) # all runs (at 3 s)"]
    assert progress.where == "cell 2/2: runs = study.run(plan) # all runs"
    lines.clear()
    err.write("\rruns:   0%| 0/54")  # a progress bar: its first state at once,
    err.write("\rruns:   2%| 1/54")  # then at most every 10 s
    now[0] = 14.0
    err.write("\rruns:  50%| 27/54")
    out.write("54 cells in 11 s\n")  # stdout: its own lines, at once
    log("54 cells in 11 s\n", func="log_output_message")  # the same output, logged: not shown twice
    err.write("\rruns: 100%| 54/54")
    err.write("\n")  # the bar ends: its last state, once
    log("Passed unknown parameter: nsteps", logging.WARNING, func="execute_notebook")
    log("Ending Cell 3------")
    assert lines == ["sgd (ci) | runs:   0%| 0/54", "sgd (ci) | runs:  50%| 27/54", "sgd (ci) | 54 cells in 11 s",
                     "sgd (ci) | runs: 100%| 54/54", "sgd (ci): papermill: Passed unknown parameter: nsteps"]
    lines.clear()
    err.write("\rrest: 1/2")
    err.write("\rrest: 2/2")
    progress.finish()  # the chapter stopped mid-line: its last state is shown
    assert lines == ["sgd (ci) | rest: 1/2", "sgd (ci) | rest: 2/2"]


def test_the_book_points_its_buttons_at_the_repository():
    assert book.web_url("git@github.com:someone/instab.git\n") == "https://github.com/someone/instab"
    assert book.web_url("https://github.com/someone/instab") == "https://github.com/someone/instab"
    assert book.web_url("https://gitlab.com/a/b.git") == "https://gitlab.com/a/b"
    assert book.web_url("/srv/git/instab.git") is None and book.web_url("") is None
    config = {"repository": {"path_to_book": "", "branch": "main"}, "launch_buttons": {"binderhub_url": "x"},
              "html": {"use_repository_button": True}}
    assert book.repository_url(config, {book.REPOSITORY_VAR: "https://github.com/a/b/"}) == "https://github.com/a/b"
    assert book.repository_url({"repository": {"url": "https://github.com/c/d"}}, {}) == "https://github.com/c/d"
    staged = book.book_config(config, "https://github.com/a/b")
    assert staged["repository"] == {"path_to_book": "", "branch": "main", "url": "https://github.com/a/b"}
    assert staged["launch_buttons"] == {"binderhub_url": "x"} and "url" not in config["repository"]
    bare = book.book_config(config, None)  # no URL: no buttons that need one (jupyter-book would refuse)
    assert "launch_buttons" not in bare and bare["html"]["use_repository_button"] is False


def test_the_configured_launch_buttons_open_notebooks_binder_makes():
    import yaml

    config = yaml.safe_load((book.ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["binderhub_url"] and config["repository"]["path_to_book"] == ""
    post_build = book.ROOT / ".binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, ".binder/postBuild must be executable"
    text = post_build.read_text()
    # the staged pages are book/<chapter>.ipynb: postBuild writes them from book/<chapter>.md
    assert "python -m instab.book list" in text and 'jupytext --to ipynb "book/${chapter}.md"' in text
    assert all((book.ROOT / "book" / f"{c}.md").exists() for c in book.chapters())


def test_execute_all_names_the_chapters_it_executed(monkeypatch):
    monkeypatch.setattr(book.execution, "execute", lambda chapter, scale, force=False, settings=None: chapter != "b")
    executed: set[str] = set()
    assert book.execute_all(["a", "b", "c"], "ci", executed=executed) == []
    assert executed == {"a", "c"}  # b came from the cache


def test_run_packed_never_oversubscribes_and_fills_a_free_core():
    """Chapters run side by side while their worker processes fit in the cores: a two-worker
    chapter waits for both; a one-worker chapter further down the queue takes a free core."""
    import threading
    import time

    from instab.book.execution import run_packed

    demands = {"grid": 2, "pde1": 1, "grid2": 2, "pde2": 1, "pde3": 1}
    lock, busy, peak, started = threading.Lock(), [0], [0], []

    def fake(chapter):
        with lock:
            busy[0] += demands[chapter]
            peak[0] = max(peak[0], busy[0])
            started.append(chapter)
        time.sleep(0.05 if chapter != "pde1" else 0.2)
        with lock:
            busy[0] -= demands[chapter]
        if chapter == "pde2":
            raise RuntimeError("boom")
        return 0 if chapter != "grid2" else 1

    codes = run_packed(["pde1", "grid", "grid2", "pde2", "pde3"], demands, 2, fake)
    assert peak[0] == 2
    assert started[:2] == ["pde1", "pde2"]  # grid does not fit beside pde1: pde2 fills the free core
    assert codes == {"pde1": 0, "grid": 0, "grid2": 1, "pde2": 1, "pde3": 0}
    assert set(started) == set(demands)


def test_schedule_longest_first_and_demand_from_the_parameters(monkeypatch):
    from instab.book.execution import demand, schedule

    assert schedule(["a", "b", "c", "d"], {"a": 5.0, "b": None, "c": 50.0, "d": None}) == ["b", "d", "c", "a"]
    values = {"g": {"workers": 2}, "p": {}, "one": {"workers": 1}, "far": {"workers": 8, "executor": "slurm"}}
    monkeypatch.setattr(book.sources, "chapter_parameters", lambda c, scale: values[c])
    assert [demand(c, "default", 2, None) for c in values] == [2, 1, 1, 1]
    assert demand("g", "default", 1, "local") == 1  # never more than the cores
    assert demand("g", "default", 2, "dask-local") == 1  # its cells run on the build's engine's workers
    # the chapters' own parameters: the grid chapters keep two workers busy at the default scale
    monkeypatch.undo()
    assert demand("sgd_variance", "default", 2, None) == 2 and demand("linear", "default", 2, None) == 1


def test_driver_gives_kernels_the_allocator_settings(monkeypatch, capsys):
    """The chapters' kernels inherit glibc settings that keep freed memory in the heap (the PDE
    chapters spent most of their time faulting their per-step arrays in again); a user's own
    setting is kept."""
    from instab.book.settings import MALLOC

    for var in MALLOC:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")
    book.main(["list"])
    assert book.settings.os.environ["MALLOC_MMAP_THRESHOLD_"] == MALLOC["MALLOC_MMAP_THRESHOLD_"]
    assert book.settings.os.environ["MALLOC_TRIM_THRESHOLD_"] == "12345"
