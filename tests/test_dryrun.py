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
    monkeypatch.setattr(book, "out_dir", lambda c, scale, env="native": tmp_path / c)
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
