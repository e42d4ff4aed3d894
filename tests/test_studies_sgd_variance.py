"""The studies behind book/sgd_variance.md (sgd_variance, sgd_tables): its plan, and its claim rules on synthetic
data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from instab import book
from instab.ensemble import Spread, spread
from instab.report import paper
from instab.studies import sgd_tables
from instab.studies import sgd_variance as study
from instab.train import RunConfig


def _params(scale: str, **change) -> study.Params:
    values = {**book.chapter_parameters("sgd_variance", scale), **change}
    values["common"] = {**values["common"], "device": "cpu"}  # CUDA is not needed to build the plan
    return study.Params.from_namespace(values)


def test_spread_reproduces_the_papers_table1_stds():
    """Population STDs (ddof = 0), as the paper's; it truncates rather than rounds (0.1657 → 0.16)."""
    sp = spread(study.paper_table("table1_left_resnet56_cifar10_relu"))
    pairs = ((sp.std_over_seeds, "std_over_seeds_per_k"), (sp.std_over_k, "std_over_k_per_seed"))
    for ours, key in pairs:
        theirs = np.array(paper(f"table1_left_resnet56_cifar10_relu.{key}"))
        assert np.all((ours - theirs > -0.006) & (ours - theirs < 0.01))
    assert round(sp.fp_std, 2) == paper("table1_right.floating_point.test_acc_std")
    assert round(sp.sgd_std, 2) == paper("table1_right.batch_selection.test_acc_std")
    lo, hi = sp.ratio_interval
    assert lo < sp.ratio < hi


def test_floating_point_error_is_one_rounding():
    g = torch.Generator().manual_seed(0)
    v = [torch.randn(1000, generator=g), torch.randn(10, 10, generator=g)]
    for k in (1, 2, 4):
        same = sgd_tables.floating_point_error(v, 0.1, k=k)
        assert same["norm"] == 0.0 and same["share_beyond_last_bit"] == 0.0
    e = sgd_tables.floating_point_error(v, 0.1, k=3)
    assert 0 <= e["share_beyond_last_bit"] < e["share_changed"]  # most changed entries move by one ulp
    assert 0 < e["norm"] <= 2**-23 and 0 < e["max"] <= 2**-22 and 0 < e["share_changed"] < 1
    assert 0 < sgd_tables.floating_point_error(v, 0.1, k=3, form="release")["norm"] <= 2**-23


def test_ci_plan_runs_mlp_grids_stacked_and_the_float64_grid():
    p = _params("ci").validate()
    plan = study.plan(p)
    assert len(plan.tables["relu"]) == len(p.seeds) and plan.tables["relu"][0].keep_final
    for cells in plan.tables.values():
        assert {(c.engine, c.eval_every, c.dtype) for c in cells} == {("stacked", cells[0].epochs, "float32")}
    f64 = plan.float64
    assert len(f64) == len(p.float64["seeds"]) and {c.dtype for c in f64} == {"float64"}
    assert f64[0].epochs == p.float64["epochs"] and f64[0].activation == plan.tables["relu"][0].activation
    assert plan.float64_ks == p.float64["k_values"] and all(c in plan.configs() for c in f64)


def test_paper_plan_holds_the_papers_settings():
    p = _params("paper").validate()
    assert p.k_values == [1, 3, 5, 7, 9, 11] and len(p.seeds) == 6
    plan = study.plan(p)
    relu = plan.tables["relu"]
    assert len(relu) == 6 and relu[0].model == "resnet56" and relu[0].dataset == "cifar10"
    assert [v.k for v in relu[0].variants] == [1, 3, 5, 7, 9, 11] and relu[0].epochs == 200
    models = {(c[0].model, c[0].dataset) for c in plan.tables.values()}
    assert models == {("resnet56", "cifar10"), ("vgg16_bn", "cifar10"), ("vgg16_bn", "fashion_mnist"),
                      ("resnet56", "fashion_mnist")}


