"""The study behind book/sgd_threshold.md: its plan, and its claim rules on synthetic data."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

from instab import book, findings, growth
from instab.studies import sgd_limit
from instab.studies import sgd_threshold as study
from instab.train import History, RunConfig


def _params(scale: str, **change) -> study.Params:
    values = {**book.chapter_parameters("sgd_threshold", scale), **change}
    values["common"] = {**values["common"], "device": "cpu"}  # CUDA is not needed to build the plan
    return study.Params.from_namespace(values)


def test_fixed_lr_sweep_keeps_lr_times_iterations():
    tiny = RunConfig(model="mlp", hidden=(8,), train_size=256, test_size=128, batch_size=64)
    configs = study.fixed_lr_sweep(tiny, [0.4, 0.1, 0.025], lr_times_steps=1.0)
    assert [c.max_steps for c in configs] == [2, 10, 40]
    assert all(c.lr_decay_every == 0 and c.epochs is None for c in configs)


def test_ci_and_paper_plans_validate():
    p = _params("ci").validate()
    plan = study.plan(p)
    steps = [round(p.lr_times_steps / lr) for lr in p.sweep_lrs]
    assert [c.max_steps for c in plan.sweeps["smooth"]] == steps
    assert all(c.acc_every > 0 and c.keep_final for cells in plan.sweeps.values() for c in cells)
    from instab.report import paper

    assert paper("fig2_right_stable_lr") in _params("paper").validate().sweep_lrs
    # the stable trajectory: the smallest lr's run, k = 1 alone, per seed and fraction of the run
    small = plan.sweeps["smooth"][int(np.argmin(p.sweep_lrs))]
    assert set(plan.sharpness) == {(s, f) for s in p.sharpness_seeds for f in p.sharpness_points}
    assert all(c.lr == small.lr and c.keep_final and len(c.variants) == 1 and c.init_seed == c.batch_seed == s
               and c.max_steps == round(f * small.max_steps) for (s, f), c in plan.sharpness.items())
    assert plan.sharpness[(0, 1.0)].replace(variants=small.variants, rel_l1_every=small.rel_l1_every,
                                            acc_every=small.acc_every, eval_every=1) == small
    assert set(plan.sharpness.values()) <= set(plan.configs())


@pytest.mark.parametrize("change, message", [
    ({"sweeps": {"x": {"model": "mlp"}}}, "smooth"),
    ({"sweep_lrs": [0.1, -0.1]}, "sweep_lrs"),
    ({"members": [2]}, "members"),
    ({"sharpness_seeds": [0, 1, 2]}, "sharpness_seeds"),
    ({"sharpness_points": [0.5, 1.5]}, "sharpness_points"),
])
def test_bad_parameters_fail_with_their_name(change, message):
    with pytest.raises(ValueError, match=message):
        _params("ci", **change).validate()


def test_amplification_tells_accumulation_from_amplification():
    steps = np.arange(0, 1001, 5, dtype=float)
    accumulated = 1e-9 * np.maximum(steps, 1)          # linear in the steps: ×10 over the span
    amplified = 1e-9 * np.exp(steps / 50)
    assert growth.amplification(steps, accumulated) < 20
    assert growth.amplification(steps, amplified) > 1e6
    assert math.isnan(growth.amplification(steps, np.full_like(steps, np.nan)))
    # a perturbation that starts below the one-ulp floor and only reaches it has not grown
    floor = 8.6e-8
    spreads = np.where(steps < 100, 1e-12, floor)
    assert growth.amplification(steps, spreads) > 1e4 and growth.amplification(steps, spreads, floor=floor) == 1.0
    assert growth.amplification(steps, amplified, floor=floor) > 1e6


def test_the_one_ulp_floor_of_float32_weights():
    import torch

    from instab.growth import ulp_floor

    w = [torch.randn(1000, generator=torch.Generator().manual_seed(0)), torch.zeros(3)]
    # ulp(w)/|w| lies between the two for a normal float; the zeros (biases) are left as they are
    assert 2**-24 * 1000 / 1003 < ulp_floor(w) < 2**-23
    with pytest.raises(ValueError, match="no weights"):
        ulp_floor([])


def test_sweep_status_and_threshold_decision():
    assert study.sweep_status([500, 300], 100) == "amplified"
    assert study.sweep_status([5, 30], 100) == "attenuated"
    assert study.sweep_status([50, 300], 100) == "mixed"
    lrs = [0.01, 0.03, 0.1, 0.3]
    t = study.threshold_decision(lrs, ["attenuated", "mixed", "amplified", "amplified"])
    assert t.decision is True and (t.largest_attenuated, t.smallest_amplified) == (0.01, 0.1)
    kinked = ["attenuated", "amplified", "attenuated", "amplified"]
    assert study.threshold_decision(lrs, kinked).decision is False
    # every lr amplified (or attenuated): the sweep did not reach the threshold, which does not contradict one
    assert study.threshold_decision(lrs, ["amplified"] * 4).decision is None
    assert study.threshold_decision(lrs, ["attenuated"] * 4).decision is None
    assert study.threshold_decision(lrs, ["mixed", "attenuated", "amplified", "amplified"]).decision is None


def _sweeps(status: list[str], name: str = "smooth") -> dict[str, study.Sweep]:
    lrs = [0.01, 0.03, 0.1, 0.3]
    return {name: study.Sweep(lrs, np.ones((4, 3)), status, study.threshold_decision(lrs, status))}


def _stats(status: list[str], name: str = "smooth") -> study.Fig2Right:
    return study.Fig2Right(_sweeps(status, name))


def test_threshold_rule_holds_fails_or_is_inconclusive():
    holds = study.threshold_claims(_stats(["attenuated", "attenuated", "amplified", "amplified"]))[0]
    assert (holds.ok, holds.verdict, holds.shown_in) == (True, "reproduced", "fig-sgd-threshold")
    assert holds.ours == pytest.approx(math.sqrt(0.03 * 0.1)) and holds.interval == [0.03, 0.1]
    assert not study.threshold_claims(_stats(["amplified", "attenuated", "amplified", "amplified"]))[0].ok
    open_ = study.threshold_claims(_stats(["mixed", "attenuated", "amplified", "amplified"]))[0]
    assert (open_.ok, open_.verdict) == (True, "inconclusive")
    assert _stats(["mixed"] * 4).smooth.verdict() == "undecided at an end of the sweep"


def test_kinked_sweeps_are_decided_by_their_data():
    """A ReLU sweep is judged by the same rule, its own claim, and never fails the chapter."""
    ok = ["attenuated", "attenuated", "amplified", "amplified"]
    for status, verdict in ((ok, "reproduced"), (["amplified", "attenuated", "amplified", "amplified"], "refuted"),
                            (["mixed", "attenuated", "amplified", "amplified"], "inconclusive")):
        smooth, relu = study.threshold_claims(study.Fig2Right({**_sweeps(ok), **_sweeps(status, "MLP, ReLU")}))
        assert smooth.name.startswith("Fig. 2 right (Swish)") and smooth.verdict == "reproduced"
        assert relu.name.startswith("Fig. 2 right (MLP, ReLU)")
        assert (relu.ok, relu.verdict) == (verdict != "refuted", verdict)
    bad = _sweeps(ok, "MLP, ReLU")
    bad["MLP, ReLU"].amplification[0, 0] = math.nan
    assert not study.threshold_claims(study.Fig2Right({**_sweeps(ok), **bad}))[1].sane  # not a measurement
    words = study.kinked_verdicts(study.Fig2Right({**_sweeps(ok), **_sweeps(["mixed"] * 4, "MLP, ReLU")}))
    assert words == "MLP, ReLU: undecided at an end of the sweep (inconclusive)."


def _limit(lam_star: list[float], bracket: tuple = (0.05, 0.1), level: float = 0.95) -> sgd_limit.StabilityLimit:
    """A :func:`sgd_limit.stability_limit` result from per-seed λ* (μ = 0.9, α = 0)."""
    from instab.ensemble import mean_interval

    eta = [sgd_limit.momentum_lr_limit(x, momentum=0.9, weight_decay=0.0) for x in lam_star]
    mid, lo, hi = mean_interval([math.log(x) if x > 0 else math.nan for x in lam_star], level=level)
    lim = [sgd_limit.momentum_lr_limit(math.exp(x), momentum=0.9, weight_decay=0.0) for x in (mid, hi, lo)]
    return sgd_limit.StabilityLimit(predicted=lim[0], interval=(lim[1], lim[2]), bracket=bracket, level=level,
                                    lambda_star=dict(enumerate(lam_star)), per_seed=dict(enumerate(eta)),
                                    trajectory={i: [(0.5, x / 2), (1.0, x)] for i, x in enumerate(lam_star)})


def test_stability_rule_is_decided_by_the_data():
    """The confidence interval inside the bracket → reproduced, wholly outside → refuted, straddling
    an end or a bracket wider than the registry's factor → inconclusive; never a failure of the
    chapter unless λ is not a positive number."""
    assert findings.tolerance(sgd_limit.LINEAR_LIMIT, "bracket_ratio_max") == 2
    inside = sgd_limit.stability_claims(_limit([50, 55, 60, 58]))[0]  # η* ≈ 0.065
    assert inside.ok and inside.verdict == "reproduced" and 0.05 < inside.interval[0] < inside.interval[1] < 0.1
    assert "confidence interval" in inside.criterion and "×2" in inside.criterion
    outside = _limit([3.0, 3.3, 3.6, 3.1])  # η* ≈ 1.2
    c = sgd_limit.stability_claims(outside)[0]
    assert c.sane and c.verdict == "refuted" and "wholly outside" in sgd_limit.stability_verdict(outside)
    straddle = _limit([38, 40, 36, 41])  # η* ≈ 0.097, its interval reaches past 0.1
    assert sgd_limit.stability_claims(straddle)[0].verdict == "inconclusive"
    assert "straddles" in sgd_limit.stability_verdict(straddle)
    coarse = _limit([50, 55, 60, 58], bracket=(0.03, 0.1))  # ×3.3: too coarse to test
    assert sgd_limit.stability_claims(coarse)[0].verdict == "inconclusive"
    assert "too coarse" in sgd_limit.stability_verdict(coarse)
    assert sgd_limit.stability_claims(_limit([50, 55, 60, 58], (math.nan, 0.1)))[0].verdict == "inconclusive"
    assert not sgd_limit.stability_claims(_limit([50, 55, -1.0, 58]))[0].ok  # not a measurement
    assert sgd_limit.momentum_lr_limit(1.0, momentum=0.0, weight_decay=0.0) == 2.0


def test_prediction_interval_covers_one_more_draw():
    """Student's t prediction interval: one more normal draw falls inside 95% of the time (n = 4)."""
    from instab.ensemble import prediction_interval

    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 0.5, size=(4000, 5))
    hits = [lo <= row[4] <= hi for row in x for _, lo, hi in [prediction_interval(row[:4])]]
    assert abs(np.mean(hits) - 0.95) < 0.012  # 4000 trials: binomial SD 0.0034
    assert math.isnan(prediction_interval([1.0])[1])


