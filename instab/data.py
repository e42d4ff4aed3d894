"""Data sets of paper §4 as in-memory float tensors, and a seeded batch order.

- ``"fashion_mnist"``: the IDX files under ``<root>/FashionMNIST/raw`` (prepared by
  ``python -m instab.datasets prepare``), else torchvision's download.
- ``"cifar10"``: the python pickles under ``<root>/cifar-10-batches-py`` (CIFAR-10's own on-disk
  format), else torchvision's download.
- ``"synthetic"``: Gaussian images with random labels of any shape (for timing and smoke tests).

Images are normalised per channel with the data set's usual constants (independent of the subset).
The small data sets stay in memory, no worker processes.  Three seeds are kept apart (paper §4.2
fixes each): the *batch-order* seed (:class:`Loader`'s ``seed``), the *augmentation* seed, and the
*initialisation* seed (:func:`instab.models.build_model`'s ``seed``).  Each epoch's permutation is
drawn from ``SeedSequence([seed, epoch])``, so epoch e's order does not depend on what ran before
(a resumed run sees the same batches).
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from instab import paths

DATASETS = ("fashion_mnist", "cifar10", "synthetic")
_STATS = {
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
_FASHION = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES = {True: [f"data_batch_{i}" for i in range(1, 6)], False: ["test_batch"]}


def default_root() -> Path:
    """``$INSTAB_DATA`` if set, else the repository's ``data/`` folder."""
    return paths.data_root()


@dataclass
class Data:
    """A train/test split as tensors: images (N, C, H, W) float32, labels (N,) int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.x_train.shape[-1])

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> Data:
        """The same data on ``device``, images as ``dtype`` (``None``: unchanged; labels stay int64)."""
        return Data(self.name, self.x_train.to(device, dtype), self.y_train.to(device), self.x_test.to(device, dtype),
                    self.y_test.to(device), self.num_classes)

    def __repr__(self) -> str:
        return (f"Data({self.name!r}, train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"classes={self.num_classes})")


# ------------------------------------------------------------------------------------------ readers
def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes as an array; a file whose size is not the one its header
    describes (truncated, or not IDX) raises ``ValueError`` naming it and how to repair it."""
    raw = path.read_bytes()
    ndim = raw[3] if len(raw) >= 4 else 0
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64))
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or len(raw) != expected:
        raise ValueError(f"{path}: a damaged IDX file ({len(raw)} bytes; its header describes "
                         f"{expected if ndim else 'no valid IDX data'}); repair it with "
                         f"`python -m instab.datasets prepare --root {path.parent.parent.parent}`")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _ensure(files: list[Path], title: str, download: Callable[[], object] | Literal[False], hint: str) -> None:
    """Make sure ``files`` exist, calling ``download()`` (torchvision's) once if allowed; else raise
    ``FileNotFoundError`` naming the missing files and ``hint`` (how to get them)."""
    if not all(f.is_file() for f in files) and download:
        try:
            download()
        except Exception as e:  # noqa: BLE001 - reported below
            raise FileNotFoundError(f"{title} is missing under {files[0].parent} and torchvision's download "
                                    f"failed ({e}); {hint}") from e
    if not all(f.is_file() for f in files):
        raise FileNotFoundError(f"{title} is missing: expected {', '.join(map(str, files))}; {hint}")


