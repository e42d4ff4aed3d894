"""Limits that keep a chapter's page readable: the chapter reads prose → one call → plot → record,
and the computation lives in ``instab``.

- a chapter file has at most :data:`MAX_CHAPTER_LINES` lines;
- a code cell has at most :data:`MAX_CELL_LINES` lines (its parameters cell :data:`MAX_PARAMETER_LINES`);
- at most :data:`MAX_CODE_BEFORE_FIGURE` lines of visible code come before the chapter's first figure;
- no code cell both draws a figure and records a claim (plotting and deciding are separate steps);
- no heading twice (a section pasted twice).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instab import book

MAX_CHAPTER_LINES = 500
MAX_CELL_LINES = 25
MAX_PARAMETER_LINES = 45
MAX_CODE_BEFORE_FIGURE = 30
#: Tags of cells whose code the reader does not see unless they expand it.
COLLAPSED_TAGS = frozenset({*book.HIDDEN_INPUT_TAGS, "hide-input", "remove-input", "remove-cell"})
#: A figure on the page: a glued figure or a figure directive.
FIGURE = re.compile(r"^```\{(glue:figure|figure)\}", re.MULTILINE)
#: A cell that draws: matplotlib's pyplot, or a method of an Axes or Figure.
PLOTS = re.compile(r"\bplt\.|\bax\w*(\[[^\]]*\])*\.\w+\(|\bfig\w*\.\w+\(")
#: A cell that decides: it records a claim.
DECIDES = re.compile(r"\.(claim|decide|judge)\(")
CHAPTERS = book.chapters()


def _cells(md: Path) -> list[tuple[int, list[str], str]]:
    """(number among the code cells from 1, tags, source) of each code cell of chapter ``md``."""
    import jupytext

    nb = jupytext.read(md)
    code = [c for c in nb.cells if c.cell_type == "code"]
    return [(i, list(c.metadata.get("tags", [])), c.source) for i, c in enumerate(code, 1)]


def long_cells(md: Path) -> list[str]:
    """``"code cell <n>: <lines> lines"`` for each code cell over its limit."""
    out = []
    for i, tags, source in _cells(md):
        limit = MAX_PARAMETER_LINES if "parameters" in tags else MAX_CELL_LINES
        n = len(source.strip("\n").splitlines())
        if n > limit:
            out.append(f"code cell {i}: {n} lines (at most {limit})")
    return out


def code_before_first_figure(md: Path) -> int:
    """Lines of visible code (cells not collapsed on the page) before the first figure of ``md``."""
    import jupytext

    text = md.read_text()
    first = FIGURE.search(text)
    head = text[: first.start()] if first else text
    nb = jupytext.reads(head, fmt="md:myst")
    return sum(len(c.source.strip("\n").splitlines()) for c in nb.cells
               if c.cell_type == "code" and not COLLAPSED_TAGS & set(c.metadata.get("tags", [])))


def plot_and_decide(md: Path) -> list[str]:
    """``"code cell <n>"`` for each cell that both draws and records a claim."""
    return [f"code cell {i}" for i, _, source in _cells(md) if PLOTS.search(source) and DECIDES.search(source)]


def repeated_headings(md: Path) -> list[str]:
    """Headings of the chapter's prose that appear more than once (a section pasted twice)."""
    import jupytext

    nb = jupytext.read(md)
    heads = [ln for c in nb.cells if c.cell_type == "markdown" for ln in c.source.splitlines() if ln.startswith("#")]
    return sorted({h for h in heads if heads.count(h) > 1})


def _demo(tmp_path: Path, *cells: str, between: str = "") -> Path:
    head = (book.ROOT / "book" / "heat.md").read_text().split("\n---\n", 1)[0] + "\n---\n"
    md = tmp_path / "demo.md"
    md.write_text(head + between.join(f"\n```{{code-cell}} ipython3\n{c}\n```\n" for c in cells))
    return md


def test_the_checks_see_what_they_forbid(tmp_path: Path) -> None:
    long = "\n".join(f"x{i} = {i}" for i in range(MAX_CELL_LINES + 1))
    assert long_cells(_demo(tmp_path, long, "y = 1")) == [f"code cell 1: {MAX_CELL_LINES + 1} lines "
                                                         f"(at most {MAX_CELL_LINES})"]
    assert long_cells(_demo(tmp_path, ":tags: [parameters]\n\n" + long)) == []
    figure = "\n```{glue:figure} demo\n:name: fig-demo\n```\n"
    md = _demo(tmp_path, "a = 1\nb = 2", ":tags: [setup]\n\nimport numpy", "c = 3", between=figure)
    assert code_before_first_figure(md) == 2
    mixed = "fig, ax = plt.subplots()\nax.plot([1])\nresults.claim('x', 1, ok=True, verdict='fact')"
    assert plot_and_decide(_demo(tmp_path, mixed, "ax.plot([1])", "results.decide('y')")) == ["code cell 1"]
    twice = _demo(tmp_path, "# a comment", "# a comment", "x = 1", between="\n## A section\n\nText.\n")
    assert repeated_headings(twice) == ["## A section"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_fits_its_limits(chapter: str) -> None:
    md = book.ROOT / "book" / f"{chapter}.md"
    problems = []
    n = len(md.read_text().splitlines())
    if n > MAX_CHAPTER_LINES:
        problems.append(f"{n} lines (at most {MAX_CHAPTER_LINES})")
    problems += long_cells(md)
    before = code_before_first_figure(md)
    if before > MAX_CODE_BEFORE_FIGURE:
        problems.append(f"{before} lines of visible code before the first figure (at most {MAX_CODE_BEFORE_FIGURE})")
    problems += [f"{c} both draws a figure and records a claim" for c in plot_and_decide(md)]
    problems += [f"heading {h!r} appears twice or more" for h in repeated_headings(md)]
    assert not problems, f"book/{chapter}.md:\n  " + "\n  ".join(problems)
