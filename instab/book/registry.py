"""The findings registry in the build: decide every finding of the executed chapters at a scale
and list where the data and ``book/findings.yml`` disagree (:mod:`instab.findings`).

The build fails on any disagreement — an unregistered claim, a moved verdict — naming the
finding, both verdicts and the numbers: a changed verdict is a reviewed event, never a silent one.
"""

from __future__ import annotations

from collections.abc import Iterable

from instab import findings
from instab.book import sources

#: The registry: one entry per finding, its criterion and its expected verdict at each scale.
REGISTRY = sources.ROOT / "book" / "findings.yml"


def registry() -> list[findings.Finding]:
    """The registry, validated against the chapters of ``_toc.yml``."""
    return findings.load(REGISTRY, sources.chapters())


def decide(scale: str, chapters: Iterable[str] | None = None, env: str = "native") -> tuple[
        list[findings.Finding], dict[str, str | None], list[str]]:
    """(registry, {finding id: verdict}, problems) over the ``chapters`` (default: all) that wrote a
    ``results.json`` at ``scale``; a chapter that did not is no evidence and is not decided."""
    fs = registry()
    results = {}
    for c in chapters if chapters is not None else sources.chapters():
        out = sources.out_dir(c, scale, env)
        f = out / "results.json"
        if f.exists() and not sources.damaged(out, c):
            results[c] = sources.read_results(f)
    verdicts, problems = findings.check(fs, results, scale)
    return fs, verdicts, problems


def finding_of(scale: str, env: str = "native") -> dict[str, dict[str, str]]:
    """chapter → claim name → the id of the finding it is evidence of (claims no finding names are absent)."""
    fs = registry()
    out: dict[str, dict[str, str]] = {}
    for c in sources.chapters():
        f = sources.out_dir(c, scale, env) / "results.json"
        if f.exists() and not sources.damaged(f.parent, c):
            rows, _ = findings.assign(fs, c, sources.read_results(f)["claims"])
            out[c] = {r["name"]: fid for fid, rs in rows.items() for r in rs}
    return out
