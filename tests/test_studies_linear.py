"""The linear chapter's study (instab.studies.linear): its parameters and its claim rules, on synthetic data."""

import numpy as np
import pytest

from instab.bounds import AlphaBounds
from instab.pde import images, windowed
from instab.pde.onelayer import OneLayerRun, outcome
from instab.studies import linear as study
from instab.studies import onelayer

P = study.Params()
CI = study.Params(image_size=32, kernel_sizes=[4, 6], fig3_kernel=8, window_sizes=[4, 16], map_kernel=8)


def _run(loss, norm):
    return OneLayerRun(loss=np.array(loss, dtype=float), norm=np.array(norm, dtype=float), kernel=np.zeros((2, 2)))


def test_params_defaults_validate_and_bad_values_are_named():
    assert study.Params.from_namespace(vars(P)).validate() == P
    assert P.paper_setting and not CI.validate().paper_setting
    assert P.recorded() == dict(image_kind="checkerboard", image_size=256, kernel_sizes=[16, 32, 64], dt=1e-8,
                                a=-0.5, beta=1.0, search_steps=300)
    for bad, name in [(dict(image_kind="stripes"), "image_kind"), (dict(kernel_sizes=[1.5]), "kernel_sizes"),
                      (dict(window_sizes=[2.0]), "window_sizes"), (dict(map_alpha_range=[2.0, 1.0]), "map_alpha_range"),
                      (dict(fig3_dtype="float16"), "fig3_dtype"), (dict(a=2.0), "a")]:
        with pytest.raises(ValueError, match=name):
            study.Params(**bad).validate()


def test_outcome_of_runs():
    over = outcome(_run([1.0, 5.0, np.inf], [1.0, 10.0, np.inf]))
    assert over.overflowed and not over.converged and over.overflow_step == 2
    conv = outcome(_run([1.0, 0.7, 0.69], [1.0, 0.1, 1e-4]))
    assert conv.converged and not conv.overflowed and (conv.norm0, conv.norm_end) == (1.0, 1e-4)
    assert not outcome(_run([1.0, 0.7], [1.0, 0.5])).converged


#: Registered findings whose tolerances the shared rules read (bisection alone: 1%; against a
#: paper formula: within 1%, apart 2%; a measurement: 5%).
F, U, M = "linear-bisection-finds-exact-bounds", "momentum-nesterov-upper-bound", "linear-table2-measured-alpha-max"


def test_calibration_claims():
    hold = study.calibration_claims(AlphaBounds(1.074e9, 2e8), "Table 2 theory", "table2_linear.theory",
                                    formula="(13)", shown_in="sec-linear-fourier",
                                    finding="linear-fourier-bounds-13")
    assert [c.name for c in hold] == ["Table 2 theory alpha_min (13)", "Table 2 theory alpha_max (13)"]
    assert all(c.ok and c.verdict == "calibration" for c in hold)
    assert hold[0].criterion == "formula (13), unnormalised DFT: a check of the convention, within 1%"
    fail = study.calibration_claims(AlphaBounds(1.3e9, 2e8), "Table 2 theory", "table2_linear.theory",
                                    formula="(13)", shown_in="x", finding="linear-fourier-bounds-13")
    assert [(c.ok, c.sane) for c in fail] == [(False, False), (True, True)]  # a broken calibration fails
    f = study.Fourier(AlphaBounds(1.074e9, 2e8), np.zeros((2, 2)))
    assert len(study.fourier_claims(f, P)) == 3 and study.fourier_claims(f, CI) == []


def test_empty_interval_is_read_off_the_papers_bounds():
    c = study.empty_interval_claim("table2_linear.theory", "(13)", shown_in="x")
    assert c.verdict == "fact" and c.ok and c.ours == pytest.approx(1.07e9 / 2e8)


def test_bisection_claim_without_and_with_the_papers_bound():
    c = study.bisection_claim("b", 100.5, 100.0, shown_in="s", finding=F)
    assert (c.ok, c.verdict, c.criterion, c.shown_in) == (True, "extension", "within 1%", "s")
    assert not study.bisection_claim("b", 102.0, 100.0, shown_in="s", finding=F).ok
    # the paper's bound apart from the exact one: the run decides (corrected)
    c = study.bisection_claim("b", 100.5, 100.0, 90.0, shown_in="s", finding=U)
    assert (c.ok, c.verdict, c.criterion) == (True, "corrected", "within 1%, > 1% from (60)")
    assert not study.bisection_claim("b", 95.0, 100.0, 90.0, shown_in="s", finding=U).ok
    # the paper's bound agrees with the exact one: reproduced
    c = study.bisection_claim("b", 100.5, 100.0, 101.0, shown_in="s", finding=U)
    assert (c.ok, c.verdict, c.criterion) == (True, "reproduced", "within 1%")
    assert not study.bisection_claim("b", 103.0, 100.0, 101.0, shown_in="s", finding=U).ok


