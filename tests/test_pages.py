"""Limits that keep a chapter's page readable: the chapter reads prose → one call → plot → record,
and the computation lives in ``instab``.

- a chapter file has at most :data:`MAX_CHAPTER_LINES` lines;
- a code cell has at most :data:`MAX_CELL_LINES` lines (its parameters cell :data:`MAX_PARAMETER_LINES`);
- at most :data:`MAX_CODE_BEFORE_FIGURE` lines of visible code come before the chapter's first figure;
- no code cell both draws a figure and records a claim (plotting and deciding are separate steps):
  a cell draws when it uses pyplot (``plt``) or calls a drawing method of an Axes or a Figure, and
  decides when it records claims (``results.record(...)``) or applies a study's claim rules (a
  ``*_claims(...)`` function, or :func:`instab.report.claim`, ``decide``, ``judge``);
- no heading twice (a section pasted twice).
"""

from __future__ import annotations

import ast
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
#: Methods of matplotlib's Axes and Figure that draw or lay out a figure: a call of one of them on
#: any object draws (``ax.semilogy``, ``axes[0].legend``, ``fig.tight_layout``).  Names that other
#: objects of the chapters use too (``set``, ``text``, ``step``) are left out: those count only on
#: an object named like an Axes or a Figure (:data:`FIGURE_NAMES`).
DRAWING_METHODS = frozenset({
    "plot", "semilogx", "semilogy", "loglog", "scatter", "bar", "barh", "hist", "hist2d", "imshow", "matshow",
    "pcolor", "pcolormesh", "contour", "contourf", "errorbar", "fill_between", "fill_betweenx", "stackplot",
    "stem", "boxplot", "violinplot", "pie", "quiver", "streamplot", "annotate", "axhline", "axvline", "axhspan",
    "axvspan", "hlines", "vlines", "legend", "colorbar", "set_title", "set_xlabel", "set_ylabel", "set_xscale",
    "set_yscale", "set_xlim", "set_ylim", "set_xticks", "set_yticks", "set_xticklabels", "set_yticklabels",
    "twinx", "twiny", "tight_layout", "savefig", "suptitle", "add_subplot", "subplots",
})
#: The names the chapters give their Axes and Figures (``fig2``, a chapter's dict of results for
#: Fig. 2, is not one).
FIGURE_NAMES = re.compile(r"(ax|axs|axes|twin)\d*|fig|figure")
#: Functions that decide: a study's claim rules and the claim constructors of ``instab.report``.
CLAIM_FUNCTIONS = re.compile(r"\w+_claims?|claim|decide|judge")
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


def _calls(source: str) -> tuple[list[ast.Call], set[str]]:
    """The calls of a code cell and the names it reads (IPython magics and ``!`` lines left out)."""
    python = "\n".join("#" + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())
    nodes = list(ast.walk(ast.parse(python)))
    return ([n for n in nodes if isinstance(n, ast.Call)],
            {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})


def _receiver(node: ast.expr) -> str:
    """The name at the root of ``ax``, ``axes[0]``, ``ax.xaxis`` ('' for anything else)."""
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def draws(source: str) -> bool:
    """The cell draws: it uses pyplot, or calls a drawing method, or any method of an Axes or Figure."""
    calls, names = _calls(source)
    return "plt" in names or any(
        isinstance(c.func, ast.Attribute)
        and (c.func.attr in DRAWING_METHODS or FIGURE_NAMES.fullmatch(_receiver(c.func.value)) is not None)
        for c in calls)


def decides(source: str) -> bool:
    """The cell decides: it records claims (``results.record(...)``) or applies a claim rule."""
    calls, _ = _calls(source)
    for c in calls:
        name = c.func.attr if isinstance(c.func, ast.Attribute) else c.func.id if isinstance(c.func, ast.Name) else ""
        if (isinstance(c.func, ast.Attribute) and name == "record") or CLAIM_FUNCTIONS.fullmatch(name):
            return True
    return False


def plot_and_decide(md: Path) -> list[str]:
    """``"code cell <n>"`` for each cell that both draws and records a claim."""
    return [f"code cell {i}" for i, _, source in _cells(md) if draws(source) and decides(source)]


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
    twice = _demo(tmp_path, "# a comment", "# a comment", "x = 1", between="\n## A section\n\nText.\n")
    assert repeated_headings(twice) == ["## A section"]


#: Cells as the chapters write them: drawing (pyplot, then glue), recording (a study's rules handed
#: to ``results.record``), both (cells 1, 6, 7), and look-alikes that do only one of them.
DRAWS = """fig, ax = plt.subplots(figsize=(6, 3.6))
ax.semilogy(n, d, label="measured")
ax.legend(fontsize=7)
fig.tight_layout()
glue("demo-fig", fig, display=False)
plt.close(fig)"""
RECORDS = "results.record(*study.growth_claims(rates), study.decay_claim(f1, p))\nprint(results.table())"
CELLS = {
    DRAWS + "\n" + RECORDS: True,                      # draws and records
    DRAWS: False,                                      # draws only
    RECORDS: False,                                    # records only
    # a claim's verdict glued into the prose is not a figure; ``fig2`` is a dict of results, not a Figure
    "c = study.window_claims(lows, f, p)\nglue('v', c[-1].verdict, display=False)\nresults.record(*c)": False,
    "for name, f in fig2.items():\n    results.value(name, f)\nresults.record(*study.fig2_left_claims(fig2))": False,
    # drawing into the axes of an earlier cell while applying a rule; a magic line does not hide it
    "axes[0].axhline(1.0, color='k')\nedge = study.edge_claims(ed, p)": True,
    "%matplotlib inline\nplt.plot([1, 2])\nresults.record(claim('x', 1.0, ok=True, verdict='fact'))": True,
}


def test_the_plot_and_record_check_sees_a_cell_that_does_both(tmp_path: Path) -> None:
    for source, both in CELLS.items():
        assert (draws(source) and decides(source)) is both, source
    assert draws(DRAWS) and not decides(DRAWS) and decides(RECORDS) and not draws(RECORDS)
    md = _demo(tmp_path, *CELLS)
    assert plot_and_decide(md) == ["code cell 1", "code cell 6", "code cell 7"]
    assert "code cell 1 both draws a figure and records a claim" in problems(md)  # the chapter check fails
    assert problems(_demo(tmp_path, DRAWS, RECORDS)) == []  # and passes once the steps are apart


def problems(md: Path) -> list[str]:
    """What of chapter ``md`` breaks the limits of this module (empty: none)."""
    out = []
    n = len(md.read_text().splitlines())
    if n > MAX_CHAPTER_LINES:
        out.append(f"{n} lines (at most {MAX_CHAPTER_LINES})")
    out += long_cells(md)
    before = code_before_first_figure(md)
    if before > MAX_CODE_BEFORE_FIGURE:
        out.append(f"{before} lines of visible code before the first figure (at most {MAX_CODE_BEFORE_FIGURE})")
    out += [f"{c} both draws a figure and records a claim" for c in plot_and_decide(md)]
    out += [f"heading {h!r} appears twice or more" for h in repeated_headings(md)]
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_fits_its_limits(chapter: str) -> None:
    found = problems(book.ROOT / "book" / f"{chapter}.md")
    assert not found, f"book/{chapter}.md:\n  " + "\n  ".join(found)
