import numpy as np
import pytest
from scipy.signal import correlate2d

from instab.pde.correlate import Correlator


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_valid_correlation_matches_direct(dtype, tol):
    rng = np.random.default_rng(0)
    image = rng.standard_normal((40, 40))
    kernel = rng.standard_normal((7, 7))
    c = Correlator(image, dtype)
    out = c.valid(kernel)
    assert out.dtype == dtype and out.shape == (34, 34)
    np.testing.assert_allclose(out, correlate2d(image, kernel, mode="valid"), rtol=tol, atol=tol * 10)
    # adjoint: the back-correlation with the (N-w+1)² response has the kernel's shape
    back = c.valid(out)
    assert back.shape == (7, 7)
    np.testing.assert_allclose(back, correlate2d(image, out, mode="valid"), rtol=tol, atol=tol * 1e3)


def test_bad_dtype_named():
    with pytest.raises(ValueError, match="float16"):
        Correlator(np.zeros((4, 4)), np.float16)
