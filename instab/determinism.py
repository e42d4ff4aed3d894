"""Every switch that makes a training run reproducible, in one place.

The paper (§4.2) removes every source of randomness but the floating-point perturbation: fixed
initialisation, fixed batch order, and deterministic kernels.  On top of the paper we pin what it
leaves implicit: the thread count (1 and 2 threads sum in different orders and give different
weights, each reproducible), TF32 (off: it would change the arithmetic being studied), and
flush-to-zero of denormals (off: it changes the arithmetic of tiny perturbations).
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np


def configure(threads: int = 1, seed: int | None = None) -> dict[str, Any]:
    """Make torch deterministic and return the settings that were applied.

    Parameters
    ----------
    threads:
        Intra-op thread count for ``torch.set_num_threads``.  Part of the experiment's control:
        results are bitwise reproducible only at a fixed thread count.
    seed:
        If given, seeds Python's, NumPy's and torch's global generators.  Training code in
        :mod:`instab` uses its own explicit generators; this is a safety net for user code.

    Returns
    -------
    dict
        The settings, for recording in a run's history.
    """
    import torch

    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    # Must be set before the first cuBLAS call for deterministic cuBLAS on CUDA >= 10.2.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if hasattr(torch.backends.cuda.matmul, "allow_fp16_reduced_precision_reduction"):
        torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
    return settings()


def settings() -> dict[str, Any]:
    """The determinism-relevant settings currently in force (recorded in every history)."""
    import torch

    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "cuda": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cudnn_version": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "flush_denormal": False,
    }
