"""The paper scale's dry run: every cell built and validated, the cost estimated, nothing trained."""

from instab import book


def test_dry_run_of_the_paper_scale_builds_every_cell_and_trains_nothing(capsys, monkeypatch):
    import instab.train as T

    monkeypatch.setattr(T, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    book.main(["plan", "--params", "paper"])
    out = capsys.readouterr().out
    assert "sgd_variance (paper): dry run, nothing trained" in out
    for chapter in ("sgd_growth", "sgd_threshold", "multilayer"):
        assert f"{chapter} (paper): dry run" in out
    row = next(line for line in out.splitlines() if "table relu (resnet56, cifar10)" in line)
    assert row.split()[-4:-1] == ["6", "36", "7200"]  # cells, runs (6 seeds × 6 k), model-epochs (× 200)
    assert "GPU-hours" in out and "device cuda:" in out and "data cifar10:" in out


def test_parameters_are_the_cell_overridden_by_the_scale():
    default, paper = book.chapter_parameters("sgd_growth", "default"), book.chapter_parameters("sgd_growth", "paper")
    assert default["common"]["device"] == "cpu" and paper["common"]["device"] == "cuda"
    assert book.gpu_needed(paper) and not book.gpu_needed(default)
    assert not book.gpu_needed(book.chapter_parameters("heat", "paper"))


def test_a_gpu_chapter_is_skipped_without_a_gpu_with_its_plan(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(book.sources, "out_dir", lambda c, scale, env="native": tmp_path / c)
    assert book.execute("multilayer", "paper") is False
    page = (tmp_path / "multilayer" / "SKIPPED.md").read_text()
    assert "not executed at the paper scale" in page and "dry run" in page
    assert "skipped multilayer (paper)" in capsys.readouterr().out


def test_an_unknown_name_in_a_parameter_file_is_rejected_before_any_work(tmp_path, monkeypatch):
    import shutil

    import pytest

    for d in ("book/params/ci",):
        (tmp_path / d).mkdir(parents=True)
    shutil.copy(book.ROOT / "book" / "heat.md", tmp_path / "book" / "heat.md")
    (tmp_path / "book/params/ci/heat.yml").write_text("n_stepz: 10\n")
    with pytest.raises(SystemExit, match="'n_stepz'.*r_values"):
        book.check_parameter_file("heat", "ci", root=tmp_path)


def _a_scale(tmp_path, shared: str, linear: str, momentum: str) -> None:
    """A project copy with the linear and momentum chapters and a ci scale's parameter files."""
    import shutil

    (tmp_path / "book/params/ci").mkdir(parents=True)
    for chapter in ("linear", "momentum"):
        shutil.copy(book.ROOT / "book" / f"{chapter}.md", tmp_path / "book" / f"{chapter}.md")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/linear\nchapters:\n- file: book/momentum\n")
    for name, text in (("shared", shared), ("linear", linear), ("momentum", momentum)):
        (tmp_path / f"book/params/ci/{name}.yml").write_text(text)


def test_a_shared_name_goes_to_the_chapters_that_have_it_and_their_own_file_replaces_it(tmp_path):
    linear, momentum = book.parameter_names("linear"), book.parameter_names("momentum")
    only_linear = next(n for n in linear if n not in momentum)
    both = next(n for n in linear if n in momentum)
    _a_scale(tmp_path, f"{only_linear}: 7\n{both}: {{a: 1, b: 2}}\n", "", f"{both}: {{b: 3}}\n")
    from instab.book import sources

    assert sources.scale_parameters("linear", "ci", root=tmp_path) == {only_linear: 7, both: {"a": 1, "b": 2}}
    assert sources.scale_parameters("momentum", "ci", root=tmp_path) == {both: {"b": 3}}
    assert sources.scale_parameters("linear", "default", root=tmp_path) == {}


def test_a_shared_name_no_chapter_has_is_rejected_before_any_work(tmp_path):
    import pytest

    from instab.book import sources

    _a_scale(tmp_path, "comon: {lr: 0.1}\n", "", "")
    with pytest.raises(SystemExit, match="shared.yml sets 'comon', which no chapter has"):
        sources.check_shared_file("ci", root=tmp_path)


def test_the_sgd_chapters_files_do_not_repeat_the_shared_common():
    from instab.book import sources

    for scale in ("ci", "paper"):
        assert "common" in sources.read_params_file(sources.shared_file(scale))
        for chapter in ("sgd_growth", "sgd_variance", "sgd_threshold", "open_questions"):
            own = sources.read_params_file(sources.params_file(chapter, scale))
            assert ("common" in own) == ((chapter, scale) == ("open_questions", "paper")), (chapter, scale)


def _a_study(tmp_path, monkeypatch, name, source):
    """A study module ``instab.studies.<name>`` that exists only for this test (the driver finds it by name)."""
    import sys

    import instab.studies

    (tmp_path / "studies").mkdir(exist_ok=True)
    (tmp_path / "studies" / f"{name}.py").write_text(source)
    monkeypatch.setattr(instab.studies, "__path__", [*instab.studies.__path__, str(tmp_path / "studies")])
    monkeypatch.delitem(sys.modules, f"instab.studies.{name}", raising=False)


PLAN = '''
def dry_run(params):
    rows = [{"what": "growth (resnet56, cifar10)", "cells": 2, "runs": params["runs"], "model_epochs": 400.0,
             "gpu_hours": 1.5}]
    total = {"runs": params["runs"], "model_epochs": 400.0, "gpu_hours": 1.5, "epoch_seconds_source": "measured"}
    return {"rows": rows, "total": total, "checks": ["device cuda: none here"]}
'''


def test_any_chapter_with_a_study_dry_run_plans_and_is_skipped_without_a_gpu(tmp_path, monkeypatch, capsys):
    import torch

    _a_study(tmp_path, monkeypatch, "sgd_made_up", PLAN)
    monkeypatch.setattr(book.sources, "chapter_parameters", lambda c, scale: {"runs": 12, "common": {"device": "cuda"}})
    text = book.dry_run("sgd_made_up", "paper")
    assert text is not None and text.startswith("sgd_made_up (paper): dry run, nothing trained")
    assert "growth (resnet56, cifar10)" in text and "device cuda: none here" in text
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(book.sources, "out_dir", lambda c, scale, env="native": tmp_path / c)
    assert book.execute("sgd_made_up", "paper") is False
    assert "growth (resnet56, cifar10)" in (tmp_path / "sgd_made_up" / "SKIPPED.md").read_text()
    assert "skipped sgd_made_up (paper)" in capsys.readouterr().out


def test_a_chapter_without_a_study_or_its_dry_run_has_no_plan_and_a_broken_one_is_not_hidden(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setattr(book.sources, "chapter_parameters", lambda c, scale: {"runs": 1})
    assert book.dry_run("no_such_chapter", "paper") is None
    _a_study(tmp_path, monkeypatch, "no_plan_here", "x = 1\n")
    assert book.dry_run("no_plan_here", "paper") is None
    _a_study(tmp_path, monkeypatch, "needs_a_missing_package", "import instab_no_such_package\n")
    with pytest.raises(ModuleNotFoundError, match="instab_no_such_package"):
        book.dry_run("needs_a_missing_package", "paper")
    _a_study(tmp_path, monkeypatch, "plans_badly", "def dry_run(params):\n    return {'rows': [], 'checks': []}\n")
    with pytest.raises(ValueError, match="plans_badly.dry_run returned a plan without total"):
        book.dry_run("plans_badly", "paper")


def test_the_plan_names_each_cost_constant_and_counts_flops(capsys):
    from instab import cost

    # ResNet-56: about 125 M multiply-adds per 32×32 image forward, ×2 FLOPs, ×3 with the backward pass
    assert 0.6e9 < cost.flops_per_image("resnet56", "cifar10") < 0.9e9
    assert cost.flops_per_image("vgg16_bn", "cifar10") > 2 * cost.flops_per_image("resnet56", "cifar10")
    assert cost.flops_per_image("resnet56", "fashion_mnist") < cost.flops_per_image("resnet56", "cifar10")
    book.main(["plan", "--params", "paper", "--chapter", "sgd_variance"])
    out = capsys.readouterr().out
    for kind in ("counted: vgg16_bn on fashion_mnist", "extrapolated: other networks", "extrapolated: a cell of V"):
        assert kind in out
    assert "measured: ResNet-56 CIFAR-10 epoch" in out or "estimated: ResNet-56 CIFAR-10 epoch" in out


def test_a_chapter_executes_again_when_a_shared_name_it_takes_changes(tmp_path):
    from instab.book import sources

    linear_only = next(n for n in book.parameter_names("linear") if n not in book.parameter_names("momentum"))
    _a_scale(tmp_path, f"{linear_only}: 7\n", "", "")
    before = {c: sources.content_hash(c, "ci", root=tmp_path) for c in ("linear", "momentum")}
    (tmp_path / "book/params/ci/shared.yml").write_text(f"{linear_only}: 8\n")
    after = {c: sources.content_hash(c, "ci", root=tmp_path) for c in ("linear", "momentum")}
    assert after["linear"] != before["linear"] and after["momentum"] == before["momentum"]
