"""Archived measurements: k × seed grids too long for `make book` (conv nets on the CPU, a GPU
session), run once and stored in ``book/measured/<name>.json`` with their provenance; the book
recomputes every statistic and verdict from the stored matrix at build time.

- :data:`SPECS` — the grids, from ``book/measured/specs.yml`` (configuration, k values, seeds).
- :func:`run` — train one grid (resumable: cells are cached by the grid runner) and write its
  archive: the k × seed matrix of final test accuracies (%), the final RelL1 of every k against
  k = 1, the exact configuration, the command, CPU, versions, determinism settings, the commit, the
  training time (one core per cell, summed; ``wall_seconds``: the last invocation, which may have
  resumed cached cells), and a SHA-256 of the content (:func:`digest`).
- :func:`load` — read an archive and check its SHA-256 (an edited matrix fails here).
- :func:`check` — run the grid again and compare the matrix with the archive, bit for bit.
- :func:`spreads` / :func:`conv_claims` — the statistics and the Table 5 rule on the archives.

``python -m instab.studies.measured run NAME`` writes an archive; ``check NAME`` reproduces it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from instab import paths
from instab.report import Claim
from instab.studies import sgd_variance
from instab.studies.sgd import config, grid_base, network_name, run_plan
from instab.train import RunConfig

__all__ = ["FOLDER", "SPECS", "specs", "plan", "run", "load", "check", "digest", "spreads", "conv_claims",
           "provenance_line", "rows_value", "archives", "ArchiveError"]

#: Where the archives live (committed with the book).
FOLDER = paths.ROOT / "book" / "measured"
SPECS = FOLDER / "specs.yml"


class ArchiveError(ValueError):
    """An archive that is missing, malformed, or whose SHA-256 does not match its content."""


def specs(path: Path = SPECS) -> dict[str, dict[str, Any]]:
    """The grids by name: ``base`` (RunConfig fields), ``k_values``, ``seeds``."""
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict) or not raw:
        raise ArchiveError(f"{path}: expected a mapping of grid names to specs")
    for name, s in raw.items():
        missing = {"base", "k_values", "seeds"} - set(s)
        if missing:
            raise ArchiveError(f"{path}: grid {name!r} lacks {sorted(missing)}")
    return raw


def plan(name: str, spec: Mapping[str, Any]) -> list[RunConfig]:
    """The grid's cells: one per seed, every k trained in lockstep (initialisation fixed), on the
    loop engine for conv nets (:func:`instab.studies.sgd.grid_base`)."""
    base = grid_base(config({}, spec["base"], f"measured grid {name!r}"), spec["base"])
    return sgd_variance.k_seed_grid(base, spec["k_values"], spec["seeds"])


class _Plan:
    def __init__(self, cells: list[RunConfig]) -> None:
        self.cells = cells

    def configs(self) -> list[RunConfig]:
        return self.cells


def digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of an archive's content (every field but ``sha256``), as canonical JSON."""
    body = {k: v for k, v in content.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measure(name: str, spec: Mapping[str, Any], workers: int, cache: str | Path | None = None) -> dict[str, Any]:
    """Train grid ``name`` and return its archive content (without writing it); ``cache``: the grid
    runner's cache folder (default: the build's, so an interrupted run resumes)."""
    from instab import determinism

    cells = plan(name, spec)
    t0 = time.perf_counter()
    runs = run_plan(_Plan(cells), workers=workers, cache=cache)
    wall = time.perf_counter() - t0
    hist = [runs[c] for c in cells]
    acc = 100 * sgd_variance.accuracy_table(hist, spec["k_values"], spec["seeds"])
    rel = [[float(h.iter_rel_l1[v][-1]) if h.iter_rel_l1.get(v) else float("nan") for v in h.variants]
           for h in hist]
    return {"name": name, "network": network_name(cells[0]), "k_values": list(spec["k_values"]),
            "seeds": list(spec["seeds"]), "accuracy": acc.tolist(), "final_rel_l1": np.array(rel).T.tolist(),
            "config": cells[0].replace(batch_seed=0).to_dict(),
            "command": f"python -m instab.studies.measured run {name} --workers {workers}",
            "cpu": _cpu(), "machine": platform.machine(), "environment": determinism.environment(),
            "settings": determinism.settings(), "commit": _commit(), "wall_seconds": round(wall, 1),
            "train_seconds": round(sum(h.seconds for h in hist), 1),
            "measured": time.strftime("%Y-%m-%d", time.gmtime())}


def run(name: str, workers: int = 2, folder: Path = FOLDER) -> Path:
    """Measure grid ``name`` (:data:`SPECS`) and write ``<folder>/<name>.json`` with its SHA-256."""
    every = specs(folder / "specs.yml")
    if name not in every:
        raise ArchiveError(f"grid {name!r} is not in {folder / 'specs.yml'}; choose one of {sorted(every)}")
    content = measure(name, every[name], workers)
    content["sha256"] = digest(content)
    out = folder / f"{name}.json"
    out.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
    return out


def load(path: str | Path) -> dict[str, Any]:
    """An archive, its SHA-256 checked: ``ArchiveError`` names the file if it is not valid JSON,
    lacks a field, or its content does not match its checksum (an edited matrix)."""
    p = Path(path)
    try:
        content = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ArchiveError(f"{p}: not a readable archive ({e})") from None
    missing = {"accuracy", "k_values", "seeds", "sha256", "cpu", "command", "measured"} - set(content)
    if missing:
        raise ArchiveError(f"{p}: lacks {sorted(missing)}")
    if digest(content) != content["sha256"]:
        raise ArchiveError(f"{p}: its content does not match its SHA-256 (edited after it was measured?)")
    acc = np.asarray(content["accuracy"], float)
    if acc.shape != (len(content["k_values"]), len(content["seeds"])):
        raise ArchiveError(f"{p}: the accuracy matrix is {acc.shape}, not k × seeds")
    return content


def archives(folder: Path = FOLDER) -> dict[str, dict[str, Any]]:
    """Every archive of ``folder`` by name, each checked (:func:`load`)."""
    return {p.stem: load(p) for p in sorted(folder.glob("*.json"))}


def check(name: str, workers: int = 2, folder: Path = FOLDER) -> bool:
    """Run grid ``name`` again and compare its matrix with the archive, bit for bit (the same CPU
    model and floating-point environment are needed for that; another one draws another grid)."""
    import tempfile

    stored = load(folder / f"{name}.json")
    with tempfile.TemporaryDirectory(prefix="instab-check-") as fresh_cache:  # train again, never reuse a cell
        fresh = measure(name, specs(folder / "specs.yml")[name], workers, cache=fresh_cache)
    same = fresh["accuracy"] == stored["accuracy"]
    print(f"{name}: {'the same matrix, bit for bit' if same else 'a different matrix'} (archive from "
          f"{stored['cpu']}, {stored['measured']}; this machine {fresh['cpu']})")
    return same


def spreads(found: Mapping[str, Mapping[str, Any]]) -> dict[str, sgd_variance.Grid]:
    """Per archive, :func:`instab.studies.sgd_variance.grid` of its matrix (diverged runs counted,
    the STD ratio with its interval)."""
    return {name: sgd_variance.grid(np.asarray(a["accuracy"], float)) for name, a in found.items()}


def paper_rows(found: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The archives in the setting of a row of the paper's Table 5: a conv net with BatchNorm on
    Fashion-MNIST with Swish ("The Swish activation is used"; its row VGG16-BN / Fashion-MNIST).
    The others (ReLU) are ours."""
    return [name for name, a in found.items() if a["config"]["activation"] == "swish"
            and a["config"]["dataset"] == "fashion_mnist" and a["config"]["model"].endswith("_bn")]


def conv_claims(grids: Mapping[str, sgd_variance.Grid], band: Sequence[float], paper: Sequence[str] = (),
                shown_in: str = "sec-sgd-conv") -> list[Claim]:
    """Table 5's "greater or similar" for each archived conv-net grid, by the rule of the Table 5
    rows (:func:`instab.studies.sgd_variance.ratio_claims`), named ``conv: <grid>: …``: a row of the
    paper's Table 5 for the grids in ``paper`` (:func:`paper_rows`), ours for the others."""
    claims = sgd_variance.ratio_claims({f"conv: {n}": g.spread for n, g in grids.items()}, band, {},
                                       [f"conv: {n}" for n in paper], shown_in=shown_in)
    for c in claims:
        c.name = c.name.replace("Table 5 row conv: ", "conv: ")
    return claims


def rows_value(found: Mapping[str, Mapping[str, Any]], grids: Mapping[str, sgd_variance.Grid]) -> dict[str, Any]:
    """The archived rows for the results: ratio, interval, where and when measured."""
    return {name: {"ratio": g.spread.ratio, "ratio_ci95": list(g.spread.ratio_interval),
                   "cpu": found[name]["cpu"], "measured": found[name]["measured"], "sha256": found[name]["sha256"]}
            for name, g in grids.items()}


def provenance_line(a: Mapping[str, Any]) -> str:
    """Where and when an archive was measured, and how to reproduce it."""
    env = a.get("environment", {})
    return (f"{a['name']} ({a.get('network', '?')}): {len(a['k_values'])} k × {len(a['seeds'])} seeds, measured "
            f"{a['measured']} on {a['cpu']} (torch {env.get('torch', '?')}, {env.get('threads', '?')} thread, "
            f"environment {env.get('name', '?')}), commit {a.get('commit', '?')[:10]}, "
            f"{a.get('train_seconds', 0):.0f} s of training on one core per cell; "
            f"reproduce: `{a['command']}`, check: `python -m instab.studies.measured check {a['name']}`")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instab.studies.measured", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["run", "check", "list"])
    ap.add_argument("names", nargs="*", help="grids of book/measured/specs.yml (default: every one)")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    if a.workers < 1:
        ap.error(f"--workers={a.workers} is not allowed; it must be a positive integer")
    every = specs()
    unknown = [n for n in a.names if n not in every]
    if unknown:
        ap.error(f"grid {unknown[0]!r} is not in {SPECS}; choose from {sorted(every)}")
    from instab import determinism

    determinism.configure(threads=1)
    names = a.names or sorted(every)
    if a.action == "list":
        for n in names:
            print(n, every[n])
        return 0
    if a.action == "run":
        for n in names:
            print(f"wrote {run(n, a.workers)}")
        return 0
    return 0 if all([check(n, a.workers) for n in names]) else 1


if __name__ == "__main__":
    sys.exit(main())
