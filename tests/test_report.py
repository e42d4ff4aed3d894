"""Claims, verdicts and the scorecard (instab.report)."""

import json

import pytest

from instab.report import VERDICTS, Results, claim, counts, decide, judge, scorecard


def test_every_claim_needs_a_known_verdict_and_only_the_data_refute():
    r = Results("x")
    with pytest.raises(TypeError):
        claim("a", 1.0, ok=True)  # no verdict
    with pytest.raises(ValueError, match="'proved'.*reproduced"):
        claim("a", 1.0, ok=True, verdict="proved")
    for outcome in ("refuted", "inconclusive"):  # outcomes the data give, never labels a rule types
        with pytest.raises(ValueError, match="outcomes the data give"):
            claim("b", 1.0, ok=True, verdict=outcome)
    with pytest.raises(ValueError, match="if_fails"):
        claim("b", 1.0, ok=False, verdict="reproduced", if_fails="inconclusive")
    r.record(claim("c", 1.0, ok=True, verdict="fact"))
    with pytest.raises(ValueError, match="twice"):
        r.record(claim("c", 2.0, ok=True, verdict="fact"))


def test_a_criterion_that_fails_refutes_and_only_an_insane_measurement_fails():
    got = {c.name: (c.verdict, c.ok, c.sane) for c in [
        claim("holds", 1.0, ok=True, verdict="corrected"),
        claim("fails", 2.0, ok=False, verdict="corrected"),
        claim("fails, alternative", 2.0, ok=False, verdict="reproduced", if_fails="extension"),
        claim("open", 2.0, ok=None, verdict="extension"),
        claim("nan", float("nan"), ok=True, verdict="reproduced"),
        claim("nan in interval", 1.0, interval=[0.0, float("nan")], ok=True, verdict="reproduced"),
        claim("inf is an outcome", float("inf"), ok=True, verdict="reproduced"),
        claim("said insane", 1.0, ok=True, verdict="reproduced", sane=False),
        claim("broken control", 1.0, ok=False, verdict="fact"),
        claim("broken calibration", 1.0, ok=False, verdict="calibration"),
    ]}
    assert got == {"holds": ("corrected", True, True), "fails": ("refuted", False, True),
                   "fails, alternative": ("extension", False, True), "open": ("inconclusive", True, True),
                   "nan": ("reproduced", True, False), "nan in interval": ("reproduced", True, False),
                   "inf is an outcome": ("reproduced", True, True), "said insane": ("reproduced", True, False),
                   "broken control": ("refuted", False, False), "broken calibration": ("refuted", False, False)}


def test_decide_maps_the_ensemble_decision_to_the_verdict():
    got = {c.name: (c.verdict, c.ok, c.sane) for c in [
        decide("holds", 1.0, [0.8, 1.2], criterion="c", decision=True, verdict="reproduced"),
        decide("undecided", 1.0, [0.1, 9.0], criterion="c", decision=None, verdict="reproduced"),
        decide("fails", 5.0, [4.0, 6.0], criterion="c", decision=False, verdict="reproduced"),
        decide("control fails", 5.0, [4.0, 6.0], criterion="c", decision=False, verdict="fact")]}
    assert got == {"holds": ("reproduced", True, True), "undecided": ("inconclusive", True, True),
                   "fails": ("refuted", False, True), "control fails": ("refuted", False, False)}


def test_judge_lets_the_data_pick_the_verdict_and_fails_only_an_insane_measurement():
    got = {c.name: (c.verdict, c.ok, c.sane) for c in [
        judge("in", 1.0, [0.8, 1.2], criterion="c", holds=True, sane=True),
        judge("out", 9.0, [8.0, 10.0], criterion="c", holds=False, sane=True),
        judge("open", 1.0, [0.1, 9.0], criterion="c", holds=None, sane=True),
        judge("ours", 1.0, None, criterion="c", holds=True, sane=True, if_holds="extension"),
        judge("nan", float("nan"), None, criterion="c", holds=False, sane=False)]}
    assert got == {"in": ("reproduced", True, True), "out": ("refuted", False, True),
                   "open": ("inconclusive", True, True), "ours": ("extension", True, True),
                   "nan": ("refuted", False, False)}


def test_finish_records_the_environment_and_fails_only_on_an_insane_claim(tmp_path):
    r = Results("x", params={"n": 1})
    r.record(claim("good", 1.0, ok=True, verdict="reproduced"), claim("refuted", 2.0, ok=False, verdict="reproduced"))
    r.finish(tmp_path / "ok.json")  # a refutation is a result, not a failure
    data = json.loads((tmp_path / "ok.json").read_text())
    assert data["environment"]["name"] in ("native", "aten-default", "mkl-compatible", "avx2", "custom")
    assert data["environment"]["cpu_capability"] and data["claims"][0]["verdict"] == "reproduced"
    assert [(c["verdict"], c["sane"]) for c in data["claims"]] == [("reproduced", True), ("refuted", True)]
    r.record(claim("bad", float("nan"), verdict="corrected", criterion="< 1", ok=False))
    with pytest.raises(AssertionError, match="bad"):
        r.finish(tmp_path / "bad.json")
    assert (tmp_path / "bad.json").exists()  # written before failing: the book shows the red row


def test_scorecard_counts_by_verdict_and_groups_rows(tmp_path):
    r = Results("chap")
    r.record(claim("a fact", 1, ok=True, verdict="fact"), claim("a result", 2, ok=True, verdict="reproduced"),
             decide("open", 3, [0, 9], criterion="c", decision=None, verdict="reproduced"),
             claim("a miss", 4, ok=False, verdict="reproduced"),
             claim("a broken", float("nan"), ok=True, verdict="reproduced"))
    with pytest.raises(AssertionError):
        r.finish(tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text())
    c = counts(data["claims"])
    assert (c["fact"], c["reproduced"], c["inconclusive"], c["refuted"], c["failed"]) == (1, 2, 1, 1, 1)
    assert counts([{"ok": False, "verdict": "refuted"}])["failed"] == 1  # results written before `sane`
    card = scorecard([tmp_path / "results.json"])
    assert "Executed under: floating-point environment" in card
    for v in VERDICTS:
        assert f"| {v} |" in card
    rows = [ln for ln in card.splitlines() if ln.startswith("| a ") or ln.startswith("| open")]
    assert [ln.split(" | ")[0] for ln in rows] == ["| a result", "| a broken", "| a miss", "| a fact", "| open"]
    assert "**not sane**" in card and "| reproduced | no |" not in card and "| refuted | no |" in card


def test_scorecard_links_a_claim_to_its_figure(tmp_path):
    r = Results("sgd")
    r.record(claim("Fig. 2 left ResNet-8: growth", 8.0, ok=True, verdict="reproduced", shown_in="fig-sgd-growth"),
             claim("Table 1 right: error", 1e-7, ok=True, verdict="fact"))
    r.finish(tmp_path / "results.json")
    card = scorecard([tmp_path / "results.json"])
    assert "| Fig. 2 left ResNet-8: growth ({numref}`fig-sgd-growth`) |" in card
    assert "| Table 1 right: error |" in card
