"""The growth controller's cost over plain SGD, measured in this run: one cell of the
open-questions chapter's grid (its ci parameters, seed 0) trained by plain SGD and by the growth
controller, interleaved, the median of ``--repeats`` wall times each.  The cost is the controller's
whole run (the reference's steps plus its shadow run) over plain SGD's run, both with the
reference alone (k = 1).  (The curvature cap runs at the edge of full-batch GD, where its Lanczos
estimate at every iteration is most of the work: ``EdgeRun`` records its seconds.)
A timing is no result a rerun reproduces bit for bit, so the chapter quotes none; this prints the
ratios on its last line.

    python benchmarks/bench_controllers.py [--params ci|default] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from instab.book import sources
from instab.controllers import track
from instab.studies import open_questions as study
from instab.train import Variant


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="ci", choices=["ci", "default"])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    p = study.Params.from_namespace(sources.chapter_parameters("open_questions", a.params)).validate()
    plan = study.plan(p)
    cells = {name: dataclasses.replace(plan.grid[name][0], variants=(Variant(1),)) for name in ("none", "growth")}
    seconds: dict[str, list[float]] = {name: [] for name in cells}
    for _ in range(a.repeats):
        for name, cfg in cells.items():  # interleaved: a slow moment of the machine hits every one
            t0 = time.perf_counter()
            track(cfg)
            seconds[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(s) for name, s in seconds.items()}
    for name, s in seconds.items():
        print(f"{name:8s} median {median[name]:.3f} s over {len(s)} runs ({', '.join(f'{x:.3f}' for x in s)})")
    ratios = {name: median[name] / median["none"] for name in cells if name != "none"}
    print("cost over plain SGD (same run): " + ", ".join(f"{n} ×{r:.2f}" for n, r in ratios.items()))
    return ratios


if __name__ == "__main__":
    main()
