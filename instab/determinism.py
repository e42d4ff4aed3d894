"""Every switch that makes a training run reproducible, in one place.

The paper (§4.2) removes every source of randomness but the floating-point perturbation: fixed
initialisation, fixed batch order, and deterministic kernels.  On top of the paper we pin what it
leaves implicit: the thread count (1 and 2 threads sum in different orders and give different
weights, each reproducible), TF32 (off: it would change the arithmetic being studied), and
flush-to-zero of denormals (off: it changes the arithmetic of tiny perturbations).
"""

from __future__ import annotations

import functools
import os
import random
from typing import Any

import numpy as np


def configure(threads: int = 1, seed: int | None = None, *, flush_denormal: bool = False) -> dict[str, Any]:
    """Make torch deterministic and return the settings that were applied.

    Parameters
    ----------
    threads:
        Intra-op thread count for ``torch.set_num_threads``.  Part of the experiment's control:
        results are bitwise reproducible only at a fixed thread count.
    seed:
        If given, seeds Python's, NumPy's and torch's global generators.  Training code in
        :mod:`instab` uses its own explicit generators; this is a safety net for user code.
    flush_denormal:
        Flush subnormal floats to zero (FTZ and DAZ).  Off for every perturbation experiment: it
        changes the arithmetic of tiny perturbations.  Only the divergence experiments of the
        multilayer chapter turn it on (:func:`instab.threshold.run_threshold_cell` says
        why); ``torch.set_flush_denormal`` is a per-thread switch, so it holds for the calling
        thread only.

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
    torch.set_flush_denormal(flush_denormal)
    keep_freed_memory()  # speed only
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


#: glibc's allocator settings that :func:`keep_freed_memory` applies (bytes): serve allocations
#: up to 32 MiB from the heap and give freed memory back to the kernel only above 1 GiB.
MALLOPT = {"M_MMAP_THRESHOLD": 32 * 2**20, "M_TRIM_THRESHOLD": 2**30}
_MALLOPT_PARAM = {"M_TRIM_THRESHOLD": -1, "M_MMAP_THRESHOLD": -3}  # glibc's <malloc.h>


@functools.cache
def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed memory for the next allocation (:data:`MALLOPT`, as
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` would at a process's start).  With its
    defaults, the tensors a training step frees are given back to the kernel and faulted in again
    at the next step: the stacked conv engine spent a third of its time in the kernel (ResNet-8,
    8 variants: 196 -> 110 ms per run-iteration with these), the PDE chapters more than half
    (linear 97 -> 34 s).  Only speed changes, never a value.  Returns whether it applied (glibc
    only; elsewhere nothing is done)."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    return all(libc.mallopt(_MALLOPT_PARAM[name], value) == 1 for name, value in MALLOPT.items())


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
    }


# ------------------------------------------------------------------ floating-point environments
#: The variables that choose which kernels compute a result on the CPU (and so its last bits).
FP_VARS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")

#: Named floating-point environments.  Each is bitwise reproducible within itself; across them the
#: last bits of a matmul, a convolution or an ``exp`` differ, as they do between two CPU models.
#: ``make robust`` executes the ci book under every environment but ``native`` and checks that
#: every claim keeps its verdict.
#:
#: - ``native``: the kernels torch and MKL pick for this CPU;
#: - ``aten-default``: ATen's portable (non-vectorised) kernels for elementwise ops and reductions;
#: - ``mkl-compatible``: MKL's conditional-numerical-reproducibility path (other GEMM blocking);
#: - ``avx2``: both libraries limited to AVX2, as on a CPU without AVX-512.
ENVIRONMENTS: dict[str, dict[str, str]] = {
    "native": {},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"},
}


def check_environment(name: str) -> str:
    """Raise ``ValueError`` naming ``name`` and the allowed environments unless it is one."""
    if name not in ENVIRONMENTS:
        raise ValueError(f"floating-point environment {name!r} is not allowed; choose one of {list(ENVIRONMENTS)}")
    return name


def environment_vars(name: str) -> dict[str, str]:
    """The variables that select environment ``name`` (every one of :data:`FP_VARS`, '' = unset)."""
    chosen = ENVIRONMENTS[check_environment(name)]
    return {v: chosen.get(v, "") for v in FP_VARS}


def environment_name(environ: dict[str, str] | None = None) -> str:
    """The name of the environment in force (from the variables), or ``"custom"`` for another mix."""
    env = os.environ if environ is None else environ
    now = {v: env.get(v, "") for v in FP_VARS}
    for name in ENVIRONMENTS:
        if environment_vars(name) == now:
            return name
    return "custom"


@functools.cache
def _torch_build() -> dict[str, str]:
    """MKL and oneDNN versions from torch's build configuration."""
    import re

    import torch

    show = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", show)
    dnn = re.search(r"MKL-DNN v([\w.\-]+)", show)
    return {"mkl": mkl.group(1) if mkl else "", "onednn": dnn.group(1) if dnn else ""}


def environment() -> dict[str, Any]:
    """The floating-point environment in force: its name, its variables, the CPU kernels torch
    dispatches to, the MKL/oneDNN/torch/NumPy versions, the thread count and the CPU model.
    Recorded in every ``results.json`` and in the scorecard's header."""
    import platform

    import torch

    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"name": environment_name(), "vars": {v: os.environ.get(v, "") for v in FP_VARS},
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), **_torch_build(),
            "torch": torch.__version__, "numpy": np.__version__, "threads": torch.get_num_threads(),
            "cpu": cpu, "machine": platform.machine()}


def environment_key() -> str:
    """What of :func:`environment` decides the bits of a CPU result: part of every cache key (a
    cell or chapter computed under one environment is never reused under another)."""
    return _environment_key(tuple(os.environ.get(v, "") for v in FP_VARS))


@functools.cache
def _environment_key(fp_vars: tuple[str, ...]) -> str:
    import torch

    return repr(sorted({"vars": fp_vars, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                        **_torch_build(), "torch": torch.__version__, "numpy": np.__version__}.items()))


def second_environment() -> str:
    """The environment ``make test`` runs the training tests in a second time: ``avx2`` (both
    libraries limited to AVX2, the farthest from ``native`` on an AVX-512 CPU), or ``aten-default``
    (ATen's portable kernels) on a CPU whose native kernels are AVX2 already, where ``avx2`` would
    change nothing."""
    import torch

    return "avx2" if torch.backends.cpu.get_cpu_capability() == "AVX512" else "aten-default"


def env_arguments(name: str) -> list[str]:
    """Arguments for ``env(1)`` that select environment ``name``: ``-u VAR`` for each variable it
    leaves unset (options first, as ``env`` wants them), then ``VAR=value`` for each it sets."""
    chosen = environment_vars(name)
    return [f"-u {v}" for v, x in chosen.items() if not x] + [f"{v}={x}" for v, x in chosen.items() if x]


if __name__ == "__main__":  # python -m instab.determinism env-args [NAME]: for the Makefile
    import sys

    args = sys.argv[1:]
    if not args or args[0] != "env-args" or len(args) > 2:
        raise SystemExit("usage: python -m instab.determinism env-args [NAME]  (NAME: one of "
                         f"{list(ENVIRONMENTS)}; default: the second environment of `make test`)")
    try:
        print(" ".join(env_arguments(args[1] if len(args) == 2 else second_environment())))
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
