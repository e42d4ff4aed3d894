"""The k × seed grid's stacked engine against the best alternative a user would write (paper
Tables 1, 4, 5).

For each network — the Table 1 grid MLP (784-64-32-10, ReLU) and the small conv nets the
chapters train (ResNet-8; CNN + BatchNorm) — V variants of one run are trained on the same
batches of Fashion-MNIST, batch 128, 1 thread, **training steps only** (no test pass, no RelL1:
equal work for every contender), three ways, interleaved (the order alternates from repeat to
repeat), after one untimed warm-up each, the median of the repeats:

- **plain PyTorch, written well**: each variant on its own — one model, ``F.cross_entropy``,
  ``torch.optim.SGD(fused=True)`` (the fastest path of torch's SGD on this machine), forward /
  backward / step;
- **vmap ensemble**: the V variants as one ``torch.func`` computation written the obvious way
  (``stack_module_state`` + ``functional_call`` + ``vmap``, ``F.cross_entropy`` per variant, one
  ``torch.optim.SGD(foreach=True)`` on the stacked parameters);
- **grid engine**: :class:`instab.batched.StackedEngine` (``engine="stacked"``), the engine the grids
  run, with the perturbed update of k = 1, 3, 5, … (the baselines take SGD's plain update).

Per network it prints each contender's µs per run-iteration and the engine's speed against the
faster baseline; the last line is ``grid engine speed: X.XX of the best baseline`` for the network
where the engine fares worst.

    python benchmarks/bench_grid.py [--variants 16 8 8] [--iterations 40 10 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from instab import determinism
from instab.batched import StackedEngine
from instab.data import Loader
from instab.train import RunConfig, ks, load_data

NETWORKS = {"MLP 784-64-32-10": dict(model="mlp", hidden=(64, 32)),
            "ResNet-8": dict(model="resnet8"),
            "CNN + BN (16, 32)": dict(model="cnn_bn", widths=(16, 32))}


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for the record."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def batches(config: RunConfig, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = load_data(config)
    loader = Loader(data.x_train, data.y_train, config.batch_size, seed=0)
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    epoch = 0
    while len(out) < n:
        out += list(loader.epoch(epoch))
        epoch += 1
    return out[:n]


def plain(base: torch.nn.Module, config: RunConfig, data: list, variants: int) -> Callable[[], None]:
    def job() -> None:
        for _ in range(variants):
            model = copy.deepcopy(base)
            opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                  weight_decay=config.weight_decay, fused=True)
            for xb, yb in data:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
    return job


def vmap_ensemble(base: torch.nn.Module, config: RunConfig, data: list, variants: int) -> Callable[[], None]:
    template = copy.deepcopy(base).to("meta")

    def call(p, b, x):
        return functional_call(template, (p, b), (x,))

    def job() -> None:
        params, buffers = stack_module_state([copy.deepcopy(base) for _ in range(variants)])
        opt = torch.optim.SGD(list(params.values()), lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay, foreach=True)
        for xb, yb in data:
            opt.zero_grad(set_to_none=True)
            logits = vmap(call, in_dims=(0, 0, None))(params, buffers, xb)
            F.cross_entropy(logits.flatten(0, 1), yb.repeat(variants), reduction="sum").div(len(yb)).backward()
            opt.step()
    return job


def engine(base: torch.nn.Module, config: RunConfig, data: list, variants: int) -> Callable[[], None]:
    cell = config.replace(variants=ks(*range(1, 2 * variants, 2)), engine="stacked")

    def job() -> None:
        e = StackedEngine(cell, base)
        e.begin_epoch(cell.lr)
        for xb, yb in data:
            e.step(xb, yb)
    return job


def measure(name: str, spec: dict, variants: int, iterations: int, repeats: int) -> float:
    config = RunConfig(**spec, train_size=5000, test_size=100, lr=0.05, variants=ks(1)).validate()
    data = batches(config, iterations)
    d = load_data(config)
    base = config.network(d, seed=0)
    jobs = {"plain PyTorch (fused SGD)": plain(base, config, data, variants),
            "vmap ensemble": vmap_ensemble(base, config, data, variants),
            "grid engine": engine(base, config, data, variants)}
    for job in jobs.values():  # warm-up: allocator, first-call paths
        job()
    times: dict[str, list[float]] = {n: [] for n in jobs}
    order = list(jobs)
    for r in range(repeats):
        for n in (order if r % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            jobs[n]()
            times[n].append(time.perf_counter() - t0)
    med = {n: statistics.median(t) for n, t in times.items()}
    print(f"{name}: {variants} variants × {iterations} iterations, batch {config.batch_size}, 1 thread, "
          f"median of {repeats}")
    for n, t in med.items():
        print(f"  {n:26s} {1e6 * t / (variants * iterations):8.1f} µs per run-iteration   "
              f"(repeats {', '.join(f'{x:.3f}' for x in times[n])} s)")
    best = min(("plain PyTorch (fused SGD)", "vmap ensemble"), key=med.__getitem__)
    speed = med[best] / med["grid engine"]
    print(f"  {name}: grid engine speed {speed:.2f} of the best baseline ({best})")
    return speed


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", type=int, nargs=3, default=[16, 8, 8], help="variants per network")
    ap.add_argument("--iterations", type=int, nargs=3, default=[40, 10, 10], help="iterations per network")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    determinism.configure(1)
    print(f"CPU: {cpu_name()}; torch {torch.__version__}")
    speeds = {name: measure(name, spec, v, it, a.repeats)
              for (name, spec), v, it in zip(NETWORKS.items(), a.variants, a.iterations, strict=True)}
    worst = min(speeds, key=speeds.__getitem__)
    print(f"grid engine speed: {speeds[worst]:.2f} of the best baseline (worst: {worst}; "
          + ", ".join(f"{n} {s:.2f}" for n, s in speeds.items()) + ")")
    return speeds[worst]


if __name__ == "__main__":
    main()
