"""Perturbed SGD (paper §4.1): SGD whose update is perturbed at the last bit of the float.

The paper perturbs each update by writing it as θ ← θ − (η/k)·(k·v), with v the gradient or
momentum direction: in exact arithmetic this is SGD for every positive integer k, in floating point
the products k·v and η/k round differently for each k that is not a power of two, so the update
differs from SGD's by about one unit in the last place.  The authors' released code does the same
with the other grouping, θ ← θ − (η·k)·(v/k) (``lr*k``, ``d_p/k``).  Both are here (``form``).

:class:`PerturbedSGD` is a drop-in for :class:`torch.optim.SGD` (same arguments and semantics)
and follows the order of operations of ``torch/optim/sgd.py`` exactly — maximize, weight decay,
momentum buffer (initialised to the first gradient), Nesterov — so that at k = 1 (and at powers of
two, where the scaling is exact) it is bitwise equal to ``torch.optim.SGD`` on both the
single-tensor and the foreach path.  The momentum buffer holds torch's unperturbed value; only the
final parameter update is perturbed.

A third path, :func:`stacked_perturbed_sgd`, takes the step for V runs at once whose parameters are
stacked along a leading axis, each run with its own k and form (the stacked engine,
:mod:`instab.batched`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, _default_to_fused_or_foreach

from instab.numerics import FORMS, check_form, check_k, is_power_of_two

__all__ = ["FORMS", "PerturbedSGD", "perturbed_sgd", "stacked_perturbed_sgd", "perturbed_update", "check_k",
           "check_form"]


class PerturbedSGD(torch.optim.SGD):
    """``torch.optim.SGD`` with the update perturbed by the integer ``k`` (paper §4.1).

    Parameters
    ----------
    params, lr, momentum, dampening, weight_decay, nesterov, maximize, foreach:
        As :class:`torch.optim.SGD` (``weight_decay`` is the paper's α).
    k:
        Positive integer; k = 1 is SGD.  A power of two > 1 scales exactly and introduces no
        perturbation (a warning says so).
    form:
        ``"paper"``: θ ← θ − (η/k)·(k·v);  ``"release"``: θ ← θ − (η·k)·(v/k).
    """

    def __init__(self, params: Any, lr: float | Tensor = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float | Tensor = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, k: int = 1, form: str = "paper"):
        k = check_k(k)
        check_form(form)
        if k > 1 and is_power_of_two(k):
            warnings.warn(f"k={k} is a power of two: scaling by it is exact in binary floating point, so "
                          "PerturbedSGD introduces no perturbation (it equals SGD bit for bit)", stacklevel=2)
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov, maximize=maximize, foreach=foreach)
        for group in self.param_groups:
            group.setdefault("k", k)
            group.setdefault("form", form)
        self.defaults["k"] = k
        self.defaults["form"] = form

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One optimisation step (``torch.optim.SGD.step`` with the perturbed update)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            momentum_buffer_list: list[Tensor | None] = []
            has_sparse_grad = self._init_group(group, params, grads, momentum_buffer_list)
            if has_sparse_grad:
                raise RuntimeError("PerturbedSGD does not support sparse gradients")
            perturbed_sgd(params, grads, momentum_buffer_list, weight_decay=group["weight_decay"],
                          momentum=group["momentum"], lr=group["lr"], dampening=group["dampening"],
                          nesterov=group["nesterov"], maximize=group["maximize"], foreach=group["foreach"],
                          k=check_k(group["k"]), form=check_form(group["form"]))
            if group["momentum"] != 0:
                for p, buf in zip(params, momentum_buffer_list, strict=True):
                    self.state[p]["momentum_buffer"] = buf
        return loss


def _scalar(x: float | Tensor) -> float:
    return float(x.item()) if isinstance(x, Tensor) else x


def perturbed_sgd(params: list[Tensor], grads: list[Tensor], momentum_buffer_list: list[Tensor | None], *,
                  weight_decay: float | Tensor, momentum: float, lr: float | Tensor, dampening: float,
                  nesterov: bool, maximize: bool, foreach: bool | None = None, k: int = 1,
                  form: str = "paper") -> None:
    """Functional perturbed SGD (``torch.optim.sgd`` with ``k`` and ``form``)."""
    if foreach is None:
        _, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    fn = _multi_tensor if foreach else _single_tensor
    fn(params, grads, momentum_buffer_list, weight_decay=_scalar(weight_decay), momentum=momentum,
       lr=_scalar(lr), dampening=dampening, nesterov=nesterov, maximize=maximize, k=k, form=form)


def perturbed_update(v: Tensor, lr: float, k: int = 1, form: str = "paper") -> Tensor:
    """The update Δθ that PerturbedSGD adds to θ for a direction ``v``, in ``v``'s precision, with
    the optimizer's own operations: −(η/k)·(k·v) (paper) or −(η·k)·(v/k) (release).  Compare k ≠ 1
    with k = 1 to measure the perturbation's relative size (about 2⁻²⁴ to 2⁻²³ in float32)."""
    k, form = check_k(k), check_form(form)
    d = v if k == 1 else (v.mul(k) if form == "paper" else v.div(k))
    return torch.zeros_like(v).add_(d, alpha=-_step_size(_scalar(lr), k, form))


_K_TENSORS: dict[tuple[int, torch.dtype, torch.device], Tensor] = {}


def _k_tensor(k: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    key = (k, dtype, device)
    if key not in _K_TENSORS:
        _K_TENSORS[key] = torch.tensor(float(k), dtype=dtype, device=device)
    return _K_TENSORS[key]


def _step_size(lr: float, k: int, form: str) -> float:
    """The η of the perturbed update: η/k (paper) or η·k (release); a Python float, as in torch."""
    return lr / k if form == "paper" else lr * k


def _single_tensor(params: list[Tensor], grads: list[Tensor], momentum_buffer_list: list[Tensor | None], *,
                   weight_decay: float, momentum: float, lr: float, dampening: float, nesterov: bool,
                   maximize: bool, k: int, form: str) -> None:
    step = _step_size(lr, k, form)
    for i, param in enumerate(params):
        grad = grads[i] if not maximize else -grads[i]
        owned = maximize  # whether ``grad`` is a temporary this function may overwrite
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
            owned = True
        if momentum != 0:
            buf = momentum_buffer_list[i]
            if buf is None:
                buf = grad.detach().clone()
                momentum_buffer_list[i] = buf
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            if nesterov:
                grad = grad.add(buf, alpha=momentum)
                owned = True
            else:
                grad = buf
                owned = False
        if k != 1:  # the perturbation: k·v (paper) or v/k (release), never stored in the buffer
            if form == "paper":
                kt = _k_tensor(k, grad.dtype, grad.device)
                grad = grad.mul_(kt) if owned else grad.mul(kt)
            else:
                grad = grad.div_(k) if owned else grad.div(k)
        param.add_(grad, alpha=-step)


def _multi_tensor(params: list[Tensor], grads: list[Tensor], momentum_buffer_list: list[Tensor | None], *,
                  weight_decay: float, momentum: float, lr: float, dampening: float, nesterov: bool,
                  maximize: bool, k: int, form: str) -> None:
    if not params:
        return
    step = _step_size(lr, k, form)
    tensorlists = cast("list[list[Tensor | None]]", [params, grads, momentum_buffer_list])  # list is invariant
    grouped = Optimizer._group_tensors_by_device_and_dtype(tensorlists, with_indices=True)
    for (device_params_, device_grads_, device_bufs_), indices in grouped.values():
        device_params = cast(list[Tensor], device_params_)
        # the out-of-place foreach ops return tuples
        device_grads: list[Tensor] | tuple[Tensor, ...] = cast(list[Tensor], device_grads_)
        owned = False
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
            owned = True
        if weight_decay != 0:
            if maximize:
                torch._foreach_add_(device_grads, device_params, alpha=weight_decay)
            else:
                device_grads = torch._foreach_add(device_grads, device_params, alpha=weight_decay)
            owned = True
        if momentum != 0:
            bufs: list[Tensor] = []
            if all(b is not None for b in device_bufs_):
                bufs = cast(list[Tensor], list(device_bufs_))
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, device_grads, alpha=1 - dampening)
            else:
                for i in range(len(device_bufs_)):
                    if device_bufs_[i] is None:
                        buf = device_grads[i].detach().clone()
                        device_bufs_[i] = momentum_buffer_list[indices[i]] = buf
                    else:
                        buf = cast(Tensor, device_bufs_[i])
                        buf.mul_(momentum).add_(device_grads[i], alpha=1 - dampening)
                    bufs.append(buf)
            if nesterov:
                # torch adds in place here even when device_grads are the .grad tensors themselves
                torch._foreach_add_(device_grads, bufs, alpha=momentum)
            else:
                device_grads = bufs
                owned = False
        if k != 1:
            if form == "paper":
                # k as a 0-dim tensor: the same product fl(k·v), on CPU about twice as fast as a Python scalar
                kt = _k_tensor(k, device_grads[0].dtype, device_grads[0].device)
                if owned:
                    torch._foreach_mul_(device_grads, kt)
                else:
                    device_grads = torch._foreach_mul(device_grads, kt)
            else:
                if owned:
                    torch._foreach_div_(device_grads, k)
                else:
                    device_grads = torch._foreach_div(device_grads, k)
        torch._foreach_add_(device_params, device_grads, alpha=-step)


@torch.no_grad()
def stacked_perturbed_sgd(params: list[Tensor], grads: Sequence[Tensor], momentum_buffer_list: list[Tensor | None],
                          *, weight_decay: float, momentum: float, lr: float, dampening: float, nesterov: bool,
                          k: Sequence[int], form: Sequence[str], workspace: list[Tensor | None] | None = None,
                          grads_owned: bool = False) -> None:
    """Perturbed SGD for V runs stacked along each tensor's leading axis, run i with its own ``k[i]``
    and ``form[i]`` (the stacked engine, :mod:`instab.batched`).

    The same algorithm as the other two paths — weight decay, the momentum buffer (initialised to
    the first direction), Nesterov, then the perturbed update (η/k)·(k·v) or (η·k)·(v/k) — in
    separate elementwise operations, each rounded once (no fused multiply–add, which torch's
    ``add(..., alpha=)`` may use): a run's arithmetic does not depend on its place in the stack, so
    k = 2 and k = 4 equal k = 1 bit for bit here too.  The step sizes −η/k or −η·k are Python floats
    rounded to the parameters' dtype, as torch rounds the ``alpha`` of the other paths.

    ``workspace`` (a list the caller keeps, one entry per parameter) holds one scratch tensor per
    parameter between steps, and ``grads_owned=True`` lets the step overwrite ``grads``: then a step
    allocates nothing (each operation writes into a tensor that exists) and computes the same
    roundings in the same order, so the bits do not change.
    """
    if not params:
        return
    ks, steps, paper = _stacked_constants(tuple(k), tuple(form), lr, params[0].dtype, params[0].device)
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        shape = (-1,) + (1,) * (p.dim() - 1)
        w = workspace[i] if workspace is not None else None
        if w is None:
            w = torch.empty_like(p)
            if workspace is not None:
                workspace[i] = w
        d = g if grads_owned else g.clone()
        if weight_decay != 0:
            torch.mul(p, weight_decay, out=w)
            d.add_(w)  # fl(g + fl(p·α))
        if momentum != 0:
            buf = momentum_buffer_list[i]
            if buf is None:  # torch initialises the buffer to the first direction
                buf = d.clone()
                momentum_buffer_list[i] = buf
            else:
                buf.mul_(momentum)
                if dampening:
                    torch.mul(d, 1 - dampening, out=w)
                    buf.add_(w)
                else:
                    buf.add_(d)
            if nesterov:
                torch.mul(buf, momentum, out=w)
                d.add_(w)  # fl(d + fl(buf·μ))
            else:
                d = buf
        kv = ks.view(shape)
        if paper is None:
            if form[0] == "paper":
                torch.mul(d, kv, out=w)
            else:
                torch.div(d, kv, out=w)
        else:
            torch.where(paper.view(shape), d * kv, d / kv, out=w)
        w.mul_(steps.view(shape))
        p.add_(w)


@functools.lru_cache(maxsize=64)
def _stacked_constants(k: tuple[int, ...], form: tuple[str, ...], lr: float, dtype: torch.dtype,
                       device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
    """The stacked path's k per run, step size per run, and which runs take the paper form (``None``
    when all take one form)."""
    for f in form:
        check_form(f)
    ks = torch.tensor([float(check_k(v)) for v in k], dtype=dtype, device=device)
    steps = torch.tensor([-_step_size(lr, v, f) for v, f in zip(k, form, strict=True)], dtype=dtype, device=device)
    paper = None if len(set(form)) == 1 else torch.tensor([f == "paper" for f in form], device=device)
    return ks, steps, paper
