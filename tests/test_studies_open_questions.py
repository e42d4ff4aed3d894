"""The study behind book/open_questions.md and its controllers: the plan, the claim rules on
synthetic inputs (holds, fails, inconclusive), and the controllers' guarantees."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from instab import book
from instab.controllers import CurvatureCap, GrowthController, Shadow, SharedSchedule, TrackedRun, track
from instab.edge import EdgeRun, chance_loss, edge_run, square_loss
from instab.metrics import rel_l1
from instab.optim import PerturbedSGD
from instab.stability import hessian_product, lanczos_torch, top_eigenpair, top_hessian_eigenpair
from instab.step import cross_entropy
from instab.studies import open_questions as study
from instab.studies.open_cap import EdgeArm, EdgeGD, edge_gd_claims
from instab.studies.open_controllers import (
    Comparison,
    GridArm,
    _disagreements,
    controller_claims,
    fall_decision,
    four_questions,
    variance_ratio_interval,
)
from instab.studies.open_null import NullArm, NullModel, Spread, disagreement_std, null_model_claims, std_interval
from instab.studies.open_trajectories import Regime, SeedTrajectory, Trajectories, edge_claims, onset, onset_decision
from instab.train import LoopEngine, Variant


def _params(scale: str, **change) -> study.Params:
    values = {**book.chapter_parameters("open_questions", scale), **change}
    values["common"] = {**values["common"], "device": "cpu"}
    return study.Params.from_namespace(values)


def test_ci_default_and_paper_plans_validate():
    for scale in ("ci", "default", "paper"):
        p = _params(scale).validate()
        plan = study.plan(p)
        assert set(plan.grid) == {"none", "growth", "replay"} and plan.grid["replay"] == []
        for name in ("none", "growth"):
            cells = plan.grid[name]
            assert [c.controller for c in cells] == [name] * len(p.grid_seeds)
            assert [v.k for v in cells[0].variants] == p.k_values
        below, above = plan.trajectories["below"][0], plan.trajectories["above"][0]
        assert below.lr < above.lr
        assert below.lr * below.max_steps == pytest.approx(above.lr * above.max_steps)  # equal lr × iterations
        assert [e.init_seed for e in plan.edge] == p.edge_seeds


def test_the_replay_arm_takes_the_growth_arms_median_schedule():
    p = _params("ci").validate()
    plan = study.plan(p)
    n = plan.grid["none"][0].total_steps()
    runs = {c: {"step_lrs": [0.1 * (i + 1)] * n} for i, c in enumerate(plan.grid["growth"])}
    cells = study.replay_cells(plan, runs)
    assert len(cells) == len(plan.grid["none"]) and plan.grid["replay"] == cells
    assert all(c.controller == "replay" and len(c.replay) == n for c in cells)
    assert cells[0].replay[0] == pytest.approx(float(np.median([0.1 * (i + 1) for i in range(len(runs))])))
    assert [c.batch_seed for c in cells] == [c.batch_seed for c in plan.grid["none"]]


@pytest.mark.parametrize("change, message", [
    ({"lrs": {"below": 0.1, "above": 0.01}}, "smaller"),
    ({"k_values": [3, 1, 5]}, "k_values"),
    ({"seeds": [0, 1]}, "seeds"),
    ({"edge_band": [1.2, 2.0]}, "edge_band"),
    ({"growth": {"down": 1.5}}, "down="),
    ({"growth": {"nonsense": 1}}, "nonsense"),
    ({"edge": {"cap_c": 1.5}}, "cap_c"),
    ({"edge": {"init_seed": 3}}, "init_seed"),
    ({"edge_seeds": [0, 1]}, "edge_seeds"),
    ({"k_values": [1]}, "k_values"),
])
def test_bad_parameters_fail_with_their_name(change, message):
    with pytest.raises(ValueError, match=message):
        _params("ci", **change).validate()


# ------------------------------------------------------------------------------- controllers
def test_the_cap_never_exceeds_the_scheduled_lr_and_counts_where_it_binds():
    cap = CurvatureCap(0.8, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    for lam in rng.lognormal(2, 2, 500):
        for lr in (1e-3, 0.1, 1.0):
            assert cap.step(lr, float(lam)) <= lr
    assert 0 < cap.binds < cap.decisions == 1500
    assert cap.step(0.1, 0.0) == 0.1  # a flat direction: the cap is infinite
    assert cap.limit(10.0) == pytest.approx(0.8 * 2 * 1.9 / (10 + 5e-4))
    with pytest.raises(ValueError, match="c="):
        CurvatureCap(1.0, 0.9, 0.0)


def test_the_growth_controller_steps_down_while_growing_and_back_slowly():
    g = GrowthController(down=0.5, up=1.5, floor=0.01)
    assert g.update(0.1) == 0.5 and g.update(0.2) == 0.25
    assert g.update(-0.1) == pytest.approx(0.375)
    assert g.update(math.nan) == pytest.approx(0.1875)  # an unmeasurable window is treated as growth
    for _ in range(10):
        g.update(-1.0)
    assert g.scale == 1.0 and g.step(0.1) == 0.1  # never above the schedule
    for _ in range(20):
        g.update(1.0)
    assert g.scale == 0.01  # never below its floor


def test_the_growth_budget_is_a_rate_that_spends_its_decades_over_the_run():
    rate = GrowthController.budget_rate(2.0, 480)
    assert math.exp(rate * 480) == pytest.approx(100.0)
    g = GrowthController(tolerance=rate)
    assert g.update(0.5 * rate) == 1.0 and g.update(2 * rate) == pytest.approx(0.9)


def _tiny(**change) -> TrackedRun:
    return TrackedRun(model="mlp", hidden=(8,), dataset="synthetic", train_size=256, test_size=64, batch_size=64,
                      epochs=None, max_steps=12, lr_decay_every=0, lr=0.5, variants=(Variant(1), Variant(3)),
                      every=4, sharp_size=64, lanczos_iters=8, batch_sharpness_batches=1,
                      **change).validate()


def test_every_member_of_a_cell_gets_the_same_schedule():
    cfg = _tiny()
    base = torch.nn.Sequential(torch.nn.Linear(4, 3))
    engine = LoopEngine(cfg, base)
    schedule = SharedSchedule(engine.opts)
    for lr in (0.1, 0.03, 0.2):
        schedule.set(lr)
        assert schedule.lrs() == [[lr]] * len(cfg.variants)
    assert schedule.history == [0.1, 0.03, 0.2]


@pytest.mark.parametrize("controller", ["cap", "growth"])
def test_a_controlled_run_records_one_schedule_below_the_plain_one(controller):
    r = track(_tiny(controller=controller, cap_c=0.01))  # c tiny: the cap binds
    assert len(r["step_lrs"]) == 12 and max(r["step_lrs"]) <= 0.5
    assert r["steps"] == [0, 4, 8, 12]
    if controller == "cap":
        assert r["binds"] == 12 and min(r["step_lrs"]) < 0.5
    assert set(r["final_acc"]) == {"k=1", "k=3"}
    assert all(lo <= hi + 1e-9 for lo, hi in zip(r["lambda_min"], r["lambda"], strict=True))
    assert np.isfinite(r["lambda_batch"][:-1]).all() and math.isnan(r["lambda_batch"][-1])


def test_a_replayed_schedule_is_taken_step_for_step():
    sched = tuple(0.5 / (i + 1) for i in range(12))
    r = track(_tiny(controller="replay", replay=sched, sharpness=False, shadow=False))
    assert r["step_lrs"] == list(sched)
    with pytest.raises(ValueError, match="12"):
        _tiny(controller="replay", replay=sched[:5])
    with pytest.raises(ValueError, match="replay"):
        _tiny(controller="none", replay=sched)


@pytest.mark.parametrize("change", [{"augment": True}, {"rel_l1_every": 5}, {"keep_final": True},
                                    {"acc_every": 2}, {"eval_every": 3}])
def test_a_tracked_run_refuses_every_field_its_loop_ignores(change):
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"{name}=.*not allowed in a tracked run"):
        _tiny(**change)


def test_the_shadow_owns_its_momentum_and_measures_no_growth_at_lr_zero():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    opt = PerturbedSGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.0)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    cross_entropy(model(x), y).backward()
    opt.step()
    buffers = [opt.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    shadow = Shadow(model, opt, delta=2.0**-14)
    shadow.restart(model, opt)
    for _ in range(3):
        shadow.step(x, y, 0.0, cross_entropy)
    for p, b in zip(model.parameters(), buffers, strict=True):
        assert torch.equal(opt.state[p]["momentum_buffer"], b)  # the reference's buffers untouched
    assert shadow.rate(model) == pytest.approx(0.0, abs=1e-9)  # lr 0: nothing moves


def test_renormalising_the_shadow_keeps_its_direction_and_restores_its_size():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    opt = PerturbedSGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.0)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))
    shadow = Shadow(model, opt, delta=1e-6)
    shadow.restart(model, opt)
    start = shadow.start
    for _ in range(5):
        for m, o in ((model, opt), (shadow.model, shadow.opt)):
            o.zero_grad()
            cross_entropy(m(x), y).backward()
            o.step()
        shadow.steps += 1
    def difference() -> torch.Tensor:
        with torch.no_grad():
            pairs = zip(shadow.model.parameters(), model.parameters(), strict=True)
            return torch.cat([(s - r).reshape(-1) for s, r in pairs])

    diff = difference()
    shadow.renormalise(model, opt)
    after = difference()
    cos = float(diff @ after / (diff.norm() * after.norm()))
    assert cos == pytest.approx(1.0, abs=1e-9)  # the direction the dynamics selected is kept
    assert rel_l1(model, shadow.model) == pytest.approx(start, rel=1e-3)  # and the starting size restored
    assert shadow.steps == 0 and shadow.renormalisations == 1


def test_lanczos_in_torch_agrees_with_numpy_lanczos_and_eigsh():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    x, y = torch.randn(40, 6, dtype=torch.float64), torch.randint(0, 3, (40,))
    ours = top_eigenpair(model, cross_entropy, x, y, iters=40)
    theirs = top_hessian_eigenpair(model, cross_entropy, x, y, iters=40)
    hvp, g = hessian_product(model, cross_entropy, x, y)
    op = LinearOperator((g.numel(),) * 2, matvec=lambda v: hvp(torch.as_tensor(np.ravel(v))).numpy(),
                        dtype=np.float64)
    top = eigsh(op, k=1, which="LA", v0=np.random.default_rng(0).standard_normal(g.numel()),
                return_eigenvectors=False)[0]
    assert ours.relative_residual < 1e-6
    assert ours.value == pytest.approx(theirs.value, rel=1e-8)
    assert ours.value == pytest.approx(top, rel=1e-8)
    diag = torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64))
    direct = lanczos_torch(lambda v: diag @ v, 10, iters=10)
    assert direct.top.value == pytest.approx(10.0) and direct.bottom == pytest.approx(1.0)
    warm = lanczos_torch(lambda v: diag @ v, 10, iters=2, start=direct.vector)  # a warm start converges at once
    assert warm.top.value == pytest.approx(10.0) and warm.top.residual < 1e-8


# ----------------------------------------------------------------------------- edge rules
def test_onset_is_a_level_above_the_one_ulp_floor():
    steps = np.arange(0, 201, 20.0)
    floor = 8.6e-8
    spreading = np.r_[0, np.minimum(1e-12 * 10 ** (steps[1:] / 20), 3 * floor)]  # reaches the floor only
    assert math.isnan(onset(steps, spreading, floor, 100))
    growing = np.r_[0, floor * np.exp(steps[1:] / 20)]
    assert onset(steps, growing, floor, 100) == 100.0  # e^5 = 148 ≥ 100 (at 80: e^4 = 55)


def _row(amp_onset, edge_onset, late=1.0, batch=1.0, max_ratio=0.5, rate_ratio=1.0, amplification=(1e3,)):
    return SeedTrajectory(seed=0, amp_onset=amp_onset, edge_onset=edge_onset, late_ratio=late,
                          late_batch_ratio=batch, max_ratio=max_ratio, rate_onset_ratio=rate_ratio,
                          amplification=list(amplification), residual=1e-3)


def test_onset_rule_holds_fails_or_is_inconclusive():
    agree = [_row(100, 90), _row(120, 100), _row(80, 85)]
    assert onset_decision(agree, 3.0).holds is True
    apart = [_row(100, 1000), _row(120, 1300), _row(80, 900)]
    assert onset_decision(apart, 3.0).holds is False
    no_edge = [_row(100, math.nan), _row(120, math.nan), _row(80, 85)]
    assert onset_decision(no_edge, 3.0).holds is False
    spread = [_row(100, 30), _row(120, 400), _row(80, 100)]
    assert onset_decision(spread, 3.0).holds is None
    assert onset_decision([_row(100, 90), _row(math.nan, 90)], 3.0).holds is None


def _traj(above_rows, below_rows):
    return Trajectories({"above": Regime(0.1, above_rows), "below": Regime(0.01, below_rows)})


def test_edge_claims_are_decided_by_their_intervals():
    p = _params("ci").validate()
    below = [_row(math.nan, math.nan, max_ratio=m, amplification=(a,)) for m, a in ((0.1, 10), (0.12, 12), (0.11, 9))]
    near = [_row(100, 95, late=x, batch=x, rate_ratio=x) for x in (0.9, 1.1, 1.0)]
    verdicts = {c.name: c.verdict for c in edge_claims(_traj(near, below), p)}
    assert set(verdicts.values()) == {"extension"}
    far = [_row(100, math.nan, late=x, batch=x, rate_ratio=x / 2, amplification=(5,)) for x in (0.2, 0.22, 0.25)]
    above_1 = [_row(math.nan, math.nan, max_ratio=m, amplification=(1e4,)) for m in (3.0, 3.5, 4.0)]
    verdicts = {c.name: c.verdict for c in edge_claims(_traj(far, above_1), p)}
    assert set(verdicts.values()) == {"refuted"}
    straddle = [_row(100, 95, late=x, batch=x, rate_ratio=x) for x in (0.3, 1.5, 0.9)]
    claims = edge_claims(_traj(straddle, below), p)
    verdicts = {c.name: c.verdict for c in claims}
    assert verdicts["above: the stability ratio hovers near 1 (λ on the fixed subset)"] == "inconclusive"
    assert all(c.ok for c in claims)


# --------------------------------------------------------------------------- grid rules
def test_variance_ratio_interval_and_fall_rule():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (12, 12)), rng.normal(0, 1, (12, 12))
    r, lo, hi = variance_ratio_interval(0.1 * a, b, "k")
    assert lo < r < hi < 1 and fall_decision([lo, hi], 0.8) is True
    r, lo, hi = variance_ratio_interval(b[::-1], b, "k")  # the same spread
    assert r == pytest.approx(1.0) and lo > 0.8 and fall_decision([lo, hi], 0.8) is False
    r, lo, hi = variance_ratio_interval(a[:, :3], b[:, :3], "seeds")
    assert fall_decision([lo, hi], 0.8) is None  # 2 degrees of freedom: too wide
    assert math.isnan(variance_ratio_interval(a, np.zeros((12, 12)), "k")[0])


def _arms(names, decades, acc_shift, k_spread=1.0, seeds=6, plain="none", arm=GridArm):
    rng = np.random.default_rng(1)
    seed_effect = rng.normal(0, 1, seeds)
    out = {}
    for name in names:
        base = name == plain
        acc = 80 + seed_effect + rng.normal(0, 1 if base else k_spread, (2, seeds)) + (0 if base else acc_shift[name])
        out[name] = arm(acc=acc, decades=[6.0] * seeds if base else [decades[name]] * seeds)
    return out


def test_growth_claims_hold_fail_or_are_inconclusive():
    p = _params("ci").validate()
    good = {c.name: c.verdict for c in controller_claims(Comparison(
        _arms(("none", "growth", "replay"), {"growth": 1.0, "replay": 5.0}, {"growth": 0.0, "replay": 0.0},
              k_spread=0.0)), p)}
    assert good["growth: RelL1 growth at least 3 decades smaller than plain SGD's"] == "extension"
    assert good["growth: STD over k falls"] == "extension"
    never = _arms(("none", "growth", "replay"), {"growth": 1.0, "replay": 5.0}, {"growth": 0.0, "replay": 0.0},
                  k_spread=0.0)
    never["growth"].acc = never["growth"].acc[:1].repeat(2, axis=0)  # the k runs never differ
    p_ci = _params("ci").validate()
    st = four_questions(dataclasses.replace(never["growth"], n_test=10, disagree=0), never["none"], p_ci)
    assert st.b.value == 0 and st.b.interval[1] > 0  # bounded by the rule of three, not the empty [0, 0]
    plain_sd = math.sqrt(float(never["none"].acc.var(axis=0, ddof=1).mean()))
    assert st.b.interval[1] == pytest.approx(disagreement_std(3 / (6 * 10), 10) / plain_sd, rel=1e-3)
    # equal accuracies with images classified differently: a wider bound, from the count
    wider = four_questions(dataclasses.replace(never["growth"], n_test=10, disagree=4), never["none"], p_ci)
    assert wider.b.interval[1] > st.b.interval[1]
    assert good["growth: its feedback, not its schedule, removes the growth"] == "extension"
    bad = {c.name: c.verdict for c in controller_claims(Comparison(
        _arms(("none", "growth", "replay"), {"growth": 5.5, "replay": 5.5}, {"growth": -5.0, "replay": -5.0})), p)}
    assert bad["growth: RelL1 growth at least 3 decades smaller than plain SGD's"] == "refuted"
    assert bad["growth: test accuracy costs at most 1 point against plain SGD"] == "refuted"
    assert bad["growth: its feedback, not its schedule, removes the growth"] == "refuted"


def _edge(binds, decades, hover=(1.0, 1.1, 0.9), reached=(10, 20, 15)):
    e = _arms(("none", "cap", "constant"), decades, {"cap": 0.0, "constant": 0.0}, seeds=3, arm=EdgeArm)
    e["cap"].binds = list(binds)
    return EdgeGD(e, list(hover), list(reached))


def test_edge_claims_without_the_edge_decide_nothing():
    p = _params("ci").validate()
    e = EdgeGD({arm: EdgeArm(acc=np.zeros((2, 0)), decades=[]) for arm in ("none", "cap", "constant")},
               [math.nan] * 3, [None] * 3)
    got = {c.name: c.verdict for c in edge_gd_claims(e, p)}
    assert set(got.values()) == {"inconclusive"}  # no seed reached the edge: the precondition is unmet


def test_edge_claims_need_a_cap_that_binds():
    p = _params("ci").validate()
    applied = {c.name: c.verdict for c in edge_gd_claims(
        _edge((0.7, 0.8, 0.75), {"cap": 2.0, "constant": 5.0}), p)}
    assert applied["cap: the curvature cap is applied"] == "extension"
    assert applied["cap: RelL1 growth at least 3 decades smaller than the uncapped arm's"] == "extension"
    assert applied["cap: its λ-tracking schedule, not its mean step, removes the growth"] == "extension"
    assert applied["full-batch GD: the stability ratio reaches 1 and hovers"] == "extension"
    schedule = {c.name: c.verdict for c in edge_gd_claims(
        _edge((0.7, 0.8, 0.75), {"cap": 2.0, "constant": 2.2}, hover=(0.2, 0.25, 0.22)), p)}
    assert schedule["cap: its λ-tracking schedule, not its mean step, removes the growth"] == "refuted"
    assert schedule["full-batch GD: the stability ratio reaches 1 and hovers"] == "refuted"
    rare = edge_gd_claims(_edge((0.0, 0.05, 0.0), {"cap": 2.0, "constant": 5.0}, hover=(1.0, math.nan, 1.0),
                                      reached=(10, None, 5)), p)
    rare_v = {c.name: c.verdict for c in rare}
    assert rare_v["cap: the curvature cap is applied"] == "refuted"
    assert all(v == "inconclusive" for n, v in rare_v.items() if n.startswith("cap:") and "applied" not in n)
    assert rare_v["full-batch GD: the stability ratio reaches 1 and hovers"] == "inconclusive"


@pytest.mark.parametrize(("loss", "lr"), [("cross_entropy", 2.0), ("square", 0.5)])
def test_an_edge_run_branches_three_arms_from_one_state(loss, lr):
    cfg = EdgeRun(dataset="synthetic", train_size=64, test_size=32, hidden=(8,), lr=lr, loss=loss, warmup_max=30,
                  hover=5, arm_steps=12, lanczos_iters=4, probe_every=3, cap_c=0.5, settle=0).validate()
    r = edge_run(cfg)
    arms = r["arms"]
    assert set(arms) == {"none", "cap", "constant"} and all(len(a["lr"]) == 12 for a in arms.values())
    assert arms["none"]["lr"] == [lr] * 12 and arms["none"]["binds"] == 0
    assert max(arms["cap"]["lr"]) <= lr and arms["cap"]["binds"] == sum(v < lr for v in arms["cap"]["lr"])
    assert arms["constant"]["lr"] == [pytest.approx(np.mean(arms["cap"]["lr"]))] * 12
    assert all(a["rel_l1"][0] < 1e-5 for a in arms.values())  # every arm starts from the same state
    with pytest.raises(ValueError, match="k="):
        EdgeRun(k=1).validate()
    with pytest.raises(ValueError, match="loss='mse'"):
        EdgeRun(loss="mse").validate()


def test_square_loss_is_zero_on_the_targets_and_chance_on_a_constant_output():
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert float(square_loss(torch.eye(10), y)) == 0.0
    constant = torch.full((10, 10), 0.1)  # the best constant output on balanced classes
    assert float(square_loss(constant, y)) == pytest.approx(chance_loss("square", 10))
    assert chance_loss("cross_entropy", 10) == pytest.approx(math.log(10))


def test_disagreements_count_images_whose_correctness_differs_between_k_runs():
    r = {"labels": [0, 1, 2, 3], "predictions": {"k=1": [0, 1, 2, 0], "k=3": [0, 2, 2, 1]}}
    assert _disagreements(r, [1, 3]) == 1  # image 1 right then wrong; image 3 wrong both times
    assert _disagreements(r, [1]) == 0


def test_disagreement_std_is_the_spread_of_independent_errors():
    """Runs whose examples err independently with probabilities p_i: the spread of their accuracy
    is what disagreement_std predicts from their mean pairwise disagreement (within sampling error)."""
    rng = np.random.default_rng(0)
    p_i = rng.beta(0.5, 3.0, size=400)
    errors = rng.random((3000, p_i.size)) < p_i
    measured = 100 * (1 - errors.mean(axis=1)).std(ddof=1)
    rate = float(np.mean(errors[::2][:1000] != errors[1::2][:1000]))  # correctness, disjoint pairs of runs
    assert abs(disagreement_std(rate, p_i.size) / measured - 1) < 0.05
    assert disagreement_std(0.0, 10) == 0.0


def test_std_interval_covers_the_true_std_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    for axis, shape in (("seeds", (4, 6)), ("k", (4, 6))):
        hits = 0
        for _ in range(800):
            acc = rng.normal(80.0, 0.3, size=shape)  # every entry independent: both pooled estimates are exact
            if axis == "seeds":
                acc = acc[:1].repeat(4, axis=0) + rng.normal(0, 1e-9, shape)  # k runs of a seed equal: S − 1 dof
            _, lo, hi = std_interval(acc, axis)
            hits += lo <= 0.3 <= hi
        assert 0.92 <= hits / 800 <= 0.98, (axis, hits / 800)
    with pytest.raises(ValueError, match="'k' or 'seeds'"):
        std_interval(np.ones((2, 2)), "runs")


def test_null_model_claims_hold_fail_or_are_inconclusive():
    def nm(seeds, k):
        return NullModel({"none": NullArm({"seeds": 1.0, "k": 1.0}, Spread(*seeds), Spread(*k))})
    got = {c.name: (c.verdict, c.sane) for c in null_model_claims(nm((1.0, 0.8, 1.2), (0.2, 0.15, 0.3)))}
    assert got == {"null model, none: STD over seeds / null prediction": ("extension", True),
                   "null model, none: STD over k / null prediction": ("refuted", True)}
    open_ = null_model_claims(nm((1.0, 0.4, 3.0), (float("nan"), 0.1, 0.2)))
    assert [(c.verdict, c.sane) for c in open_] == [("inconclusive", True), ("inconclusive", False)]
    # runs that never disagree (a controller that stops moving): nothing to compare, not a failure
    still = null_model_claims(NullModel({"none": NullArm({"seeds": 1.0, "k": 0.0}, Spread(1.0, 0.8, 1.2),
                                                         Spread(0.0, 0.0, 0.0))}))
    assert [(c.verdict, c.sane) for c in still][1] == ("inconclusive", True)
