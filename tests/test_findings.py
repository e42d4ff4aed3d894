"""The findings registry: its schema, and the check that fails a build whose verdicts moved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from instab import findings, paths

ENTRY = {"id": "heat-cfl", "chapter": "heat", "kind": "paper", "section": "§3", "quote": "stable for r < 1/2",
         "criterion": "bisection within 1e-6", "evidence": ["threshold", "r=0.4: *"],
         "expected": {"ci": "reproduced", "default": "reproduced", "paper": None}}


def _write(tmp_path: Path, *entries: dict) -> Path:
    p = tmp_path / "findings.yml"
    p.write_text(yaml.safe_dump({"findings": list(entries)}, allow_unicode=True))
    return p


def _row(name: str, verdict: str = "reproduced", ok: bool = True, ours: float = 0.5) -> dict:
    return {"name": name, "ours": ours, "verdict": verdict, "ok": ok}


def test_a_valid_registry_loads(tmp_path: Path) -> None:
    (f,) = findings.load(_write(tmp_path, ENTRY), ["heat"])
    assert f.matches("r=0.4: growth") and f.matches("threshold") and not f.matches("threshold 2")


@pytest.mark.parametrize("change, message", [
    ({"kind": "guess"}, "kind='guess' is not allowed"),
    ({"chapter": "nope"}, "chapter='nope' is not a chapter"),
    ({"expected": {"ci": "proven", "default": "reproduced", "paper": None}}, "expected.ci='proven'"),
    ({"expected": {"ci": "reproduced"}}, "a verdict (or null) for each of"),
    ({"expected": {"ci": "inconclusive", "default": "reproduced", "paper": None}}, "say why (why_scale)"),
    ({"evidence": []}, "evidence must be a non-empty list"),
    ({"kind": "control"}, "a control's expected verdict is 'fact'"),
    ({"colour": "red"}, "unknown field(s) ['colour']"),
    ({"kind": "ours"}, "a finding of ours holds as 'extension'"),
    ({"revised": [{"date": "2026-12-07", "was": "x"}]}, "revised must be a list of {date, was, why}"),
])
def test_a_bad_entry_is_named(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(findings.RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        findings.load(_write(tmp_path, {**ENTRY, **change}), ["heat"])


def test_a_yaml_error_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "findings.yml"
    p.write_text("findings: [\n  - id: x\n")
    with pytest.raises(findings.RegistryError, match=str(p)):
        findings.load(p)


def test_twice_used_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(findings.RegistryError, match="used twice"):
        findings.load(_write(tmp_path, ENTRY, ENTRY))


def test_the_verdict_comes_from_the_rows() -> None:
    f = findings.Finding("x", "heat", "paper", "§3", "q", "c", ("a*",), {"ci": "reproduced"})
    assert findings.verdict_of(f, [_row("a1"), _row("a2")]) == ("reproduced", "")
    assert findings.verdict_of(f, [_row("a1"), _row("a2", ok=False)]) == ("failed", "")
    assert findings.verdict_of(f, []) == (None, "")
    assert findings.verdict_of(f, [_row("a1"), _row("a2", "inconclusive")]) == ("inconclusive", "")
    # true on part of its range, false on the rest: corrected (the book states where it holds)
    assert findings.verdict_of(f, [_row("a1"), _row("a2", "refuted"), _row("a3", "inconclusive")]) == ("corrected", "")
    assert findings.verdict_of(f, [_row("a1", "refuted"), _row("a2", "inconclusive")]) == ("inconclusive", "")
    # holding in one setting and corrected in another: corrected
    assert findings.verdict_of(f, [_row("a1"), _row("a2", "corrected")]) == ("corrected", "")
    v, why = findings.verdict_of(f, [_row("a1"), _row("a2", "extension")])
    assert v is None and "disagree" in why
    g = dataclasses.replace(f, decided_by=("a1",))
    assert findings.verdict_of(g, [_row("a1"), _row("a2", "inconclusive")]) == ("reproduced", "")


def test_the_check_fails_when_a_verdict_moves_or_a_claim_is_unregistered(tmp_path: Path) -> None:
    fs = findings.load(_write(tmp_path, ENTRY), ["heat"])
    results = {"heat": {"claims": [_row("threshold"), _row("r=0.4: growth")]}}
    verdicts, problems = findings.check(fs, results, "ci")
    assert verdicts == {"heat-cfl": "reproduced"} and problems == []
    # the registry expects another verdict: the check names the finding, both verdicts and the numbers
    moved = findings.load(_write(tmp_path, {**ENTRY, "expected": {"ci": "refuted", "default": "refuted",
                                                                 "paper": None}}), ["heat"])
    _, problems = findings.check(moved, results, "ci")
    assert problems == ["heat-cfl: verdict reproduced at the ci scale, the registry expects refuted: "
                        "threshold = 0.5 (reproduced); r=0.4: growth = 0.5 (reproduced)"]
    # the data move instead
    results["heat"]["claims"][1] = _row("r=0.4: growth", "extension")
    _, problems = findings.check(fs, results, "ci")
    assert len(problems) == 1 and "disagree" in problems[0]
    # a claim no finding names
    _, problems = findings.check(fs, {"heat": {"claims": [_row("threshold"), _row("new claim")]}}, "ci")
    assert problems == ["heat: claim 'new claim' belongs to no finding of the registry"]
    # a finding expected at this scale with no evidence
    _, problems = findings.check(fs, {"heat": {"claims": []}}, "ci")
    assert "no claim of heat is its evidence" in problems[0]


def test_a_claim_in_two_findings_is_a_problem(tmp_path: Path) -> None:
    other = {**ENTRY, "id": "heat-other", "evidence": ["r=0.4: growth"]}
    fs = findings.load(_write(tmp_path, ENTRY, other), ["heat"])
    _, problems = findings.check(fs, {"heat": {"claims": [_row("threshold"), _row("r=0.4: growth")]}}, "ci")
    assert problems[0] == "heat: claim 'r=0.4: growth' belongs to 2 findings ['heat-cfl', 'heat-other']"


def test_counts_count_each_finding_once_and_controls_apart() -> None:
    f = findings.Finding("a", "heat", "paper", "", "", "", ("x",), {})
    c = findings.Finding("b", "heat", "control", "", "", "", ("y",), {})
    n = findings.counts([f, c], {"a": "reproduced", "b": "fact"})
    assert n["reproduced"] == 1 and n["fact"] == 0


def test_the_verdict_table_shows_every_scale_and_marks_a_moved_verdict() -> None:
    f = findings.Finding("a", "heat", "paper", "§3", "q", "c", ("x",), {"ci": "inconclusive", "default":
                         "reproduced", "paper": None}, why_scale="3 × 3 is too small.")
    c = findings.Finding("b", "heat", "control", "", "", "", ("y",), {"ci": "fact", "default": "fact",
                         "paper": None})
    table = findings.verdict_table([f, c], {"a": "reproduced", "b": "fact"}, "ci", ["a: moved"])
    assert "- a: moved" in table
    assert "| a — *3 × 3 is too small.* | {doc}`heat <heat>` | §3 | inconclusive · reproduced · — | " \
           "reproduced ≠ expected ({ref}`rows <scorecard-heat>`) |" in table
    assert "| b (control) |" in table
    assert "| reproduced | 1 | 0 |" in table and "1 about the paper, 0 of our own, and 1 controls" in table
    # a finding the scale does not decide says so, and a revision is listed with its reason
    g = dataclasses.replace(f, expected={"ci": ["refuted", "inconclusive"], "default": "reproduced", "paper": None},
                            revised=({"date": "2026-12-07", "was": "ci inconclusive", "why": "a 3 × 3 grid"},))
    table = findings.verdict_table([g], {"a": "inconclusive"}, "ci")
    assert "inconclusive (not decided at the ci scale: refuted or inconclusive are accepted)" in table
    assert "**revised** 2026-12-07 (was: ci inconclusive; why: a 3 × 3 grid)" in table


def test_a_scale_too_small_to_decide_may_allow_a_verdict_or_inconclusive(tmp_path: Path) -> None:
    entry = {**ENTRY, "expected": {"ci": ["reproduced", "inconclusive"], "default": "reproduced", "paper": None},
             "why_scale": "3 × 3 decides on some CPUs only."}
    fs = findings.load(_write(tmp_path, entry), ["heat"])
    assert findings.allowed(fs[0], "ci") == ("reproduced", "inconclusive")
    for v in ("reproduced", "inconclusive"):
        assert findings.check(fs, {"heat": {"claims": [_row("threshold", v)]}}, "ci")[1] == []
    _, problems = findings.check(fs, {"heat": {"claims": [_row("threshold", "refuted")]}}, "ci")
    assert problems == ["heat-cfl: verdict refuted at the ci scale, the registry expects reproduced or "
                        "inconclusive: threshold = 0.5 (refuted)"]
    bad = {**entry, "expected": {"ci": ["reproduced", "refuted"], "default": "reproduced", "paper": None}}
    with pytest.raises(findings.RegistryError, match="a list names decided verdicts and 'inconclusive'"):
        findings.load(_write(tmp_path, bad), ["heat"])


def _registry_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fid: str, **change: object) -> Path:
    """A copy of the book's registry with one finding changed, made the registry the code reads."""
    from instab import paths

    raw = yaml.safe_load(paths.REGISTRY.read_text())
    (entry,) = [e for e in raw["findings"] if e["id"] == fid]
    entry.update(change)
    p = tmp_path / "findings.yml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    monkeypatch.setattr(paths, "REGISTRY", p)
    return p


