"""Papermill reads every chapter's parameters cell: ``papermill --help-notebook`` lists each
parameter with its whole value, and a scale's parameter file passes only names it knows."""

import logging

import pytest
import yaml

from instab import book

jupytext = pytest.importorskip("jupytext")
papermill = pytest.importorskip("papermill")

CHAPTERS = ["heat", "linear", "nonlinear", "momentum", "multilayer", "sgd_growth", "sgd_variance",
            "sgd_threshold", "open_questions"]


def test_the_list_covers_every_chapter():
    assert sorted(CHAPTERS) == sorted(book.chapters())


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_papermill_reads_every_parameter_of_the_chapter(chapter, tmp_path, caplog):
    nb = jupytext.read(book.ROOT / "book" / f"{chapter}.md")  # as the driver converts it
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    converted = tmp_path / f"{chapter}.ipynb"
    jupytext.write(nb, converted, fmt="ipynb")
    with caplog.at_level(logging.WARNING, logger="papermill"):
        inferred = papermill.inspect_notebook(str(converted))  # what --help-notebook prints
    unparsed = [r.getMessage() for r in caplog.records if r.name.startswith("papermill")]
    assert unparsed == [], f"book/{chapter}.md: papermill could not parse: {unparsed}"
    values = book.chapter_parameters(chapter, "default")  # the cell's own values
    assert list(inferred) == list(values), "papermill must list the names the cell defines, in order"
    for name, p in inferred.items():  # each default papermill shows is the whole value
        assert eval(p["default"], {}) == values[name], f"{chapter}.{name}: papermill reads {p['default']!r}"
    for scale in ("ci", "paper"):  # no "Passed unknown parameter" when a scale runs it
        names = yaml.safe_load(book.params_file(chapter, scale).read_text()) or {}
        assert set(names) <= set(inferred), f"book/params/{scale}/{chapter}.yml: unknown to papermill"


def test_a_misspelled_parameter_is_named_under_papermill_itself(tmp_path):
    """The README's own rerun recipe with a typo (`n_step` for `n_steps`): papermill only warns and
    would run the defaults; the chapter's set-up cell stops it, naming the name and the allowed ones."""
    nb = jupytext.read(book.ROOT / "book" / "heat.md")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    converted = tmp_path / "heat.ipynb"
    jupytext.write(nb, converted, fmt="ipynb")
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(converted), str(tmp_path / "out.ipynb"), parameters={"n_step": 10},
                                   cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    assert "['n_step'] given to chapter 'heat' are not its parameters" in str(e.value)
    assert "'n_steps'" in str(e.value)


def test_injected_names_reads_papermills_cell_only():
    from instab.studies.params import injected_names

    ns = {"In": ["", "x = 1  # a parameters cell", "# Parameters\nn_step = 10\nr_values = [0.3]\n", "y = 2"]}
    assert injected_names(ns) == ["n_step", "r_values"]
    assert injected_names({}) == [] and injected_names({"In": ["x = 1"]}) == []


def test_a_page_that_is_no_chapter_has_no_cell_to_execute():
    """A prose page (intro, report, the building page) shows commands in ``{code-block}``
    directives: a plain fenced block reads as a code cell to jupytext and papermill, which would
    then want a ``parameters`` cell in a page nothing executes."""
    for f in book.toc_files():
        page = book.ROOT / f"{f}.md"
        if page.exists() and not book.is_notebook(page):
            cells = [c for c in jupytext.read(page).cells if c.cell_type == "code"]
            assert not cells, f"{f}.md: a fenced block reads as a code cell: {cells[0].source[:60]!r}"
