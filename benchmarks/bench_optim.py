"""PerturbedSGD's step time over torch.optim.SGD(foreach=True)'s, both measured in this run on
ResNet-56's parameters (0.86M in 170 tensors) with the paper's settings (lr 0.1, momentum 0.9,
weight decay 5e-4).  Measurements are interleaved and the median taken; on a shared machine the
numbers are still noisy.

    python benchmarks/bench_optim.py [--device cpu|cuda] [--steps 50] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from instab.models import build_model
from instab.optim import PerturbedSGD


def make(device: str):
    model = build_model("resnet56", in_channels=3, num_classes=10, seed=0).to(device)
    params = [p for p in model.parameters()]
    g = torch.Generator().manual_seed(1)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g).to(device)
    return params


def time_steps(opt, steps: int, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main(argv=None) -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    kw = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)
    contenders = {
        "torch.optim.SGD(foreach=True)": lambda ps: torch.optim.SGD(ps, foreach=True, **kw),
        "PerturbedSGD(k=1, foreach=True)": lambda ps: PerturbedSGD(ps, foreach=True, k=1, **kw),
        "PerturbedSGD(k=3, foreach=True)": lambda ps: PerturbedSGD(ps, foreach=True, k=3, **kw),
        "PerturbedSGD(k=3, release, foreach=True)": lambda ps: PerturbedSGD(ps, foreach=True, k=3,
                                                                            form="release", **kw),
        "torch.optim.SGD(foreach=False)": lambda ps: torch.optim.SGD(ps, foreach=False, **kw),
        "PerturbedSGD(k=3, foreach=False)": lambda ps: PerturbedSGD(ps, foreach=False, k=3, **kw),
    }
    opts = {name: make_opt(make(a.device)) for name, make_opt in contenders.items()}
    for opt in opts.values():  # warm-up (creates the momentum buffers)
        time_steps(opt, 3, a.device)
    times: dict[str, list[float]] = {name: [] for name in opts}
    for _ in range(a.repeats):  # interleaved, so load changes hit all contenders alike
        for name, opt in opts.items():
            times[name].append(time_steps(opt, a.steps, a.device))
    med = {name: statistics.median(t) for name, t in times.items()}
    base = med["torch.optim.SGD(foreach=True)"]
    params = make("cpu")
    n = sum(p.numel() for p in params)
    print(f"optimizer step on ResNet-56's parameters ({n:,} in {len(params)} tensors), device {a.device}, "
          f"{a.threads} thread(s); median of {a.repeats} x {a.steps} steps (noisy on a shared machine)")
    for name, t in med.items():
        print(f"  {name:44s} {t * 1e3:8.3f} ms/step   ratio to SGD(foreach=True): {t / base:5.2f}")
    return {name: t / base for name, t in med.items()}


if __name__ == "__main__":
    main()
