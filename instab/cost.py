"""What a grid will cost before it runs: model-epochs and GPU-hours (the paper scale's dry run).

The GPU time of one epoch comes from a measurement where one exists — ``benchmarks/gpu_check.py``
writes ``epoch_seconds`` of a ResNet-56 CIFAR-10 epoch into ``gpu_check.json``; point
``$INSTAB_GPU_CHECK`` at that file (or keep it as ``benchmarks/gpu_check.json``) — and otherwise
from an **estimate**: 15 s per ResNet-56 CIFAR-10 epoch in float32 with TF32 off and deterministic
kernels on a V100/A100-class GPU (README, "Expected cost").  Other networks and data sets are
scaled by their multiply-adds per image and their number of training images.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from instab.paths import ROOT

#: Estimated seconds per ResNet-56 CIFAR-10 epoch (forward + backward, 50,000 images) on one GPU.
ESTIMATED_EPOCH_SECONDS = 15.0
#: Multiply-adds per 32×32 image relative to ResNet-56 (≈ 125 M); VGG16-BN ≈ 313 M but runs at a
#: much higher GPU efficiency (large convolutions), so the README takes it as similar in time.
RELATIVE_COST = {"resnet56": 1.0, "vgg16_bn": 1.0}
#: Training images per epoch.
IMAGES = {"cifar10": 50_000, "fashion_mnist": 60_000}


def epoch_seconds() -> tuple[float, str]:
    """(seconds per ResNet-56 CIFAR-10 epoch, where the number comes from)."""
    path = Path(os.environ.get("INSTAB_GPU_CHECK", ROOT / "benchmarks" / "gpu_check.json"))
    if path.is_file():
        data = json.loads(path.read_text())
        if data.get("epoch_seconds") and data.get("device") not in (None, "cpu") and data.get("model") == "resnet56":
            return float(data["epoch_seconds"]), f"measured by gpu_check.py on {data['device']}"
    return ESTIMATED_EPOCH_SECONDS, "an estimate (README), not a measurement; benchmarks/gpu_check.py measures it"


def model_epoch_seconds(model: str, dataset: str, images: int | None = None) -> float:
    """Estimated GPU seconds for one epoch of ``model`` on ``images`` training images of ``dataset``."""
    base, _ = epoch_seconds()
    n = images if images is not None else IMAGES.get(dataset, 50_000)
    return base * RELATIVE_COST.get(model, 1.0) * n / IMAGES["cifar10"]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over rows of ``{"what", "runs", "model_epochs", "gpu_hours"}``."""
    return {"runs": sum(r["runs"] for r in rows), "model_epochs": sum(r["model_epochs"] for r in rows),
            "gpu_hours": sum(r["gpu_hours"] for r in rows), "epoch_seconds_source": epoch_seconds()[1]}


def environment_checks(device: str, datasets: set[str], executor: str | None) -> list[str]:
    """Lines on the device, the engine and the data sets a grid asks for (loads and trains nothing)."""
    import torch

    from instab.data import default_root, missing_files
    from instab.executors import check_spec

    lines = []
    if str(device).startswith("cuda"):
        lines.append("device cuda: " + (f"available ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available()
                                       else "NOT available on this machine: run it where a GPU is"))
    else:
        lines.append(f"device {device}")
    spec = executor or os.environ.get("INSTAB_EXECUTOR") or "local"
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
