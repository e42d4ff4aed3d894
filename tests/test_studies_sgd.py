"""The statistics and the plan behind the perturbed-SGD chapter (book/sgd.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from instab.report import paper
from instab.studies import sgd as sgd_study

ROOT = Path(__file__).resolve().parent.parent
PLAN_KEYS = ("common", "tables", "k_values", "seeds", "growth", "sweeps", "sweep_lrs", "lr_times_steps",
             "controls", "perturbations", "members", "restraint", "float64")


def test_spread_reproduces_the_papers_table1_stds():
    """Population STDs (ddof = 0), as the paper's; it truncates rather than rounds (0.1657 → 0.16)."""
    t = sgd_study.paper_table("table1_left_resnet56_cifar10_relu")
    sp = sgd_study.spread(t)
    pairs = ((sp["std_over_seeds"], "std_over_seeds_per_k"), (sp["std_over_k"], "std_over_k_per_seed"))
    for ours, key in pairs:
        theirs = np.array(paper(f"table1_left_resnet56_cifar10_relu.{key}"))
        assert np.all((ours - theirs > -0.006) & (ours - theirs < 0.01))
    assert round(sp["fp_std"], 2) == paper("table1_right.floating_point.test_acc_std")
    assert round(sp["sgd_std"], 2) == paper("table1_right.batch_selection.test_acc_std")
    lo, hi = sp["ratio_interval"]
    assert lo < sp["ratio"] < hi


def test_spread_separates_the_two_noises():
    rows = np.array([0.0, 1.0, 2.0])[:, None]        # varies over k only
    sp = sgd_study.spread(rows + np.zeros((3, 4)))
    assert sp["sgd_std"] == 0 and sp["fp_std"] > 0 and sp["ratio"] == math.inf
    with pytest.raises(ValueError, match="2×2"):
        sgd_study.spread(np.zeros((1, 5)))


def test_growth_of_a_restrained_curve():
    steps = np.arange(1, 401, dtype=float)
    rel = np.minimum(1e-8 * 10 ** (steps / 20), 0.3)   # 1 decade per 20 iterations, capped
    g = sgd_study.growth(steps, rel)
    assert g["decades"] == pytest.approx(math.log10(0.3 / rel[0]))
    assert g["early_rate"] == pytest.approx(1 / 20, rel=0.05)
    assert g["late_rate"] == 0 and g["late_over_early"] == 0
    unrestrained = sgd_study.growth(steps, 1e-8 * 10 ** (steps / 100))
    assert unrestrained["late_over_early"] == pytest.approx(1.0, rel=0.05)


def test_amplification_tells_accumulation_from_amplification():
    steps = np.arange(0, 1001, 5, dtype=float)
    accumulated = 1e-9 * np.maximum(steps, 1)          # linear in the steps: ×10 over the span
    amplified = 1e-9 * np.exp(steps / 50)
    assert sgd_study.amplification(steps, accumulated) < 20
    assert sgd_study.amplification(steps, amplified) > 1e6
    assert math.isnan(sgd_study.amplification(steps, np.full_like(steps, np.nan)))


def test_floating_point_error_is_one_rounding():
    g = torch.Generator().manual_seed(0)
    v = [torch.randn(1000, generator=g), torch.randn(10, 10, generator=g)]
    for k in (1, 2, 4):
        assert sgd_study.floating_point_error(v, 0.1, k=k)["norm"] == 0.0
    e = sgd_study.floating_point_error(v, 0.1, k=3)
    assert 0 < e["norm"] <= 2**-23 and 0 < e["max"] <= 2**-22 and 0 < e["share_changed"] < 1
    assert 0 < sgd_study.floating_point_error(v, 0.1, k=3, form="release")["norm"] <= 2**-23


def test_pairwise_disagreement():
    a, b, c = np.array([0, 1, 2, 3]), np.array([0, 1, 2, 0]), np.array([0, 1, 2, 3])
    d = sgd_study.pairwise_disagreement([a, b, c])
    assert d["pairs"] == 3 and d["mean"] == pytest.approx((0.25 + 0 + 0.25) / 3)
    assert d["low"] <= d["mean"] <= d["high"]
    with pytest.raises(ValueError):
        sgd_study.pairwise_disagreement([a])


