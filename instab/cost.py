"""What a grid will cost before it runs: model-epochs and GPU-hours (the paper scale's dry run).

The GPU time of one epoch comes from a measurement where one exists — ``benchmarks/gpu_check.py``
writes ``epoch_seconds`` of a ResNet-56 CIFAR-10 epoch into ``gpu_check.json``; point
``$INSTAB_GPU_CHECK`` at that file (or keep it as ``benchmarks/gpu_check.json``) — and otherwise
from an **estimate**: 15 s per ResNet-56 CIFAR-10 epoch in float32 with TF32 off and deterministic
kernels on a V100/A100-class GPU (README, "Expected cost").  Other networks and data sets are
**extrapolated** from it by their FLOPs per training image, **counted** here
(:func:`flops_per_image`, ``torch.utils.flop_counter`` on one forward and backward pass), and their
number of training images.  A lockstep cell of V variants is priced as V runs, on either engine: the
stacked engine's speed on a GPU is not measured (on the CPU it is faster for MLPs and slower for
conv nets, ``benchmarks/RESULTS.md``).  :func:`constants` names each constant and where it comes from.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from instab.paths import ROOT

#: Estimated seconds per ResNet-56 CIFAR-10 epoch (forward + backward, 50,000 images) on one GPU.
ESTIMATED_EPOCH_SECONDS = 15.0
#: Training images per epoch.
IMAGES = {"cifar10": 50_000, "fashion_mnist": 60_000}
#: Each data set's (channels, side) as the networks see it (VGG16-BN always takes 32 × 32).
SHAPES = {"cifar10": (3, 32), "fashion_mnist": (1, 28)}


def epoch_seconds() -> tuple[float, str]:
    """(seconds per ResNet-56 CIFAR-10 epoch, where the number comes from)."""
    path = Path(os.environ.get("INSTAB_GPU_CHECK", ROOT / "benchmarks" / "gpu_check.json"))
    if path.is_file():
        data = json.loads(path.read_text())
        if data.get("epoch_seconds") and data.get("device") not in (None, "cpu") and data.get("model") == "resnet56":
            return float(data["epoch_seconds"]), f"measured by gpu_check.py on {data['device']}"
    return ESTIMATED_EPOCH_SECONDS, "an estimate (README), not a measurement; benchmarks/gpu_check.py measures it"


@functools.cache
def flops_per_image(model: str, dataset: str) -> float:
    """FLOPs of one training image (forward and backward pass, at the data set's channels and side),
    counted by ``torch.utils.flop_counter.FlopCounterMode`` on a batch of two on the CPU."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from instab.models import build_model

    channels, side = SHAPES.get(dataset, (3, 32))
    side = 32 if model == "vgg16_bn" else side
    net = build_model(model, in_channels=channels, num_classes=10, input_size=side, seed=0)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(torch.zeros(2, channels, side, side)), torch.zeros(2, dtype=torch.long)).backward()
    return counter.get_total_flops() / 2


def model_epoch_seconds(model: str, dataset: str, images: int | None = None) -> float:
    """GPU seconds for one epoch of ``model`` on ``images`` training images of ``dataset``: the
    ResNet-56 CIFAR-10 epoch (:func:`epoch_seconds`) scaled by counted FLOPs per image and images."""
    base, _ = epoch_seconds()
    n = images if images is not None else IMAGES.get(dataset, 50_000)
    relative = flops_per_image(model, dataset) / flops_per_image("resnet56", "cifar10")
    return base * relative * n / IMAGES["cifar10"]


def constants(models: set[tuple[str, str]]) -> list[str]:
    """The cost model's constants for these (model, data set) pairs: each value and whether it is
    measured, counted or extrapolated."""
    base, source = epoch_seconds()
    kind = "measured" if source.startswith("measured") else "estimated"
    lines = [f"{kind}: ResNet-56 CIFAR-10 epoch {base:.1f} s ({source})"]
    ref = flops_per_image("resnet56", "cifar10")
    for model, dataset in sorted(models):
        f = flops_per_image(model, dataset)
        lines.append(f"counted: {model} on {dataset} {f / 1e9:.2f} GFLOP per training image "
                     f"(×{f / ref:.2f} ResNet-56 CIFAR-10)")
    lines.append("extrapolated: other networks' epochs from the ResNet-56 epoch by counted FLOPs "
                 "(the same GPU efficiency assumed)")
    lines.append("extrapolated: a cell of V variants costs V runs on either engine (the stacked engine "
                 "is not measured on a GPU)")
    return lines


def summary(rows: list[dict[str, Any]], models: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Totals over rows of ``{"what", "runs", "model_epochs", "gpu_hours"}``, with the cost model's
    :func:`constants` for the (model, data set) pairs priced."""
    return {"runs": sum(r["runs"] for r in rows), "model_epochs": sum(r["model_epochs"] for r in rows),
            "gpu_hours": sum(r["gpu_hours"] for r in rows), "epoch_seconds_source": epoch_seconds()[1],
            "constants": constants(models or set())}


def environment_checks(device: str, datasets: set[str], executor: str | None) -> list[str]:
    """Lines on the device, the engine and the data sets a grid asks for (loads and trains nothing)."""
    import torch

    from instab.data import default_root, missing_files
    from instab.executors import check_spec, environment_spec

    lines = []
    if str(device).startswith("cuda"):
        lines.append("device cuda: " + (f"available ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available()
                                       else "NOT available on this machine: run it where a GPU is"))
    else:
        lines.append(f"device {device}")
    spec = executor or environment_spec() or "local"
    check_spec(spec)
    lines.append(f"engine {spec!r}: a valid spec (instab.executors.make_executor)")
    for name in sorted(datasets):
        missing = missing_files(name)
        where = default_root()
        lines.append(f"data {name}: on disk under {where}" if not missing else
                     f"data {name}: NOT on disk ({len(missing)} files missing under {where});\n"
                     f"    torchvision downloads it there on first use (needs internet), or copy it there\n"
                     f"    ($INSTAB_DATA moves the folder)")
    return lines
