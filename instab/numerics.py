"""Torch-free numerics shared by the PDE chapters and the training side.

- :func:`rel_l1` — RelL1 of paper §4.2 on arrays (the torch side, :func:`instab.metrics.rel_l1`,
  sums the same terms per tensor in torch's order).
- :func:`check_k`, :func:`check_form`, :func:`perturbed_step` — the one rule for the perturbation
  k of paper §4.1 (a positive integer; k = 1 is the unperturbed step; a power of two changes
  nothing) and the perturbed product on arrays, ``x − (Δt/k)·(k·g)`` or ``x − (Δt·k)·(g/k)``.
- :func:`bisect` — the one bisection behind every measured threshold (the heat CFL limit, the
  one-layer CNN's thresholds, the largest stable learning rate of App. E).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: The two ways of writing the perturbed update: the paper's (η/k)·(k·g), the authors' release's (η·k)·(g/k).
FORMS = ("paper", "release")


def rel_l1(theta: ArrayLike, theta_prime: ArrayLike) -> float:
    """RelL1 of §4.2: ``(2/N) Σ |θᵢ − θ'ᵢ| / (|θᵢ| + |θ'ᵢ|)``, terms with θᵢ = θ'ᵢ = 0 count 0,
    NaN if any input is not finite.  Computed in float64."""
    a = np.asarray(theta, dtype=np.float64).ravel()
    b = np.asarray(theta_prime, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"rel_l1: shapes differ, {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("nan")
    den = np.abs(a) + np.abs(b)
    num = np.abs(a - b)
    terms = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(2.0 * terms.sum() / a.size)


def check_k(k: Any) -> int:
    """Return ``k`` if it is a positive integer, else raise ``ValueError`` naming it (k = 1: no
    perturbation; k = 2, 4, ... scale exactly and change nothing either)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k={k!r} is not allowed; it must be a positive integer (k = 1 is plain SGD)")
    return int(k)


def check_form(form: Any) -> str:
    """Return ``form`` if it is one of :data:`FORMS`, else raise ``ValueError`` naming the allowed ones."""
    if form not in FORMS:
        raise ValueError(f"form={form!r} is not allowed; choose one of {list(FORMS)}")
    return form


def is_power_of_two(k: int) -> bool:
    """True for k = 1, 2, 4, ...: multiplying and dividing by k is exact in binary floating point."""
    return k > 0 and k & (k - 1) == 0


def perturbed_step(x: np.ndarray, dt: float, grad: np.ndarray, k: int = 1, form: str = "paper",
                   dtype: type = np.float32) -> np.ndarray:
    """One (perturbed) gradient step on arrays of ``dtype`` (paper §4.1): ``x − Δt·g`` for k = 1,
    else ``x − (Δt/k)·(k·g)`` (form "paper") or ``x − (Δt·k)·(g/k)`` (form "release"), every
    factor rounded to ``dtype`` as the network's own arithmetic does."""
    k, form = check_k(k), check_form(form)
    t = dtype
    if k == 1:
        return x - t(dt) * grad
    if form == "paper":
        return x - (t(dt) / t(k)) * (t(k) * grad)
    return x - (t(dt) * t(k)) * (grad / t(k))


@dataclass
class Bracket:
    """The result of :func:`bisect`: the property holds at ``lo`` and fails at ``hi``;
    ``trials`` lists every (x, holds) evaluated, in order."""

    lo: float
    hi: float
    trials: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def mid(self) -> float:
        return 0.5 * (self.lo + self.hi)


def bisect(holds: Callable[[float], bool], lo: float, hi: float, *, rtol: float, geometric: bool = False,
           expand: int = 0) -> Bracket:
    """Find where ``holds(x)`` turns from True (small x) to False (large x), to relative width
    ``rtol`` (stop when ``hi − lo ≤ rtol·lo``, or ``hi/lo ≤ 1 + rtol`` when ``geometric``).

    ``geometric`` halves the bracket at √(lo·hi) (for steps spanning decades), else at (lo+hi)/2.
    ``expand = 0``: ``[lo, hi]`` must bracket the change (``ValueError`` otherwise; lo is evaluated
    first).  ``expand = n > 0``: ``lo`` and ``hi`` are first guesses — ``hi`` is doubled until the
    property fails and ``lo`` halved until it holds, each at most n times (``RuntimeError``
    beyond; hi is evaluated first).  Assumes one change (the property holds below, fails above).
    """
    if not lo < hi:
        raise ValueError(f"bisect: need lo < hi, got [{lo}, {hi}]")
    if not rtol > 0:
        raise ValueError(f"rtol={rtol!r} is not allowed; it must be positive")
    trials: list[tuple[float, bool]] = []

    def test(x: float) -> bool:
        h = bool(holds(x))
        trials.append((x, h))
        return h

    if expand:
        for _ in range(expand):
            if not test(hi):
                break
            lo, hi = hi, 2.0 * hi
        else:
            raise RuntimeError(f"bisect: the property still holds at {hi:g}")
        for _ in range(expand):
            if test(lo):
                break
            hi, lo = lo, 0.5 * lo
        else:
            raise RuntimeError(f"bisect: the property still fails at {lo:g}")
    elif not test(lo) or test(hi):
        raise ValueError(f"bisect: the property must hold at lo={lo} and fail at hi={hi}")
    if geometric:
        while hi / lo > 1.0 + rtol:
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if test(mid) else (lo, mid)
    else:
        while hi - lo > rtol * lo:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if test(mid) else (lo, mid)
    return Bracket(lo, hi, trials)
