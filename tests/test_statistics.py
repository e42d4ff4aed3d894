"""The execution-statistics page is generated from the executed chapters' records."""

from __future__ import annotations

import json
from pathlib import Path

from instab.book import sources, statistics


def _executed(out: Path, chapter: str, duration: float, env: dict) -> None:
    out.mkdir(parents=True)
    nb = {"cells": [], "metadata": {"language_info": {"version": "3.11.7"}, "papermill": {
        "start_time": "2026-12-04T20:58:29.9+00:00", "end_time": "2026-12-04T20:58:35.6+00:00",
        "duration": duration, "version": "2.7.0", "exception": None}}}
    (out / f"{chapter}.ipynb").write_text(json.dumps(nb))
    (out / "results.json").write_text(json.dumps({"claims": [], "environment": env}))
    sources.write_stamp(out, chapter, "digest")


ENV = {"name": "native", "vars": {"ATEN_CPU_CAPABILITY": ""}, "cpu_capability": "AVX512", "mkl": "2024.2",
       "onednn": "3.12.0", "torch": "2.14.1", "numpy": "2.4.6", "threads": 1, "cpu": "AMD EPYC",
       "machine": "x86_64"}


def test_wall_time() -> None:
    assert statistics.wall_time(5.67) == "5.7 s" and statistics.wall_time(192) == "3 min 12 s"
    assert statistics.wall_time(3720) == "1 h 02 min" and statistics.wall_time(None) == "—"


def test_records_say_when_where_how_long_and_whether_cached(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sources, "out_dir", lambda c, s, env="native": tmp_path / env / s / c)
    monkeypatch.setenv("INSTAB_BUILD", str(tmp_path))  # no robust/ under it: native only
    _executed(tmp_path / "native" / "ci" / "a", "a", 5.67, ENV)
    _executed(tmp_path / "native" / "ci" / "b", "b", 200.0, {**ENV, "name": "aten-default",
                                                             "vars": {"ATEN_CPU_CAPABILITY": "default"}})
    (tmp_path / "native" / "ci" / "c").mkdir(parents=True)
    (tmp_path / "native" / "ci" / "c" / "SKIPPED.md").write_text("needs a GPU")
    _executed(tmp_path / "native" / "default" / "a", "a", 61.0, ENV)
    (tmp_path / "native" / "default" / "b").mkdir(parents=True)
    (tmp_path / "native" / "default" / "b" / "b.ipynb").write_text("{}")  # failed: no record
    page = statistics.statistics_markdown("ci", executed_now={"a"}, chapters=["a", "b", "c"])
    ci, default = page.split("## The ci scale")[1].split("## The default scale")
    assert "| {doc}`a <a>` | 2026-12-04 20:58 UTC | 5.7 s | executed by this build |" in ci
    assert f"| 3 min 20 s | {statistics.FROM_CACHE} |" in ci and statistics.NOT_EXECUTED in ci
    assert "| a | native: kernels AVX512 | AMD EPYC x86_64 | 1 |" in ci
    assert "aten-default: kernels AVX512 (`ATEN_CPU_CAPABILITY=default`)" in ci
    assert "Libraries (every chapter): Python 3.11.7, papermill 2.7.0, torch 2.14.1, NumPy 2.4.6" in ci
    assert "1 min 01 s | executed earlier |" in default and statistics.FAILED in default
    # edited after it ran: the record no longer vouches for it
    (tmp_path / "native" / "ci" / "a" / "results.json").write_text(json.dumps({"claims": [1], "environment": ENV}))
    assert statistics.chapter_record(tmp_path / "native" / "ci" / "a", "a")["status"] == "failed"  # type: ignore[index]
    assert statistics.statistics_markdown("paper", chapters=["x"]) == "No chapter has been executed yet.\n"
