"""The momentum chapter's study (instab.studies.momentum): its parameters and its claim rules, on synthetic data."""

import numpy as np
import pytest

from instab.bounds import AlphaBounds
from instab.pde.onelayer import OneLayerRun
from instab.studies import momentum as study

P = study.Params()
SMALL = study.Params(image_size=32, kernel_sizes=[4], mu_kernel=8)  # not the paper's setting
EXACT_MAX = 4 / (2.8 * 1e-8)   # the exact Nesterov limit at μ = 0.9, Δt = 1e-4 (λ_min = 0)
PAPER_MAX = 4 / (3 * 1e-8)     # the paper's (60)


def _run(loss):
    loss = np.array(loss, dtype=float)
    return OneLayerRun(loss=loss, norm=np.where(np.isfinite(loss), [1.0, 1e-4][: loss.size], np.inf),
                       kernel=np.zeros((2, 2)))


def test_params_defaults_validate_and_bad_values_are_named():
    assert study.Params.from_namespace(vars(P)).validate() == P
    assert P.paper_setting and not SMALL.validate().paper_setting
    assert not study.Params(momentum=0.8).paper_setting
    assert P.coefficients == pytest.approx((0.9, 9.5e-9))
    assert list(P.recorded()) == ["image_kind", "image_size", "kernel_sizes", "dt", "momentum", "a", "beta",
                                  "search_steps"]
    for bad, name in [(dict(momentum=1.0), "momentum"), (dict(mu_kernel=8.0), "mu_kernel"),
                      (dict(mu_values=[1.2]), "mu_values"), (dict(kernel_sizes=[True]), "kernel_sizes"),
                      (dict(run_steps=0), "run_steps")]:
        with pytest.raises(ValueError, match=name):
            study.Params(**bad).validate()


def _table6(found_max, reported_max=1.42e8, theory_max=1.333e8):
    rows = [study.Table6Row(w, AlphaBounds(3.8e6, PAPER_MAX), AlphaBounds(3.8e6, EXACT_MAX),
                            AlphaBounds(3.8e6 * 1.001, found_max)) for w in (16, 32)]
    reported = {w: {"alpha_min": 3.9e6, "alpha_max": reported_max} for w in (16, 32)}
    return study.Table6(AlphaBounds(1.07e9, theory_max), rows, reported)


def test_table6_claims_hold():
    claims = study.table6_claims(_table6(EXACT_MAX * 0.999), P)
    names = [c.name for c in claims]
    assert names[:2] == ["Table 6 theory alpha_min (60)–(61)", "Table 6 theory alpha_max (60)–(61)"]
    assert claims[0].criterion.startswith("formulas (60)–(61), unnormalised DFT")
    assert names[2] == "(60)–(61)'s interval from the paper's printed bounds is empty" and claims[2].verdict == "fact"
    assert names[3:5] == ["Table 6 w=16: bisection alpha_min = exact", "Table 6 w=16: bisection alpha_max = exact"]
    # both columns by one rule (3.9e6 against the exact 3.8e6, beyond ± 5e4 on the stable side: corrected)
    assert names[-7:-1] == ["Table 6 w=16: exact alpha_min vs paper's measurement",
                            "Table 6 w=32: exact alpha_min vs paper's measurement",
                            "Table 6: exact alpha_min within the printed precision at every window",
                            "Table 6 w=16: exact alpha_max vs paper's measurement",
                            "Table 6 w=32: exact alpha_max vs paper's measurement",
                            "Table 6: exact alpha_max within the printed precision at every window"]
    assert names[-1] == "paper's measured α_max is closer to our exact bound than to (60)"
    assert all(c.sane for c in claims) and all(c.ok == (c.verdict != "refuted") for c in claims)
    by_name = {c.name: c for c in claims}
    assert by_name["Table 6 w=16: bisection alpha_min = exact"].verdict == "extension"
    assert by_name["Table 6 w=16: bisection alpha_max = exact"].verdict == "corrected"
    assert by_name["Table 6 w=16: bisection alpha_max = exact"].criterion == "within 1%, > 1% from (60)"
    assert by_name[names[-1]].verdict == "corrected"
    assert by_name["Table 6: exact alpha_min within the printed precision at every window"].verdict == "corrected"
    assert len(study.table6_claims(_table6(EXACT_MAX), SMALL)) == len(claims) - 3  # no theory rows off the paper's


def test_table6_claims_fail():
    claims = {c.name: c for c in study.table6_claims(_table6(PAPER_MAX, reported_max=1.34e8), P)}
    assert not claims["Table 6 w=16: bisection alpha_max = exact"].ok     # the run sits on (60), not the exact
    # 1.34e8 lies below the exact limit (the stable side) but by far more than one printed unit: refuted
    assert claims["Table 6 w=16: exact alpha_max vs paper's measurement"].verdict == "refuted"
    near = {c.name: c for c in study.table6_claims(_table6(PAPER_MAX, reported_max=1.42e8), P)}
    assert near["Table 6 w=16: exact alpha_max vs paper's measurement"].verdict == "corrected"
    above = {c.name: c for c in study.table6_claims(_table6(PAPER_MAX, reported_max=1.5e8), P)}
    assert not above["Table 6 w=16: exact alpha_max vs paper's measurement"].ok
    assert not claims["paper's measured α_max is closer to our exact bound than to (60)"].ok


def test_run_claims():
    r = study.Runs(AlphaBounds(1.0, 10.0), AlphaBounds(1.0, 5.0),
                   {2.0: _run([1.0, 0.5]), 7.0: _run([1.0, 0.5]), 20.0: _run([1.0, np.inf])})
    below, between, above = study.run_claims(r)
    assert (below.name, below.ok, below.verdict) == ("run α=2 converges (exact bound)", True, "reproduced")
    assert (between.ok, between.verdict) == (True, "corrected")
    assert between.criterion.endswith("; (60) predicts the opposite")
    assert (above.name, above.ok, above.shown_in) == ("run α=20 overflows (exact bound)", True, "fig-momentum-runs")
    r = study.Runs(AlphaBounds(1.0, 10.0), AlphaBounds(1.0, 5.0), {7.0: _run([1.0, np.inf]), 20.0: _run([1.0, 0.5])})
    assert [c.ok for c in study.run_claims(r)] == [False, False]


def test_mu_claims():
    s = study.MuSweep(np.zeros(1), [0.0], 100.0, [0.0, 0.99], [400.0, 100.5], [400.5, 100.2])
    far, near = study.mu_claims(s)
    assert (far.name, far.ok, far.verdict) == ("μ=0.0: bisection α_max = exact", True, "corrected")
    assert (near.name, near.ok, near.verdict) == ("μ=0.99: bisection α_max = exact", True, "reproduced")
    s = study.MuSweep(np.zeros(1), [0.0], 100.0, [0.0, 0.99], [400.0, 100.5], [100.0, 90.0])
    assert [c.ok for c in study.mu_claims(s)] == [False, False]


def test_damping_claim_reads_the_mu_sweep_both_ways():
    moving = study.MuSweep(np.zeros(2), [], 1.33e8, [0.0, 0.9, 0.99], [4e8, 1.43e8, 1.34e8], [4e8, 1.43e8, 1.34e8])
    assert study.damping_claim(moving).verdict == "refuted" and study.damping_claim(moving).ours > 2.9
    still = study.MuSweep(np.zeros(2), [], 1.33e8, [0.0, 0.9], [1.43e8, 1.43e8], [1.43e8, 1.435e8])
    assert study.damping_claim(still).verdict == "reproduced"
