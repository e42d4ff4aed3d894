"""The book as a publication: its one version number, how to cite it, and the release archive.

- :func:`version` — the version of ``pyproject.toml``, the one number that ``CITATION.cff``, the
  package (``instab.__version__``) and the rendered book carry (a test checks they agree).
- :func:`citation` — the reproduction's BibTeX entry and plain reference, generated from
  ``CITATION.cff``; :func:`citation_markdown` — the intro's "Cite this book" block.
- :func:`write_manifest` and :func:`archive` — ``make release``: the built book (HTML, every
  chapter's ``results.json`` and executed notebook), the lock file and the licences in one
  ``.tar.gz``, with a SHA-256 manifest of every file in it.

``python -m instab.book.release archive [--params SCALE]`` builds the archive from a built book.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import tarfile
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from instab import paths
from instab.book import sources

#: The licences: the code (``LICENSE``) and the book's text, figures and data (``LICENSE-text``).
CODE_LICENSE = ("MIT", "https://opensource.org/license/mit")
TEXT_LICENSE = ("CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/")
#: The manifest's name inside the archive: ``<sha256>  <path>`` per file, as ``sha256sum -c`` reads it.
MANIFEST = "SHA256SUMS"


def version(root: Path = paths.ROOT) -> str:
    """The ``version`` of ``[project]`` in ``pyproject.toml``."""
    text = (root / "pyproject.toml").read_text()
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    m = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1) if project else "", flags=re.M)
    if m is None:
        raise ValueError(f"{root / 'pyproject.toml'} has no version in [project]")
    return m.group(1)


def read_cff(root: Path = paths.ROOT) -> dict[str, Any]:
    """``CITATION.cff`` as a mapping."""
    return dict(yaml.safe_load((root / "CITATION.cff").read_text()))


def _year(cff: Mapping[str, Any], root: Path) -> str:
    """The year of the release: ``date-released`` of ``CITATION.cff``, else ``_config.yml``'s copyright."""
    if cff.get("date-released"):
        return str(cff["date-released"])[:4]
    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    return str(config.get("copyright", "")).strip()[:4]


def _authors(people: Iterable[Mapping[str, Any]]) -> list[str]:
    """CFF persons and entities as "Given Family" or the entity's name."""
    out = []
    for p in people:
        if p.get("name"):
            out.append(str(p["name"]))
        else:
            out.append(" ".join(str(p[k]) for k in ("given-names", "family-names") if p.get(k)))
    return out


def _bib_field(name: str, value: str) -> str:
    """One BibTeX field, wrapped to 88 columns."""
    head = f"  {name:<9}= {{"
    lines = textwrap.wrap(value, 86 - len(head), break_on_hyphens=False) or [""]
    return head + ("\n" + " " * len(head)).join(lines) + "},"


def citation(cff: Mapping[str, Any], year: str) -> tuple[str, str]:
    """(BibTeX entry, plain reference) of the software that ``cff`` describes, with its version."""
    authors = _authors(cff.get("authors", []))
    ver = str(cff["version"])
    key = "instab" + re.sub(r"\W", "_", ver)
    fields = [("author", " and ".join(f"{{{a}}}" if " " in a and a.islower() else a for a in authors)),
              ("title", f"{{{cff['title']}}}"), ("year", year), ("version", ver)]
    if cff.get("repository-code"):
        fields.append(("url", str(cff["repository-code"])))
    if cff.get("doi"):
        fields.append(("doi", str(cff["doi"])))
    paper = cff.get("preferred-citation") or {}
    if paper:
        fields.append(("note", f"Reproduces {', '.join(_authors(paper.get('authors', [])))}, "
                               f"{paper['title']}, {paper.get('collection-title', '')}"
                               + (f", doi:{paper['doi']}" if paper.get("doi") else "")))
    bibtex = "\n".join([f"@software{{{key},", *(_bib_field(k, v) for k, v in fields)]).rstrip(",") + "\n}"
    plain = f"{', '.join(authors)} ({year}). *{cff['title']}* (version {ver}) [software]."
    if cff.get("repository-code"):
        plain += f" {cff['repository-code']}"
    elif cff.get("doi"):
        plain += f" https://doi.org/{cff['doi']}"
    return bibtex, plain


def paper_reference(cff: Mapping[str, Any]) -> str | None:
    """The plain reference of ``CITATION.cff``'s ``preferred-citation`` (the paper reproduced)."""
    p = cff.get("preferred-citation")
    if not p:
        return None
    ref = f"{', '.join(_authors(p.get('authors', [])))} ({p['year']}). *{p['title']}*."
    if p.get("collection-title"):
        ref += f" {p['collection-title']}."
    if p.get("doi"):
        ref += f" https://doi.org/{p['doi']}"
    return ref


def citation_markdown(root: Path = paths.ROOT) -> str:
    """The intro's "Cite this book" block (MyST markdown), generated from ``CITATION.cff``."""
    cff = read_cff(root)
    bibtex, plain = citation(cff, _year(cff, root))
    lines = [f"This book is version **{cff['version']}** of `instab`.  To cite it:", "", f"> {plain}", "",
             "```bibtex", bibtex, "```", ""]
    paper = paper_reference(cff)
    if paper:
        lines += ["Please cite the paper it reproduces as well:", "", f"> {paper}", ""]
    lines += [f"The text, figures and data of this book are under the [{TEXT_LICENSE[0]}]({TEXT_LICENSE[1]}) "
              f"licence, its code under the [{CODE_LICENSE[0]}]({CODE_LICENSE[1]}) licence (`LICENSE-text` and "
              f"`LICENSE` in the repository).", ""]
    return "\n".join(lines)


