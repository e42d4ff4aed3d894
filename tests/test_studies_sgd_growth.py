"""The study behind book/sgd_growth.md: its plan, and its claim rules on synthetic runs."""

from __future__ import annotations

import numpy as np
import pytest

from instab import book
from instab.studies import sgd_growth as study
from instab.train import History

PAPER_FORM = {"k": 1, "form": "paper", "init_ulp": 0, "threads": None}


def _params(scale: str, **change) -> study.Params:
    values = {**book.chapter_parameters("sgd_growth", scale), **change}
    values["common"] = {**values["common"], "device": "cpu"}  # CUDA is not needed to build the plan
    return study.Params.from_namespace(values)


def _history(curves: dict[str, np.ndarray], steps: np.ndarray, **fields) -> History:
    variants = [{**PAPER_FORM, "k": 1}] + [{**PAPER_FORM, "k": int(n[2:])} for n in curves]
    return History(config={"variants": variants}, variants=["k=1", *curves], settings={},
                   iter_step=list(steps), iter_rel_l1={"k=1": [0.0] * steps.size, **{n: list(r) for n, r in
                                                                                   curves.items()}}, **fields)


def test_ci_and_paper_plans_validate():
    plan = study.plan(_params("ci").validate())
    assert [v.name for v in plan.controls.variants] == ["k=1", "k=1,threads=1", "k=2", "k=3", "k=4"]
    names = [v.name for v in plan.perturbations.variants]
    assert names[0] == "k=1" and "k=1,threads=2" in names
    assert sum(v.init_ulp == 1 for v in plan.perturbations.variants) == len(plan.members)
    assert plan.restraint is not None and plan.restraint.lr_decay_every == 0
    paper = study.plan(_params("paper").validate())
    assert {c.model for c in paper.growth.values()} == {"resnet56", "vgg16_bn"}


@pytest.mark.parametrize("change, message", [
    ({"growth": {"x": {"modle": "mlp"}}}, "modle"),
    ({"members": [3, 4]}, "members.*powers of two"),
    ({"restraint": {"model": "mlp", "lr_decay_every": 5}}, "restraint: lr_decay_every=5"),
    ({"workers": 0}, "workers"),
    ({"decisive": "control"}, "decisive"),
])
def test_bad_parameters_fail_with_their_name(change, message):
    with pytest.raises(ValueError, match=message):
        _params("ci", **change).validate()


def test_sources_group_the_perturbations():
    from instab.train import RunConfig, Variant, train
    variants = (Variant(1), Variant(3), Variant(3, form="release"), Variant(1, init_ulp=1),
                Variant(1, init_ulp=1, init_index=7), Variant(1, threads=2))
    h = train(RunConfig(model="mlp", hidden=(8,), train_size=128, test_size=64, batch_size=64, variants=variants))
    assert study.sources(h) == {"k (paper form)": ["k=3"], "k (release form)": ["k=3,release"],
                                "initial weight": ["k=1,init+1ulp", "k=1,init+1ulp@7"],
                                "thread count": ["k=1,threads=2"]}
    pert = study.perturbations(h)
    assert pert.by_source["initial weight"].rel.shape[0] == 2 and len(pert.by_source["thread count"].same) == 1


def test_restraint_separates_the_exponential_phase_from_the_drift():
    steps = np.arange(0, 1001)
    grow = np.minimum(1e-9 * 10 ** (steps / 30), 0.3) * (1 + steps / 2000)  # 8.5 decades, then a slow drift
    h = _history({"k=3": grow}, steps, train_loss={"k=1": [2.0, 0.5], "k=3": [2.0, 0.6]})
    g = study.restraint(h).members["k=3"]
    assert g["decades"] > 8 and g["late_over_early"] < 0.01 and 0.4 < g["plateau"] < 0.45
    h.train_loss["k=3"] = [2.0, float("nan")]
    assert study.restraint(h).loss_bounded is False


def _controls(rel3: list[float], rel2: list[float], same_run: bool = True) -> study.Controls:
    zero = [0.0, 0.0, 0.0]
    h = History(config={}, variants=["k=1", "k=1,threads=1", "k=2", "k=3", "k=4"], settings={},
                iter_rel_l1={"k=1": zero, "k=1,threads=1": zero, "k=2": rel2, "k=3": rel3, "k=4": zero},
                test_acc={v: [0.5] for v in ("k=1", "k=1,threads=1", "k=2", "k=3", "k=4")})
    return study.Controls(h, same_run, 1.0)


