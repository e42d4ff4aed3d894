"""How close the grid engines come to this machine: measured single-thread matrix-product and
convolution rates, the counted FLOPs of one run-iteration of each grid network, and each engine's
achieved rate as a share of the measured SGEMM rate.

- **Peak**: the rate of one large float32 matrix product (``torch.mm`` 2048³, 1 thread), the
  most this CPU gives a training step; then the rates at the grid's own shapes — the stacked
  first-layer products of the MLP engine (``x @ [W₁; …; W_V]ᵀ`` and its weight gradient) and
  ResNet-8's convolutions, alone and as the stacked engine runs them (grouped over the variants).
- **Work**: the FLOPs of one run-iteration (forward + backward of one network on one batch of 128),
  counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions), plus
  the update's elementwise operations counted from the algorithm (:func:`instab.optim.stacked_perturbed_sgd`:
  weight decay 2, momentum buffer 2, k·v 1, step 2 — 7 per parameter).
- **Achieved**: the engines' training steps (``benchmarks/bench_grid.py``'s jobs: the stacked engine
  and plain PyTorch with fused SGD), FLOPs / time.

The last line is ``grid engines: MLP X% of peak, conv Y% of peak``.

    python benchmarks/roofline.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grid import NETWORKS, batches, cpu_name, engine, plain  # noqa: E402

from instab import determinism  # noqa: E402
from instab.train import RunConfig, ks, load_data  # noqa: E402

UPDATE_FLOPS_PER_PARAMETER = 7


def rate(flops: float, job: Callable[[], object], repeats: int, min_seconds: float = 0.2) -> float:
    """GFLOP/s of ``job`` (``flops`` per call): the best of ``repeats`` timings of enough calls."""
    job()
    t0 = time.perf_counter()
    job()
    n = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-6)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            job()
        best = min(best, (time.perf_counter() - t0) / n)
    return flops / best / 1e9


def counted(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def iteration_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """(forward + backward FLOPs counted, update FLOPs) of one run-iteration."""
    def step() -> None:
        F.cross_entropy(model(x), y).backward()
    return counted(step), UPDATE_FLOPS_PER_PARAMETER * sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> tuple[float, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", type=int, nargs=2, default=[16, 8], help="variants: MLP, ResNet-8")
    ap.add_argument("--iterations", type=int, nargs=2, default=[40, 6], help="iterations: MLP, ResNet-8")
    a = ap.parse_args(argv)
    determinism.configure(1)
    print(f"CPU: {cpu_name()}; torch {torch.__version__}; 1 thread, float32")
    n = 2048
    A, B = torch.randn(n, n), torch.randn(n, n)
    peak = rate(2 * n ** 3, lambda: torch.mm(A, B), a.repeats)
    print(f"peak: SGEMM {n}³ {peak:7.1f} GFLOP/s")

    V = a.variants[0]
    x, W = torch.randn(128, 784), torch.randn(V * 64, 784)
    g = torch.randn(128, V * 64)
    print(f"MLP stacked first layer, V = {V}:")
    mm = 2 * 128 * 784 * V * 64
    print(f"  x[128,784] @ W[{V * 64},784]ᵀ       {rate(mm, lambda: torch.mm(x, W.t()), a.repeats):7.1f} GFLOP/s")
    print(f"  gᵀ[{V * 64},128] @ x[128,784] (∂W)   {rate(mm, lambda: torch.mm(g.t(), x), a.repeats):7.1f} GFLOP/s")
    R = a.variants[1]
    print(f"ResNet-8 convolutions, batch 128 (alone; grouped over V = {R} variants, as the stacked engine runs them):")
    for c, h in ((16, 28), (32, 14), (64, 7)):
        xi, w = torch.randn(128, c, h, h), torch.randn(c, c, 3, 3)
        xg, wg = torch.randn(128, R * c, h, h), torch.randn(R * c, c, 3, 3)
        f1 = counted(lambda: F.conv2d(xi, w, padding=1))  # noqa: B023
        alone = rate(f1, lambda: F.conv2d(xi, w, padding=1), a.repeats)  # noqa: B023
        grouped = rate(R * f1, lambda: F.conv2d(xg, wg, padding=1, groups=R), a.repeats)  # noqa: B023
        print(f"  {c:2d}→{c:2d} 3×3 on {h:2d}×{h:2d}: {alone:7.1f} GFLOP/s   grouped ×{R}: {grouped:7.1f} GFLOP/s")

    shares = {}
    for (name, spec), v, its in zip(list(NETWORKS.items())[:2], a.variants, a.iterations, strict=True):
        config = RunConfig(**spec, train_size=5000, test_size=100, lr=0.05, variants=ks(1)).validate()
        data = batches(config, its)
        d = load_data(config)
        model = config.network(d, seed=0)
        fb, up = iteration_flops(model, *data[0])
        total = v * its * (fb + up)
        print(f"{name}: one run-iteration {fb / 1e6:.2f} MFLOP forward + backward (counted), "
              f"{up / 1e6:.3f} MFLOP update")
        for label, job in (("grid engine", engine(model, config, data, v)),
                           ("plain PyTorch (fused SGD)", plain(model, config, data, v))):
            job()
            times = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                job()
                times.append(time.perf_counter() - t0)
            achieved = total / statistics.median(times) / 1e9
            print(f"  {label:26s} {achieved:7.1f} GFLOP/s = {100 * achieved / peak:5.1f}% of peak")
            if label == "grid engine":
                shares[name] = 100 * achieved / peak
    mlp, conv = shares[list(NETWORKS)[0]], shares[list(NETWORKS)[1]]
    print(f"grid engines: MLP {mlp:.0f}% of peak, conv {conv:.0f}% of peak")
    return mlp, conv


if __name__ == "__main__":
    main()
