"""Data sets as tensors, CIFAR-10's on-disk format, seeded batch order independent of other seeds."""

import pickle

import numpy as np
import pytest
import torch

from instab.data import Loader, augment, batch_order, load


def _write_cifar(root, n_per_file=6, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_file, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_file).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data,
                         "filenames": [f"{i}.png" for i in range(n_per_file)]}, f)
        written[name] = (data, labels)
    return written


def test_cifar10_reads_the_real_on_disk_format(tmp_path):
    written = _write_cifar(tmp_path)
    data = load("cifar10", root=tmp_path, download=False, train_size=8)
    assert data.x_train.shape == (8, 3, 32, 32) and data.x_test.shape == (6, 3, 32, 32)
    assert data.x_train.dtype == torch.float32 and data.in_channels == 3 and data.num_classes == 10
    first, labels = written["data_batch_1"]
    pixel = first[0].reshape(3, 32, 32)[:, 5, 7] / 255
    expected = (pixel - np.array([0.4914, 0.4822, 0.4465])) / np.array([0.2470, 0.2435, 0.2616])
    assert np.allclose(data.x_train[0, :, 5, 7].numpy(), expected, atol=1e-5)
    assert data.y_train[:6].tolist() == labels
    assert data.y_train[6:8].tolist() == written["data_batch_2"][1][:2]


def test_fashion_mnist_subsets_and_padding():
    data = load("fashion_mnist", train_size=100, test_size=50)
    assert data.x_train.shape == (100, 1, 28, 28) and data.x_test.shape == (50, 1, 28, 28)
    assert data.y_train.dtype == torch.int64 and int(data.y_train.max()) <= 9
    padded = load("fashion_mnist", train_size=100, test_size=50, pad_to=32)
    assert padded.input_size == 32 and torch.equal(padded.x_train[:, :, 2:30, 2:30], data.x_train)


def test_missing_data_and_bad_arguments_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST"):
        load("fashion_mnist", root=tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match="CIFAR-10"):
        load("cifar10", root=tmp_path, download=False)
    with pytest.raises(ValueError, match="mnist_digits"):
        load("mnist_digits")
    with pytest.raises(ValueError, match="train_size"):
        load("fashion_mnist", train_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        Loader(torch.zeros(3, 1), torch.zeros(3), 0, seed=0)


def test_batch_order_is_seeded_per_epoch():
    a = batch_order(100, 32, seed=3, epoch=2)
    assert [len(b) for b in a] == [32, 32, 32, 4]
    assert sorted(torch.cat(a).tolist()) == list(range(100))
    assert all(torch.equal(x, y) for x, y in zip(a, batch_order(100, 32, seed=3, epoch=2), strict=True))
    assert not torch.equal(torch.cat(a), torch.cat(batch_order(100, 32, seed=4, epoch=2)))
    assert not torch.equal(torch.cat(a), torch.cat(batch_order(100, 32, seed=3, epoch=3)))
    assert [len(b) for b in batch_order(100, 32, seed=3, epoch=2, drop_last=True)] == [32, 32, 32]


def test_batch_order_is_independent_of_augmentation_seed_and_global_rng():
    x, y = torch.randn(50, 1, 8, 8), torch.arange(50)
    ya = [yb for _, yb in Loader(x, y, 16, seed=1, augment=True, augment_seed=0).epoch(0)]
    torch.manual_seed(123)
    yb = [yb for _, yb in Loader(x, y, 16, seed=1, augment=True, augment_seed=9).epoch(0)]
    assert all(torch.equal(p, q) for p, q in zip(ya, yb, strict=True))


def test_augmentation_is_per_image_and_a_crop_or_flip():
    x = torch.randn(20, 3, 8, 8)
    idx = torch.arange(20)
    out = augment(x, idx, n=20, seed=0, epoch=0)
    # image 5's augmentation does not depend on which batch it is in
    again = augment(x[[7, 5]], torch.tensor([7, 5]), n=20, seed=0, epoch=0)
    assert torch.equal(again[1], out[5])
    # a zero-offset-centre crop (pad 4, offset 4) without flip is the identity: check a few draws
    for i in range(20):
        padded = torch.nn.functional.pad(x[i], (4, 4, 4, 4))
        found = any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1))
                    for c in (padded[:, r:r + 8, s:s + 8] for r in range(9) for s in range(9)))
        assert found


def test_loader_augmentation_equals_the_per_batch_function():
    x, y = torch.randn(40, 3, 8, 8), torch.arange(40)
    loader = Loader(x, y, 16, seed=2, augment=True, augment_seed=5)
    for xb, yb in loader.epoch(3):
        assert torch.equal(xb, augment(x[yb], yb, n=40, seed=5, epoch=3))


def test_augmentation_crops_and_flips_at_the_stated_rates():
    """Every image is cropped at an offset drawn uniformly from the 9 × 9 offsets of 4-pixel padding
    and flipped with probability 1/2: the shares found agree with those rates (binomial, 5 sigma), and
    an identity augmentation (or one that never flips or never shifts) would fail."""
    n = 2000
    x = torch.randn(n, 1, 6, 6)
    out = augment(x, torch.arange(n), n=n, seed=0, epoch=0)
    flips, offsets = 0, []
    for i in range(n):
        padded = torch.nn.functional.pad(x[i], (4, 4, 4, 4))
        hits = [(r, s, f) for r in range(9) for s in range(9) for f in (False, True)
                if torch.equal(out[i], padded[:, r:r + 6, s:s + 6].flip(-1) if f else padded[:, r:r + 6, s:s + 6])]
        assert len(hits) == 1, i  # random pixels: exactly one crop and flip gives the image
        r, s, f = hits[0]
        flips += f
        offsets.append((r, s))

    def within(count: int, p: float) -> bool:
        return abs(count - n * p) <= 5 * (n * p * (1 - p)) ** 0.5

    assert within(flips, 0.5)
    assert within(sum(o == (4, 4) for o in offsets), 1 / 81)  # the centre crop, unshifted
    rows = [sum(r == v for r, _ in offsets) for v in range(9)]
    assert all(within(c, 1 / 9) for c in rows)