def _params(scale: str) -> dict:
    return yaml.safe_load((ROOT / "book" / "params" / scale / "sgd.yml").read_text())


def test_ci_plan_validates():
    p = _params("ci")
    plan = sgd_study.plan(**{k: p[k] for k in PLAN_KEYS})
    assert len(plan.tables["relu"]) == len(p["seeds"])
    steps = [round(p["lr_times_steps"] / lr) for lr in p["sweep_lrs"]]
    assert [c.max_steps for c in plan.sweeps["smooth"]] == steps
    assert [v.name for v in plan.controls.variants] == ["k=1", "k=1,threads=1", "k=2", "k=3", "k=4"]


def test_paper_plan_holds_the_papers_settings():
    """The paper's parameter file validates and builds its grid (run on a GPU, not here)."""
    p = _params("paper")
    s = paper("training_settings_sec4")
    c = p["common"]
    assert (c["lr"], c["batch_size"], c["weight_decay"], c["momentum"], c["lr_decay_every"], c["epochs"]) == (
        s["lr"], s["batch"], s["weight_decay"], s["momentum"], s["lr_divide_by_10_every_epochs"], s["epochs"])
    assert p["k_values"] == [1, 3, 5, 7, 9, 11] and len(p["seeds"]) == 6
    assert paper("fig2_right_stable_lr") in p["sweep_lrs"]
    p["common"] = {**p["common"], "device": "cpu"}   # CUDA is not needed to build the plan
    plan = sgd_study.plan(**{k: p[k] for k in PLAN_KEYS})
    relu = plan.tables["relu"]
    assert len(relu) == 6 and relu[0].model == "resnet56" and relu[0].dataset == "cifar10"
    assert [v.k for v in relu[0].variants] == [1, 3, 5, 7, 9, 11] and relu[0].epochs == 200
    models = {(c[0].model, c[0].dataset) for c in plan.tables.values()}
    assert models == {("resnet56", "cifar10"), ("vgg16_bn", "cifar10"), ("vgg16_bn", "fashion_mnist"),
                      ("resnet56", "fashion_mnist")}
    assert {c.model for c in plan.growth.values()} == {"resnet56", "vgg16_bn"}


@pytest.mark.parametrize("where, change, message", [
    ("tables", {"relu": {"model": "resnet7"}}, "tables\\['relu'\\].*resnet7"),
    ("k_values", [1, 5], "k_values"),
    ("common", {"lr": -0.1}, "lr=-0.1"),
    ("growth", {"x": {"modle": "mlp"}}, "modle"),
    ("members", [3, 4], "members.*powers of two"),
    ("restraint", {"model": "mlp", "lr_decay_every": 5}, "restraint: lr_decay_every=5"),
    ("float64", {"table": "gelu"}, "float64: table='gelu'"),
    ("float64", {"table": "relu", "k_values": [3, 5]}, "float64: k_values"),
    ("float64", {"table": "relu", "epochs": 0}, "epochs=0"),
])
def test_bad_parameters_fail_with_their_name(where, change, message):
    p = _params("ci")
    p[where] = change if where != "common" else {**p["common"], **change}
    with pytest.raises(ValueError, match=message):
        sgd_study.plan(**{k: p[k] for k in PLAN_KEYS})


def test_ci_plan_runs_mlp_grids_stacked_and_the_float64_grid():
    p = _params("ci")
    plan = sgd_study.plan(**{k: p[k] for k in PLAN_KEYS})
    for cells in plan.tables.values():
        assert {(c.engine, c.eval_every, c.dtype) for c in cells} == {("stacked", cells[0].epochs, "float32")}
    f64 = plan.float64
    assert len(f64) == len(p["float64"]["seeds"]) and {c.dtype for c in f64} == {"float64"}
    assert f64[0].epochs == p["float64"]["epochs"] and f64[0].activation == plan.tables["relu"][0].activation
    assert plan.float64_ks == p["float64"]["k_values"] and all(c in plan.configs() for c in f64)
    names = [v.name for v in plan.perturbations.variants]
    assert names[0] == "k=1" and "k=1,threads=2" in names
    assert sum(v.init_ulp == 1 for v in plan.perturbations.variants) == len(p["members"])
    assert sgd_study.network_name(plan.tables["relu"][0]) == "MLP 64-32, ReLU"
    assert all(c.acc_every > 0 for cells in plan.sweeps.values() for c in cells)


