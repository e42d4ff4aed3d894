"""The nonlinear chapter's claim rules (instab.studies.nonlinear and instab.studies.nonlinear_results) on
synthetic data: each rule holds on data that satisfy it and fails on data that do not."""

from __future__ import annotations

import numpy as np
import pytest

from instab.pde import nonlinear as nl
from instab.pde.nonlinear import NonlinearRun
from instab.studies import nonlinear as study
from instab.studies import nonlinear_results as res


def by_name(claims):
    return {c.name: c for c in claims}


class _Map:
    """A stand-in for a SigmaMap with a given convergence threshold."""

    def __init__(self, dt_conv):
        self.dt_conv = dt_conv

    def convergence_threshold(self, sign=1):
        return self.dt_conv


def thresholds(dt_conv=0.0322, dt_blow=0.1, dt_sum=0.0035, dt_mean=0.0322):
    return res.Thresholds({"mean": _Map(dt_mean), "sum": _Map(dt_sum)}, 1, dt_blow, dt_conv, 1.0, [])


def test_params_default_is_valid_and_bad_values_are_named():
    p = study.Params().validate()
    assert p.recorded()["dtypes"] == ["float32", "float64"]
    for bad in (dict(alpha=0.0), dict(k=4), dict(pooling="max"), dict(map_dt_range=[0.1, 0.05]),
                dict(n_iter=100), dict(dtypes=["float16"]), dict(showcase_dt=[-0.1])):
        with pytest.raises(ValueError, match=list(bad)[0]):
            study.Params(**bad).validate()
    with pytest.raises(ValueError, match="missing"):
        study.Params.from_namespace({"alpha": 20.0})


def test_threshold_claims():
    p = study.Params()
    good = by_name(study.threshold_claims(thresholds(), p))
    assert all(c.sane for c in good.values())
    assert good["blow-up threshold 2/α (map)"].verdict == "fact"
    # the paper's (5) (sum pooling) misses 0.03 by more than the factor while mean pooling gives it
    assert good["sum pooling (the paper's (5)) gives the paper's 0.03 (map)"].verdict == "corrected"
    # mean pooling was chosen because it gives 0.03: matching it is a calibration, not evidence
    assert good["convergence threshold 2/λ(σ*) (map, mean pooling)"].verdict == "calibration"
    assert all(c.shown_in == "fig-nonlinear-bifurcation" for c in good.values())
    bad = by_name(study.threshold_claims(thresholds(dt_conv=0.05, dt_blow=0.11, dt_sum=0.07), p))
    sum_row = bad.pop("sum pooling (the paper's (5)) gives the paper's 0.03 (map)")
    assert not any(c.ok for c in bad.values())
    # mean pooling misses 0.03 too: no correction is established
    assert sum_row.verdict == "inconclusive"
    # had sum pooling given 0.03, the paper's (5) would be reproduced
    same = by_name(study.threshold_claims(thresholds(dt_sum=0.0301), p))
    assert same["sum pooling (the paper's (5)) gives the paper's 0.03 (map)"].verdict == "reproduced"
    mid = by_name(study.threshold_claims(thresholds(dt_sum=0.045), p))  # off by 1.5×: neither
    assert mid["sum pooling (the paper's (5)) gives the paper's 0.03 (map)"].verdict == "inconclusive"
    assert len(study.threshold_claims(thresholds(), study.Params(pooling="sum"))) == 1


def run(rel_l1, *, loss=None, change=1e-9, blew_up_at=None):
    rl = np.asarray(rel_l1, dtype=float)
    n = rl.size
    loss = np.ones(n) if loss is None else np.asarray(loss, dtype=float)
    return NonlinearRun(0.01, loss, np.zeros(n), np.zeros(n), np.r_[np.nan, np.full(n - 1, change)],
                        np.zeros((n, 3)), rl, np.zeros((2, 2)), blew_up_at)


def fig4_case(kind, dt, r, lam=0.5):
    names = {"converges": "converges", "periodic": "period-2", "chaotic": "chaotic", "blows up": "blows up"}
    name = names[kind]
    bif = res.Bifurcation(np.zeros(1), np.zeros((1, 1)), np.zeros(1), {name: dt}, {name: kind}, {name: lam})
    growths = {("float64", name): nl.error_growth(r.rel_l1)}
    f4 = res.Fig4({("float64", name): r}, growths, {name: lam} if kind == "chaotic" else {}, "float64")
    return study.fig4_claims(f4, bif, study.Params(dtypes=["float64"]))


