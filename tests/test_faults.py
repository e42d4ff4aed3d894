"""Faults injected for real: a chapter whose kernel is killed fails alone; the build goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from instab import book


def _kernels_below(pid: int) -> list[int]:
    """ipykernel processes descended from ``pid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "ipykernel_launcher" in cmd:
            p = ppid
            while p > 1:
                if p == pid:
                    out.append(int(d.name))
                    break
                try:
                    p = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    break
    return out


@pytest.mark.book
def test_a_killed_kernel_fails_its_chapter_and_the_next_one_runs(tmp_path: Path) -> None:
    """`execute --chapter heat --chapter heat --force` with the first kernel SIGKILLed: the driver
    names the dead kernel, executes the second, and exits non-zero naming the chapter."""
    env = {**os.environ, "INSTAB_BUILD": str(tmp_path), "INSTAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "instab.book", "execute", "--params", "ci", "--chapter", "heat",
                             "--chapter", "heat", "--force"], env=env, cwd=book.ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        if any("cell 3/" in ln for ln in lines):  # the first kernel is running the chapter
            kernels = _kernels_below(proc.pid)
            if kernels:
                killed = kernels[0]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    proc.wait(timeout=300)
    reader.join(timeout=10)
    out = "".join(lines)
    assert killed is not None, f"no kernel to kill:\n{out[-2000:]}"
    assert "its kernel died or could not start" in out, out[-3000:]
    assert out.count("executed heat (ci)") == 1, out[-3000:]  # the second run went through
    assert proc.returncode != 0 and "1 chapter(s) failed" in out, out[-3000:]


def test_the_cache_record_vouches_for_each_file(tmp_path: Path) -> None:
    from instab.book import sources

    (tmp_path / "c.ipynb").write_text("{}")
    (tmp_path / "results.json").write_text('{"claims": []}')
    assert sources.cache_problem(tmp_path, "c") == "no record of an execution"
    sources.write_stamp(tmp_path, "c", "abc")
    assert sources.cache_problem(tmp_path, "c", "abc") is None
    assert sources.cache_problem(tmp_path, "c", "xyz") == "its source, parameters, instab, lock or environment changed"
    (tmp_path / "results.json").write_text('{"claims": [1]}')  # edited, still valid JSON
    assert "results.json was damaged or edited after it was executed" in sources.cache_problem(tmp_path, "c", "abc")
    assert sources.damaged(tmp_path, "c")
    (tmp_path / "results.json").unlink()
    assert "results.json is missing" in sources.cache_problem(tmp_path, "c", "abc")
    (tmp_path / sources.STAMP).write_text("abc")  # a record of the old kind: no checksums
    assert sources.cache_problem(tmp_path, "c", "abc") == "no record of an execution"


@pytest.mark.book
def test_a_damaged_cached_chapter_is_executed_again(tmp_path: Path) -> None:
    env = {**os.environ, "INSTAB_BUILD": str(tmp_path), "INSTAB_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "instab.book", "execute", "--params", "ci", "--chapter", "heat"]
    first = subprocess.run(cmd, env=env, cwd=book.ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    res = tmp_path / "executed" / "ci" / "heat" / "results.json"
    good = res.read_text()
    res.write_text(good[: len(good) // 2])  # truncated
    again = subprocess.run(cmd, env=env, cwd=book.ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "executing heat (ci) again:" in again.stdout and "was damaged or edited" in again.stdout
    assert json.loads(res.read_text())["claims"] == json.loads(good)["claims"]  # executed again, same bits
    third = subprocess.run(cmd, env=env, cwd=book.ROOT, capture_output=True, text=True)
    assert "skipped heat (ci)" in third.stdout


def test_a_yaml_error_in_a_parameter_file_names_the_file_and_line(tmp_path: Path) -> None:
    from instab.book import sources

    bad = tmp_path / "heat.yml"
    bad.write_text("n_steps: 10\nr_values: [0.4, 0.8\nlength: 3\n")
    with pytest.raises(SystemExit, match=r"heat\.yml, line 3, column \d+: not valid YAML"):
        sources.read_params_file(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(SystemExit, match="a parameter file is a mapping"):
        sources.read_params_file(bad)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.book
def test_a_killed_driver_leaves_no_kernel_and_the_rebuild_is_bitwise_equal(tmp_path: Path) -> None:
    """SIGKILL of the driver while its chapter's kernel computes: the kernel goes with it, and the
    next build executes the chapter again (nothing half-done is trusted) with the same numbers as an
    uninterrupted build."""
    def env(folder: str) -> dict[str, str]:
        return {**os.environ, "INSTAB_BUILD": str(tmp_path / folder), "INSTAB_CACHE": str(tmp_path / folder / "c")}

    cmd = [sys.executable, "-m", "instab.book", "execute", "--params", "ci", "--chapter", "heat"]
    clean = subprocess.run(cmd, env=env("clean"), cwd=book.ROOT, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]
    proc = subprocess.Popen(cmd, env=env("killed"), cwd=book.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    kernels: list[int] = []
    deadline = time.monotonic() + 120
    while not kernels and time.monotonic() < deadline and proc.poll() is None:
        if any("cell 3/" in ln for ln in lines):
            kernels = _kernels_below(proc.pid)
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    assert kernels, "".join(lines)[-2000:]
    gone = time.monotonic() + 15
    while any(_alive(k) for k in kernels) and time.monotonic() < gone:
        time.sleep(0.2)
    left = [k for k in kernels if _alive(k)]
    for k in left:
        os.kill(k, signal.SIGKILL)
    assert not left, f"kernel(s) {left} outlived their killed driver"
    again = subprocess.run(cmd, env=env("killed"), cwd=book.ROOT, capture_output=True, text=True)
    assert again.returncode == 0 and "skipped heat" not in again.stdout, again.stdout[-2000:]

    def numbers(folder: str) -> tuple:
        r = json.loads((tmp_path / folder / "executed" / "ci" / "heat" / "results.json").read_text())
        return r["claims"], r["values"]

    assert numbers("killed") == numbers("clean")
    # the build folder made read-only (every write under it refused, as for a non-root user): an
    # up-to-date chapter is skipped without touching it
    readonly = textwrap.dedent(f"""
        import builtins, os, pathlib, sys
        root = {str(tmp_path / "killed")!r}
        def refuse(name, real):
            def f(path, *a, **k):
                if os.path.abspath(str(path)).startswith(root):
                    raise PermissionError(13, "Read-only build folder (" + name + ")", str(path))
                return real(path, *a, **k)
            return f
        for name in ("unlink", "write_text", "write_bytes", "mkdir", "touch", "rename", "replace"):
            setattr(pathlib.Path, name, refuse(name, getattr(pathlib.Path, name)))
        for name in ("replace", "remove", "unlink"):
            setattr(os, name, refuse(name, getattr(os, name)))
        real_open = builtins.open
        builtins.open = lambda f, mode="r", *a, **k: (refuse("open", real_open) if any(c in mode for c in "wax+")
                                                      else real_open)(f, mode, *a, **k)
        from instab.book.cli import main
        main(["execute", "--params", "ci", "--chapter", "heat"])
    """)
    ro = subprocess.run([sys.executable, "-c", readonly], env=env("killed"), cwd=book.ROOT, capture_output=True,
                        text=True)
    assert ro.returncode == 0 and "skipped heat (ci)" in ro.stdout, ro.stdout[-2000:] + ro.stderr[-2000:]
