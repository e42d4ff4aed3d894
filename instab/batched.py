"""Lockstep variants of an MLP as one stacked computation (``RunConfig(engine="stacked")``).

The k × seed grids of paper §4.2 (Tables 1, 4 and 5) train many small networks.  With
``engine="loop"`` (:mod:`instab.train`) the variants of a lockstep group take their steps one after
another, each a handful of small matrix products.  Here the V variants' parameters are stacked
along a leading axis and trained as one network:

- the first layer's weights of all variants form one matrix, so the shared minibatch meets them in
  **one** matrix product (``x @ [W₁; …; W_V]ᵀ``), and its weight gradient is one product too;
- the later layers are batched products (``baddbmm``) over the variant axis;
- the loss is the sum over variants of each variant's mean cross-entropy, so each variant's
  gradient is exactly its own (the sum's derivative is 1);
- the update is :class:`instab.optim.PerturbedSGD`'s algorithm (weight decay, momentum buffer,
  Nesterov, then the perturbed update (η/k)·(k·v) or (η·k)·(v/k)) with a per-variant k, in separate
  elementwise operations, each rounded once: a variant's arithmetic does not depend on its place
  in the stack, so k = 2 and k = 4 equal k = 1 bit for bit here as in the loop engine.

It is the same algorithm as the loop engine, but not the same bits: the matrix products sum in
another order.  Results are reproducible run to run and checkpoint-resumable like the loop
engine's; the engine is part of a run's cache key.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from instab import store
from instab.metrics import rel_l1

if TYPE_CHECKING:
    from instab.data import Data, Loader
    from instab.train import History, RunConfig


def unsupported(config: RunConfig) -> str | None:
    """Why ``config`` cannot run on the stacked engine (``None``: it can)."""
    if config.model != "mlp":
        return f"model={config.model!r} (the stacked engine trains MLPs only)"
    threads = {v.threads for v in config.variants if v.threads is not None} - {config.threads}
    if threads:
        return f"variants with their own thread count {sorted(threads)} (one computation has one thread count)"
    return None


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


def loss_per_variant(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each variant's mean cross-entropy [V] (:func:`instab.train.cross_entropy` per variant)."""
    from instab.train import log_likelihood

    return -log_likelihood(logits, y).mean(dim=1)


class StackedSGD:
    """:class:`instab.optim.PerturbedSGD`'s update for stacked parameters, one k (and form) per variant."""

    def __init__(self, params: Sequence[torch.Tensor], config: RunConfig):
        self.params = list(params)
        self.config = config
        self.bufs: list[torch.Tensor] | None = None
        dtype, device = self.params[0].dtype, self.params[0].device
        self.forms = [v.form for v in config.variants]
        self.k = torch.tensor([float(v.k) for v in config.variants], dtype=dtype, device=device)
        self._steps: dict[float, torch.Tensor] = {}

    def _step_sizes(self, lr: float) -> torch.Tensor:
        """−η/k (paper) or −η·k (release) per variant: a Python float rounded to the parameters'
        dtype, as torch rounds the ``alpha`` of the loop engine's update."""
        if lr not in self._steps:
            values = [-(lr / v.k if v.form == "paper" else lr * v.k) for v in self.config.variants]
            self._steps[lr] = torch.tensor(values, dtype=self.k.dtype, device=self.k.device)
        return self._steps[lr]

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], lr: float) -> None:
        c = self.config
        steps = self._step_sizes(lr)
        first = self.bufs is None
        bufs: list[torch.Tensor] = [] if self.bufs is None else self.bufs
        for j, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            shape = (-1,) + (1,) * (p.dim() - 1)
            d = g + p * c.weight_decay if c.weight_decay != 0 else g
            if c.momentum != 0:
                if first:  # torch initialises the buffer to the first direction
                    buf = d.clone()
                    bufs.append(buf)
                else:
                    buf = bufs[j]
                    buf.mul_(c.momentum).add_(d * (1 - c.dampening) if c.dampening else d)
                d = d + buf * c.momentum if c.nesterov else buf
            k = self.k.view(shape)
            if all(f == "paper" for f in self.forms):
                d = d * k
            elif all(f == "release" for f in self.forms):
                d = d / k
            else:
                paper = torch.tensor([f == "paper" for f in self.forms], device=d.device).view(shape)
                d = torch.where(paper, d * k, d / k)
            p.add_(d * steps.view(shape))
        if first and c.momentum != 0:
            self.bufs = bufs

    def state_dict(self, i: int) -> dict[str, Any]:
        """Variant i's optimizer state in :class:`torch.optim.SGD`'s format (momentum buffers)."""
        state = {} if self.bufs is None else {j: {"momentum_buffer": b[i].detach().cpu().clone()}
                                              for j, b in enumerate(self.bufs)}
        c = self.config
        return {"state": state, "param_groups": [{"momentum": c.momentum, "weight_decay": c.weight_decay,
                                                  "dampening": c.dampening, "nesterov": c.nesterov,
                                                  "k": c.variants[i].k, "form": c.variants[i].form,
                                                  "params": list(range(len(self.params)))}]}


