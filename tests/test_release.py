"""The book as a publication: one version number, the citation generated from CITATION.cff, and
the release archive's manifest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import instab
from instab import paths
from instab.book import release


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
    changelog = (paths.ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(v)}\b", changelog, flags=re.M), f"CHANGELOG.md has no section for {v}"


def test_manifest_lists_every_file_with_its_sha256(tmp_path: Path) -> None:
    import hashlib
    import shutil
    import subprocess

    (tmp_path / "html" / "book").mkdir(parents=True)
    (tmp_path / "html" / "index.html").write_text("<p>book</p>")
    (tmp_path / "html" / "book" / "heat.html").write_text("<p>heat</p>")
    lock = b"torch==2.14.1\n"
    (tmp_path / "lock.txt").write_bytes(lock)
    manifest = release.write_manifest(tmp_path)
    assert manifest == tmp_path / release.MANIFEST
    lines = manifest.read_text().splitlines()
    assert [ln.split("  ", 1)[1] for ln in lines] == ["html/book/heat.html", "html/index.html", "lock.txt"]
    assert lines[2] == f"{hashlib.sha256(lock).hexdigest()}  lock.txt"
    assert release.check_manifest(tmp_path) == []
    if shutil.which("sha256sum"):  # the format sha256sum -c reads
        subprocess.run(["sha256sum", "--quiet", "-c", release.MANIFEST], cwd=tmp_path, check=True)
    (tmp_path / "html" / "index.html").write_text("<p>edited</p>")
    (tmp_path / "extra.txt").write_text("x")
    (tmp_path / "lock.txt").unlink()
    assert release.check_manifest(tmp_path) == ["lock.txt: missing", "html/index.html: changed",
                                                "extra.txt: not in the manifest"]


def test_archive_holds_the_book_the_chapters_and_the_lock(tmp_path: Path) -> None:
    import tarfile

    from instab.book import sources

    build = tmp_path / "_build"
    (build / "html").mkdir(parents=True)
    (build / "html" / "index.html").write_text("<p>book</p>")
    first = sources.chapters()[0]
    out = build / "executed" / "ci" / first
    out.mkdir(parents=True)
    (out / f"{first}.ipynb").write_text("{}")
    (out / "results.json").write_text("{}")
    (out / "fig.svg").write_text("<svg/>")
    path = release.archive("ci", build=build)
    name = f"instab-{release.version()}-ci"
    assert path == build / "release" / f"{name}.tar.gz"
    assert (build / "release" / f"{name}.tar.gz.sha256").read_text() == f"{release.sha256(path)}  {path.name}\n"
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    folder = tmp_path / "x" / name
    assert release.check_manifest(folder) == []
    for rel in ("html/index.html", f"executed/{first}/results.json", f"executed/{first}/{first}.ipynb",
                f"executed/{first}/fig.svg",
                "requirements/lock.txt", "CITATION.cff", "CHANGELOG.md", "LICENSE", "LICENSE-text"):
        assert (folder / rel).is_file(), f"{rel} is not in the archive"
    with pytest.raises(SystemExit):
        release.archive("ci", build=tmp_path / "none")
    (build / "site" / "book").mkdir(parents=True)
    (build / "site" / "book" / "_scorecard.md").write_text("Scale of this build: **default**.\n")
    with pytest.raises(SystemExit, match="rendered at the default scale"):
        release.archive("ci", build=build)
