"""The training loop's overhead: :func:`instab.train.train` (one variant, k = 1) against a plain
PyTorch loop on the same model, the same batches and the same per-epoch test evaluation, both
measured in this run (interleaved, median of the repeats; noisy on a shared machine).

    python benchmarks/bench_train.py [--model resnet8] [--train-size 2048] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from instab import determinism
from instab.data import Loader
from instab.models import build_model
from instab.train import RunConfig, cross_entropy, ks, load_data, train


def plain_loop(config: RunConfig) -> float:
    """What one would write by hand: SGD, cross-entropy (the same function, so the arithmetic and the
    accuracies agree), evaluation after each epoch."""
    data = load_data(config).to(config.device)
    model = build_model(config.model, in_channels=data.in_channels, num_classes=data.num_classes,
                        input_size=data.input_size, seed=config.init_seed).to(config.device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    loader = Loader(data.x_train, data.y_train, config.batch_size, seed=config.batch_seed)
    acc = 0.0
    for epoch in range(config.epochs):
        model.train()
        for xb, yb in loader.epoch(epoch):
            opt.zero_grad(set_to_none=True)
            cross_entropy(model(xb), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(data.x_test[i:i + 1000]).argmax(1)
                              for i in range(0, len(data.x_test), 1000)])
        acc = float((pred == data.y_test).double().mean())
    return acc


def main(argv=None) -> float:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet8")
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--train-size", type=int, default=2048)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    config = RunConfig(model=a.model, dataset=a.dataset, variants=ks(1), epochs=a.epochs,
                       train_size=a.train_size, test_size=a.test_size, device=a.device, threads=1)
    determinism.configure(1)
    load_data(config)  # read the files once, outside the timings
    times: dict[str, list[float]] = {"instab.train.train": [], "plain PyTorch loop": []}
    accs = {}
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        accs["instab.train.train"] = train(config).final_acc()["k=1"]
        times["instab.train.train"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        accs["plain PyTorch loop"] = plain_loop(config)
        times["plain PyTorch loop"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["instab.train.train"] / med["plain PyTorch loop"]
    print(f"training {a.model} on {a.train_size} {a.dataset} images for {a.epochs} epochs, {a.device}, "
          f"1 thread; median of {a.repeats} (noisy on a shared machine)")
    for k, t in med.items():
        print(f"  {k:22s} {t:7.2f} s   final test accuracy {accs[k]:.4f}")
    print(f"  overhead ratio instab/plain: {ratio:.3f}")
    if accs["instab.train.train"] != accs["plain PyTorch loop"]:
        print("  note: the accuracies differ (the plain loop uses torch.optim.SGD: same arithmetic, so they "
              "should agree)")
    return ratio


if __name__ == "__main__":
    main()
