"""Faults injected for real: a chapter whose kernel is killed fails alone; the build goes on."""

from __future__ import annotations

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