def test_sources_group_the_perturbations():
    from instab.train import RunConfig, Variant, train
    variants = (Variant(1), Variant(3), Variant(3, form="release"), Variant(1, init_ulp=1),
                Variant(1, init_ulp=1, init_index=7), Variant(1, threads=2))
    h = train(RunConfig(model="mlp", hidden=(8,), train_size=128, test_size=64, batch_size=64, variants=variants))
    assert sgd_study.sources(h) == {"k (paper form)": ["k=3"], "k (release form)": ["k=3,release"],
                                    "initial weight": ["k=1,init+1ulp", "k=1,init+1ulp@7"],
                                    "thread count": ["k=1,threads=2"]}


def test_table5_row_carries_the_interval():
    t = np.array([[80.0, 81.0, 82.0], [80.5, 81.5, 81.0], [79.5, 80.0, 82.5]])
    sp = sgd_study.spread(t)
    from instab.train import RunConfig
    row = sgd_study.table5_row("x", RunConfig(model="mlp", hidden=(32, 32), activation="swish"), sp)
    assert row["network"] == "MLP 32-32, Swish" and row["ratio"] == sp["ratio"]
    assert row["ratio_ci95"][0] <= row["ratio"] <= row["ratio_ci95"][1]


def test_interval_decisions():
    band = [0.5, 2.0]
    assert sgd_study.band_decision([0.7, 0.99], band) is True
    assert sgd_study.band_decision([0.1, 0.4], band) is False and sgd_study.band_decision([2.5, 3], band) is False
    assert sgd_study.band_decision([0.27, 0.76], band) is None
    assert sgd_study.floor_decision([0.02, 0.05], 0.01) is True
    assert sgd_study.floor_decision([0.001, 0.005], 0.01) is False
    assert sgd_study.floor_decision([0.005, 0.02], 0.01) is None


def test_ensemble_decisions():
    assert sgd_study.unanimous([True, True]) is True
    assert sgd_study.unanimous([False, False]) is False
    assert sgd_study.unanimous([True, False]) is None
    assert sgd_study.sweep_status([500, 300], 100) == "amplified"
    assert sgd_study.sweep_status([5, 30], 100) == "attenuated"
    assert sgd_study.sweep_status([50, 300], 100) == "mixed"
    lrs = [0.01, 0.03, 0.1, 0.3]
    t = sgd_study.threshold_decision(lrs, ["attenuated", "mixed", "amplified", "amplified"])
    assert t["decision"] is True and (t["largest_attenuated"], t["smallest_amplified"]) == (0.01, 0.1)
    kinked = ["attenuated", "amplified", "attenuated", "amplified"]
    assert sgd_study.threshold_decision(lrs, kinked)["decision"] is False
    assert sgd_study.threshold_decision(lrs, ["amplified"] * 4)["decision"] is False
    assert sgd_study.threshold_decision(lrs, ["mixed", "attenuated", "amplified", "amplified"])["decision"] is None
    mean, lo, hi = sgd_study.mean_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and 1.0 <= lo < mean < hi <= 4.0


def test_restraint_separates_the_exponential_phase_from_the_drift():
    from instab.train import History

    steps = np.arange(0, 1001)
    grow = np.minimum(1e-9 * 10 ** (steps / 30), 0.3) * (1 + steps / 2000)  # 8.5 decades, then a slow drift
    h = History(config={"variants": [{"k": 1, "form": "paper", "init_ulp": 0, "threads": None},
                                     {"k": 3, "form": "paper", "init_ulp": 0, "threads": None}]},
                variants=["k=1", "k=3"], settings={}, iter_step=list(steps),
                iter_rel_l1={"k=1": [0.0] * steps.size, "k=3": list(grow)},
                train_loss={"k=1": [2.0, 0.5], "k=3": [2.0, 0.6]})
    g = sgd_study.restraint(h)["members"]["k=3"]
    assert g["decades"] > 8 and g["late_over_early"] < 0.01 and 0.4 < g["plateau"] < 0.45
    h.train_loss["k=3"] = [2.0, float("nan")]
    assert sgd_study.restraint(h)["loss_bounded"] is False