def test_measurement_claim():
    assert study.measurement_claim("m", 104.0, 100.0, shown_in="s", finding=M).ok
    c = study.measurement_claim("m", 106.0, 100.0, shown_in="s", finding=M)
    assert (c.ok, c.verdict, c.criterion) == (False, "refuted", "within 5%")
    c = study.measurement_claim("m", 100.0, 100.0, shown_in="s", finding=M, verdict="fact", criterion="by construction")
    assert (c.ok, c.verdict, c.criterion) == (True, "fact", "by construction")


CONVERGES, OVERFLOWS = _run([1.0, 0.5], [1.0, 1e-4]), _run([1.0, np.inf], [1.0, np.inf])


def test_fig3_claims():
    f = study.Fig3(AlphaBounds(1.0, 10.0), {5.0: CONVERGES, 20.0: OVERFLOWS})
    inside, outside = study.fig3_claims(f)
    assert (inside.name, inside.ok) == ("Fig. 3: α=5 converges", True)
    assert (outside.name, outside.ok, outside.shown_in) == ("Fig. 3: α=20 overflows", True, "fig-linear-fig3")
    f = study.Fig3(AlphaBounds(1.0, 10.0), {5.0: OVERFLOWS, 20.0: CONVERGES})
    assert [c.ok for c in study.fig3_claims(f)] == [False, False]


def test_table2_claims():
    w, n = 4, 32
    closed = 0.25 * (n - w + 1) ** 2 * w * w
    row = windowed.Row(w, (0.0, 4 * closed), AlphaBounds(closed, 2e8), AlphaBounds(closed * 1.001, 2e8 * 0.999))
    table = study.Table2(AlphaBounds(1.0, 2.0), [row], {})
    claims = study.table2_claims(table, CI)
    assert [c.name for c in claims] == ["Table 2 w=4: bisection alpha_min = exact",
                                        "Table 2 w=4: bisection alpha_max = exact",
                                        "w=4: Lanczos α_min = closed form −½aβ(N−w+1)²w²"]
    assert all(c.ok for c in claims)
    # the closed form checks the method: a fact
    assert [c.verdict for c in claims] == ["extension", "extension", "fact"]
    bad = windowed.Row(w, (0.0, 0.0), AlphaBounds(closed * 1.1, 2e8), AlphaBounds(closed * 1.2, 2e8))
    claims = study.table2_claims(study.Table2(AlphaBounds(1.0, 2.0), [bad], {}), CI)
    assert [c.ok for c in claims] == [False, True, False]
    random = study.Params(image_kind="random", image_size=32, kernel_sizes=[4])
    assert len(study.table2_claims(study.Table2(AlphaBounds(1.0, 2.0), [row], {}), random)) == 2
    assert study.Table2(AlphaBounds(1.0, 2.0), [row], {}).text().splitlines()[1].split()[0] == "4"


def test_table2_claims_at_the_papers_windows():
    exact = {w: 0.25 * (257 - w) ** 2 * w * w for w in (16, 32)}  # 3.717e6, 1.296e7
    rows = [windowed.Row(w, (0.0, 4 * e), AlphaBounds(e, 2e8), AlphaBounds(e, 2e8)) for w, e in exact.items()]
    reported = onelayer.reported_windowed("table2_linear.empirical_windowed", P)
    claims = {c.name: c for c in study.table2_claims(study.Table2(AlphaBounds(1.0, 2.0), rows, reported), P)}
    # α_max = 2/Δt = the paper's 2e8 by construction (λ_min(M) = 0): a fact
    mx = claims["Table 2 w=16: exact alpha_max vs paper's measurement"]
    assert (mx.verdict, mx.ok) == ("fact", True) and "by construction" in mx.criterion
    # 3.717e6 does not round to 3.8e6 (±5e4); 1.296e7 rounds to 1.3e7 (±5e5)
    assert claims["Table 2 w=16: exact alpha_min vs paper's measurement"].verdict == "corrected"  # stable side
    assert claims["Table 2 w=32: exact alpha_min vs paper's measurement"].verdict == "reproduced"
    table = claims["Table 2: exact alpha_min within the printed precision at every window"]
    assert (table.verdict, table.ok, table.sane) == ("corrected", True, True)
    assert table.ours == pytest.approx(3.8e6 / exact[16] - 1)
    # a nontrivial upper bound (λ_min(M) > 0) is compared within 5%: evidence, and it can fail
    rows[0] = windowed.Row(16, (1e6, 4 * exact[16]), AlphaBounds(exact[16], 1.8e8), AlphaBounds(exact[16], 1.8e8))
    claims = {c.name: c for c in study.table2_claims(study.Table2(AlphaBounds(1.0, 2.0), rows, reported), P)}
    mx = claims["Table 2 w=16: exact alpha_max vs paper's measurement"]
    assert (mx.verdict, mx.ok, mx.criterion) == ("refuted", False, "within 5%")


