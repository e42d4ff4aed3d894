"""Faults injected for real: a chapter whose kernel is killed fails alone; the build goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
