"""The code a reader sees in a chapter fits the page: every line of every visible code cell is at
most :data:`MAX_LINE` characters (the rendered page wraps nothing, so a longer line scrolls).

Cells whose code the rendered page collapses (tags in :data:`COLLAPSED_TAGS`) are exempt.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from instab import book

#: The longest code line a chapter page shows without a horizontal scroll bar (black's default).
MAX_LINE = 88
#: Tags of cells whose code the reader does not see unless they expand it.
COLLAPSED_TAGS = frozenset({*book.HIDDEN_INPUT_TAGS, "hide-input", "remove-input", "remove-cell"})
CHAPTERS = book.chapters()


def long_lines(md: Path) -> list[str]:
    """``"<cell> line <n>: <length> chars"`` for each visible code line of chapter ``md`` longer
    than :data:`MAX_LINE` (cells counted from 1 among the code cells, lines from 1 in the cell)."""
    import jupytext

    nb = jupytext.read(md)
    found = []
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code_cells, 1):
        if COLLAPSED_TAGS & set(cell.metadata.get("tags", [])):
            continue
        for j, line in enumerate(cell.source.splitlines(), 1):
            if len(line) > MAX_LINE:
                found.append(f"code cell {i} line {j}: {len(line)} chars: {line.strip()[:60]}...")
    return found


def test_the_check_sees_a_long_line_and_skips_collapsed_cells(tmp_path: Path) -> None:
    head = (book.ROOT / "book" / "heat.md").read_text().split("\n---\n", 1)[0] + "\n---\n"
    md = tmp_path / "demo.md"
    md.write_text(head + "\n```{code-cell} ipython3\nx = " + "1 + " * 30 + "1\n```\n\n"
                  "```{code-cell} ipython3\n:tags: [setup]\n\ny = " + "2 + " * 30 + "2\n```\n")
    assert [s.split(":")[0] for s in long_lines(md)] == ["code cell 1 line 1"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_visible_code_lines_fit_the_page(chapter: str) -> None:
    bad = long_lines(book.ROOT / "book" / f"{chapter}.md")
    assert not bad, f"book/{chapter}.md: {len(bad)} code line(s) over {MAX_LINE} characters:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_code_cell_compiles(chapter: str) -> None:
    """A syntax error fails here, in seconds, rather than minutes into the chapter's execution."""
    import jupytext

    nb = jupytext.read(book.ROOT / "book" / f"{chapter}.md")
    for i, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), 1):
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        compile(source, f"book/{chapter}.md, code cell {i}", "exec")