def test_fig4_claims_blow_up():
    up = run([0, 1e-8, 1e-8], loss=[1.0, 1e31, np.inf], blew_up_at=1)
    [c] = fig4_case("blows up", 0.11, up)
    assert c.name == "float64, blows up: loss blows up" and c.ok and c.shown_in == "fig-nonlinear-fig4"
    [c] = fig4_case("blows up", 0.11, run([0, 1e-8, 1e-8], loss=[1.0, 1.0, 1.0]))
    assert not c.ok


def test_fig4_claims_converges():
    claims = fig4_case("converges", 0.02, run([0, 1e-8, 2e-8, 3e-8], change=1e-9))
    assert [c.ok for c in claims] == [True, True]
    claims = fig4_case("converges", 0.02, run([0, 1e-8, 1e-6, 1e-3], change=1e-2))
    assert [c.ok for c in claims] == [False, False]


def test_fig4_claims_periodic_refutes_the_paper_inside_its_range():
    [c] = fig4_case("periodic", 0.04, run([0, 1e-8, 2e-8, 3e-8]))
    assert not c.ok and c.verdict == "refuted" and c.criterion.startswith("the paper (0.03 < Δt ≤ 0.1): amplified")
    [c] = fig4_case("periodic", 0.02, run([0, 1e-8, 2e-8, 3e-8]))
    assert c.ok and c.verdict == "extension"
    [c] = fig4_case("periodic", 0.04, run([0, 1e-8, 1e-5, 1e-2]))
    assert c.ok and c.verdict == "reproduced"  # amplified, as the paper says


def test_fig4_claims_chaotic():
    n = np.arange(1, 60)
    rl = np.r_[0.0, np.minimum(1e-8 * np.exp(0.5 * (n - 1)), 1.0), np.full(40, 1.0)]
    claims = by_name(fig4_case("chaotic", 0.07, run(rl), lam=0.5))
    assert all(c.ok for c in claims.values()) and len(claims) == 3
    assert claims["float64, chaotic: growth rate = Lyapunov exponent of (★)"].paper == 0.5
    claims = by_name(fig4_case("chaotic", 0.07, run(rl), lam=1.0))
    assert not claims["float64, chaotic: growth rate = Lyapunov exponent of (★)"].ok
    flat = np.r_[0.0, 1e-8, 1e-7, 1e-6, np.full(40, 1e-9)]
    claims = by_name(fig4_case("chaotic", 0.07, run(flat), lam=0.5))
    assert not claims["float64, chaotic: RelL1 grows ≥ 3 decades"].ok
    assert not claims["float64, chaotic: RelL1 levels off"].ok


def test_fig4_values():
    bif = res.Bifurcation(np.zeros(1), np.zeros((1, 1)), np.zeros(1), {"chaotic": 0.07, "c": 0.02},
                            {"chaotic": "chaotic", "c": "converges"}, {})
    g = nl.Growth(1e-8, 1.0, 1.0, 0.4)
    f4 = res.Fig4({}, {("float32", "chaotic"): g, ("float32", "c"): g}, {"chaotic": 0.5}, "float32")
    assert res.fig4_values(f4, bif) == {"growth_rate.float32.chaotic": 0.4, "lyapunov.chaotic": 0.5}


def test_precision_claims():
    g32, g64 = nl.Growth(1e-7, 1.0, 1.0, 0.5), nl.Growth(1e-15, 1.0, 1.0, 0.5)
    growths = {("float32", "chaotic"): g32, ("float64", "chaotic"): g64}
    [c] = res.precision_claims(growths, ["chaotic"], ["float32", "float64"])
    assert c.ok and c.name == "chaotic: float64 amplifies from a smaller start"
    assert res.start_ratio(growths, ["chaotic"], ["float32", "float64"]) == "1.0e-08"
    growths[("float64", "chaotic")] = nl.Growth(1e-9, 1.0, 1.0, 0.5)
    [c] = res.precision_claims(growths, ["chaotic"], ["float32", "float64"])
    assert not c.ok
    assert res.precision_claims(growths, ["chaotic"], ["float32"]) == []
    assert res.start_ratio(growths, ["chaotic"], ["float32"]) == "(one precision only)"


def table3(lam0, transitioning):
    return res.Table3(0.0, 0.0, 1.0, {"activated": 0.1, "transitioning": transitioning, "not activated": 0.1},
                        1e9, lam0, 600.0, 0.0322)


