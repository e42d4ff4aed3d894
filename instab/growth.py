"""The rounding floor of RelL1: how far apart two networks are when they differ by one ulp in every
weight, the level below which a perturbation has not grown at all (it only spreads over the
weights).  Kept out of the training code's closure: the floor is a yardstick for the chapters'
rules, not part of a run."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from instab.metrics import rel_l1

__all__ = ["ulp_floor"]


def ulp_floor(weights: Iterable[torch.Tensor]) -> float:
    """RelL1 (paper §4.2) between ``weights`` and the same weights each moved by one ulp towards
    +∞ (``torch.nextafter``): the network's one-ulp floor.  For float32 weights it is about
    2⁻²³/(2 ln 2) ≈ 8.6e-8 whatever their values (each term is ulp(w)/(2|w|), and a normal float's
    mantissa puts ulp(w)/|w| between 2⁻²⁴ and 2⁻²³); a weight that is exactly 0 (a bias at
    initialisation) is left as it is: its one-ulp neighbour is a subnormal, a whole RelL1 term of 1."""
    a = [w.detach() for w in weights]
    if not a:
        raise ValueError("ulp_floor: no weights")
    b = [torch.where(w == 0, w, torch.nextafter(w, torch.full_like(w, float("inf")))) for w in a]
    return rel_l1(a, b)
