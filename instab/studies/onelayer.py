"""What the linear and the momentum chapters share (§5.1–5.3, App. C.3 and App. D): the parameters
of the linearised one-layer CNN, the paper's measured windowed bounds and how Tables 2 and 6 print
them.

- :class:`OneLayerParams` — the image, the windows, Δt, a, β, the search, the seed, validated in
  one place (each chapter's ``Params`` adds its own);
- :func:`reported_windowed`, :func:`minima`, :func:`halfwidths` — the paper's measured α^e by
  window and their printed precision;
- :func:`bounds_header`, :func:`bounds_columns` — one window's bounds as the tables print them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from instab import checks
from instab.bounds import AlphaBounds
from instab.pde import images
from instab.report import paper, printed_halfwidth
from instab.studies.params import StudyParams


def integers(name: str, values: list[Any]) -> None:
    """Raise ``ValueError`` unless ``values`` is a list of integers (bools refused)."""
    if any(isinstance(w, bool) or not isinstance(w, int) for w in values):
        raise ValueError(f"{name}={values!r} is not allowed; it must be a list of integers")


@dataclass
class OneLayerParams(StudyParams):
    """The parameters of the linearised one-layer CNN that the linear and the momentum chapters share:
    the image (``image_kind``, N = ``image_size``, ``seed``), the windows w of the table, the step Δt,
    a = ŷ − y, the Swish β, the simulated steps per α of the search, and the seed of the kernels."""

    #: Δt of the paper's setting (Table 2: 1e-8; Table 6: 1e-4)
    PAPER_DT: ClassVar[float] = 1e-8

    image_kind: str = "checkerboard"
    image_size: int = 256
    kernel_sizes: list[int] = field(default_factory=lambda: [16, 32, 64])
    dt: float = 1e-8
    a: float = -0.5
    beta: float = 1.0
    search_steps: int = 300
    seed: int = 0

    def validate(self) -> Any:
        checks.one_of("image_kind", self.image_kind, images.IMAGE_KINDS)
        checks.positive("image_size", self.image_size, integer=True)
        checks.each("kernel_sizes", self.kernel_sizes, checks.in_range, 1, self.image_size)
        integers("kernel_sizes", self.kernel_sizes)
        checks.positive("dt", self.dt)
        checks.in_range("a", self.a, -1.0, 1.0)
        checks.positive("beta", self.beta)
        checks.in_range("search_steps", self.search_steps, 8, 100_000)
        checks.in_range("seed", self.seed, 0, 2**32 - 1)
        return self

    def image(self) -> np.ndarray:
        """The N×N image (:func:`instab.pde.images.make`)."""
        return images.make(self.image_kind, self.image_size, self.seed)

    @property
    def paper_setting(self) -> bool:
        """Whether the parameters are the paper's (then its reported numbers are compared)."""
        return (self.image_kind == "checkerboard" and self.image_size == 256 and self.dt == self.PAPER_DT
                and self.a == -0.5 and self.beta == 1.0)

    def recorded(self) -> dict[str, Any]:
        """The parameters written to ``results.json``."""
        return dict(image_kind=self.image_kind, image_size=self.image_size, kernel_sizes=self.kernel_sizes,
                    dt=self.dt, a=self.a, beta=self.beta, search_steps=self.search_steps)

    def kernel(self, w: int) -> np.ndarray:
        """A w×w kernel drawn from N(0, 1) with ``seed`` (the runs' K⁰)."""
        return np.random.default_rng(self.seed).standard_normal((w, w))


def bounds_header(theory_min: str, theory_max: str) -> str:
    """The header of :func:`bounds_columns` (Tables 2 and 6 as printed)."""
    return (f"{theory_min:>9} {'exact min':>10} {'bisect min':>10} {'paper e-min':>11} | "
            f"{theory_max:>9} {'exact max':>10} {'bisect max':>10} {'paper e-max':>11}")


def bounds_columns(theory: AlphaBounds, exact: AlphaBounds, found: AlphaBounds, reported: dict[str, float]) -> str:
    """One window's lower and upper bound as Tables 2 and 6 print them: from theory, exact, by
    bisection, and the paper's measurement (nan where the paper gives none)."""
    nan = float("nan")
    return (f"{theory.alpha_min:>9.4g} {exact.alpha_min:>10.5g} "
            f"{found.alpha_min:>10.5g} {reported.get('alpha_min', nan):>11.3g} | "
            f"{theory.alpha_max:>9.4g} {exact.alpha_max:>10.5g} "
            f"{found.alpha_max:>10.5g} {reported.get('alpha_max', nan):>11.3g}")


def reported_windowed(key: str, p: OneLayerParams) -> dict[int, dict[str, float]]:
    """The paper's measured windowed bounds {w: {alpha_min, alpha_max}} at ``key`` of reported.yml, at
    the paper's setting only (else empty)."""
    # reported.yml holds 1.3e7-style numbers as strings
    return ({w: {k: float(v) for k, v in row.items()} for w, row in paper(key).items()}
            if p.paper_setting else {})


def minima(reported: dict[int, dict[str, float]]) -> dict[int, float]:
    """The paper's measured α_min^e by window."""
    return {w: v["alpha_min"] for w, v in reported.items()}


def halfwidths(key: str, reported: dict[int, dict[str, float]], bound: str = "alpha_min") -> dict[int, float]:
    """The printed precision of the paper's measured ``bound`` by window (``key`` of reported.yml)."""
    return {w: printed_halfwidth(f"{key}.{w}.{bound}") for w in reported}