def _fig5(gaps: list[float], acc: list[float]) -> study.Fig5:
    return study.Fig5({f"k={k}": g for k, g in zip((3, 5, 7), gaps, strict=True)}, np.array(acc), 10.0)


def test_fig5_rules():
    overlap, rises = study.fig5_claims(_fig5([0.1, 0.2, 0.3], [10.0, 60.0]))
    assert overlap.ok and overlap.verdict == "reproduced" and rises.ok
    overlap, rises = study.fig5_claims(_fig5([1.0, 2.0, 3.0], [10.0, 12.0]))
    assert not overlap.ok and not rises.ok
    assert study.fig5_claims(_fig5([0.1, 2.0, 0.3], [10.0, 60.0]))[0].verdict == "inconclusive"


def test_fig5_takes_the_smallest_lr(monkeypatch):
    monkeypatch.setattr(study, "load_data", lambda config: types.SimpleNamespace(num_classes=10))
    variants = [{"k": 1, "form": "paper", "init_ulp": 0, "threads": None},
                {"k": 3, "form": "paper", "init_ulp": 0, "threads": None}]
    h = History(config={"variants": variants}, variants=["k=1", "k=3"], settings={}, iter_acc_step=[10, 20],
                iter_acc={"k=1": [0.1, 0.5], "k=3": [0.1, 0.52]})

    class Plan:
        sweeps = {"smooth": ["big", "small"]}

    sm = study.Sweep([0.1, 0.01], np.ones((2, 1)), ["attenuated"] * 2, study.threshold_decision([0.1, 0.01],
                                                                                              ["attenuated"] * 2))
    f = study.fig5(Plan(), {"big": None, "small": h}, sm)  # type: ignore[arg-type, dict-item]
    assert f.lr == 0.01 and f.gaps["k=3"] == pytest.approx(2.0) and f.chance == 10.0
