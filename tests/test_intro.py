"""The intro lists every figure and table of the paper, each with a link that resolves to where the
book reproduces it (a labelled figure or section, or a chapter section by its title)."""

from __future__ import annotations

import re

from instab import book

INTRO = book.ROOT / "book" / "intro.md"
#: The paper (NeurIPS 2022 with its appendix) has Figs. 1–6 and Tables 1–6.
PAPER_FIGURES = range(1, 7)
PAPER_TABLES = range(1, 7)


def rows() -> dict[str, str]:
    """The rows of the intro's table of the paper's figures and tables: first cell -> the rest."""
    out = {}
    for line in INTRO.read_text().splitlines():
        m = re.match(r"\| ((?:Fig\.|Table) \d+)[^|]*\|(.*)\|\s*$", line)
        if m:
            out.setdefault(m.group(1), "")
            out[m.group(1)] += m.group(2)
    return out


def labels() -> set[str]:
    """Every figure name (``:name:``) and target (``(label)=``) defined in ``book/*.md``."""
    found: set[str] = set()
    for md in (book.ROOT / "book").glob("*.md"):
        text = md.read_text()
        found |= set(re.findall(r"^:name: (\S+)", text, flags=re.M))
        found |= set(re.findall(r"^\(([\w-]+)\)=$", text, flags=re.M))
    return found


def slug(title: str) -> str:
    """MyST's heading anchor of a section title (``myst_heading_anchors``)."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_every_figure_and_table_of_the_paper_has_a_row() -> None:
    have = rows()
    missing = [f"Fig. {i}" for i in PAPER_FIGURES if f"Fig. {i}" not in have]
    missing += [f"Table {i}" for i in PAPER_TABLES if f"Table {i}" not in have]
    assert not missing, f"book/intro.md does not list: {missing}"


def test_every_row_links_to_a_target_that_exists() -> None:
    known = labels()
    for what, cell in rows().items():
        refs = re.findall(r"\{(?:numref|ref)\}`(?:[^`<]*<)?([\w-]+)>?`", cell)
        # a chapter's section by its title: the link names the executed notebook the book renders
        anchors = re.findall(r"\]\((\w+)\.ipynb#([\w-]+)\)", cell)
        assert refs or anchors, f"{what}: no link to where the book reproduces it"
        unknown = [r for r in refs if r not in known]
        assert not unknown, f"{what}: no figure or section labelled {unknown} in book/*.md"
        for chapter, anchor in anchors:
            titles = re.findall(r"^#{1,2} (.+)$", (book.ROOT / "book" / f"{chapter}.md").read_text(), flags=re.M)
            assert anchor in {slug(t) for t in titles}, f"{what}: book/{chapter}.md has no section #{anchor}"


def test_slug_follows_myst() -> None:
    assert slug("Table 1 (right): how small the perturbation is") == "table-1-right-how-small-the-perturbation-is"
    assert slug("The paper's Fig. 5: the stable runs") == "the-papers-fig-5-the-stable-runs"
