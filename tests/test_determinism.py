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
    from instab.studies.multilayer import ThresholdConfig
    from instab.train import RunConfig

    run, cell = RunConfig(model="mlp", hidden=(8,)), ThresholdConfig()
    before = (run.key(), cell.key())
    monkeypatch.setattr(determinism, "environment_key", lambda: "another machine")
    assert run.key() != before[0] and cell.key() != before[1]


def test_environment_record_names_kernels_and_versions():
    env = determinism.environment()
    assert set(env) >= {"name", "vars", "cpu_capability", "mkl", "onednn", "torch", "numpy", "threads", "cpu"}
    assert env["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256")
