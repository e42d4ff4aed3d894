"""How a perturbation's RelL1 (paper §4.2) grows: one definition of each quantity every chapter
reads off a RelL1 curve, and the rounding floor they are measured against.

- :func:`ulp_floor` — RelL1 between a network and itself moved by one ulp in every weight: the
  level below which a perturbation has not grown at all (it only spreads over the weights);
- :func:`decades` — log10(end / start), the decades between two levels of one curve;
- :func:`summary` — first non-zero value, peak, final value, and the decades from first to peak
  (Fig. 2 left, the other one-ulp perturbations, float64);
- :func:`restraint` — the exponential phase's rate against the late rate (is the growth
  restrained? Fig. 2 left's decayed runs and the constant-lr run);
- :func:`amplification` — late over early RelL1 of a fixed-lr run, from no lower than the floor
  (Fig. 2 right, the open questions).

Kept out of the training code's closure: these are yardsticks for the chapters' rules, not part of
a run.  Torch is imported only by :func:`ulp_floor` (the PDE chapters read curves, not networks)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["ulp_floor", "nonzero", "decades", "summary", "restraint", "amplification"]


def ulp_floor(weights: Iterable[torch.Tensor]) -> float:
    """RelL1 (paper §4.2) between ``weights`` and the same weights each moved by one ulp towards
    +∞ (``torch.nextafter``): the network's one-ulp floor.  For float32 weights it is about
    2⁻²³/(2 ln 2) ≈ 8.6e-8 whatever their values (each term is ulp(w)/(2|w|), and a normal float's
    mantissa puts ulp(w)/|w| between 2⁻²⁴ and 2⁻²³); a weight that is exactly 0 (a bias at
    initialisation) is left as it is: its one-ulp neighbour is a subnormal, a whole RelL1 term of 1."""
    import torch

    from instab.metrics import rel_l1

    a = [w.detach() for w in weights]
    if not a:
        raise ValueError("ulp_floor: no weights")
    b = [torch.where(w == 0, w, torch.nextafter(w, torch.full_like(w, float("inf")))) for w in a]
    return rel_l1(a, b)


def nonzero(steps: Iterable[float] | np.ndarray, rel: Iterable[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a RelL1 curve after iteration 0 where it is finite and non-zero (before the
    first difference the runs are bit-identical; after a blow-up RelL1 is NaN)."""
    s, r = np.asarray(steps, float), np.asarray(rel, float)
    keep = (s > 0) & np.isfinite(r) & (r > 0)
    return s[keep], r[keep]


def decades(start: float, end: float) -> float:
    """log10(end / start): how many decades a curve moved between two of its levels (NaN unless
    both are positive)."""
    return math.log10(end / start) if start > 0 and end > 0 else math.nan


def summary(steps: Iterable[float] | np.ndarray, rel: Iterable[float] | np.ndarray) -> dict[str, float]:
    """A RelL1 curve's ``first`` non-zero value, ``peak``, ``final`` value and ``decades`` from
    first to peak (:func:`decades`); all NaN with fewer than three non-zero points (e.g. a variant
    bitwise equal to the reference throughout)."""
    s, r = nonzero(steps, rel)
    if s.size < 3:
        return {"first": math.nan, "peak": math.nan, "final": math.nan, "decades": math.nan}
    first, peak = float(r[0]), float(r.max())
    return {"first": first, "peak": peak, "final": float(r[-1]), "decades": decades(first, peak)}


def restraint(steps: Iterable[float] | np.ndarray, rel: Iterable[float] | np.ndarray, *,
              tail: float = 0.1) -> dict[str, Any]:
    """Is a curve's growth restrained?  Over its non-zero points (:func:`nonzero`):

    - ``plateau``: the median RelL1 over the last ``tail`` of the iterations, ``middle`` over the
      ``tail`` window at mid-run;
    - ``early_rate``: decades per iteration from the first value until RelL1 first comes within a
      decade of ``plateau`` (the exponential phase); ``late_rate``: |decades| per iteration between
      ``middle`` and ``plateau``; ``late_over_early``: their ratio (≪ 1: the growth has stopped);
    - ``first`` and ``decades`` from it to the plateau;

    all NaN with fewer than three non-zero points (a variant bitwise equal to the reference)."""
    s, r = nonzero(steps, rel)
    if s.size < 3:
        return {k: math.nan for k in ("first", "plateau", "middle", "decades", "early_rate", "late_rate",
                                      "late_over_early")}
    n = s[-1]
    plateau = float(np.median(r[s >= (1 - tail) * n]))
    window = (s >= (0.5 - tail / 2) * n) & (s <= (0.5 + tail / 2) * n)
    mid = float(np.median(r[window])) if window.any() else math.nan
    reach = int(np.argmax(r >= plateau / 10))
    early = decades(r[0], r[reach]) / max(s[reach] - s[0], 1.0)
    late = abs(decades(mid, plateau)) / max((1 - tail / 2) * n - 0.5 * n, 1.0)
    return {"first": float(r[0]), "plateau": plateau, "middle": mid, "decades": decades(r[0], plateau),
            "early_rate": early, "late_rate": late, "late_over_early": late / early if early > 0 else math.inf}


def amplification(steps: np.ndarray, rel: np.ndarray, *, floor: float = 0.0, window: float = 0.1) -> float:
    """Median RelL1 over the last ``window`` of a fixed-lr run over its median over the first
    ``window`` (iterations from 1), that start measured no lower than ``floor``, the network's one-ulp
    floor (:func:`ulp_floor`): a perturbation that starts below the floor and only reaches it has
    spread over the weights, not grown.  The one-ulp perturbations are re-injected at every step, so
    an error that is merely accumulated grows about in proportion to the iterations (×10 over this
    span, a random walk ×3); an amplified one grows by orders of magnitude more."""
    steps, rel = np.asarray(steps, float), np.asarray(rel, float)
    keep = steps > 0
    steps, rel = steps[keep], rel[keep]
    if steps.size < 2 or not np.all(np.isfinite(rel)):
        return math.nan
    n = steps[-1]
    head = rel[steps <= max(window * n, steps[0])]
    tail = rel[steps >= (1 - window) * n]
    lo = float(np.median(head))
    if lo <= 0 and floor <= 0:
        lo = float(np.min(rel[rel > 0])) if np.any(rel > 0) else math.nan
    return float(np.median(tail)) / max(lo, floor)
