"""One store: atomic checksummed files, and cache keys that cover the code a cell runs, and only that."""

import shutil

import pytest

from instab import store
from instab.paths import ROOT


def test_save_load_roundtrip_and_corruption(tmp_path):
    f = tmp_path / "x.result"
    store.save_object(f, {"a": [1.5, 2.5]})
    assert store.load_object(f) == {"a": [1.5, 2.5]}
    raw = f.read_bytes()
    f.write_bytes(raw[:-3])  # truncated
    assert store.load_object(f) is None
    assert store.load_object(tmp_path / "missing") is None


def test_module_closure_follows_imports():
    train = store.module_closure(["instab.train"])
    assert {"instab.train", "instab.optim", "instab.models", "instab.data", "instab.metrics"} <= set(train)
    assert not any(m.startswith(("instab.pde", "instab.book", "instab.studies", "instab.grid")) for m in train)
    with pytest.raises(ValueError, match="nope"):
        store.module_closure(["instab.nope"])


def _keys_in(root, monkeypatch):
    """Training- and threshold-cell keys computed from the package copy under ``root``."""
    from instab.threshold import ThresholdConfig
    from instab.train import RunConfig

    monkeypatch.setattr(store, "PACKAGE", root / "instab")
    store.code_hash.cache_clear()
    try:
        return RunConfig(model="mlp", hidden=(8,)).key(), ThresholdConfig().key()
    finally:
        store.code_hash.cache_clear()


def test_a_comment_in_an_unrelated_module_leaves_training_keys_unchanged(tmp_path, monkeypatch):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "instab", copy / "instab", ignore=shutil.ignore_patterns("__pycache__"))
    before = _keys_in(copy, monkeypatch)
    with open(copy / "instab" / "pde" / "nonlinear.py", "a") as f:
        f.write("\n# a comment in a module no training cell runs\n")
    assert _keys_in(copy, monkeypatch) == before
    with open(copy / "instab" / "optim.py", "a") as f:
        f.write("\n# a change in the optimizer\n")
    after = _keys_in(copy, monkeypatch)
    assert after[0] != before[0]  # a training cell runs the optimizer
