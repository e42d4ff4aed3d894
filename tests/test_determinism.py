"""Floating-point environments: each reproducible within itself, different bits across them."""

import os
import subprocess
import sys

import pytest

from instab import determinism

PROBE = """
import hashlib, torch
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
a, b = torch.randn(257, 129, generator=g), torch.randn(129, 65, generator=g)
out = torch.cat([(a @ b).flatten(), torch.exp(a).flatten(), torch.tanh(a).sum(1)])
print(hashlib.sha256(out.numpy().tobytes()).hexdigest())
"""


def _digest(env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in determinism.FP_VARS}
    environ.update({k: v for k, v in determinism.environment_vars(env).items() if v})
    out = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_environments_are_reproducible_and_give_other_bits():
    digests = {env: _digest(env) for env in ("native", "aten-default", "mkl-compatible")}
    assert digests["native"] == _digest("native")
    assert digests["aten-default"] == _digest("aten-default")
    assert digests["aten-default"] != digests["native"]      # ATen's portable kernels: exp, tanh, sums
    assert digests["mkl-compatible"] != digests["native"]    # MKL's reproducible GEMM path


def test_environment_names_and_bad_names():
    assert determinism.environment_name({}) == "native"
    assert determinism.environment_name({"ATEN_CPU_CAPABILITY": "default"}) == "aten-default"
    assert determinism.environment_name({"MKL_CBWR": "AUTO"}) == "custom"
    with pytest.raises(ValueError, match="'fast'.*native"):
        determinism.check_environment("fast")


def test_environment_is_part_of_every_cache_key(monkeypatch):
    from instab.threshold import ThresholdConfig
    from instab.train import RunConfig

    run, cell = RunConfig(model="mlp", hidden=(8,)), ThresholdConfig()
    before = (run.key(), cell.key())
    monkeypatch.setattr(determinism, "environment_key", lambda: "another machine")
    assert run.key() != before[0] and cell.key() != before[1]


def test_environment_record_names_kernels_and_versions():
    env = determinism.environment()
    assert set(env) >= {"name", "vars", "cpu_capability", "mkl", "onednn", "torch", "numpy", "threads", "cpu"}
    assert env["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256")


ALLOCATOR_PROBE = """
import ctypes, ctypes.util, sys
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks fsmblks "
                                               "uordblks fordblks keepcost").split()]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
if sys.argv[1] == "keep":
    from instab import determinism
    assert determinism.keep_freed_memory()
p = libc.malloc(16 << 20)
mapped = libc.mallinfo2().hblkhd  # bytes in blocks mmap'ed for one allocation
libc.free(p)
print(int(mapped >= 16 << 20), int(libc.mallinfo2().fordblks >= 16 << 20))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="glibc's allocator only")
def test_keep_freed_memory_serves_large_tensors_from_the_heap_and_keeps_them():
    """With glibc's defaults a 16 MiB block is mmap'ed and unmapped when freed (faulted in again at
    the next step); after :func:`keep_freed_memory` it comes from the heap and stays there, free."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}

    def probe(mode):
        out = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE, mode], env=environ, capture_output=True,
                             text=True, check=True)
        return out.stdout.split()

    assert probe("default") == ["1", "0"]
    assert probe("keep") == ["0", "1"]


def test_the_second_environment_differs_from_native_and_env_gets_its_arguments():
    import subprocess
    import sys

    name = determinism.second_environment()
    assert name in determinism.ENVIRONMENTS and name != "native"
    args = determinism.env_arguments("avx2")
    assert args == ["-u MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY=avx2", "MKL_CBWR=AVX2"]  # options first
    out = subprocess.run([sys.executable, "-m", "instab.determinism", "env-args", "nonesuch"], capture_output=True,
                         text=True)
    assert out.returncode != 0 and "'nonesuch' is not allowed" in out.stderr
