"""One gradient of the linearised one-layer CNN (9): FFT correlation against conv2d + autograd.

Both compute ``(a/2)(Ī_W + β[(K ∗ I) ∗ I]) + αK`` for a 256×256 image and a 32×32 kernel, on one
CPU thread, in the same run; the ratio of the median times is printed last.

    python benchmarks/onelayer_fft.py [--size 256] [--kernel 32] [--repeats 50] [--dtype float32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from instab.pde import images
from instab.pde.onelayer import LinearisedCNN


def median_ms(fn, repeats: int) -> float:
    fn()                                   # warm-up (FFT plans, allocator)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--kernel", type=int, default=32)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = p.parse_args()
    torch.set_num_threads(1)
    a, beta, alpha = -0.5, 1.0, 1e7
    image = images.checkerboard(args.size)
    kernel = np.random.default_rng(0).standard_normal((args.kernel, args.kernel))
    model = LinearisedCNN(image, args.kernel, a, beta, dtype=getattr(np, args.dtype))
    k_np = kernel.astype(args.dtype)

    tdtype = getattr(torch, args.dtype)
    img_t = torch.tensor(image, dtype=tdtype)[None, None]
    ibar_t = torch.tensor(model.i_bar_window, dtype=tdtype)

    def torch_gradient() -> torch.Tensor:
        k = torch.tensor(k_np)[None, None].requires_grad_(True)
        out = torch.nn.functional.conv2d(img_t, k)                     # valid cross-correlation
        loss = (a / 2) * ((ibar_t * k[0, 0]).sum() + beta / 2 * (out * out).sum()) + alpha / 2 * (k * k).sum()
        (g,) = torch.autograd.grad(loss, k)
        return g[0, 0]

    g_fft = model.gradient(k_np, alpha)
    g_torch = torch_gradient().numpy()
    err = float(np.max(np.abs(g_fft - g_torch)) / np.max(np.abs(g_torch)))
    t_fft = median_ms(lambda: model.gradient(k_np, alpha), args.repeats)
    t_torch = median_ms(torch_gradient, args.repeats)
    print(f"image {args.size}², kernel {args.kernel}², {args.dtype}, 1 thread, torch {torch.__version__}")
    print(f"max relative difference of the two gradients: {err:.2e}")
    print(f"FFT (scipy.fft)         : {t_fft:8.2f} ms per gradient (median of {args.repeats})")
    print(f"conv2d + autograd (torch): {t_torch:8.2f} ms per gradient (median of {args.repeats})")
    print(f"speed-up FFT / conv2d    : {t_torch / t_fft:8.1f}x")


if __name__ == "__main__":
    main()