@pytest.mark.parametrize("change, message", [
    ({"tables": {"relu": {"model": "resnet7"}, "swish": {}}}, "tables\\['relu'\\].*resnet7"),
    ({"tables": {"relu": {"model": "mlp"}}}, "tables=.*swish"),
    ({"k_values": [1, 5]}, "k_values"),
    ({"float64": {"table": "gelu"}}, "float64: table='gelu'"),
    ({"float64": {"table": "relu", "k_values": [3, 5]}}, "float64: k_values"),
    ({"float64": {"table": "relu", "epochs": 0}}, "epochs=0"),
])
def test_bad_parameters_fail_with_their_name(change, message):
    with pytest.raises(ValueError, match=message):
        _params("ci", **change).validate()


def test_table5_row_carries_the_interval():
    t = np.array([[80.0, 81.0, 82.0], [80.5, 81.5, 81.0], [79.5, 80.0, 82.5]])
    sp = spread(t)
    row = sgd_tables.table5_row("x", RunConfig(model="mlp", hidden=(32, 32), activation="swish"), sp)
    assert row["network"] == "MLP 32-32, Swish" and row["ratio"] == sp.ratio
    assert row["ratio_ci95"][0] <= row["ratio"] <= row["ratio_ci95"][1]


def _sp(lo: float, hi: float, **alternatives: tuple[float, float]) -> Spread:
    """A spread with the ratio's interval (lo, hi) and nothing else of note."""
    nan, mid = math.nan, (lo + hi) / 2
    return Spread(80.0, np.full(3, 0.1), np.full(3, 0.1), 0.1, 0.1, 1.0, mid, (lo, hi), mid**2, (lo**2, hi**2), nan,
                  (nan, nan), dict(alternatives))


def test_ratio_rule_says_about_the_same_greater_or_similar_in_both_directions():
    ref = study.paper_spreads()
    band = [0.8, 1.8]
    rows = ["relu", "swish", "deep"]
    claims = study.ratio_claims({"relu": _sp(0.85, 1.6), "swish": _sp(1.1, 1.6), "deep": _sp(0.6, 0.9)}, band,
                                ref, rows)
    same, exceeds, open_ = claims
    assert (same.ok, same.verdict, same.shown_in) == (True, "reproduced", "fig-sgd-std")
    assert same.paper == round(ref["relu"].paper_ratio, 3)
    assert exceeds.verdict == "reproduced"  # Table 4: comparable and even exceeds
    assert open_.name.startswith("Table 5 row deep") and open_.verdict == "inconclusive"
    below = study.ratio_claims({"deep": _sp(0.3, 0.7)}, band, ref, rows)[0]
    assert (below.sane, below.verdict) == (True, "refuted")
    greater = study.ratio_claims({"deep": _sp(1.2, 2.5)}, band, ref, rows)[0]
    assert greater.verdict == "reproduced" and "greater" in greater.criterion
    # Table 1, "about the same", is two-sided; far above refutes it, not Table 5's "greater or similar"
    far = study.ratio_claims({"relu": _sp(2.0, 3.0), "deep": _sp(2.0, 3.0)}, band, ref, rows)
    assert [c.verdict for c in far] == ["refuted", "reproduced"]
    # Table 4: comparable but not exceeding is a correction; below the floor a refutation
    t4 = [study.ratio_claims({"swish": _sp(lo, hi)}, band, ref, rows)[0].verdict
          for lo, hi in ((0.85, 0.95), (0.3, 0.7), (0.7, 0.95), (0.9, 1.2))]
    assert t4 == ["corrected", "refuted", "inconclusive", "inconclusive"]
    # a grid that is not one of the paper's rows is ours
    assert study.ratio_claims({"relu-row": _sp(0.9, 1.1)}, band, ref, rows)[0].verdict == "extension"
    # a verdict that depends on how a diverged run is left out is not decided
    split = _sp(0.85, 0.95, **{"every run kept": (0.5, 0.9)})
    assert study.ratio_claims({"deep": split}, band, ref, rows)[0].verdict == "inconclusive"
    assert study.nominal_verdicts({"deep": _sp(0.85, 0.95)}, band, 0.9) == "deep: undecided"


