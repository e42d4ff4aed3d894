"""Claims, verdicts and the scorecard (instab.report)."""

import json

import pytest

from instab.report import VERDICTS, Results, counts, scorecard


def test_every_claim_needs_a_known_verdict():
    r = Results("x")
    with pytest.raises(TypeError):
        r.claim("a", 1.0, ok=True)  # no verdict
    with pytest.raises(ValueError, match="'proved'.*reproduced"):
        r.claim("a", 1.0, ok=True, verdict="proved")
    with pytest.raises(ValueError, match="inconclusive"):
        r.claim("b", 1.0, ok=False, verdict="inconclusive")
    r.claim("c", 1.0, ok=True, verdict="fact")
    with pytest.raises(ValueError, match="twice"):
        r.claim("c", 2.0, ok=True, verdict="fact")


def test_decide_maps_the_ensemble_decision_to_ok_and_verdict():
    r = Results("x")
    assert r.decide("holds", 1.0, [0.8, 1.2], criterion="c", decision=True, verdict="reproduced") is True
    assert r.decide("undecided", 1.0, [0.1, 9.0], criterion="c", decision=None, verdict="reproduced") is None
    assert r.decide("fails", 5.0, [4.0, 6.0], criterion="c", decision=False, verdict="refuted") is False
    got = {c.name: (c.verdict, c.ok) for c in r.claims}
    assert got == {"holds": ("reproduced", True), "undecided": ("inconclusive", True), "fails": ("refuted", False)}


def test_judge_lets_the_data_pick_the_verdict_and_fails_only_an_insane_measurement():
    r = Results("x")
    assert r.judge("in", 1.0, [0.8, 1.2], criterion="c", holds=True, sane=True) == "reproduced"
    assert r.judge("out", 9.0, [8.0, 10.0], criterion="c", holds=False, sane=True) == "refuted"
    assert r.judge("open", 1.0, [0.1, 9.0], criterion="c", holds=None, sane=True) == "inconclusive"
    r.judge("nan", float("nan"), None, criterion="c", holds=False, sane=False)
    got = {c.name: (c.verdict, c.ok) for c in r.claims}
    assert got == {"in": ("reproduced", True), "out": ("refuted", True), "open": ("inconclusive", True),
                   "nan": ("refuted", False)}


def test_finish_records_the_environment_and_fails_on_a_failed_claim(tmp_path):
    r = Results("x", params={"n": 1})
    r.claim("good", 1.0, ok=True, verdict="reproduced")
    r.finish(tmp_path / "ok.json")
    data = json.loads((tmp_path / "ok.json").read_text())
    assert data["environment"]["name"] in ("native", "aten-default", "mkl-compatible", "avx2", "custom")
    assert data["environment"]["cpu_capability"] and data["claims"][0]["verdict"] == "reproduced"
    r.claim("bad", 2.0, ok=False, verdict="corrected", criterion="< 1")
    with pytest.raises(AssertionError, match="bad"):
        r.finish(tmp_path / "bad.json")
    assert (tmp_path / "bad.json").exists()  # written before failing: the book shows the red row


def test_scorecard_counts_by_verdict_and_groups_rows(tmp_path):
    r = Results("chap")
    r.claim("a fact", 1, ok=True, verdict="fact")
    r.claim("a result", 2, ok=True, verdict="reproduced")
    r.decide("open", 3, [0, 9], criterion="c", decision=None, verdict="reproduced")
    r.claim("a miss", 4, ok=False, verdict="refuted")
    with pytest.raises(AssertionError):
        r.finish(tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text())
    c = counts(data["claims"])
    assert (c["fact"], c["reproduced"], c["inconclusive"], c["refuted"], c["failed"]) == (1, 1, 1, 1, 1)
    card = scorecard([tmp_path / "results.json"])
    assert "Executed under: floating-point environment" in card
    for v in VERDICTS:
        assert f"| {v} |" in card
    rows = [ln for ln in card.splitlines() if ln.startswith("| a ") or ln.startswith("| open")]
    assert [ln.split(" | ")[0] for ln in rows] == ["| a result", "| a miss", "| a fact", "| open"]  # verdict order
    assert "**NO**" in card and "✅" not in card


def test_scorecard_links_a_claim_to_its_figure(tmp_path):
    r = Results("sgd")
    r.claim("Fig. 2 left ResNet-8: growth", 8.0, ok=True, verdict="reproduced", shown_in="fig-sgd-growth")
    r.claim("Table 1 right: error", 1e-7, ok=True, verdict="fact")
    r.finish(tmp_path / "results.json")
    card = scorecard([tmp_path / "results.json"])
    assert "| Fig. 2 left ResNet-8: growth ({numref}`fig-sgd-growth`) |" in card
    assert "| Table 1 right: error |" in card
