"""The reproducibility report's generated parts (``book/report.md`` includes them): its scope, its
results and the paper's errors found — every number counted from the findings registry
(``book/findings.yml``) and this build's computed verdicts, never typed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from instab import findings
from instab.findings import Finding

#: The verdicts a finding about the paper can have, in the report's order.
ORDER = ("reproduced", "corrected", "refuted", "inconclusive", "calibration", "extension", "fact", "failed")
#: Verdicts that say the paper is wrong.
ERRORS = ("corrected", "refuted")


def _expected(f: Finding, scale: str) -> str | None:
    """The registry's expected verdict at ``scale`` as one word (a decided-or-inconclusive pair as
    its decided verdict: the pair is counted apart, :func:`_undecided`)."""
    v = f.expected.get(scale)
    return v[0] if isinstance(v, list) else v


def _undecided(f: Finding, scale: str) -> bool:
    return isinstance(f.expected.get(scale), list)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def scope(fs: Sequence[Finding]) -> str:
    """Per chapter: the paper's sections it tests, its findings by kind, and the scales the registry
    has reviewed verdicts for."""
    chapters = list(dict.fromkeys(f.chapter for f in fs))
    lines = ["| chapter | the paper's statements | ours | controls | reviewed at |", "|---|---|---|---|---|"]
    for c in chapters:
        mine = [f for f in fs if f.chapter == c]
        kinds = Counter(f.kind for f in mine)
        scales = [s for s in findings.SCALES if any(f.expected.get(s) is not None for f in mine)]
        lines.append(f"| {{doc}}`{c} <{c}>` | {kinds['paper']} | {kinds['ours']} | {kinds['control']} | "
                     f"{', '.join(scales)} |")
    kinds = Counter(f.kind for f in fs)
    lines += ["", f"In all: **{kinds['paper']}** statements of the paper, **{kinds['ours']}** results of our own and "
                  f"**{kinds['control']}** controls of the machinery (not counted as evidence), in "
                  f"{len(chapters)} chapters."]
    return "\n".join(lines) + "\n"


def results(fs: Sequence[Finding], verdicts: Mapping[str, str | None], scale: str) -> str:
    """Findings about the paper and ours (controls apart) counted by verdict: expected at each scale
    by the registry, and computed by this build at ``scale``."""
    counted = [f for f in fs if f.kind != "control"]
    lines = []
    for kind, title in (("paper", "the paper's statements"), ("ours", "our own results")):
        mine = [f for f in counted if f.kind == kind]
        cols = [*(f"expected at {s}" for s in findings.SCALES), f"this build ({scale})"]
        lines += [f"**{title.capitalize()}** ({len(mine)}):", "", "| verdict | " + " | ".join(cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for v in ORDER:
            row = [sum(_expected(f, s) == v and not _undecided(f, s) for f in mine) for s in findings.SCALES]
            row.append(sum(verdicts.get(f.id) == v for f in mine))
            if any(row):
                lines.append(f"| {v} | " + " | ".join(str(n) for n in row) + " |")
        pairs = [sum(_undecided(f, s) for f in mine) for s in findings.SCALES]
        if any(pairs):
            lines.append("| decided or inconclusive, by CPU | " + " | ".join(str(n) for n in pairs) + " | — |")
        none = [sum(f.expected.get(s) is None for f in mine) for s in findings.SCALES]
        none.append(sum(verdicts.get(f.id) is None for f in mine))
        if any(none):
            lines.append("| not executed or not yet reviewed | " + " | ".join(str(n) for n in none) + " |")
        lines.append("")
    return "\n".join(lines)


def errors(fs: Sequence[Finding], verdicts: Mapping[str, str | None], scale: str) -> str:
    """The paper's statements that the book corrects or refutes at some scale: each with its
    chapter, the paper's section and words, and its verdict at every scale."""
    def seen(f: Finding) -> set[str | None]:
        return {verdicts.get(f.id), *(_expected(f, s) for s in findings.SCALES)}

    wrong = [f for f in fs if f.kind == "paper" and seen(f) & set(ERRORS)]
    if not wrong:
        return "No statement of the paper is corrected or refuted at any scale.\n"
    lines = []
    for verdict in ERRORS:  # a finding corrected at one scale and refuted at another is listed once, as corrected
        group = [f for f in wrong if verdict in seen(f) and not seen(f) & set(ERRORS[:ERRORS.index(verdict)])]
        if not group:
            continue
        lines += [f"**{verdict.capitalize()}** ({len(group)}):", ""]
        for f in group:
            at = " · ".join(f"{s}: {findings.expected_text(f.expected.get(s))}" for s in findings.SCALES)
            got = verdicts.get(f.id)
            lines += [f"- **{f.id}** — {f.section}, chapter {{doc}}`{f.chapter} <{f.chapter}>` (expected {at}"
                      + (f"; this build, {scale}: {got}" if got else "") + ").  The paper:",
                      "", f"  > {' '.join(f.quote.split())}", ""]
    return "\n".join(lines)


def revisions(fs: Sequence[Finding]) -> str:
    """Every finding whose criterion or expected verdict changed after data at some scale were
    seen: its id, kind, and each revision's date, what was there and why."""
    revised = [f for f in fs if f.revised]
    if not revised:
        return "No finding was revised after its data were seen.\n"
    lines = [f"{len(revised)} findings were revised after data at some scale were seen:", ""]
    for f in revised:
        for r in f.revised:
            lines.append(f"- **{f.id}** ({f.kind}, chapter {{doc}}`{f.chapter} <{f.chapter}>`), {r['date']}: "
                         f"was — {' '.join(r['was'].split())}  Why — {' '.join(r['why'].split())}")
    return "\n".join(lines) + "\n"


def environments_text() -> str:
    """The floating-point environments ``make robust`` runs, with the variables each sets."""
    from instab.determinism import ENVIRONMENTS

    lines = []
    for name, env in ENVIRONMENTS.items():
        what = ", ".join(f"`{k}={v}`" for k, v in env.items()) or "the machine's own kernels, no variable set"
        lines.append(f"  - **{name}**: {what}")
    return "\n".join(lines) + "\n"


def write(folder: Path, fs: Sequence[Finding], verdicts: Mapping[str, str | None], scale: str) -> None:
    """Write the report's generated parts into ``folder`` (the staged ``book/``)."""
    (folder / "_report_scope.md").write_text(scope(fs))
    (folder / "_report_environments.md").write_text(environments_text())
    (folder / "_report_results.md").write_text(results(fs, verdicts, scale))
    (folder / "_report_errors.md").write_text(errors(fs, verdicts, scale))
    (folder / "_report_revisions.md").write_text(revisions(fs))
