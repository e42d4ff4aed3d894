"""FFT cross-correlation, the workhorse of the one-layer CNN of §5.

The paper's ``*`` is deep learning's convolution, i.e. cross-correlation:
``(K * I)(x) = Σ_z K(z) I(x + z)``.  With an N×N image and a w×w kernel, the *valid* part has
(N−w+1)² positions.  Its adjoint — the gradient's back-correlation ``[R * I](z) = Σ_x R(x) I(x+z)``
for z in the w×w window — is the same operation with the (N−w+1)² array R in the kernel's place,
so one function, :meth:`Correlator.valid`, serves both.

The image's FFT is computed once; each call costs one forward and one inverse real FFT of size N²
(a few ms for N = 256), instead of w² N² multiply-adds.  Arithmetic stays in the image's dtype
(float32 or float64; scipy.fft does not upcast), with one worker thread so results are reproducible.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike
from scipy import fft as sfft


class Correlator:
    """Valid cross-correlations ``Σ_z small(z) image(x + z)`` against one fixed image."""

    def __init__(self, image: np.ndarray, dtype: DTypeLike | None = None) -> None:
        image = np.asarray(image)
        if image.ndim != 2:
            raise ValueError(f"image must be 2-D, got shape {image.shape}")
        self.dtype: np.dtype = np.dtype(dtype or image.dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype={self.dtype} is not allowed; choose float32 or float64")
        self.image = image.astype(self.dtype)
        self.shape = self.image.shape
        self._image_hat = sfft.rfft2(self.image, workers=1)

    def valid(self, small: np.ndarray) -> np.ndarray:
        """``out[x] = Σ_z small[z] · image[x + z]`` for every x where small fits inside the image."""
        small = np.asarray(small, dtype=self.dtype)
        m0, m1 = small.shape
        if m0 > self.shape[0] or m1 > self.shape[1]:
            raise ValueError(f"array of shape {small.shape} is larger than the image {self.shape}")
        small_hat = sfft.rfft2(small, s=self.shape, workers=1)
        full = sfft.irfft2(self._image_hat * np.conj(small_hat), s=self.shape, workers=1)
        return full[: self.shape[0] - m0 + 1, : self.shape[1] - m1 + 1]


#: How a w×w kernel meets an N×N image: ``valid`` (deep learning's default: (N−w+1)² positions),
#: ``full`` (zero padding: every one of the (N+w−1)² positions where kernel and image overlap) or
#: ``circular`` (the image periodic: N² positions).
CORRELATIONS = ("valid", "full", "circular")


def padded(image: np.ndarray, w: int, correlation: str) -> np.ndarray:
    """The image on which the *valid* correlation of a w×w kernel is the ``correlation`` one:
    ``valid`` the image itself, ``full`` the image with w − 1 zeros on every side, ``circular`` the
    image wrapped by w − 1 rows and columns (w ≤ N)."""
    image = np.asarray(image)
    if correlation == "valid":
        return image
    if correlation == "full":
        return np.pad(image, w - 1)
    if correlation == "circular":
        if w > min(image.shape):
            raise ValueError(f"w={w} is not allowed for circular correlation; it must be ≤ the image size")
        return np.pad(image, ((0, w - 1), (0, w - 1)), mode="wrap")
    raise ValueError(f"correlation={correlation!r} is not allowed; choose one of {list(CORRELATIONS)}")
