"""One prepared GPU session for the paper's networks: the CUDA checks of the stacked engine, the
constants the plan's cost model needs, and a measured Table 5 row of the paper's kind.

1. ``gpu_check.py`` (the optimizer's tests on the device, one ResNet-56 epoch, k = 1 twice bitwise,
   the optimizer and loop ratios), unless ``--skip-check``;
2. the stacked conv engine on the device: k = 1 twice bitwise, k = 2 = k = 1 inside one stack, a
   variant's bits the same at another place in another stack; one epoch of V variants on the
   stacked engine and on the loop engine (the plan's "stacked engine on a GPU" constant);
3. a Table 5 row of the paper's kind: ResNet-20 on Fashion-MNIST (the files under ``$INSTAB_DATA``,
   passed in with the run — nothing is downloaded), k ∈ {1, 3, 5, 7, 9, 11} × batch-order seeds on
   the stacked engine, reduced epochs, with STD over k, STD over seeds, their ratio and its exact
   95% interval (:func:`instab.ensemble.spread`).

Writes ``gpu_run.json`` (under ``$OUT`` when set) and prints a PASS/FAIL line; the book shows the
row only from such a file.  About 6 minutes on one H200 at the defaults; ``--small`` runs a tiny
version on the CPU (the test suite does, end to end).

    python benchmarks/gpu_run.py [--small] [--device cuda] [--epochs 6] [--seeds 3] [--train-size 12000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from instab import determinism  # noqa: E402
from instab.ensemble import spread  # noqa: E402
from instab.studies.sgd_variance import accuracy_table, k_seed_grid  # noqa: E402
from instab.train import RunConfig, dumps, ks, load_data, train  # noqa: E402

KS = (1, 3, 5, 7, 9, 11)


def stacked_checks(config: RunConfig) -> dict:
    """k = 1 twice bitwise, k = 2 = k = 1 in one stack, a variant's bits independent of its place."""
    a = train(config.replace(variants=ks(1, 2, 3)))
    b = train(config.replace(variants=ks(1, 2, 3)))
    c = train(config.replace(variants=ks(5, 3)))
    return {"twice_bitwise": dumps(a) == dumps(b),
            "k2_equals_k1": a.train_loss["k=2"] == a.train_loss["k=1"] and a.rel_l1["k=2"][-1] == 0.0,
            "place_independent": a.train_loss["k=3"] == c.train_loss["k=3"],
            "k3_differs": a.rel_l1["k=3"][-1] > 0}


def epoch_seconds(config: RunConfig, variants: int) -> dict:
    """Seconds for one epoch of ``variants`` variants on each engine (after a warm-up)."""
    images = len(load_data(config).x_train)
    device = torch.device(config.device)
    out: dict = {}
    for engine in ("stacked", "loop"):
        cell = config.replace(variants=ks(*range(1, 2 * variants, 2)), engine=engine, epochs=1, eval_every=1)
        train(cell.replace(train_size=min(1024, images)))  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train(cell)
        if device.type == "cuda":
            torch.cuda.synchronize()
        out[engine] = time.perf_counter() - t0
    out["variants"] = variants
    out["images"] = images
    out["stacked_speedup"] = out["loop"] / out["stacked"]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--small", action="store_true", help="tiny sizes, for a CPU test")
    ap.add_argument("--skip-check", action="store_true", help="do not run gpu_check.py first")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--train-size", type=int, default=12_000)
    ap.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."), "gpu_run.json"))
    a = ap.parse_args(argv)
    settings = determinism.configure(1)
    name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    out: dict = {"device": name, "settings": settings, "small": a.small}
    t_start = time.perf_counter()
    if not a.skip_check and not a.small:
        import gpu_check

        out["gpu_check"] = gpu_check.main(["--device", a.device, "--json", os.devnull])

    model = "resnet8" if a.small else "resnet20"
    train_size = 256 if a.small else a.train_size
    base = RunConfig(model=model, dataset="fashion_mnist", train_size=train_size, test_size=128 if a.small else 10_000,
                     batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, augment=True, device=a.device,
                     engine="stacked", epochs=1, lr_decay_every=max(1, (2 * a.epochs) // 3))
    base.check_data()
    t0 = time.perf_counter()
    out["stacked_checks"] = stacked_checks(base.replace(train_size=min(train_size, 1024), test_size=128))
    print(f"[2] stacked engine on {a.device}: {out['stacked_checks']} ({time.perf_counter() - t0:.0f} s)", flush=True)
    out["epoch_seconds"] = epoch_seconds(base, 2 if a.small else 6)
    print(f"    one epoch of {out['epoch_seconds']['variants']} variants on {train_size} images: stacked "
          f"{out['epoch_seconds']['stacked']:.1f} s, loop {out['epoch_seconds']['loop']:.1f} s", flush=True)

    seeds = range(2 if a.small else a.seeds)
    k_values = KS[:3] if a.small else KS
    cells = k_seed_grid(base.replace(epochs=1 if a.small else a.epochs, eval_every=1 if a.small else a.epochs),
                        k_values, seeds)
    t0 = time.perf_counter()
    histories = [train(c) for c in cells]
    table = accuracy_table(histories, k_values, list(seeds))
    sp = spread(table)
    out["table5_row"] = {"network": f"{model} (stacked engine), Fashion-MNIST {train_size} images, "
                                    f"{cells[0].epochs} epochs, augmentation, lr 0.1 decayed ÷10 every "
                                    f"{base.lr_decay_every} epochs",
                         "ks": list(k_values), "seeds": list(seeds), "accuracy": table.tolist(),
                         "mean": sp.mean, "std_over_k": sp.fp_std, "std_over_seeds": sp.sgd_std,
                         "ratio": sp.ratio, "ratio_interval": sp.ratio_interval,
                         "k_effect_p": sp.k_effect_p, "seconds": time.perf_counter() - t0}
    row = out["table5_row"]
    print(f"[3] Table 5 row ({row['network']}): mean {row['mean']:.4f}, STD over k {row['std_over_k']:.4f}, "
          f"STD over seeds {row['std_over_seeds']:.4f}, ratio {row['ratio']:.2f} "
          f"[{row['ratio_interval'][0]:.2f}, {row['ratio_interval'][1]:.2f}] ({row['seconds']:.0f} s)", flush=True)
    checks = out["stacked_checks"]
    ok = all(checks.values()) and (a.small or out["gpu_check"]["verdict"] == "PASS")
    out["verdict"] = "PASS" if ok else "FAIL"
    out["seconds"] = time.perf_counter() - t_start
    Path(a.json).write_text(json.dumps(out, indent=1, default=str))
    print(f"{out['verdict']}: stacked engine controls {checks}; {out['seconds']:.0f} s in all; wrote {a.json}")
    return out


if __name__ == "__main__":
    main()
