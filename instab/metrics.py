"""Distances between training runs (paper §4.2).

- :func:`rel_l1` — RelL1(θ, θ′) = (2/N) Σᵢ |θᵢ − θ′ᵢ| / (|θᵢ| + |θ′ᵢ|), the paper's measure of how far
  two runs' weights have drifted apart (bounded by 2; relative because floating-point error is).
- :func:`disagreement` — the share of test images two runs classify differently (its interval over
  the images: :func:`instab.ensemble.pairwise_disagreement`, Wilson's for two runs).
- :func:`relative_error` — ‖a − b‖ / ‖b‖, for gradient perturbations (paper Table 1 right).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, overload

import numpy as np
import torch
from torch import nn

# State-dict entries that are BatchNorm running statistics, not parameters: RelL1 leaves them out.
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")

Weights = nn.Module | Mapping[str, torch.Tensor] | Sequence[torch.Tensor] | Iterable[torch.Tensor]


def named_weights(w: Weights) -> list[tuple[str, torch.Tensor]]:
    """The parameters of ``w`` as (name, tensor) pairs.

    A module gives its ``named_parameters()`` (buffers such as BatchNorm running statistics are
    not parameters); a state dict gives its floating-point entries except BatchNorm running
    statistics; a sequence of tensors is named by position.
    """
    if isinstance(w, nn.Module):
        return [(n, p.detach()) for n, p in w.named_parameters()]
    if isinstance(w, Mapping):
        return [(n, t.detach()) for n, t in w.items()
                if torch.is_tensor(t) and t.is_floating_point() and not n.endswith(BUFFER_SUFFIXES)]
    return [(str(i), t.detach()) for i, t in enumerate(w)]


def _pairs(a: Weights, b: Weights) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    na, nb = named_weights(a), named_weights(b)
    if [n for n, _ in na] != [n for n, _ in nb]:
        raise ValueError("rel_l1: the two sets of weights have different names or order")
    out = []
    for (name, x), (_, y) in zip(na, nb, strict=True):
        if x.shape != y.shape:
            raise ValueError(f"rel_l1: {name} has shape {tuple(x.shape)} vs {tuple(y.shape)}")
        out.append((name, x, y))
    if not out:
        raise ValueError("rel_l1: no parameters to compare")
    return out


def _terms(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|x − y| / (|x| + |y|) element by element in float64 (x broadcast against y): 0 where both
    are 0, NaN where either is not finite."""
    x, y = x.to(torch.float64), y.to(x.device, torch.float64)
    den = x.abs() + y.abs()
    terms = (x - y).abs() / den
    terms = torch.where(den == 0, torch.zeros_like(terms), terms)  # both zero: no difference
    # NaN/inf anywhere makes the result NaN, never 0
    bad = ~(torch.isfinite(x) & torch.isfinite(y))
    return torch.where(bad, torch.full_like(terms, math.nan), terms)


def _sum_and_count(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
    return _terms(x, y).sum(), x.numel()


@overload
def rel_l1(a: Weights, b: Weights, *, per_layer: Literal[False] = ...) -> float: ...
@overload
def rel_l1(a: Weights, b: Weights, *, per_layer: Literal[True]) -> dict[str, float]: ...
@overload
def rel_l1(a: Weights, b: Weights, *, per_layer: bool) -> float | dict[str, float]: ...
def rel_l1(a: Weights, b: Weights, *, per_layer: bool = False) -> float | dict[str, float]:
    """RelL1(θ, θ′) = (2/N) Σᵢ |θᵢ − θ′ᵢ| / (|θᵢ| + |θ′ᵢ|) over all N parameters (paper §4.2).

    ``a`` and ``b`` are modules, state dicts or sequences of tensors (see :func:`named_weights`;
    BatchNorm running statistics are not parameters and are left out).  Elements where both are 0
    count as 0; a non-finite element makes the result NaN.  Summed in float64.

    With ``per_layer=True`` returns {parameter name: RelL1 of that tensor} instead of the total.
    """
    parts = [(name, *_sum_and_count(x, y)) for name, x, y in _pairs(a, b)]
    if per_layer:
        return {name: 2.0 * float(s) / n for name, s, n in parts}
    total = torch.stack([s.cpu() for _, s, _ in parts]).sum()
    return 2.0 * float(total) / sum(n for _, _, n in parts)


def rel_l1_stacked(stacked: Sequence[torch.Tensor]) -> list[float]:
    """RelL1 (:func:`rel_l1`) of every run of a stack against the first: ``stacked`` are the
    parameters of V runs, each tensor [V, ...] with the runs along its leading axis (the stacked
    engine's layout).  Returns V values, the first 0.

    The element-wise work is done once for the whole stack; each run's sum is then taken over its
    own contiguous row, the same reduction as :func:`rel_l1` of that run's tensors, so the values
    are bitwise those of ``rel_l1(run 0, run i)``.
    """
    if not stacked:
        raise ValueError("rel_l1_stacked: no parameters to compare")
    runs = len(stacked[0])
    if any(len(t) != runs for t in stacked):
        raise ValueError("rel_l1_stacked: the tensors stack different numbers of runs")
    if runs < 2:
        return [0.0] * runs
    sums = [_terms(t[:1].detach(), t[1:].detach()) for t in stacked]
    n = sum(t[0].numel() for t in stacked)
    out = [0.0]
    for i in range(runs - 1):
        total = torch.stack([terms[i].sum().cpu() for terms in sums]).sum()
        out.append(2.0 * float(total) / n)
    return out


def relative_error(a: Weights, b: Weights) -> float:
    """‖a − b‖₂ / ‖b‖₂ over all tensors (e.g. a perturbed gradient against the exact one)."""
    pairs = _pairs(a, b)
    num = sum(float(((x.double() - y.double()) ** 2).sum()) for _, x, y in pairs)
    den = sum(float((y.double() ** 2).sum()) for _, _, y in pairs)
    return math.sqrt(num / den) if den > 0 else math.nan


def _labels(p: torch.Tensor) -> np.ndarray:
    p = torch.as_tensor(p).detach().cpu()
    if p.ndim == 2:
        p = p.argmax(dim=1)
    return p.numpy()


def disagreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of examples on which two runs' predictions differ (labels, or logits (N, C))."""
    la, lb = _labels(a), _labels(b)
    if la.shape != lb.shape:
        raise ValueError(f"disagreement: {la.shape} vs {lb.shape} predictions")
    return float(np.mean(la != lb))


def mean_pairwise_disagreement(predictions: Sequence[torch.Tensor]) -> float:
    """Mean :func:`disagreement` over all pairs of runs."""
    pairs = list(itertools.combinations(range(len(predictions)), 2))
    if not pairs:
        raise ValueError("mean_pairwise_disagreement needs at least two runs")
    return float(np.mean([disagreement(predictions[i], predictions[j]) for i, j in pairs]))
