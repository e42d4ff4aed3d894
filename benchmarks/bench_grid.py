"""The k × seed grid's engine against a plain PyTorch loop of the same runs (paper Tables 1, 4, 5).

The Table 1 grid network of the book (MLP 784-64-32-10, ReLU, batch 128, Fashion-MNIST subset)
is trained as ``len(k) × len(seeds)`` runs of the same number of iterations, three ways, in one
process, interleaved, the median of the repeats:

- **plain PyTorch**: each run on its own — one model, ``torch.optim.SGD``, forward / backward /
  step over the run's batches, nothing else (no test pass, no RelL1, no perturbation);
- **grid engine** (``engine="stacked"``, what the chapter's grids run): one lockstep cell per seed
  through :func:`instab.train.train`, all k of the seed as one stacked computation, with everything
  the grid records (RelL1 between the runs after every epoch, test accuracy and predictions after
  the last: ``eval_every = epochs``, as the chapter's grids run);
- for reference, ``engine="loop"``: the same cells with the variants stepped one after another.

The last line is ``grid engine speed: X.XX of plain PyTorch`` (plain time / grid-engine time;
above 1 the engine is faster).

    python benchmarks/bench_grid.py [--ks 16] [--seeds 2] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from instab import determinism
from instab.data import Loader
from instab.models import build_model
from instab.studies.sgd_variance import k_seed_grid
from instab.train import RunConfig, Variant, cross_entropy, load_data, train


def plain_runs(cells: list[RunConfig]) -> None:
    """Every run of the grid on its own: what one would write by hand."""
    data = load_data(cells[0])
    base = build_model("mlp", in_channels=data.in_channels, num_classes=data.num_classes,
                       activation=cells[0].activation, input_size=data.input_size, hidden=cells[0].hidden,
                       seed=cells[0].init_seed)
    for cell in cells:
        loader = Loader(data.x_train, data.y_train, cell.batch_size, seed=cell.batch_seed)
        for _ in cell.variants:
            model = copy.deepcopy(base)
            opt = torch.optim.SGD(model.parameters(), lr=cell.lr, momentum=cell.momentum,
                                  weight_decay=cell.weight_decay)
            for epoch in range(cell.epochs or 1):
                for xb, yb in loader.epoch(epoch):
                    opt.zero_grad(set_to_none=True)
                    cross_entropy(model(xb), yb).backward()
                    opt.step()


def engine_runs(cells: list[RunConfig]) -> None:
    for cell in cells:
        train(cell)


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ks", type=int, default=16, help="k values per seed (odd k from 1)")
    ap.add_argument("--seeds", type=int, default=2, help="batch-order seeds")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-size", type=int, default=5000)
    ap.add_argument("--test-size", type=int, default=10000)
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    determinism.configure(1)
    base = RunConfig(model="mlp", hidden=(64, 32), activation=a.activation, epochs=a.epochs, lr_decay_every=20,
                     train_size=a.train_size, test_size=a.test_size, variants=(Variant(1),), eval_every=a.epochs)
    ks = list(range(1, 2 * a.ks, 2))
    cells = {"grid engine": k_seed_grid(base.replace(engine="stacked"), ks, range(a.seeds)),
             "loop engine": k_seed_grid(base, ks, range(a.seeds))}
    load_data(base)  # read the files once, outside the timings
    iterations = a.epochs * -(-a.train_size // base.batch_size)
    print(f"MLP 784-64-32-10 ({a.activation}), {len(ks)} k × {a.seeds} seeds = {len(ks) * a.seeds} runs × "
          f"{iterations} iterations, batch {base.batch_size}, 1 thread; median of {a.repeats}")
    times: dict[str, list[float]] = {"plain PyTorch": [], "grid engine": [], "loop engine": []}
    jobs = {"plain PyTorch": lambda: plain_runs(cells["loop engine"]),
            "grid engine": lambda: engine_runs(cells["grid engine"]),
            "loop engine": lambda: engine_runs(cells["loop engine"])}
    jobs["grid engine"]()  # warm-up (allocator, first-call paths), not timed
    for _ in range(a.repeats):
        for name, job in jobs.items():
            t0 = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    runs_its = len(ks) * a.seeds * iterations
    for name, t in med.items():
        print(f"{name:14s} {t:7.2f} s   {1e6 * t / runs_its:7.1f} µs per run-iteration   "
              f"(repeats {', '.join(f'{x:.2f}' for x in times[name])})")
    print(f"loop engine speed: {med['plain PyTorch'] / med['loop engine']:.2f} of plain PyTorch")
    speed = med["plain PyTorch"] / med["grid engine"]
    print(f"grid engine speed: {speed:.2f} of plain PyTorch")
    return speed


if __name__ == "__main__":
    main()