def _fashion(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import FashionMNIST

    files = [root / "FashionMNIST" / "raw" / f for f in _FASHION[train]]
    _ensure(files, "Fashion-MNIST", download and (lambda: FashionMNIST(str(root), train=train, download=True)),
            f"run `python -m instab.datasets prepare --root {root}`")
    images, labels = (_read_idx(f) for f in files)
    return images[:, None], labels


def _cifar10(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import CIFAR10

    files = [root / _CIFAR_DIR / f for f in _CIFAR_FILES[train]]
    _ensure(files, "CIFAR-10", download and (lambda: CIFAR10(str(root), train=train, download=True)),
            "torchvision.datasets.CIFAR10(root, download=True) writes them")
    xs, ys = [], []
    for f in files:
        with open(f, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


@functools.lru_cache(maxsize=8)
def _raw(name: str, root: str, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    reader = _fashion if name == "fashion_mnist" else _cifar10
    return reader(Path(root), train, download)


def _tensors(name: str, images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = _STATS[name]
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255))
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    return x, torch.from_numpy(labels.astype(np.int64))


def _subset_size(name: str, value: int | None, available: int) -> int:
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= available:
        raise ValueError(f"{name}={value!r} is not allowed; it must be an integer in [1, {available}]")
    return value


def load(name: str, *, train_size: int | None = None, test_size: int | None = None,
         root: str | Path | None = None, pad_to: int | None = None, download: bool | None = None,
         shape: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10, seed: int = 0) -> Data:
    """Load a data set as normalised in-memory tensors.

    Parameters
    ----------
    name:
        ``"fashion_mnist"``, ``"cifar10"`` or ``"synthetic"``.
    train_size, test_size:
        Use the first ``train_size`` training and first ``test_size`` test images (all if ``None``).
    root:
        Data folder (default :func:`default_root`).
    pad_to:
        Zero-pad the images (in normalised units) symmetrically to this side, e.g. 32 for
        Fashion-MNIST into VGG16.
    download:
        Allow torchvision to download missing files (default: yes unless ``$INSTAB_DOWNLOAD`` is 0).
    shape, num_classes, seed:
        Only for ``"synthetic"``: image shape (C, H, W), number of classes, and the generator seed
        (sizes default to 512 train / 256 test).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is not allowed; choose one of {list(DATASETS)}")
    if download is None:
        download = os.environ.get("INSTAB_DOWNLOAD", "1") != "0"
    if name == "synthetic":
        n_train = _subset_size("train_size", train_size, 10**7) if train_size is not None else 512
        n_test = _subset_size("test_size", test_size, 10**7) if test_size is not None else 256
        g = torch.Generator().manual_seed(seed)
        x = torch.randn((n_train + n_test, *shape), generator=g)
        y = torch.randint(0, num_classes, (n_train + n_test,), generator=g)
        data = Data(name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], num_classes)
    else:
        root = str(Path(root) if root is not None else default_root())
        x_tr, y_tr = _raw(name, root, True, download)
        x_te, y_te = _raw(name, root, False, download)
        n_train = _subset_size("train_size", train_size, len(y_tr))
        n_test = _subset_size("test_size", test_size, len(y_te))
        data = Data(name, *_tensors(name, x_tr[:n_train], y_tr[:n_train]),
                    *_tensors(name, x_te[:n_test], y_te[:n_test]), 10)
    if pad_to is not None:
        side = data.input_size
        if isinstance(pad_to, bool) or not isinstance(pad_to, int) or pad_to < side:
            raise ValueError(f"pad_to={pad_to!r} is not allowed; it must be an integer >= the image "
                             f"side {side}")
        lo = (pad_to - side) // 2
        pad = (lo, pad_to - side - lo, lo, pad_to - side - lo)
        data = Data(data.name, torch.nn.functional.pad(data.x_train, pad), data.y_train,
                    torch.nn.functional.pad(data.x_test, pad), data.y_test, data.num_classes)
    return data


# -------------------------------------------------------------------------------------- batch order
def _rng(*entropy: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(entropy))))


def batch_order(n: int, batch_size: int, *, seed: int, epoch: int,
                drop_last: bool = False) -> list[torch.Tensor]:
    """The index batches of one epoch: a permutation of ``range(n)`` drawn from
    ``SeedSequence([seed, epoch])`` (numpy's PCG64, stable across versions), cut into batches."""
    perm = torch.from_numpy(_rng(seed, epoch).permutation(n).astype(np.int64))
    stop = n - n % batch_size if drop_last else n
    return [perm[i:i + batch_size] for i in range(0, stop, batch_size)]


def augmentation_draws(n: int, *, seed: int, epoch: int, pad: int = 4,
                       flip: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Epoch ``epoch``'s random crop offsets (n, 2) and horizontal flips (n,) of a data set of ``n``
    images, drawn from ``SeedSequence([seed, epoch, 1])`` by image index, so they do not depend
    on the batch order."""
    g = _rng(seed, epoch, 1)
    offsets = torch.from_numpy(g.integers(0, 2 * pad + 1, size=(n, 2)))
    flips = torch.from_numpy(g.random(n) < 0.5) if flip else None
    return offsets, flips


def apply_augmentation(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor | None,
                       pad: int = 4) -> torch.Tensor:
    """Crop each image of the batch ``x`` at ``offsets`` after ``pad``-pixel zero padding (in
    normalised units) and flip those marked in ``flips``."""
    b, _, h, w = x.shape
    offsets = offsets.to(x.device)
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # (B, W)
    if flips is not None:
        cols = torch.where(flips.to(x.device)[:, None], cols.flip(1), cols)
    out = xp[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def augment(x: torch.Tensor, idx: torch.Tensor, *, n: int, seed: int, epoch: int, pad: int = 4,
            flip: bool = True) -> torch.Tensor:
    """The standard CIFAR augmentation (random crop after ``pad``-pixel zero padding, random
    horizontal flip) of the batch ``x`` holding images ``idx`` of a data set of ``n`` images
    (:func:`augmentation_draws` then :func:`apply_augmentation`)."""
    offsets, flips = augmentation_draws(n, seed=seed, epoch=epoch, pad=pad, flip=flip)
    i = idx.cpu()
    return apply_augmentation(x, offsets[i], None if flips is None else flips[i], pad)


class Loader:
    """Minibatches of ``x, y`` in a seeded order, optionally augmented; no worker processes.

    ``loader.epoch(e)`` yields epoch e's batches; it is a pure function of (seed, augment_seed, e).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, seed: int,
                 augment: bool = False, augment_seed: int = 0, drop_last: bool = False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is not allowed; it must be a positive integer")
        if len(x) != len(y):
            raise ValueError(f"{len(x)} images but {len(y)} labels")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.seed, self.augment, self.augment_seed, self.drop_last = seed, augment, augment_seed, drop_last

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        draws = None
        if self.augment:
            offsets, flips = augmentation_draws(len(self.y), seed=self.augment_seed, epoch=epoch)
            draws = offsets.to(self.x.device), flips.to(self.x.device) if flips is not None else None
        for idx in batch_order(len(self.y), self.batch_size, seed=self.seed, epoch=epoch,
                               drop_last=self.drop_last):
            i = idx.to(self.x.device)
            xb = self.x[i]
            if draws is not None:
                xb = apply_augmentation(xb, draws[0][i], None if draws[1] is None else draws[1][i])
            yield xb, self.y[i]


def missing_files(name: str, root: str | Path | None = None) -> list[Path]:
    """The files of data set ``name`` that are not on disk under ``root`` (default
    :func:`default_root`); ``[]`` when it is all there (``synthetic`` needs none).  Loads nothing."""
    base = Path(root) if root is not None else default_root()
    if name == "fashion_mnist":
        files = [base / "FashionMNIST" / "raw" / f for train in (True, False) for f in _FASHION[train]]
    elif name == "cifar10":
        files = [base / _CIFAR_DIR / f for train in (True, False) for f in _CIFAR_FILES[train]]
    else:
        files = []
    return [f for f in files if not f.is_file()]
