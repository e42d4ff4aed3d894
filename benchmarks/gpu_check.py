"""GPU check of the perturbed-SGD engine (paper §4 at the paper's scale), in one short script.

0. the optimizer's bitwise-equality tests (tests/test_optim.py) on the CPU and the GPU;
1. one paper-scale ResNet-56 epoch (50,000 random images of CIFAR-10's shape, batch 128, augmentation,
   lr 0.1, momentum 0.9, weight decay 5e-4) under the determinism settings: its wall time;
2. two identical k ∈ {1, 3} lockstep runs: bitwise equal to each other (k = 1 reproducible on the GPU),
   and k = 3 diverging from k = 1 (RelL1 > 0 and growing);
3. the optimizer step-time ratio and the training-loop overhead on the GPU.

Prints its findings; about 2–3 minutes on an H100.  ``--small`` runs a tiny version (CPU smoke test).

    python benchmarks/gpu_check.py [--small] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from instab import determinism  # noqa: E402
from instab.train import RunConfig, dumps, ks, train  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--small", action="store_true", help="tiny sizes, for a CPU smoke test")
    ap.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."), "gpu_check.json"))
    a = ap.parse_args(argv)
    settings = determinism.configure(1)  # before any CUDA call: sets CUBLAS_WORKSPACE_CONFIG
    device_name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu"
    print(f"device: {device_name}; torch {torch.__version__}; determinism: {settings}", flush=True)
    out: dict = {"device": device_name, "settings": settings}
    n_train, n_test = (512, 256) if a.small else (50_000, 10_000)
    model = "resnet8" if a.small else "resnet56"
    paper = RunConfig(model=model, dataset="synthetic", variants=ks(1), epochs=1, train_size=n_train,
                      test_size=n_test, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, augment=True,
                      device=a.device)

    # 0. the optimizer's bitwise-equality matrix and k = 3 difference, on this device too
    root = Path(__file__).resolve().parent.parent
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(root / "tests" / "test_optim.py")], capture_output=True, text=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    out["optimizer_tests"] = summary
    print(f"[0] tests/test_optim.py on cpu and {a.device} ({time.perf_counter() - t0:.0f} s): {summary}",
          flush=True)

    # 1. one epoch at the paper's scale (after a short warm-up for cuDNN's first calls)
    train(paper.replace(train_size=1280, test_size=256))
    t0 = time.perf_counter()
    h = train(paper)
    epoch_s = time.perf_counter() - t0
    out["epoch_seconds"] = epoch_s
    out["model"] = model
    print(f"[1] {model}, {n_train} images of shape 3x32x32, batch 128, one epoch incl. test pass: "
          f"{epoch_s:.1f} s ({h.steps[-1]} steps, {epoch_s / h.steps[-1] * 1e3:.1f} ms/step); "
          f"200 epochs would take {epoch_s * 200 / 3600:.2f} h per run", flush=True)
    # the paper's grids at this epoch time (the dry run, python -m instab.book plan, does every chapter)
    grid_h = epoch_s * 200 * 36 / 3600
    out["grid_gpu_hours"] = grid_h
    print(f"    projected: one 6 k × 6 seed grid of 200-epoch runs = {grid_h:.1f} GPU-hours on this GPU; "
          f"the five §4 grids (Tables 1, 4, 5) about {5 * grid_h:.0f} GPU-hours", flush=True)

    # 2. reproducibility and the k = 3 perturbation on the GPU
    check = paper.replace(variants=ks(1, 3), epochs=2, train_size=min(n_train, 6400),
                          test_size=min(n_test, 2000), rel_l1_every="log")
    t0 = time.perf_counter()
    h1, h2 = train(check), train(check)
    equal = dumps(h1) == dumps(h2)
    r = h1.iter_rel_l1["k=3"]
    steps = h1.iter_step
    first = next((x for x in r if x > 0), 0.0)
    out.update(bitwise_equal=equal, rel_l1_k3=dict(zip(map(str, steps), r, strict=True)),
               k3_final_rel_l1=r[-1], k3_differs=r[-1] > 0)
    print(f"[2] two runs of k in {{1, 3}} in lockstep ({h1.steps[-1]} steps, "
          f"{time.perf_counter() - t0:.1f} s): bitwise equal: {equal}", flush=True)
    print(f"    RelL1(k=1, k=3): first nonzero {first:.3e}, after {steps[-1]} steps {r[-1]:.3e} "
          f"(growth x{r[-1] / first if first else float('nan'):.1f}); k=3 differs from k=1: {r[-1] > 0}")
    print("    RelL1 by step: " + ", ".join(f"{s}:{x:.2e}" for s, x in list(zip(steps, r, strict=True))[::4]))
    print(f"    final test accuracy k=1 {h1.final_acc()['k=1']:.4f}, k=3 {h1.final_acc()['k=3']:.4f} "
          "(random labels: chance level expected)", flush=True)

    # 3. optimizer ratio and loop overhead on this device
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_optim
    import bench_train

    out["optimizer_ratios"] = bench_optim.main(["--device", a.device, "--repeats", "3" if a.small else "7",
                                                "--steps", "10" if a.small else "50"])
    out["loop_overhead_ratio"] = bench_train.main([
        "--device", a.device, "--dataset", "synthetic", "--model", model,
        "--train-size", str(min(n_train, 10_000)), "--test-size", "1000", "--epochs", "1", "--repeats", "2"])
    verdict = "PASS" if equal and r[-1] > 0 and proc.returncode == 0 else "FAIL"
    print(f"{verdict}: optimizer tests pass: {proc.returncode == 0}; k=1 reproducible bit for bit: {equal}; "
          f"k=3 diverges: {r[-1] > 0}")
    out["verdict"] = verdict
    try:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))
    except OSError:
        pass
    return out


if __name__ == "__main__":
    main()
