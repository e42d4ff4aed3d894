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


def executed_results(scale: str, chapters: Iterable[str] | None = None, env: str = "native") -> dict[str, dict]:
    """chapter → its ``results.json``, for the ``chapters`` (default: all) that wrote one at ``scale``
    whose record vouches for it; a chapter that did not is no evidence."""
    out = {}
    for c in chapters if chapters is not None else sources.chapters():
        folder = sources.out_dir(c, scale, env)
        f = folder / "results.json"
        if f.exists() and not sources.damaged(folder, c):
            out[c] = sources.read_results(f)
    return out


def decide(scale: str, chapters: Iterable[str] | None = None, env: str = "native") -> tuple[
        list[findings.Finding], dict[str, str | None], list[str]]:
    """(registry, {finding id: verdict}, problems) over the executed ``chapters`` (default: all) at
    ``scale`` (:func:`executed_results`)."""
    fs = registry()
    verdicts, problems = findings.check(fs, executed_results(scale, chapters, env), scale)
    return fs, verdicts, problems


def finding_of(scale: str, env: str = "native") -> dict[str, dict[str, str]]:
    """chapter → claim name → the id of the finding it is evidence of (claims no finding names are absent)."""
    fs = registry()
    out: dict[str, dict[str, str]] = {}
    for c, res in executed_results(scale, env=env).items():
        rows, _ = findings.assign(fs, c, res["claims"])
        out[c] = {r["name"]: fid for fid, rs in rows.items() for r in rs}
    return out
