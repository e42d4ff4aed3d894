"""The grid benchmarks run end to end at a tiny size and end with the line RESULTS.md records
(their numbers are measurements, not checked here)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("script, args, last", [
    ("bench_grid.py", ["--variants", "2", "2", "2", "--iterations", "1", "1", "1", "--repeats", "1"],
     r"grid engine speed: \d+\.\d\d of the best baseline \(worst: .+\)"),
    ("roofline.py", ["--variants", "2", "2", "--iterations", "1", "1", "--repeats", "1"],
     r"grid engines: MLP \d+% of peak, conv \d+% of peak"),
])
def test_benchmark_runs_and_ends_with_its_line(script, args, last):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip().splitlines()
    assert out[0].startswith("CPU: ")
    assert re.fullmatch(last, out[-1]), out[-1]


@pytest.mark.slow
def test_the_gpu_run_runs_end_to_end_on_the_cpu_at_a_tiny_size(tmp_path):
    import json

    out = tmp_path / "gpu_run.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_run.py"), "--small", "--device", "cpu",
                    "--json", str(out)], capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(out.read_text())
    assert result["verdict"] == "PASS" and result["small"] is True and result["device"] == "cpu"
    assert all(result["stacked_checks"].values())
    row = result["table5_row"]
    assert len(row["accuracy"]) == len(row["ks"]) and len(row["accuracy"][0]) == len(row["seeds"])
    assert 0 <= row["ratio_interval"][0] <= row["ratio_interval"][1] <= 1