def test_a_rule_reads_its_tolerance_from_the_registry_and_a_changed_one_fails_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tighten heat-cfl-threshold's tolerance below what the data show: the chapter's rule now
    refutes, and the check names the finding until the registry or the data are reviewed."""
    from instab import paths
    from instab.studies import heat

    book = findings.load(paths.REGISTRY)
    measured = heat.Threshold(0.503, 0.5, 0.5)
    assert findings.tolerance("heat-cfl-threshold") == 0.01
    rows = [dataclasses.asdict(heat.threshold_claim(measured))]
    assert rows[0]["verdict"] == "reproduced" and rows[0]["criterion"] == "within 1% of 1/2"
    verdict = findings.verdict_of(next(f for f in book if f.id == "heat-cfl-threshold"), rows)
    assert verdict == ("reproduced", "")
    _registry_with(tmp_path, monkeypatch, "heat-cfl-threshold", tolerance=0.001)
    assert findings.tolerance("heat-cfl-threshold") == 0.001
    tight = dataclasses.asdict(heat.threshold_claim(measured))
    assert (tight["verdict"], tight["criterion"]) == ("refuted", "within 0.1% of 1/2")
    fs = findings.load(paths.REGISTRY)
    _, problems = findings.check(fs, {"heat": {"claims": [tight]}}, "ci")
    assert any(p.startswith("heat-cfl-threshold: verdict refuted at the ci scale, the registry expects reproduced")
               for p in problems)


def test_a_changed_tolerance_re_executes_the_chapter_a_changed_expectation_only_re_checks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from instab.book import sources

    before = sources.content_hash("heat", "ci")
    _registry_with(tmp_path, monkeypatch, "heat-cfl-threshold",
                   expected={"ci": "refuted", "default": "refuted", "paper": None})
    assert sources.content_hash("heat", "ci") == before  # the build re-checks the verdict, no re-run
    _registry_with(tmp_path, monkeypatch, "heat-cfl-threshold", tolerance=0.02)
    assert sources.content_hash("heat", "ci") != before
    assert sources.content_hash("linear", "ci") == sources.content_hash("linear", "ci")


def test_tolerances_are_checked_and_named(tmp_path: Path) -> None:
    for bad in (0, -1, float("inf"), "1%", {"a": 0}, True):
        with pytest.raises(findings.RegistryError, match="tolerance"):
            findings.load(_write(tmp_path, {**ENTRY, "tolerance": bad, "criterion": "within {tol}"}))
    p = _write(tmp_path, {**ENTRY, "tolerance": {"near": 0.01}, "criterion": "bisection within {tol.near}"},
               {**ENTRY, "id": "other"})
    assert findings.tolerance("heat-cfl", "near", path=p) == 0.01
    with pytest.raises(KeyError, match="'far'.*near"):
        findings.tolerance("heat-cfl", "far", path=p)
    with pytest.raises(KeyError, match="no tolerance"):
        findings.tolerance("other", path=p)
    with pytest.raises(KeyError, match="not in the registry"):
        findings.tolerance("missing", path=p)


def test_one_sentence_of_the_paper_is_one_finding() -> None:
    a = findings.Finding("a", "heat", "paper", "§3", "Lower than some minimum learning rate, the floating point "
                         "perturbation gets attenuated and higher than that value errors are amplified.", "c", ("x",),
                         {"ci": "reproduced", "default": "reproduced", "paper": None})
    b = dataclasses.replace(a, id="b", quote="… the floating point perturbation gets attenuated and higher than "
                                             "that value errors are amplified, suggesting an instability.")
    ours = dataclasses.replace(b, id="c", kind="ours")
    assert findings.overlapping_quotes([a, b]) == [
        "a and b quote the same text: 'the floating point perturbation gets attenuated and higher than that "
        "value errors…'"]
    assert findings.overlapping_quotes([a, ours]) == []  # our own findings may quote the sentence they extend
    real = findings.load(Path(__file__).parents[1] / "book" / "findings.yml")
    assert findings.overlapping_quotes(real) == []


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "findings.yml"
    p.write_text(yaml.safe_dump({"findings": [ENTRY]}, allow_unicode=True).replace(
        "  expected:", "  why_scale: one\n  why_scale: two\n  expected:", 1))
    with pytest.raises(findings.RegistryError, match="key 'why_scale' given twice"):
        findings.load(p, ["heat"])


def test_robust_tolerates_a_row_that_moves_while_its_finding_stays_allowed() -> None:
    from instab.book.robustness import _finding_holds

    f = findings.Finding("x", "heat", "paper", "§3", "q", "c", ("sweep*",),
                         {"ci": ["corrected", "inconclusive"], "default": "reproduced", "paper": None})
    claims = {("heat", "native"): [_row("sweep a"), _row("sweep b", "inconclusive")],
              ("heat", "avx2"): [_row("sweep a"), _row("sweep b", "refuted")]}
    assert _finding_holds(f, "heat", "ci", ["native", "avx2"], claims)  # inconclusive, then corrected
    claims[("heat", "avx2")] = [_row("sweep a", "refuted"), _row("sweep b", "refuted")]
    assert not _finding_holds(f, "heat", "ci", ["native", "avx2"], claims)  # refuted is not allowed


def test_robust_refuses_rows_that_are_each_allowed_but_split_the_finding() -> None:
    from instab.book.robustness import _finding_holds

    f = findings.Finding("x", "heat", "paper", "§3", "q", "c", ("sweep*",),
                         {"ci": ["reproduced", "refuted", "inconclusive"], "default": "reproduced",
                          "paper": None})
    claims = {("heat", "native"): [_row("sweep a"), _row("sweep b")],
              ("heat", "avx2"): [_row("sweep a"), _row("sweep b", "refuted")]}
    # each row's verdict is one the registry allows, but together they make the finding corrected
    assert not _finding_holds(f, "heat", "ci", ["native", "avx2"], claims)


def test_a_criterion_writes_its_tolerances_from_the_registry() -> None:
    assert findings.render_criterion("within {tol%} of 1/2", 0.01) == "within 1% of 1/2"
    assert findings.render_criterion("≥ {tol.decades} decades below {tol.first_max}",
                                     {"decades": 3, "first_max": 1e-6}) == "≥ 3 decades below 1e-06"
    assert findings.render_criterion("2^{-22}, no tolerance", None) == "2^{-22}, no tolerance"
    with pytest.raises(findings.RegistryError, match=r"does not name its tolerance \(\{tol.share\}\)"):
        findings.render_criterion("≥ {tol.decades} decades", {"decades": 3, "share": 0.9})
    with pytest.raises(findings.RegistryError, match=r"names '\{tol.x\}'"):
        findings.render_criterion("{tol.x}", 0.5)


def test_every_registered_tolerance_is_named_in_its_criterion() -> None:
    raw = yaml.safe_load(paths.REGISTRY.read_text())["findings"]
    loaded = {f.id: f for f in findings.load(paths.REGISTRY)}
    for e in raw:
        tol = e.get("tolerance")
        if tol is None:
            continue
        keys = [f"{{tol.{k}" for k in tol] if isinstance(tol, dict) else ["{tol"]
        assert all(k in e["criterion"] for k in keys), e["id"]
        assert "{tol" not in loaded[e["id"]].criterion, e["id"]


def test_a_fact_beside_evidence_is_shown_not_counted() -> None:
    f = findings.Finding("a", "heat", "paper", "§3", "q", "c", ("x*",),
                         {"ci": "corrected", "default": "corrected", "paper": None})
    rows = [{"name": "x1", "verdict": "fact", "ok": True, "sane": True},
            {"name": "x2", "verdict": "refuted", "ok": False, "sane": True},
            {"name": "x3", "verdict": "reproduced", "ok": True, "sane": True}]
    assert findings.verdict_of(f, rows) == ("corrected", "")
    assert findings.verdict_of(f, rows[:1]) == ("fact", "")


def test_rows_that_decide_one_way_beside_rows_that_cannot_leave_a_finding_undecided() -> None:
    f = findings.Finding("a", "heat", "paper", "§3", "q", "c", ("x*",),
                         {"ci": "inconclusive", "default": "corrected", "paper": None})

    def rows(*vs: str) -> list[dict]:
        return [{"name": f"x{i}", "verdict": v, "ok": v != "refuted", "sane": True} for i, v in enumerate(vs)]

    assert findings.verdict_of(f, rows("reproduced", "inconclusive")) == ("inconclusive", "")
    assert findings.verdict_of(f, rows("refuted", "inconclusive")) == ("inconclusive", "")
    assert findings.verdict_of(f, rows("reproduced", "corrected")) == ("corrected", "")
    # a correction is needed somewhere, whatever the rows that cannot decide would say
    assert findings.verdict_of(f, rows("reproduced", "corrected", "inconclusive")) == ("corrected", "")
    assert findings.verdict_of(f, rows("corrected", "inconclusive")) == ("corrected", "")
    assert findings.verdict_of(f, rows("reproduced", "refuted", "inconclusive")) == ("corrected", "")
    assert findings.verdict_of(f, rows("extension", "refuted"))[0] is None  # a problem: say which rows decide