def test_control_rules():
    ok = study.control_claims(_controls([0.0, 1e-8, 1e-7], [0.0, 0.0, 0.0]))
    assert [c.ok for c in ok] == [True, True, True, True] and ok[0].shown_in == "fig-sgd-growth"
    # k = 1 twice and k = 2, 4 are controls of the machinery (fact); k = 3 is the paper's §4.1 statement
    assert [c.verdict for c in ok] == ["fact", "fact", "fact", "reproduced"]
    bad = study.control_claims(_controls([0.0, 0.0, 1e-7], [0.0, 1e-9, 0.0], same_run=False))
    assert [c.ok for c in bad] == [False, False, True, False]


def _fig(decades: list[float], first: float = 1e-8,
         late: tuple[float, ...] = (0.01, 0.02, 0.03)) -> study.Fig2Left:
    growth = {f"k={k}": {"decades": d, "first": first} for k, d in zip((3, 5, 7), decades, strict=False)}
    held = study.Restraint({f"k={k}": {"late_over_early": r} for k, r in zip((3, 5, 7), late, strict=True)})
    return study.Fig2Left({"net (mlp)": study.NetworkGrowth(growth, held)})


def test_fig2_left_rule_holds_fails_or_is_inconclusive():
    holds, fails, open_ = (study.fig2_left_claims(_fig(d))[0] for d in ([5, 6, 7], [1, 2, 1], [5, 1, 6]))
    assert (holds.ok, holds.verdict) == (True, "reproduced") and holds.interval == [5, 7]
    assert not fails.ok
    assert (open_.ok, open_.verdict) == (True, "inconclusive")
    assert not study.fig2_left_claims(_fig([5, 6, 7], first=1e-3))[0].ok  # not started at the last bit
    # "contained at higher epochs" under the decay: the late rate below 0.1 × the early one, every member
    verdicts = [study.fig2_left_claims(_fig([5, 6, 7], late=r))[1].verdict
                for r in ((0.01, 0.02, 0.03), (0.5, 0.3, 0.9), (0.05, 0.15, 0.02))]
    assert verdicts == ["reproduced", "refuted", "inconclusive"]


def _held(plateaus: list[float], ratios: list[float], bounded: bool = True) -> study.Restraint:
    return study.Restraint({f"k={k}": {"plateau": p, "late_over_early": r, "decades": 5.0}
                            for k, p, r in zip((3, 5, 7), plateaus, ratios, strict=True)},
                           loss_bounded=bounded, final_loss={"k=1": 0.3})


def test_restraint_rules():
    stops, bounded, contained = study.restraint_claims(_held([0.6, 0.7, 0.8], [0.01, 0.02, 0.03]), 0.5)
    assert stops.ok and stops.verdict == "extension" and bounded.ok and bounded.verdict == "extension"
    # ours (constant lr): not contained refutes our extension of the caption, never a failure of the chapter
    assert contained.sane and contained.verdict == "refuted" and contained.interval == [0.6, 0.8]
    stops, bounded, contained = study.restraint_claims(_held([0.1, 0.2, 0.1], [0.5, 0.6, 0.7], False), 0.5)
    assert not stops.ok and not bounded.ok
    # contained at a constant lr: the caption's containment holds even without the decay
    assert contained.ok and contained.verdict == "extension"
    *_, mixed = study.restraint_claims(_held([0.1, 0.7, 0.8], [0.01, 0.02, 0.03]), 0.5)
    assert mixed.ok and mixed.verdict == "inconclusive"
    assert not study.containment_claim(_held([0.6, float("nan"), 0.8], [0.01] * 3), 0.5).sane
    assert "not contained" in study.containment_verdict(_held([0.6, 0.7, 0.8], [0.01] * 3), 0.5)
    assert "inconclusive" in study.containment_verdict(_held([0.1, 0.7, 0.8], [0.01] * 3), 0.5)


def _pert(release: list[float], init: list[float], same: list[bool], threads: float = 0.0) -> study.Perturbations:
    g = {"k (release form)": release, "initial weight": init}
    out = {s: study.Perturbation({f"{s}{i}": {"decades": d} for i, d in enumerate(v)}) for s, v in g.items()}
    out["thread count"] = study.Perturbation({"t": {"decades": threads}}, same)
    return study.Perturbations(out)


def test_perturbation_rules():
    claims = study.perturbation_claims(_pert([5, 6], [4, 7], [True]))
    assert all(c.ok and c.verdict == "extension" for c in claims)
    claims = study.perturbation_claims(_pert([1, 2], [4, 1], [False], threads=1.0))
    assert [c.ok for c in claims] == [False, True, False] and claims[1].verdict == "inconclusive"
    assert study.perturbation_claims(_pert([5], [5], [False], threads=6.0))[2].ok  # grown instead
