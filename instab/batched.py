"""Lockstep variants of a network as one stacked computation (``RunConfig(engine="stacked")``).

The k × seed grids of paper §4.2 (Tables 1, 4 and 5) train many small networks.  With
``engine="loop"`` (:mod:`instab.train`) the variants of a lockstep group take their steps one after
another, each a handful of small matrix products.  Here (:class:`StackedEngine`, driven by the one
training loop of :func:`instab.train.train`) the V variants' parameters are stacked along a leading
axis and trained as one network:

- the first layer's weights of all variants form one matrix, so the shared minibatch meets them in
  **one** matrix product (``x @ [W₁; …; W_V]ᵀ``), and its weight gradient is one product too;
- the later layers are batched products (``baddbmm``) over the variant axis;
- the loss is the sum over variants of each variant's mean cross-entropy, so each variant's
  gradient is exactly its own (the sum's derivative is 1);
- the update is :class:`instab.optim.PerturbedSGD`'s algorithm (weight decay, momentum buffer,
  Nesterov, then the perturbed update (η/k)·(k·v) or (η·k)·(v/k)) with a per-variant k, in separate
  elementwise operations, each rounded once (:func:`instab.optim.stacked_perturbed_sgd`, the
  optimizer's third path): a variant's arithmetic does not depend on its place in the stack, so
  k = 2 and k = 4 equal k = 1 bit for bit here as in the loop engine.

The conv nets of :mod:`instab.models` (CNN, CNN + BN, ResNet-6n+2, VGG16-BN) are stacked the same way
by :class:`StackedNet`, with ``torch.func``: the V variants' parameters and buffers stacked
(``stack_module_state``), one network called on them (``functional_call``) and vectorised over the
variant axis (``vmap``), which turns each convolution into one grouped convolution over the V
variants and each BatchNorm into one over V × C channels, with every variant's own running
statistics.  A variant's bits do not depend on its place in the stack or on the stack's size, as
long as the stack holds two or more variants: a single variant is vectorised with another kernel,
so a run of one variant carries a second, silent copy of it; and the input batch is laid out
plainly (an augmented one-channel batch comes strided like channels-last, which would select
another, stack-dependent kernel).  The tests check all of this.  On the CPU the grouped
convolutions are slower than the loop engine's plain ones (``benchmarks/RESULTS.md``), so the
chapters' conv-net grids stay on the loop engine; the conv engine is for devices where grouped
convolutions are fast.

It is the same algorithm as the loop engine, but not the same bits: the matrix products and
convolutions sum in another order.  Results are reproducible run to run and checkpoint-resumable
like the loop engine's; the engine is part of a run's cache key.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from instab.metrics import rel_l1_stacked
from instab.optim import stacked_perturbed_sgd
from instab.runspec import RunSpec, unsupported
from instab.step import log_likelihood, perturb_init

__all__ = ["StackedEngine", "StackedMLP", "StackedNet", "StackedSGD", "loss_per_variant", "unsupported"]


class StackedMLP:
    """V copies of an :class:`instab.models.MLP` with their parameters stacked: ``weights[j]`` is
    [V, out, in] and ``biases[j]`` is [V, out] for the j-th linear layer."""

    def __init__(self, models: Sequence[nn.Module]):
        self.template = models[0]
        linears = [[m for m in model.modules() if isinstance(m, nn.Linear)] for model in models]
        self.activation = next(m for m in self.template.modules()
                               if not isinstance(m, nn.Linear | nn.Flatten | nn.Sequential) and m is not self.template)
        self.weights = [torch.stack([ls[j].weight.detach() for ls in linears]).requires_grad_()
                        for j in range(len(linears[0]))]
        self.biases = [torch.stack([ls[j].bias.detach() for ls in linears]).requires_grad_()
                       for j in range(len(linears[0]))]
        self.n = len(models)
        self.buffers: dict[str, torch.Tensor] = {}  # an MLP has none

    def parameters(self) -> list[torch.Tensor]:
        """The stacked tensors in the MLP's ``named_parameters()`` order (weight, bias per layer)."""
        return [t for w, b in zip(self.weights, self.biases, strict=True) for t in (w, b)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [V, B, classes] of every variant on the shared batch ``x`` [B, ...]."""
        x = x.flatten(1)
        w0, b0 = self.weights[0], self.biases[0]
        h = torch.mm(x, w0.reshape(-1, w0.shape[-1]).t()).view(len(x), self.n, -1).transpose(0, 1) + b0[:, None, :]
        for w, b in zip(self.weights[1:], self.biases[1:], strict=True):
            h = torch.baddbmm(b[:, None, :], self.activation(h), w.transpose(1, 2))
        return h

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Predicted labels [V, N]."""
        return torch.cat([self.forward(x[i:i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)], dim=1)

    def member(self, i: int) -> list[torch.Tensor]:
        """Variant i's parameters (views) in ``named_parameters()`` order."""
        return [p[i].detach() for p in self.parameters()]

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Variant i's weights as the MLP's state dict (loadable into :func:`instab.models.build_model`)."""
        names = [n for n, _ in self.template.named_parameters()]
        return {n: p.detach().cpu().clone() for n, p in zip(names, self.member(i), strict=True)}


class StackedNet:
    """V copies of any network of :mod:`instab.models` as one ``torch.func`` computation: parameters
    and buffers (BatchNorm's running statistics) stacked along a leading axis of length V, the
    network's forward pass vectorised over it (``vmap`` of ``functional_call``).

    The same interface as :class:`StackedMLP`.  With V = 1 a second copy of the variant is stacked
    too (``self.n`` stays 1): vmap computes a stack of one with another kernel than a stack of two or
    more, and a variant's bits must not depend on the stack's size.
    """

    def __init__(self, models: Sequence[nn.Module]):
        from torch.func import stack_module_state

        self.n = len(models)
        stacked = list(models) if self.n > 1 else [models[0], copy.deepcopy(models[0])]
        params, buffers = stack_module_state(stacked)
        self.template = copy.deepcopy(models[0]).to("meta")
        self.names = [n for n, _ in models[0].named_parameters()]
        self.state_names = list(models[0].state_dict())
        self._params = [params[n] for n in self.names]
        self.buffers = dict(buffers)

    def parameters(self) -> list[torch.Tensor]:
        """The stacked tensors in the network's ``named_parameters()`` order."""
        return self._params

    def _call(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
              x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        return functional_call(self.template, (params, buffers), (x,))

    def _forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        from torch.func import vmap

        self.template.train(train)
        if x.stride() != _standard_strides(x.shape):
            # e.g. an augmented batch of one channel, strided like channels-last: the convolution
            # would take another kernel, whose bits depend on the stack's size
            x = x.clone(memory_format=torch.contiguous_format)
        return vmap(self._call, in_dims=(0, 0, None))(dict(zip(self.names, self._params, strict=True)),
                                                       self.buffers, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [slots, B, classes] of every stacked copy on the shared batch ``x`` in training mode
        (BatchNorm normalises by the batch and updates each copy's running statistics); ``slots``
        is V, or 2 for V = 1 (the silent copy, which takes the reference's steps)."""
        return self._forward(x, True)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Predicted labels [V, N] in eval mode (BatchNorm's running statistics)."""
        return torch.cat([self._forward(x[i:i + batch_size], False)[:self.n].argmax(-1)
                          for i in range(0, len(x), batch_size)], dim=1)

    def member(self, i: int) -> list[torch.Tensor]:
        """Variant i's parameters (views) in ``named_parameters()`` order."""
        return [p[i].detach() for p in self._params]

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Variant i's state dict, parameters and buffers (loadable into the network)."""
        tensors = {**dict(zip(self.names, self._params, strict=True)), **self.buffers}
        return {n: tensors[n][i].detach().cpu().clone() for n in self.state_names}


def _standard_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """The strides of a contiguous (row-major) tensor of this shape."""
    strides, n = [], 1
    for size in reversed(shape):
        strides.append(n)
        n *= size
    return tuple(reversed(strides))


def loss_per_variant(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each variant's mean cross-entropy [V] (:func:`instab.train.cross_entropy` per variant)."""
    return -log_likelihood(logits, y).mean(dim=1)


class StackedSGD:
    """:class:`instab.optim.PerturbedSGD` for stacked parameters, one k (and form) per variant: the
    momentum buffers, and the step by :func:`instab.optim.stacked_perturbed_sgd`."""

    def __init__(self, params: Sequence[torch.Tensor], config: RunSpec):
        self.params = list(params)
        self.config = config
        self.bufs: list[torch.Tensor | None] = [None] * len(self.params)
        self.workspace: list[torch.Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], lr: float) -> None:
        """One step; ``grads`` (fresh from ``torch.autograd.grad``) are overwritten."""
        c = self.config
        stacked_perturbed_sgd(self.params, grads, self.bufs, weight_decay=c.weight_decay, momentum=c.momentum,
                              lr=lr, dampening=c.dampening, nesterov=c.nesterov,
                              k=[v.k for v in c.variants], form=[v.form for v in c.variants],
                              workspace=self.workspace, grads_owned=True)

    def buffers(self) -> list[torch.Tensor] | None:
        """The momentum buffers (``None`` before the first step, or without momentum)."""
        return None if any(b is None for b in self.bufs) else [b for b in self.bufs if b is not None]

    def state_dict(self, i: int) -> dict[str, Any]:
        """Variant i's optimizer state in :class:`torch.optim.SGD`'s format (momentum buffers)."""
        bufs = self.buffers()
        state = {} if bufs is None else {j: {"momentum_buffer": b[i].detach().cpu().clone()}
                                         for j, b in enumerate(bufs)}
        c = self.config
        return {"state": state, "param_groups": [{"momentum": c.momentum, "weight_decay": c.weight_decay,
                                                  "dampening": c.dampening, "nesterov": c.nesterov,
                                                  "k": c.variants[i].k, "form": c.variants[i].form,
                                                  "params": list(range(len(self.params)))}]}


class StackedEngine:
    """The stacked engine for :func:`instab.train.train`: the per-step work of the V variants as one
    computation (``RunSpec(engine="stacked")``): :class:`StackedMLP` for an MLP, :class:`StackedNet`
    (``torch.func``) for the conv nets."""

    def __init__(self, config: RunSpec, base: nn.Module):
        models = []
        for v in config.variants:
            m = copy.deepcopy(base)
            perturb_init(m, v.init_ulp, v.init_index)
            models.append(m)
        self.net: StackedMLP | StackedNet = StackedMLP(models) if config.model == "mlp" else StackedNet(models)
        if isinstance(self.net, StackedNet) and self.net.n == 1:
            config = config.replace(variants=config.variants * 2)  # the silent second copy (StackedNet)
        self.opt = StackedSGD(self.net.parameters(), config)
        self.params = self.net.parameters()
        self.settings = {"variant_threads": dict.fromkeys((v.name for v in config.variants), config.threads),
                         "engine": "stacked"}
        self.lr = config.lr
        self.loss_sum = torch.zeros(0)

    def begin_epoch(self, lr: float) -> None:
        self.lr = lr
        self.loss_sum = torch.zeros(len(self.params[0]), dtype=torch.float64, device=self.params[0].device)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One step of every variant on the batch (x, y)."""
        losses = loss_per_variant(self.net.forward(x), y)  # [slots]: a silent copy takes the same step
        grads = torch.autograd.grad(losses.sum(), self.params)
        self.opt.step(grads, self.lr)
        self.loss_sum += losses.detach()

    def loss_sums(self) -> list[float]:
        """Each variant's training loss summed over this epoch's steps."""
        return [float(s) for s in self.loss_sum[:self.net.n]]

    def rel_l1(self) -> list[float]:
        """RelL1 of each variant against the first (0 for it)."""
        return rel_l1_stacked(self.net.parameters())[:self.net.n]

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each variant's predicted labels [N] (rows of one [V, N] prediction)."""
        return self.net.predict(x).unbind(0)

    def state(self) -> dict[str, Any]:
        """The checkpoint's part of this engine: stacked parameters, momentum buffers and the
        network's buffers (BatchNorm's running statistics)."""
        bufs = self.opt.buffers()
        return {"params": [p.detach().cpu().clone() for p in self.params],
                "bufs": None if bufs is None else [b.cpu().clone() for b in bufs],
                "buffers": {n: b.cpu().clone() for n, b in self.net.buffers.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, saved in zip(self.params, state["params"], strict=True):
                p.copy_(saved)
            for n, b in self.net.buffers.items():
                b.copy_(state["buffers"][n])
        device = self.params[0].device
        self.opt.bufs = [None] * len(self.params) if state["bufs"] is None else [b.to(device) for b in state["bufs"]]

    def final_state(self) -> dict[str, Any]:
        """The reference's final weights and optimizer state (momentum buffers)."""
        return {"model": self.net.state_dict(0), "optimizer": self.opt.state_dict(0)}