def test_similar_band_is_the_papers_own_range_at_its_printed_precision():
    (floor, ceiling), nominal, reason = study.similar_band()
    assert floor == pytest.approx((0.09 - 0.005) / (0.10 + 0.005))  # Table 5, VGG16-BN on Fashion-MNIST
    assert ceiling == pytest.approx((0.15 + 0.005) / (0.09 - 0.005))  # Table 5, ResNet-56 on CIFAR-10
    assert nominal == pytest.approx(0.9)
    own = [study.paper_spreads()[n].paper_ratio for n in ("relu", "swish")]
    own += [v["fp_std"] / v["sgd_std"] for v in paper("table5_swish").values()]
    assert all(floor < r < ceiling for r in own) and "0.09 / 0.10" in reason and "0.15 / 0.09" in reason


def test_the_ratio_can_exceed_one_and_the_k_effect_is_tested():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 3, (1, 8)) + rng.normal(0, 1, (8, 8))
    sp = spread(80 + seed_effect)
    lo, hi = sp.ratio_interval
    assert 0 < lo <= sp.ratio <= hi < 1 and sp.k_effect_p > 0.01
    k_effect = rng.normal(0, 3, (8, 1)) + rng.normal(0, 1, (8, 8))
    sk = spread(80 + k_effect)
    assert sk.k_effect_p < 1e-3 and sk.ratio_interval[0] > 1
    assert sk.variance_ratio == pytest.approx(sk.ratio ** 2)


def test_a_diverged_run_is_counted_and_its_seed_left_out():
    rng = np.random.default_rng(1)
    t = 85 + rng.normal(0, 0.3, (4, 5))
    t[2, 1] = 10.01  # chance on ten classes
    g = study.grid(t)
    assert g.diverged.sum() == 1 and list(g.kept) == [0, 2, 3, 4]
    assert g.spread.fp_std < 1  # the diverged run is not in the spread
    alt = g.spread.alternatives  # the ratio two other ways: its k row left out, or every run kept
    assert list(alt) == ["k rows without a diverged run", "every run kept"]
    assert all(0 < lo <= hi for lo, hi in alt.values())
    c = study.diverged_claim({"a": g})
    assert c.ours == pytest.approx(1 / 20) and c.interval[0] <= c.ours <= c.interval[1]
    t[:, 1:] = np.nan
    with pytest.raises(ValueError, match="seeds have no diverged run"):
        study.grid(t)


def test_share_rule_holds_fails_or_is_inconclusive():
    dis = {name: sgd_tables.Disagreement([], *share, {}) for name, share in
           (("relu", (0.05, 0.03, 0.07)), ("swish", (0.002, 0.001, 0.004)), ("deep", (0.01, 0.005, 0.02)))}
    holds, fails, open_ = sgd_tables.share_claims(dis)
    assert holds.ok and holds.verdict == "reproduced" and not fails.ok and open_.verdict == "inconclusive"
    assert open_.name == "Table 5 row deep: share of test images the k runs label differently"


def test_the_paper_is_inconsistent():
    c = sgd_tables.paper_inconsistency()
    assert c.ok and c.verdict == "fact" and c.ours[0] != c.ours[1]


def _f64(first: list[float], decades: list[float], interval: tuple, share: tuple) -> sgd_tables.Float64:
    g = study.Grid(np.zeros((2, 2)), np.zeros((2, 2), bool), np.arange(2), _sp(*interval))
    return sgd_tables.Float64(g, sgd_tables.Disagreement([], *share, {}),
                              [{"first": f, "decades": d} for f, d in zip(first, decades, strict=True)], [], 100)


def test_float64_rules():
    floor = [0.6, 1.6]
    good = sgd_tables.float64_claims(_f64([1e-16, 2e-16], [9, 10], (0.7, 1.5), (0.05, 0.03, 0.07)), floor)
    assert [c.verdict for c in good] == ["extension", "reproduced", "reproduced", "reproduced"]
    assert all(c.ok for c in good) and good[2].name.startswith("float64: STD over k")
    bad = sgd_tables.float64_claims(_f64([1e-7, 1e-7], [2, 3], (3.0, 4.0), (0.001, 0.0, 0.002)), floor)
    assert [c.ok for c in bad] == [False, False, False, False] and all(c.sane for c in bad)
    assert [c.verdict for c in bad] == ["refuted"] * 4
    mixed = sgd_tables.float64_claims(_f64([1e-16, 1e-7], [9, 3], (0.3, 1.5), (0.01, 0.005, 0.02)), floor)
    assert all(c.verdict == "inconclusive" and c.ok for c in mixed)
    assert "inconclusive" in _f64([1], [1], (0.3, 1.5), (0.01, 0.0, 0.02)).verdict(floor)


