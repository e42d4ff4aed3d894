"""What a training step of either engine needs (paper §4.2): the loss (:func:`cross_entropy`,
:func:`log_likelihood`), the initial one-ulp perturbation (:func:`perturb_init`), the step-decay
schedule (:func:`lr_at`), predictions and gradients.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from instab.runspec import RunSpec


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy as −Σ one_hot(y)·log_softmax(logits): every kernel of it, forward and backward,
    is deterministic on CUDA (``F.cross_entropy``'s NLLLoss is flagged non-deterministic there), and
    it is one code path on every device."""
    picked = log_likelihood(logits, y)
    return -(picked.mean() if reduction == "mean" else picked.sum())


def log_likelihood(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[y] per sample, as Σ one_hot(y)·log_softmax(logits) over the last axis
    (the classes); leading axes are kept (the stacked engine's [variant, sample])."""
    return (F.log_softmax(logits, dim=-1) * F.one_hot(y, logits.shape[-1]).to(logits.dtype)).sum(dim=-1)


def lr_at(config: RunSpec, epoch: int) -> float:
    """The step-decay schedule (paper §4.2): lr · lr_decay^⌊epoch / lr_decay_every⌋ (epoch from 0)."""
    if config.lr_decay_every == 0:
        return config.lr
    return config.lr * config.lr_decay ** (epoch // config.lr_decay_every)


def perturb_init(model: nn.Module, ulps: int, index: int | None = None) -> int:
    """Move one entry of the last weight matrix (the classifier's) by ``ulps`` units in the last
    place (``nextafter``) and return its flat index in that matrix.

    ``index`` is taken modulo the matrix's size (so an ensemble can name entries without knowing the
    network); ``None``: its middle entry.  The input of such a weight is a hidden feature, which
    varies from image to image, so its gradient is never just weight decay.
    """
    weights = [p for p in model.parameters() if p.dim() >= 2]
    if not weights:
        raise ValueError("perturb_init: the model has no weight matrix")
    flat = weights[-1].data.view(-1)
    i = flat.numel() // 2 if index is None else int(index) % flat.numel()
    target = torch.tensor(math.inf if ulps > 0 else -math.inf, dtype=flat.dtype, device=flat.device)
    with torch.no_grad():
        for _ in range(abs(ulps)):
            flat[i] = torch.nextafter(flat[i], target)
    return i


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted labels in eval mode."""
    model.eval()
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
             batch_size: int = 1000) -> list[torch.Tensor]:
    """∇ of the mean cross-entropy over (x, y), accumulated over chunks (the model's mode is kept)."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        loss = cross_entropy(model(xb), yb, reduction="sum") / len(x)
        for t, g in zip(total, torch.autograd.grad(loss, params), strict=True):
            t.add_(g)
    return total
