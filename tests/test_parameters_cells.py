"""Papermill reads every chapter's parameters cell: ``papermill --help-notebook`` lists each
parameter with its whole value, and a scale's parameter file passes only names it knows."""

import logging

import pytest
import yaml

from instab import book

jupytext = pytest.importorskip("jupytext")
papermill = pytest.importorskip("papermill")

CHAPTERS = ["heat", "linear", "nonlinear", "momentum", "multilayer", "sgd_growth", "sgd_variance",
            "sgd_threshold"]


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