def test_precision_claims_both_outcomes():
    hold = study.precision_claims("T", {32: 1.296e7, 64: 3.814e7}, {32: 1.3e7, 64: 3.8e7}, {32: 5e5, 64: 5e5},
                                  shown_in="s")
    assert [c.verdict for c in hold] == ["reproduced"] * 3 and all(c.ok for c in hold)
    assert hold[-1].name == "T: exact alpha_min within the printed precision at every window"
    assert hold[0].criterion.startswith("|paper − exact| ≤ 5e+05 (half its last printed digit, ±3.8%) → reproduced")
    # beyond the printed digit on the stable side (a bisection reads above α_min): corrected with our value
    above = study.precision_claims("T", {32: 1.296e7, 64: 3.814e7}, {32: 1.3e7, 64: 3.9e7}, {32: 5e5, 64: 5e5},
                                   shown_in="s")
    assert [c.verdict for c in above] == ["reproduced", "corrected", "corrected"] and all(c.ok for c in above)
    assert above[-1].ours == pytest.approx(3.9e7 / 3.814e7 - 1)
    assert study.precision_text(above) == "w = 32: +0.3% (reproduced), w = 64: +2.3% (corrected)"
    # more than one printed unit beyond, even on the stable side: refuted
    far = study.precision_claims("T", {64: 3.814e7}, {64: 4.1e7}, {64: 5e5}, shown_in="s")
    assert [c.verdict for c in far] == ["refuted", "refuted"]
    # on the unstable side (the paper calls an unstable α stable): refuted, and so is the column
    below = study.precision_claims("T", {32: 1.296e7, 64: 3.814e7}, {32: 1.3e7, 64: 3.7e7}, {32: 5e5, 64: 5e5},
                                   shown_in="s")
    # a column that holds in part is corrected (the rule of every finding with rows); all refuted, refuted
    assert [c.verdict for c in below] == ["reproduced", "refuted", "corrected"] and all(c.sane for c in below)
    assert study.column_verdict(["refuted", "refuted"]) == (False, "reproduced")  # claim(ok=False) → refuted
    # the upper bound: the stable side is below it
    upper = study.precision_claims("T", {16: 1.4286e8}, {16: 1.42e8}, {16: 5e5}, shown_in="s", bound="alpha_max")
    assert [c.verdict for c in upper] == ["corrected", "corrected"]
    assert study.precision_claims("T", {16: 1.4286e8}, {16: 1.44e8}, {16: 5e5}, shown_in="s",
                                  bound="alpha_max")[0].verdict == "refuted"
    assert study.precision_text([]) == "(not at the paper's setting)"
    assert study.precision_claims("T", {16: 1.0}, {}, {}, shown_in="s") == []
    assert not study.precision_claims("T", {16: float("nan")}, {16: 1.0}, {16: 0.05}, shown_in="s")[0].sane
    with pytest.raises(ValueError, match="bound='alpha'"):
        study.measured_bound_verdict(1.0, 1.0, 0.1, "alpha")


def test_window_claims():
    f = study.Fourier(AlphaBounds(100.0, 2.0), np.zeros((2, 2)))
    p = study.Params(image_size=32, window_sizes=[1, 16])
    fact, valid = study.window_claims(np.array([10.0, 40.0]), f, p)
    assert (fact.ok, fact.verdict, valid.ok, valid.verdict, valid.sane) == (True, "fact", False, "refuted", True)
    assert valid.name == "windowed α_min (valid correlation) approaches (13) as the window grows"
    assert valid.criterion.startswith("valid correlation, checkerboard 32², w ≤ 16")
    # the data decide: within 5% of (13) reproduced, between ½ and 95% inconclusive
    assert study.window_claims(np.array([10.0, 96.0]), f, p)[1].verdict == "reproduced"
    assert study.window_claims(np.array([10.0, 70.0]), f, p)[1].verdict == "inconclusive"
    fact, _ = study.window_claims(np.array([10.0, 101.0]), f, p)
    assert not fact.ok
    assert len(study.window_claims(np.array([10.0]), f, study.Params(image_size=32, window_sizes=[4]))) == 1


