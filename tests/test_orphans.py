"""A killed grid leaves no process behind: its pool workers (and the resource tracker they share
with it) end with it, instead of finishing their cells and idling until killed by hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CELL = '''
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Sleepy:
    """A grid cell that takes long enough to be killed in the middle of it."""

    n: int

    def key(self) -> str:
        return f"sleepy-{self.n}"

    def validate(self) -> "Sleepy":
        return self

    def to_dict(self) -> dict:
        return {"n": self.n}

    def compute(self, checkpoint=None, **kwargs) -> int:
        time.sleep(120)
        return self.n
'''


def _children_of(pid: int) -> list[int]:
    """Processes (all descendants) started by ``pid``, by walking /proc's parent links."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in found}
        found |= frontier
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_sigkilled_two_worker_grid_leaves_no_process(tmp_path: Path) -> None:
    (tmp_path / "sleepy_cell.py").write_text(CELL)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from sleepy_cell import Sleepy
        from instab.grid import run_grid
        run_grid([Sleepy(0), Sleepy(1)], cache={str(tmp_path / "cache")!r}, executor="local", workers=2,
                 progress=False)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), str(tmp_path)])}
    env.pop("INSTAB_EXECUTOR", None)
    grid = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline:  # the resource tracker and two workers
            workers = _children_of(grid.pid)
            if len(workers) >= 3:
                break
            time.sleep(0.2)
        assert len(workers) >= 3, f"the grid did not start its two workers: children {workers}"
        time.sleep(1.0)  # the workers are inside their cells
    finally:
        os.kill(grid.pid, signal.SIGKILL)
        grid.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes left behind by the killed grid: {left}"
