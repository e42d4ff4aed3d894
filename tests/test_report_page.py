"""The reproducibility report: its numbers are counted from the registry and the build, never
typed into its prose."""

from __future__ import annotations

import re

from instab import book
from instab.book import registry, report_page
from instab.findings import Finding

REPORT = book.ROOT / "book" / "report.md"


def _f(id_: str, kind: str, ci: object, default: object, paper: object, chapter: str = "heat") -> Finding:
    return Finding(id=id_, chapter=chapter, kind=kind, section="§3", quote="the paper's | words", criterion="c",
                   evidence=(id_,), expected={"ci": ci, "default": default, "paper": paper})


FS = [_f("a", "paper", "reproduced", "reproduced", None), _f("b", "paper", "corrected", "corrected", "corrected"),
      _f("c", "paper", ["reproduced", "inconclusive"], "refuted", None, "linear"),
      _f("d", "ours", "extension", "extension", None), _f("e", "control", "fact", "fact", "fact")]


def test_results_count_each_finding_once_per_scale() -> None:
    text = report_page.results(FS, {"a": "reproduced", "b": "corrected", "c": "inconclusive", "d": "extension"}, "ci")
    paper, ours = text.split("**Our own results**")
    assert "**The paper's statements** (3):" in paper
    assert "| reproduced | 1 | 1 | 0 | 1 |" in paper and "| corrected | 1 | 1 | 1 | 1 |" in paper
    assert "| refuted | 0 | 1 | 0 | 0 |" in paper and "| inconclusive | 0 | 0 | 0 | 1 |" in paper
    assert "| decided or inconclusive, by CPU | 1 | 0 | 0 | — |" in paper
    assert "| not executed or not yet reviewed | 0 | 0 | 2 | 0 |" in paper
    assert "(1):" in ours and "| extension | 1 | 1 | 0 | 1 |" in ours and "fact" not in ours


def test_errors_list_each_corrected_or_refuted_statement_once_with_its_words() -> None:
    text = report_page.errors(FS, {}, "ci")
    assert "**Corrected** (1):" in text and "**Refuted** (1):" in text
    assert "**b** — §3, chapter {doc}`heat <heat>`" in text and "**c** — §3, chapter {doc}`linear <linear>`" in text
    assert "> the paper's | words" in text and "**a**" not in text
    assert report_page.errors(FS[:1], {}, "ci").startswith("No statement")


def test_scope_counts_the_registry() -> None:
    fs = registry.registry()
    text = report_page.scope(fs)
    n = {k: sum(f.kind == k for f in fs) for k in ("paper", "ours", "control")}
    assert f"**{n['paper']}** statements of the paper, **{n['ours']}** results of our own" in text
    for chapter in book.chapters():
        assert f"{{doc}}`{chapter} <{chapter}>`" in text


def test_the_report_types_no_number() -> None:
    """Digits in the report's prose are only names (ResNet-56, §5.1, Tables 2 and 6) or maths."""
    text = REPORT.read_text()
    text = re.sub(r"\$[^$]*\$", "", text)  # maths
    text = re.sub(r"\{cite:[pt]\}`[^`]*`", "", text)
    text = re.sub(r"ResNet-56|VGG16-BN|CIFAR-10|Fashion-MNIST|§\d+(\.\d+)*|Tables? \d+( and \d+)?", "", text)
    assert not re.findall(r".{20}\d.{20}", text), "a number typed into book/report.md; glue it from the registry"
    for part in ("_report_scope.md", "_report_results.md", "_report_errors.md", "_report_environments.md"):
        assert f"{{include}} {part}" in REPORT.read_text()


def test_revisions_list_every_finding_changed_after_its_data() -> None:
    f = Finding("a", "heat", "paper", "§3", "q", "c", ("x",), {"ci": "reproduced", "default": "reproduced",
                "paper": None}, revised=({"date": "2026-12-07", "was": "band [0.6, 1.67]", "why": "the paper's own"},))
    g = Finding("b", "heat", "ours", "§3", "q", "c", ("y",), {"ci": "extension", "default": "extension", "paper": None})
    text = report_page.revisions([f, g])
    assert "**a** (paper" in text and "2026-12-07: was — band [0.6, 1.67]  Why — the paper's own" in text
    assert "**b**" not in text and report_page.revisions([g]).startswith("No finding was revised")
    assert "fact" in report_page.ORDER