def test_table3_claims():
    [c] = res.table3_claims(table3(-236.0, 0.0))
    assert c.ok and c.shown_in == "fig-nonlinear-regimes"
    assert not res.table3_claims(table3(5.0, 0.0))[0].ok
    assert not res.table3_claims(table3(-236.0, 0.05))[0].ok
    assert len(table3(-236.0, 0.0).lines()) == 5


def test_reduction_claims():
    ok = res.Reduction("float64", 0.02, 1e-12, 20, 1.0 + 1e-9, 1e-9, {})
    assert [c.ok for c in res.reduction_claims(ok)] == [True, True]
    bad = res.Reduction("float64", 0.02, 1e-6, 20, 1.01, 1e-9, {})
    assert [c.ok for c in res.reduction_claims(bad)] == [False, False]


def measured(conv, blow, other_runs, pooling="mean"):
    return res.Measured(pooling, conv, 10, blow, 10, np.log(1e4) / 1600, "sum" if pooling == "mean" else "mean",
                          other_runs)


def test_measured_claims():
    th = thresholds()
    runs = [("0.9 × the paper's 0.03", 0.027, 0.5, False), ("0.9 × its map threshold", 0.0031, 1e-7, True)]
    good = res.measured_claims(measured(0.0320, 0.1, runs), th)
    assert [c.ok for c in good] == [True, True, True, False, True]  # sum pooling does not converge at 0.027
    assert [c.verdict for c in good[3:]] == ["corrected", "extension"]
    assert [c.verdict for c in good[:3]] == ["reproduced", "calibration", "extension"]
    assert good[3].name == "sum pooling, Δt = 0.9 × the paper's 0.03: converges, as the paper's runs at 0.03"
    # had the sum-pooling run converged at 0.027, the paper's (5) would be reproduced there
    converging = [("0.9 × the paper's 0.03", 0.027, 1e-7, False), ("0.9 × its map threshold", 0.0031, 0.5, True)]
    bad = res.measured_claims(measured(0.025, 0.12, converging), th)
    assert bad[3].verdict == "reproduced"
    assert not any(c.ok for i, c in enumerate(bad) if i != 3)
    assert len(res.measured_claims(measured(0.0320, 0.1, runs, pooling="sum"), th)) == 4


def test_sweep_claims():
    dts = np.linspace(0.02, 0.09, 6)
    lam = np.array([-1.0, -0.5, 0.3, 0.4, 0.01, 0.5])
    agree = res.Sweep(dts, lam, np.array([0.1, 0.2, 5.0, 6.0, 0.0, 4.0]))
    [c] = res.sweep_claims(agree)
    assert c.ok and c.ours == 1.0 and agree.disagreements() == []
    disagree = res.Sweep(dts, lam, np.array([5.0, 0.2, 0.1, 6.0, 0.0, 4.0]))
    [c] = res.sweep_claims(disagree)
    assert not c.ok and c.ours == 0.6 and disagree.disagreements() == [dts[0], dts[2]]
    assert disagree.lines()[-1].startswith("the sign of Λ predicts amplification at 3 of 5")
    few = res.Sweep(dts[:2], lam[:2], np.array([0.1, 0.2]))
    assert not res.sweep_claims(few)[0].ok


def test_transitioning_claims_both_outcomes():
    # unstable (the map repels, the run leaves the regime): "all regimes are stable" refuted for this one
    unstable = res.Transitioning(0.015, -236.0, 4.54, 1e-3, 100, 5, 1.8, True)
    computed, measured = res.transitioning_claims(unstable)
    assert (computed.verdict, measured.verdict, computed.sane, measured.sane) == ("fact", "refuted", True, True)
    assert measured.ours == 5 and "left the transitioning regime at n = 5" in unstable.line()
    # stable (the map attracts, the run stays and shrinks): reproduced
    stable = res.Transitioning(0.015, 30.0, 0.55, 1e-3, 100, None, 1e-20, True)
    assert [c.verdict for c in res.transitioning_claims(stable)] == ["fact", "reproduced"]
    assert all(c.ok for c in res.transitioning_claims(stable))
    # stays in the regime but grows: undecided by the run
    grows = res.Transitioning(0.015, 30.0, 0.55, 1e-3, 100, None, 0.5, True)
    assert res.transitioning_claims(grows)[1].verdict == "inconclusive"
    # the run contradicts the map: the measured row fails
    assert not res.transitioning_claims(res.Transitioning(0.015, -236.0, 4.54, 1e-3, 100, None, 1e-9, True))[1].sane
