"""The heat chapter's study (instab.studies.heat): its parameters and its claim rules, on synthetic data."""

import dataclasses
import re

import numpy as np
import pytest

from instab.pde.heat import HeatRun
from instab.studies import heat as study

P = study.Params()


def _fig1(sup_stable, sup_unstable):
    x = np.arange(31.0)
    runs = {r: HeatRun(r, x, np.array([0]), np.zeros((1, x.size)), np.asarray(s, dtype=float))
            for r, s in ((0.4, sup_stable), (0.8, sup_unstable))}
    return study.Fig1(x, np.zeros_like(x), runs)


def test_params_defaults_validate_and_bad_values_are_named():
    assert study.Params.from_namespace(vars(P)).validate() == P
    assert P.r_stable == 0.4 and P.r_unstable == 0.8
    with pytest.raises(ValueError, match="r_values"):
        study.Params(r_values=[0.3, 0.4]).validate()
    with pytest.raises(ValueError, match="rate_window"):
        study.Params(rate_window=1000).validate()
    with pytest.raises(ValueError, match=r"profile_steps\[0\]"):
        study.Params(profile_steps=[-1]).validate()


def test_measured_rate_is_the_geometric_growth_of_the_last_finite_steps():
    sup = np.array([1.0, 2.0, 4.0, 8.0, np.inf])
    assert study.measured_rate(sup, 3) == pytest.approx(2.0)


def test_growth_claims_corrected_where_the_formulas_differ():
    holds = study.GrowthRate(0.8, measured=2.2, predicted=2.2, printed=0.6)
    fails = study.GrowthRate(0.8, measured=0.6, predicted=2.2, printed=0.6)
    [h], [f] = study.growth_claims([holds]), study.growth_claims([fails])
    assert h.name == "r=0.8: growth per step = max|A| derived, not as printed"
    assert (h.ok, h.verdict, h.shown_in) == (True, "corrected", "fig-heat-amplifier")
    assert (f.ok, f.verdict, f.sane) == (False, "refuted", True)  # the data decide


def test_growth_claims_reproduced_where_the_formulas_agree():
    holds = study.GrowthRate(0.4, measured=0.99, predicted=0.99, printed=0.995)
    fails = study.GrowthRate(0.4, measured=0.9, predicted=0.99, printed=0.995)
    [h], [f] = study.growth_claims([holds]), study.growth_claims([fails])
    assert h.name == "r=0.4: growth per step = max|A|"
    assert (h.ok, h.verdict) == (True, "reproduced")
    assert (f.ok, f.verdict, f.sane) == (False, "refuted", True)


def test_decay_claim():
    h = study.decay_claim(_fig1([1.0, 0.5], [1.0, 9.0]), P)
    assert (h.name, h.ok, h.shown_in) == ("r=0.4 decays", True, "fig-heat-profiles")
    assert not study.decay_claim(_fig1([1.0, 1.5], [1.0, 9.0]), P).ok


def test_threshold_claim():
    h = study.threshold_claim(study.Threshold(r_star=0.501, exact=0.5014, cfl=0.5))
    assert (h.name, h.ok, h.paper) == ("stability threshold r* (bisection)", True, 0.5)
    assert not study.threshold_claim(study.Threshold(r_star=0.52, exact=0.5014, cfl=0.5)).ok


def test_one_ulp_claims():
    def ulp(d_stable, d_unstable):
        return {0.4: study.OneUlp(0.4, np.array(d_stable), 0.99), 0.8: study.OneUlp(0.8, np.array(d_unstable), 2.2)}

    att, amp = study.one_ulp_claims(ulp([1e-16, 0.0], [1e-16, 1e-5]), P)
    assert (att.name, att.ok, att.ours) == ("r=0.4: one-ulp difference attenuated", True, 0.0)
    assert (amp.name, amp.ok, amp.shown_in) == ("r=0.8: one-ulp difference amplified", True, "fig-heat-one-ulp")
    att, amp = study.one_ulp_claims(ulp([1e-16, 2e-16], [1e-16, 1e-12]), P)
    assert not att.ok and not amp.ok
    assert study.OneUlp(0.4, np.array([1.0, 0.0, 0.0]), 0.9).zero_steps.tolist() == [1, 2]


@pytest.mark.parametrize("change, message", [
    ({"n_steps": float("inf")}, "n_steps=inf is not allowed; it must be a finite positive integer"),
    ({"n_steps": 1_000_000_000_000}, "n_steps=1000000000000 is not allowed; it must be a positive integer at most"),
    ({"rate_window": 2.5}, "rate_window=2.5 is not allowed; it must be an integer in"),
    ({"profile_steps": [0, 4.5]}, "profile_steps[1]=4.5 is not allowed; it must be an integer in"),
    ({"dx": float("inf")}, "dx=inf is not allowed; it must be a finite positive number"),
    ({"dx": 1e-9}, "the grid may have at most"),
])
def test_bad_values_are_named_before_any_work(change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(study.Params(), **change).validate()
