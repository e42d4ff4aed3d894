"""The book as a publication: one version number, the citation generated from CITATION.cff, and
the release archive's manifest."""

from __future__ import annotations

import re
from pathlib import Path

import instab
from instab import release


def test_citation_from_citation_cff_carries_the_version() -> None:
    cff = release.read_cff()
    bibtex, plain = release.citation(cff, "2026")
    assert bibtex.startswith("@software{instab") and bibtex.endswith("}")
    assert bibtex.count("{") == bibtex.count("}")
    assert f"version  = {{{cff['version']}}}" in bibtex and "year     = {2026}" in bibtex
    assert f"(version {cff['version']})" in plain and str(cff["authors"][0]["name"]) in plain
    assert all(len(line) <= 88 for line in bibtex.splitlines())
    block = release.citation_markdown()
    assert bibtex.split("\n", 1)[1] in block and "CC BY 4.0" in block and "MIT" in block
    assert "Sun" in (release.paper_reference(cff) or "")


def test_citation_of_people_and_of_a_repository(tmp_path: Path) -> None:
    cff = {"title": "T", "version": "1.2", "authors": [{"given-names": "Ada", "family-names": "Lovelace"},
                                                      {"name": "the x authors"}],
           "repository-code": "https://example.org/x"}
    bibtex, plain = release.citation(cff, "1843")
    assert "author   = {Ada Lovelace and {the x authors}}" in bibtex and "url      = {https://example.org/x}" in bibtex
    assert plain == "Ada Lovelace, the x authors (1843). *T* (version 1.2) [software]. https://example.org/x"
    assert release.paper_reference(cff) is None


def test_one_version_for_the_package_the_citation_and_the_book() -> None:
    v = release.version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", v)
    assert str(release.read_cff()["version"]) == v, "CITATION.cff's version is not pyproject.toml's"
    assert instab.__version__ == v, "instab.__version__ is not pyproject.toml's version"
    assert f"instab {v}" in release.footer_html() and f"version **{v}**" in release.citation_markdown()
