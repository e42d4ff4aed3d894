"""Every study's parameters are checked against their annotations before any work (StudyParams)."""

from __future__ import annotations

import dataclasses
import importlib
from typing import ClassVar

import pytest

from instab.book import sources
from instab.studies.params import StudyParams


@dataclasses.dataclass
class Toy(StudyParams):
    steps: int
    lr: float
    seeds: list[int]
    flag: bool
    LIMITS: ClassVar[dict[str, float]] = {"lr": 10.0}


GOOD = {"steps": 10, "lr": 0.1, "seeds": [0, 1], "flag": True}


@pytest.mark.parametrize(("change", "message"), [
    ({"steps": 2.5}, r"steps=2\.5 .*an integer"),
    ({"steps": True}, r"steps=True .*an integer"),
    ({"steps": 10**12}, r"steps=1000000000000 .*at most 1e\+07"),
    ({"lr": float("inf")}, r"lr=inf .*finite number"),
    ({"lr": float("nan")}, r"lr=nan .*finite number"),
    ({"lr": "0.1"}, r"lr='0.1' .*finite number"),
    ({"lr": 11.0}, r"lr=11\.0 .*at most 10"),
    ({"seeds": [0, 4.5]}, r"seeds\[1\]=4\.5 .*an integer"),
    ({"seeds": 3}, r"seeds=3 .*a list of int"),
    ({"flag": 1}, r"flag=1 .*true or false"),
])
def test_a_value_against_its_annotation_is_named(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Toy.from_namespace({**GOOD, **change})
    assert Toy.from_namespace({**GOOD, "lr": 1}).lr == 1  # an integer is a number


@pytest.mark.parametrize("chapter", sources.chapters())
def test_every_chapters_ci_and_default_parameters_pass(chapter: str) -> None:
    study = importlib.import_module(f"instab.studies.{chapter}")
    for scale in ("ci", "default"):
        study.Params.from_namespace(sources.chapter_parameters(chapter, scale)).validate()


@pytest.mark.parametrize("chapter", sources.chapters())
def test_a_study_default_is_the_chapters_parameters_cell(chapter: str) -> None:
    """The chapter's parameters cell is where a default lives: a study's ``Params`` that repeats one
    (so that a test or a script can build it without the chapter) must repeat it exactly."""
    params = importlib.import_module(f"instab.studies.{chapter}").Params
    cell = sources.chapter_parameters(chapter, "default")
    differ = {}
    for f in dataclasses.fields(params):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue
        if f.name not in cell or (list(default) if isinstance(default, tuple) else default) != cell[f.name]:
            differ[f.name] = (default, cell.get(f.name, "(not in the cell)"))
    assert not differ, f"{chapter}: Params defaults differ from book/{chapter}.md's parameters cell: {differ}"