def test_table1_right_rules():
    # no entry beyond its last bit; 10 / 5e-8 and 10 / 2^-23: 8.3 and 7.9 orders
    good = sgd_tables.Table1Right({"norm": 5e-8, "max": 1e-7, "share_beyond_last_bit": 0.0}, {"mean": 10.0}, 50)
    assert [(c.ok, c.verdict) for c in sgd_tables.table1_right_claims(good)] == [(True, "fact"), (True, "reproduced"),
                                                                            (True, "reproduced")]
    # 3% of the entries beyond their last bit (corrected); 1 / 5e-8: 7.3, 1 / 2^-23: 6.9 orders
    twice = sgd_tables.Table1Right({"norm": 5e-8, "max": 2e-7, "share_beyond_last_bit": 0.03}, {"mean": 1.0}, 50)
    assert [c.verdict for c in sgd_tables.table1_right_claims(twice)] == ["fact", "corrected", "refuted"]
    most = sgd_tables.Table1Right({"norm": 5e-8, "max": 2e-7, "share_beyond_last_bit": 0.6}, {"mean": 1.0}, 50)
    assert sgd_tables.table1_right_claims(most)[1].verdict == "refuted"  # most entries beyond their last bit
    split = sgd_tables.Table1Right({"norm": 3e-8, "max": 1e-7, "share_beyond_last_bit": 0.0}, {"mean": 1.0}, 50)
    assert sgd_tables.table1_right_claims(split)[2].verdict == "inconclusive"  # 7.52 norm-wise, 6.9 as the paper's
    bad = sgd_tables.Table1Right({"norm": 1e-6, "max": 1e-6, "share_beyond_last_bit": 1.0}, {"mean": 1e-3}, 50)
    assert not sgd_tables.table1_right_claims(bad)[0].sane  # beyond three roundings: the arithmetic broke
    none = sgd_tables.Table1Right({"norm": 0.0, "max": 0.0, "share_beyond_last_bit": 0.0}, {"mean": 1.0}, 50)
    assert not sgd_tables.table1_right_claims(none)[0].sane


def test_k_effect_claims_find_a_k_effect_and_its_absence():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (16, 16))
    shifted = base + 5 * np.arange(16)[:, None]  # every seed moved the same way by k
    spreads = {"relu": spread(base), "swish": spread(shifted)}
    out = {c.name.split(": ", 1)[1]: c for c in study.k_effect_claims(spreads, study.paper_spreads())}
    assert out["Table 4 (Swish)"].verdict == "refuted" and out["Table 4 (Swish)"].ours > 0.9
    assert out["Table 1 left (ReLU)"].verdict == "extension"
    assert out["Table 1 left (ReLU)"].paper == pytest.approx(study.paper_spreads()["relu"].k_effect_share[0],
                                                             abs=1e-3)


def test_the_k_effect_is_decided_over_every_grid():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (16, 16))
    shifted = base + 5 * np.arange(16)[:, None]
    flat = {"relu": spread(base), "swish": spread(rng.normal(0, 1, (16, 16)))}
    every = {c.name: c for c in study.k_effect_claims(flat, study.paper_spreads())}["no k effect: every grid"]
    assert every.verdict == "extension"  # every grid shows the absence
    one = {"relu": spread(base), "swish": spread(shifted)}
    every = {c.name: c for c in study.k_effect_claims(one, study.paper_spreads())}["no k effect: every grid"]
    assert every.verdict == "refuted"  # one grid shows a k effect: the finding fails, whatever the others
    small = {"relu": spread(base[:3, :3]), "swish": spread(base[3:6, :3])}
    rows = study.k_effect_claims(small, study.paper_spreads())  # 3 × 3 grids: neither shown
    assert [r.verdict for r in rows] == ["inconclusive"] * 3
