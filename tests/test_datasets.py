"""Fashion-MNIST on disk: a damaged IDX file is named when read, and `prepare` repairs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from instab import datasets, paths
from instab.data import _read_idx

REAL = datasets.fashion_raw_dir(paths.data_root())
pytestmark = pytest.mark.skipif(not datasets._debian_dir() or not REAL.is_dir(),
                                reason="needs Debian's dataset-fashion-mnist and `make setup`'s data")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    raw = datasets.fashion_raw_dir(tmp_path)
    raw.mkdir(parents=True)
    for f in datasets.FASHION_FILES:
        shutil.copy(REAL / f, raw / f)
    return tmp_path


def test_the_published_files_pass(root: Path) -> None:
    assert datasets.fashion_problems(root) == {}


def test_a_truncated_file_is_named_when_read_and_repaired_by_prepare(root: Path, capsys) -> None:
    f = datasets.fashion_raw_dir(root) / "t10k-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(ValueError, match=f"{f}: a damaged IDX file \\(5000 bytes; its header describes 10008\\)"):
        _read_idx(f)
    assert datasets.fashion_problems(root) == {"t10k-labels-idx1-ubyte": "5000 bytes, not 10008"}
    datasets.prepare_fashion_mnist(root, allow_apt=False, allow_download=False)
    assert "5000 bytes, not 10008: unpacking it again" in capsys.readouterr().out
    assert datasets.fashion_problems(root) == {}


def test_an_edited_file_of_the_right_size_is_found_by_its_sha256(root: Path) -> None:
    f = datasets.fashion_raw_dir(root) / "train-labels-idx1-ubyte"
    data = bytearray(f.read_bytes())
    data[100] ^= 1
    f.write_bytes(bytes(data))
    assert datasets.fashion_problems(root) == {"train-labels-idx1-ubyte": "SHA-256 differs from the published file's"}
    datasets.prepare_fashion_mnist(root, allow_apt=False, allow_download=False)
    assert datasets.fashion_problems(root) == {}
