"""What the three perturbed-SGD chapters share (instab.studies.sgd): one `common` per scale,
configurations, RelL1 growth, the decisive check."""

from __future__ import annotations

from pathlib import Path

import pytest

from instab import book
from instab.report import claim, decide
from instab.studies import sgd as sgd_study

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ("sgd_growth", "sgd_variance", "sgd_threshold")
#: Every chapter whose runs take the sgd chapters' shared settings, ``common``.
COMMON_USERS = (*CHAPTERS, "open_questions")
#: (chapter, scale) → the keys of ``common`` it sets otherwise, each for a stated reason: a tracked
#: run's loop does not honour augmentation (``TrackedRun.validate`` refuses it).
COMMON_EXCEPTIONS = {("open_questions", "paper"): {"augment"}}


def params(chapter: str, scale: str) -> dict:
    """A chapter's parameters at a scale (its cell overridden by the scale's file)."""
    return book.chapter_parameters(chapter, scale)


@pytest.mark.parametrize("scale", ["default", "ci", "paper"])
def test_the_chapters_share_one_common_per_scale(scale):
    commons = {c: params(c, scale)["common"] for c in COMMON_USERS}
    ref = commons["sgd_growth"]
    differ = {c: {k: com.get(k) for k in {*com, *ref} - COMMON_EXCEPTIONS.get((c, scale), set())
                  if com.get(k) != ref.get(k)} for c, com in commons.items()}
    assert not any(differ.values()), f"common differs from sgd_growth's at the {scale} scale: {differ}"


def test_members_must_perturb():
    assert sgd_study.check_members([3, 5]) == [3, 5]
    for bad in ([3, 4], [1], [3, 3], []):
        with pytest.raises(ValueError, match="members"):
            sgd_study.check_members(bad)


def test_a_bad_field_names_where_it_is():
    with pytest.raises(ValueError, match="tables\\['x'\\]: modle"):
        sgd_study.config({"lr": 0.1}, {"modle": "mlp"}, "tables['x']")
    with pytest.raises(ValueError, match="growth: .*lr=-0.1"):
        sgd_study.config({"lr": -0.1}, {"model": "mlp"}, "growth")


def test_interval_and_ensemble_decisions():
    band = [0.5, 2.0]
    assert sgd_study.band_decision([0.7, 0.99], band) is True
    assert sgd_study.band_decision([0.1, 0.4], band) is False and sgd_study.band_decision([2.5, 3], band) is False
    assert sgd_study.band_decision([0.27, 0.76], band) is None
    assert sgd_study.floor_decision([0.02, 0.05], 0.01) is True
    assert sgd_study.floor_decision([0.001, 0.005], 0.01) is False
    assert sgd_study.floor_decision([0.005, 0.02], 0.01) is None
    assert sgd_study.unanimous([True, True]) is True
    assert sgd_study.unanimous([False, False]) is False
    assert sgd_study.unanimous([True, False]) is None
    mean, lo, hi = sgd_study.mean_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and lo == pytest.approx(2.5 - 3.182446 * 0.645497, rel=1e-5) and hi == 5 - lo


def test_decisive_claims_must_exist_and_be_decided():
    held = claim("Fig. 2 left x: growth", 5.0, ok=True, verdict="reproduced")
    open_ = decide("Table 4 (Swish): STD over k", 1.0, [0.3, 3.0], criterion="", decision=None,
                   verdict="reproduced")
    sgd_study.check_decided([held, open_], ["Fig. 2 left"])
    with pytest.raises(AssertionError, match="no claim with these prefixes"):
        sgd_study.check_decided([held], ["constant lr"])
    with pytest.raises(AssertionError, match="inconclusive"):
        sgd_study.check_decided([held, open_], ["Table 4"])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_has_a_dry_run_of_its_paper_scale(chapter):
    import importlib

    study = importlib.import_module(f"instab.studies.{chapter}")
    plan = study.dry_run(params(chapter, "paper"))
    assert plan["rows"] and plan["total"]["runs"] > 0 and any("device cuda" in c for c in plan["checks"])


def test_the_paper_scale_holds_the_papers_settings():
    from instab.report import paper

    s = paper("training_settings_sec4")
    for chapter in CHAPTERS:
        c = book.chapter_parameters(chapter, "paper")["common"]
        assert (c["lr"], c["batch_size"], c["weight_decay"], c["momentum"], c["lr_decay_every"], c["epochs"]) == (
            s["lr"], s["batch"], s["weight_decay"], s["momentum"], s["lr_divide_by_10_every_epochs"], s["epochs"])
