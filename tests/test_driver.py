"""The book driver goes on past a failing chapter and names what failed (no chapter is executed here)."""

import json

import pytest

from instab import book


def test_execute_all_goes_on_past_a_failing_chapter(monkeypatch):
    ran = []

    def fake(chapter, scale, force=False, env="native"):
        ran.append(chapter)
        if chapter == "b":
            raise book.ChapterFailed("chapter 'b' (ci) failed in cell 3: AssertionError")
        return True

    monkeypatch.setattr(book, "execute", fake)
    assert book.execute_all(["a", "b", "c"], "ci") == ["b"]
    assert ran == ["a", "b", "c"]


def test_failures_name_the_failed_claims(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "out_dir", lambda c, scale, env="native": tmp_path / c)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps({"claims": [
        {"name": "threshold", "ok": False}, {"name": "growth", "ok": True}]}))
    text = book.failures(["a", "b"], "ci")
    assert "a: stopped before writing results.json" in text and "b: claim failed: threshold" in text
    assert "growth" not in text


def test_build_roots_keep_the_native_build_apart():
    assert book.build_root("native") == book.BUILD
    assert book.out_dir("heat", "ci", "avx2") == book.ROBUST / "avx2" / "executed" / "ci" / "heat"


def test_bad_environment_is_named():
    with pytest.raises(SystemExit):
        book.main(["robust", "--env", "fast"])


def test_a_chapter_key_covers_the_modules_it_imports_and_not_the_driver():
    from instab import store

    for name in book.chapters():
        mods = store.module_closure(book.chapter_modules((book.ROOT / "book" / f"{name}.md").read_text()))
        assert "instab.report" in mods and "instab.book" not in mods
    pde = store.module_closure(book.chapter_modules((book.ROOT / "book" / "heat.md").read_text()))
    assert not any(m in pde for m in ("instab.train", "instab.optim", "instab.models"))  # no torch training


def test_the_reader_sees_one_progress_bar_and_no_parameter_code():
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [], "source": "x = 1"},
                    {"cell_type": "code", "metadata": {}, "source": "run()", "outputs": [
                        {"output_type": "stream", "name": "stderr", "text": "\rcells:   0%| 0/2"},
                        {"output_type": "stream", "name": "stderr", "text": "\rcells:  50%| 1/2"},
                        {"output_type": "stream", "name": "stderr", "text": "\rcells: 100%| 2/2\n"},
                        {"output_type": "stream", "name": "stdout", "text": "done\n"},
                        {"output_type": "stream", "name": "stderr", "text": "\n"}]}]}
    out = json.loads(book.for_reader(json.dumps(nb)))
    assert "hide-input" in out["cells"][0]["metadata"]["tags"]
    streams = out["cells"][1]["outputs"]
    assert [(o["name"], o["text"]) for o in streams] == [("stderr", "cells: 100%| 2/2\n"), ("stdout", "done\n")]