def train_stacked(config: RunConfig, base: nn.Module, data: Data, loader: Loader, settings: dict[str, Any],
                  checkpoint: str | Path | None, progress: bool, on_epoch: Callable[[int, History], None] | None,
                  *, epochs: int, total_steps: int, record_at: set[int], acc_at: set[int]) -> History:
    """:func:`instab.train.train` for ``engine="stacked"`` (called by it, after validation and the
    determinism settings): the same history, checkpoints and resumption."""
    from instab.train import end_epoch, is_tested, lr_at, new_history, perturb_init

    models = []
    for v in config.variants:
        m = copy.deepcopy(base)
        perturb_init(m, v.init_ulp, v.init_index)
        models.append(m)
    net = StackedMLP(models)
    opt = StackedSGD(net.parameters(), config)
    names = [v.name for v in config.variants]
    hist = new_history(config, names, settings)
    hist.settings["variant_threads"] = dict.fromkeys(names, config.threads)
    hist.settings["engine"] = "stacked"
    start_epoch, step = 0, 0
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if ckpt_path is not None:
        state = store.load_object(ckpt_path)
        if state is not None and state.get("key") == config.key():
            with torch.no_grad():
                for p, saved in zip(net.parameters(), state["params"], strict=True):
                    p.copy_(saved)
            opt.bufs = None if state["bufs"] is None else [b.to(data.x_train.device) for b in state["bufs"]]
            hist, start_epoch, step = state["history"], state["epoch"], state["step"]

    def record(step: int) -> None:
        hist.iter_step.append(step)
        ref = net.member(0)
        for i, n in enumerate(names):
            hist.iter_rel_l1[n].append(rel_l1(ref, net.member(i)) if i else 0.0)

    if start_epoch == 0 and step == 0 and 0 in record_at:
        record(0)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=epochs, initial=start_epoch, desc="epochs", leave=False)
    params = net.parameters()
    t0 = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        if step >= total_steps:
            break
        lr = lr_at(config, epoch)
        loss_sum = torch.zeros(net.n, dtype=torch.float64, device=data.x_train.device)
        n_batches = 0
        for xb, yb in loader.epoch(epoch):
            losses = loss_per_variant(net.forward(xb), yb)
            grads = torch.autograd.grad(losses.sum(), params)
            opt.step(grads, lr)
            loss_sum += losses.detach()
            n_batches += 1
            step += 1
            if step in record_at:
                record(step)
            if step in acc_at:
                hist.iter_acc_step.append(step)
                correct = (net.predict(data.x_test) == data.y_test).double().mean(dim=1)
                for n, a in zip(names, correct.tolist(), strict=True):
                    hist.iter_acc[n].append(float(a))
            if step >= total_steps:
                break
        hist.epoch.append(epoch + 1)
        hist.steps.append(step)
        hist.lr.append(lr)
        tested = is_tested(config, epoch + 1, epochs, step, total_steps)
        pred = net.predict(data.x_test) if tested else None
        if tested:
            hist.test_epoch.append(epoch + 1)
        ref = net.member(0)
        for i, n in enumerate(names):
            hist.train_loss[n].append(float(loss_sum[i]) / max(n_batches, 1))
            hist.rel_l1[n].append(rel_l1(ref, net.member(i)) if i else 0.0)
            if pred is not None:
                hist.test_acc[n].append(float((pred[i] == data.y_test).double().mean()))
                hist.predictions[n] = pred[i].to(torch.int16).cpu().numpy()
        hist.seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        end_epoch(config, hist, epoch + 1, step, ckpt_path, bar, on_epoch,
                  lambda: {"params": [p.detach().cpu().clone() for p in params],
                           "bufs": None if opt.bufs is None else [b.cpu().clone() for b in opt.bufs]})
    if bar is not None:
        bar.close()
    if config.keep_final:
        hist.final_state = {"model": net.state_dict(0), "optimizer": opt.state_dict(0)}
    return hist