def test_padded_correlations_and_top_eigenvalue():
    from instab.pde.correlate import padded

    image = np.arange(16.0).reshape(4, 4)
    assert padded(image, 3, "valid") is image
    assert padded(image, 3, "full").shape == (8, 8) and padded(image, 3, "full")[:2].sum() == 0
    assert np.array_equal(padded(image, 3, "circular")[4:, :4], image[:2])
    with pytest.raises(ValueError, match="correlation"):
        padded(image, 3, "same")
    with pytest.raises(ValueError, match="circular"):
        padded(image, 5, "circular")
    # the pixel checkerboard: valid λ_max = (N−w+1)²w² (rank one); circular at w = N is max|Î|² = N⁴;
    # full at w = N is (Σ_{|d|<N} (N−|d|)·(top eigenvector))² — the 1-D Toeplitz bound squared
    board = images.make("checkerboard", 8)
    assert windowed.top_eigenvalue(board, 4) == pytest.approx(25.0 * 16.0)
    assert windowed.top_eigenvalue(padded(board, 8, "circular"), 8) == pytest.approx(8.0**4)
    i = np.arange(8)
    toeplitz = np.clip(8 - np.abs(i[:, None] - i[None, :]), 0, None).astype(float)
    assert windowed.top_eigenvalue(padded(board, 8, "full"), 8) == pytest.approx(np.linalg.eigvalsh(toeplitz)[-1] ** 2)
    big = images.make("checkerboard", 16)  # Lanczos (w² > 64) against the same closed form
    assert windowed.top_eigenvalue(big, 9) == pytest.approx(64.0 * 81.0, rel=1e-8)


def _continuum(last_row, first_row=None):
    rows = [first_row or last_row, last_row]
    return study.Continuum([8, 16], [1.0, 2.0, 4.0], np.array(rows), [1.0, 1.0])


def test_continuum_claims_both_outcomes():
    p = study.Params()
    [c] = study.continuum_claims(_continuum([0.46, 0.92, 0.977]), p)
    assert (c.verdict, c.ok, c.shown_in) == ("reproduced", True, "sec-linear-continuum")
    assert c.criterion.startswith("full correlation, checkerboard 16², w = 1N…4N")
    # stalls far from (13): refuted; moves away: refuted; still approaching but not within 5%: inconclusive
    assert study.continuum_claims(_continuum([0.40, 0.50, 0.51]), p)[0].verdict == "refuted"
    assert study.continuum_claims(_continuum([0.40, 0.50, 0.45]), p)[0].verdict == "refuted"
    assert study.continuum_claims(_continuum([0.40, 0.60, 0.80]), p)[0].verdict == "inconclusive"
    assert not study.continuum_claims(_continuum([0.4, 0.5, float("nan")]), p)[0].sane
    cont = _continuum([0.46, 0.92, 0.977], [0.47, 0.92, 0.975])
    assert cont.size_spread == pytest.approx(0.01) and cont.windows(16) == [16, 32, 64]
    assert cont.lines()[2].startswith("  16 |    0.4600")


def test_continuum_of_a_small_checkerboard():
    p = study.Params(continuum_sizes=[4, 8], continuum_factors=[1.0, 2.0])
    c = study.continuum(p)
    assert c.ratio.shape == (2, 2) and np.allclose(c.circular, 1.0)
    assert np.all(np.diff(c.ratio, axis=1) > 0) and c.size_spread < 0.02


def test_map_claims():
    grows = np.array([[False, True], [False, True]])
    m = windowed.StabilityMap(np.ones(2), np.ones(2), grows, grows.copy(), (0.0, 1.0))
    none, agree = study.map_claims(m)
    assert (none.ours, none.ok, agree.ours, agree.ok) == (0, True, 1.0, True)
    m = windowed.StabilityMap(np.ones(2), np.ones(2), grows, np.array([[False, False], [True, True]]), (0.0, 1.0))
    none, agree = study.map_claims(m)
    assert (none.ours, none.ok, agree.ours, agree.ok) == (1, False, 0.5, False)


def test_cell_edges_are_geometric_midpoints():
    np.testing.assert_allclose(study.cell_edges(np.array([1.0, 100.0, 1e4])), [0.1, 10.0, 1e3, 1e5])
