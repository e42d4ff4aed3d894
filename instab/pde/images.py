"""Input images for the one-layer CNN of §5: the paper's checkerboard and two others.

The paper (§5.3) uses "a 256×256 checkerboard pattern filled with 1 and −1".  Its Table 2 pins
down which one: the theoretical bound α_min = 1.07e9 of eq. (13) equals −½aβ·max|Î|² with
a = −0.5, β = 1 only if max|Î|² = 4.29e9 = 256⁴, i.e. the whole energy of the image sits in one
DFT coefficient of modulus N² — the **pixel** checkerboard I(x) = (−1)^(x₁+x₂), whose DFT (sum
convention, see :func:`instab.bounds.fourier_spectrum`) is N²·δ(ω − (π, π)).  Coarser squares
spread the energy over odd harmonics and give a smaller maximum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from instab import paths

IMAGE_KINDS = ("checkerboard", "random", "fashion")


def checkerboard(size: int = 256, square: int = 1) -> np.ndarray:
    """The ±1 checkerboard ``I(x) = (−1)^(⌊x₁/square⌋ + ⌊x₂/square⌋)`` (paper §5.3; square = 1)."""
    if size < 1 or square < 1:
        raise ValueError(f"size and square must be positive, got size={size}, square={square}")
    idx = np.arange(size) // square
    return np.where((idx[:, None] + idx[None, :]) % 2 == 0, 1.0, -1.0)


def random_sign(size: int = 256, seed: int = 0) -> np.ndarray:
    """Independent ±1 pixels (a white-noise image), from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1.0, 1.0]), size=(size, size))


def fashion(size: int = 256, index: int = 0, root: str | Path | None = None) -> np.ndarray:
    """Fashion-MNIST test image ``index``, mapped to [−1, 1] and upsampled from 28×28 to size×size
    by pixel replication then bilinear resampling (``scipy.ndimage.zoom``, order 1).

    Reads the uncompressed IDX file under ``root/FashionMNIST/raw`` (``make setup`` puts it there).
    """
    from scipy import ndimage

    path = Path(root or paths.data_root()) / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `make setup` (or python -m instab.datasets prepare)")
    raw = np.fromfile(path, dtype=np.uint8)
    images = raw[16:].reshape(-1, 28, 28)
    if not 0 <= index < images.shape[0]:
        raise ValueError(f"index={index} is not allowed; choose 0..{images.shape[0] - 1}")
    img = images[index].astype(np.float64) / 127.5 - 1.0
    return np.clip(ndimage.zoom(img, size / 28.0, order=1, grid_mode=True, mode="nearest"), -1.0, 1.0)


def make(kind: str, size: int = 256, seed: int = 0) -> np.ndarray:
    """An image by name: ``checkerboard`` (the paper's), ``random`` (±1 noise), ``fashion``."""
    if kind == "checkerboard":
        return checkerboard(size)
    if kind == "random":
        return random_sign(size, seed)
    if kind == "fashion":
        return fashion(size, index=seed)
    raise ValueError(f"kind={kind!r} is not allowed; choose one of {list(IMAGE_KINDS)}")