def footer_html(root: Path = paths.ROOT) -> str:
    """The book's footer: its version and licences (``html.extra_footer``)."""
    return (f"<p>instab {version(root)} · text, figures and data: "
            f'<a href="{TEXT_LICENSE[1]}">{TEXT_LICENSE[0]}</a> · code: '
            f'<a href="{CODE_LICENSE[1]}">{CODE_LICENSE[0]}</a></p>')


# ───────────────────────────── the release archive ─────────────────────────────


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, out: Path | None = None) -> Path:
    """Write ``folder/SHA256SUMS`` (or ``out``): one ``<sha256>  <path>`` line per file under
    ``folder`` (paths relative to it, ``/``-separated, sorted; the manifest itself left out), the
    format ``sha256sum -c`` checks.  Returns the manifest's path."""
    out = out if out is not None else folder / MANIFEST
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.resolve() != out.resolve())
    out.write_text("".join(f"{sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files))
    return out


def check_manifest(folder: Path, manifest: Path | None = None) -> list[str]:
    """What disagrees with the manifest: a file listed but missing or changed, or a file not listed."""
    manifest = manifest if manifest is not None else folder / MANIFEST
    listed = {}
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems = [f"{n}: missing" for n in listed if not (folder / n).is_file()]
    problems += [f"{n}: changed" for n, d in listed.items() if (folder / n).is_file() and sha256(folder / n) != d]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p != manifest}
    problems += [f"{n}: not in the manifest" for n in sorted(present - set(listed))]
    return problems


def release_files(scale: str, root: Path = paths.ROOT, build: Path | None = None) -> dict[str, Path]:
    """Name in the archive → file: the rendered book (``html/``, each chapter's downloads in it),
    each chapter's executed notebook, ``results.json`` and figures as SVG (``executed/<chapter>/``),
    the lock file, the registry, the citation, the changelog and the licences.  Fails when the book
    was not built, or was rendered at another scale than ``scale``."""
    build = build if build is not None else paths.build_root()
    html = build / "html"
    if not (html / "index.html").is_file():
        raise SystemExit(f"error: no built book under {html}: build it first (make book PARAMS={scale})")
    card = build / "site" / "book" / "_scorecard.md"
    m = re.search(r"Scale of this build: \*\*(\w+)\*\*", card.read_text()) if card.is_file() else None
    if m and m.group(1) != scale:
        raise SystemExit(f"error: the book under {html} was rendered at the {m.group(1)} scale, not {scale}: "
                         f"build it first (make book PARAMS={scale})")
    files = {f"html/{p.relative_to(html).as_posix()}": p for p in sorted(html.rglob("*")) if p.is_file()}
    missing = []
    for chapter in sources.chapters(root):
        folder = build / "executed" / scale / chapter
        found = [folder / n for n in (f"{chapter}.ipynb", "results.json") if (folder / n).is_file()]
        found += sorted(folder.glob("*.svg")) if found else []  # its figures (the pages' downloads have them too)
        if not found:
            missing.append(chapter)
        files.update({f"executed/{chapter}/{f.name}": f for f in found})
    if missing:
        print(f"[instab.book.release] not executed at the {scale} scale, so not in the archive: {', '.join(missing)}")
    for name in ("requirements/lock.txt", "book/findings.yml", "CITATION.cff", "CHANGELOG.md", "LICENSE",
                 "LICENSE-text", "README.md"):
        if (root / name).is_file():
            files[name] = root / name
    return files


def archive(scale: str, root: Path = paths.ROOT, build: Path | None = None) -> Path:
    """``<build>/release/instab-<version>-<scale>.tar.gz`` with :func:`release_files` under one
    folder and its manifest, and ``<archive>.sha256`` beside it.  Returns the archive's path."""
    import shutil

    build = build if build is not None else paths.build_root()
    name = f"instab-{version(root)}-{scale}"
    staging = build / "release" / name
    shutil.rmtree(staging, ignore_errors=True)
    for rel, src in release_files(scale, root, build).items():
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    write_manifest(staging)
    out = build / "release" / f"{name}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(staging, arcname=name, filter=_normalised)
    (out.parent / f"{out.name}.sha256").write_text(f"{sha256(out)}  {out.name}\n")
    shutil.rmtree(staging)
    return out


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No owner names or ids in the archive."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instab.book.release", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["archive", "version", "citation"])
    ap.add_argument("--params", default="default", help="the scale the book was built at")
    a = ap.parse_args(argv)
    if a.action == "version":
        print(version())
    elif a.action == "citation":
        print(citation_markdown())
    else:
        out = archive(a.params)
        print(f"[instab.book.release] {out.relative_to(paths.ROOT) if out.is_relative_to(paths.ROOT) else out} "
              f"(SHA-256 {sha256(out)}; manifest {MANIFEST} inside)")


if __name__ == "__main__":
    main()
