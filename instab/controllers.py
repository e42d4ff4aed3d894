"""Stability controllers for perturbed SGD (the paper's §6 open question: "adaptive optimization
schemes that are constructed to ensure numerical stability").

Both decide one step size per iteration from a cell's **reference run** (k = 1) only, and
:class:`SharedSchedule` applies that step to every member of the cell (each its own
:class:`~instab.optim.PerturbedSGD` with its own k): a controller whose decisions differed between
the k runs would itself amplify the last bit.

- :class:`CurvatureCap` — η_t = min(η, c · 2(1+μ)/(λ_t + α)), λ_t the top Hessian eigenvalue of
  the reference's training loss, re-estimated every few iterations (the linear stability limit of
  heavy-ball SGD, :func:`instab.studies.sgd_threshold.momentum_lr_limit`, times c < 1).
- :class:`GrowthController` — a :class:`Shadow` run (the reference with every weight moved by one
  ulp, restarted at the start of each window) measures the finite-time growth rate of a
  last-bit perturbation over the window; the step is multiplied by ``down`` after a window whose
  rate is positive and by ``up`` (never above η) after one whose rate is not.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from instab import checks, determinism, store
from instab.data import Loader
from instab.metrics import rel_l1
from instab.models import build_model
from instab.optim import PerturbedSGD
from instab.runs import DTYPES, cross_entropy, load_data, lr_at
from instab.stability import RitzPair
from instab.train import LoopEngine, RunConfig

__all__ = ["CONTROLLERS", "CurvatureCap", "GrowthController", "Shadow", "SharedSchedule", "TrackedRun",
           "batch_sharpness", "hessian_product", "lanczos_top_torch", "perturb_all_ulp", "perturb_relative",
           "top_eigenpair", "track"]


@dataclass
class CurvatureCap:
    """η_t = min(η, c · 2(1+μ)/(λ + α)) (``step``); ``binds`` counts the decisions where the cap
    was below η."""

    c: float
    momentum: float
    weight_decay: float
    decisions: int = 0
    binds: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.c < 1:
            raise ValueError(f"c={self.c!r} is not allowed; the cap's safety factor must be in (0, 1)")

    def limit(self, curvature: float) -> float:
        """c times the largest stable step of heavy-ball SGD on curvature λ: c · 2(1+μ)/(λ + α)."""
        denom = curvature + self.weight_decay
        return math.inf if denom <= 0 else self.c * 2.0 * (1.0 + self.momentum) / denom

    def step(self, lr: float, curvature: float) -> float:
        """The capped step for the scheduled ``lr`` at curvature λ (never above ``lr``)."""
        cap = self.limit(curvature)
        self.decisions += 1
        if cap < lr:
            self.binds += 1
            return cap
        return lr


@dataclass
class GrowthController:
    """A multiplicative step scale s ∈ (0, 1], updated once per window from the measured
    finite-time growth rate: s ← s·``down`` when the rate is above ``tolerance`` (per iteration,
    natural log), else s ← min(1, s·``up``).  The step is s times the scheduled η."""

    down: float = 0.7
    up: float = 1.05
    tolerance: float = 0.0
    scale: float = 1.0
    rates: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.down < 1 or not self.up >= 1:
            raise ValueError(f"down={self.down!r}, up={self.up!r} are not allowed; need 0 < down < 1 <= up")

    def update(self, rate: float) -> float:
        """Take one window's growth rate; return the new scale."""
        self.rates.append(rate)
        if not math.isfinite(rate) or rate > self.tolerance:
            self.scale *= self.down
        else:
            self.scale = min(1.0, self.scale * self.up)
        return self.scale

    def step(self, lr: float) -> float:
        return lr * self.scale


@torch.no_grad()
def perturb_relative(model: nn.Module, delta: float, seed: int = 0) -> None:
    """Multiply every parameter entry by 1 ± ``delta`` (random signs from ``seed``): a relative
    perturbation of size ``delta`` in every direction (``delta = 0``: one ulp up, :func:`perturb_all_ulp`)."""
    if delta == 0:
        perturb_all_ulp(model)
        return
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        signs = torch.randint(0, 2, p.shape, generator=gen).to(p.device, p.dtype) * 2 - 1
        p.mul_(1 + delta * signs)


@torch.no_grad()
def perturb_all_ulp(model: nn.Module) -> None:
    """Move every parameter entry by one ulp towards +∞ (``nextafter``): a last-bit perturbation
    in every direction at once."""
    for p in model.parameters():
        p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))


class Shadow:
    """A shadow of a reference run for the finite-time growth rate of a last-bit perturbation.

    :meth:`restart` copies the reference's weights and momentum buffers, moves every weight by a
    relative ``delta`` (:func:`perturb_relative`; 0: one ulp) and remembers RelL1 to the
    reference; the shadow then takes the reference's steps (k = 1,
    same batches, same step size) and :meth:`rate` is ln(RelL1_now / RelL1_start) per iteration:
    the finite-time growth rate of a fresh random direction over the window (restarted, not
    renormalised along one direction, so not a Lyapunov exponent; positive: the perturbation is
    amplified).  A one-ulp start is the paper's
    perturbation, but the rounding of every later step adds errors of its own size, so over a
    window of m steps mere accumulation grows it up to (1 + m)-fold: a ``delta`` well above the
    last bit (e.g. 2⁻¹⁴) measures the linearised growth without that floor.
    """

    def __init__(self, reference: nn.Module, opt: PerturbedSGD, delta: float = 0.0):
        self.delta = delta
        self.restarts = 0
        self.model = copy.deepcopy(reference)
        self.opt = PerturbedSGD(self.model.parameters(), **_sgd_args(opt), k=1)
        self.start = math.nan
        self.steps = 0

    def restart(self, reference: nn.Module, opt: PerturbedSGD) -> None:
        self.model.load_state_dict(reference.state_dict())
        # a deep copy: load_state_dict keeps the reference's momentum buffers themselves (same
        # dtype and device), which the two optimizers would then both update
        self.opt.load_state_dict(copy.deepcopy(opt.state_dict()))
        self.opt.param_groups[0]["k"] = 1
        perturb_relative(self.model, self.delta, seed=self.restarts)
        self.restarts += 1
        self.start = rel_l1(reference, self.model)
        self.steps = 0

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, loss_fn) -> None:
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        loss_fn(self.model(x), y).backward()
        self.opt.step()
        self.steps += 1

    def rate(self, reference: nn.Module) -> float:
        """ln(RelL1(reference, shadow) now / at the restart) per iteration since the restart."""
        now = rel_l1(reference, self.model)
        if not self.steps or not self.start > 0:
            return math.nan
        if not now > 0:
            return -math.inf if now == 0 else math.nan
        return math.log(now / self.start) / self.steps


def _sgd_args(opt: PerturbedSGD) -> dict[str, Any]:
    g = opt.param_groups[0]
    return {k: g[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "foreach")}


class SharedSchedule:
    """One step size for every member of a cell: :meth:`set` writes it into every optimizer's
    parameter groups (the reference's and each perturbed k's) and records it."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)
        self.history: list[float] = []

    def set(self, lr: float) -> None:
        for o in self.optimizers:
            for g in o.param_groups:
                g["lr"] = lr
        self.history.append(lr)

    def lrs(self) -> list[list[float]]:
        """Every optimizer's current step sizes (one list per optimizer)."""
        return [[g["lr"] for g in o.param_groups] for o in self.optimizers]


# ------------------------------------------------------------------------------ a tracked run
@dataclass(frozen=True)
class TrackedRun(RunConfig):
    """A lockstep run (k = 1 and every perturbed k of ``variants``, :class:`instab.train.LoopEngine`)
    that records, every ``every`` iterations, the curvature of the reference's training loss and
    RelL1 of every member — and may control its step size (``controller``: ``"none"``, ``"cap"``
    or ``"growth"``, decided on the reference, applied to all).  A grid cell (:func:`track`).

    ``sharpness``: record λ, the top Hessian eigenvalue of the mean training loss on the first
    ``sharp_size`` training images (Lanczos, ``lanczos_iters`` steps, residual kept), and the batch
    sharpness (the mean over ``batch_sharpness_batches`` minibatches of that subset of gᵀH g/gᵀg,
    each minibatch's own gradient and Hessian); the cap needs it.  ``shadow``: run a
    :class:`Shadow` and record its growth rate over each window; the growth controller needs it.
    ``shadow_delta``: the shadow's relative perturbation.  ``cap_c``, ``down``, ``up``: the
    controllers' settings."""

    controller: str = "none"
    every: int = 10
    sharpness: bool = True
    shadow: bool = True
    sharp_size: int = 512
    lanczos_iters: int = 20
    batch_sharpness_batches: int = 4
    shadow_delta: float = 2.0**-14
    cap_c: float = 0.8
    down: float = 0.7
    up: float = 1.05

    def validate(self, *, check_data: bool = False) -> TrackedRun:  # type: ignore[override]
        super().validate(check_data=check_data)
        if self.controller not in CONTROLLERS:
            raise ValueError(f"controller={self.controller!r} is not allowed; choose one of {list(CONTROLLERS)}")
        if self.engine != "loop":
            raise ValueError("a tracked run sets each step's size on every optimizer: engine must be 'loop'")
        for name in ("every", "sharp_size", "lanczos_iters", "batch_sharpness_batches"):
            checks.positive(name, getattr(self, name), integer=True)
        if self.controller == "cap" and not self.sharpness:
            raise ValueError("controller='cap' needs sharpness=True (it caps the step by the curvature)")
        if self.controller == "growth" and not self.shadow:
            raise ValueError("controller='growth' needs shadow=True (it measures the growth on a shadow run)")
        if not 0 <= self.shadow_delta < 0.1:
            raise ValueError(f"shadow_delta={self.shadow_delta!r} is not allowed; in [0, 0.1) (0: one ulp)")
        CurvatureCap(self.cap_c, self.momentum, self.weight_decay)
        GrowthController(self.down, self.up)
        if self.variants[0].k != 1:
            raise ValueError("the first variant is the reference the controllers decide on: it must be k = 1")
        return self

    def key(self) -> str:
        blob = repr((RunConfig.key(self), store.code_hash(__name__)))
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def compute(self, checkpoint: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return track(self)


CONTROLLERS = ("none", "cap", "growth")


def hessian_product(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[
        Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """(v ↦ ∇²L v, ∇L) for the mean cross-entropy L on (x, y) at the model's weights, flat float64
    torch vectors (Pearlmutter's double backward; the gradient graph built once).  In torch, so
    that it runs on the thread count torch is given (NumPy's BLAS would take every core)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(cross_entropy(model(x), y), params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(flat @ v.to(flat.dtype), params, retain_graph=True, allow_unused=True)
        return torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1)
                          for h, p in zip(hv, params, strict=True)]).double()

    return hvp, flat.detach().double()


def lanczos_top_torch(matvec: Callable[[torch.Tensor], torch.Tensor], size: int, *, iters: int = 20,
                      seed: int = 0) -> RitzPair:
    """The largest Ritz value of ``iters`` Lanczos steps (full reorthogonalisation, seeded Gaussian
    start) with its residual ‖A y − θ y‖ — :func:`instab.stability.lanczos_top` in torch (float64):
    the same algorithm on torch's threads (the tests check that both agree, and agree with
    ``scipy.sparse.linalg.eigsh``)."""
    gen = torch.Generator().manual_seed(seed)
    n_max = min(iters, size)
    basis = torch.zeros(n_max, size, dtype=torch.float64)
    q = torch.randn(size, generator=gen, dtype=torch.float64)
    basis[0] = q / q.norm()
    a_diag: list[float] = []
    b_off: list[float] = []
    for j in range(n_max):
        w = matvec(basis[j])
        a = float(basis[j] @ w)
        a_diag.append(a)
        q_j = basis[:j + 1]
        for _ in range(2):
            w = w - q_j.T @ (q_j @ w)
        b = float(w.norm())
        if b < 1e-10 * max(1.0, abs(a)) or j == n_max - 1:
            break
        b_off.append(b)
        basis[j + 1] = w / b
    n = len(a_diag)
    t = torch.diag(torch.tensor(a_diag, dtype=torch.float64))
    if n > 1:
        off = torch.tensor(b_off[:n - 1], dtype=torch.float64)
        t += torch.diag(off, 1) + torch.diag(off, -1)
    evals, evecs = torch.linalg.eigh(t)
    top = float(evals[-1])
    y = basis[:n].T @ evecs[:, -1]
    y = y / y.norm()
    return RitzPair(top, float((matvec(y) - top * y).norm()), n)


def top_eigenpair(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, iters: int = 20,
                  seed: int = 0) -> RitzPair:
    """λ, the top eigenvalue of the Hessian of the mean cross-entropy on (x, y) at the model's
    weights, with its residual (:func:`lanczos_top_torch` on :func:`hessian_product`)."""
    hvp, g = hessian_product(model, x, y)
    return lanczos_top_torch(hvp, g.numel(), iters=iters, seed=seed)


def batch_sharpness(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, batches: int) -> float:
    """The mean over the first ``batches`` minibatches of (x, y) of gᵀ H g / gᵀ g, with g and H the
    minibatch's own gradient and Hessian (the batch sharpness of Andreyev and Beneventano)."""
    vals = []
    for j in range(batches):
        xb, yb = x[j * batch_size:(j + 1) * batch_size], y[j * batch_size:(j + 1) * batch_size]
        if len(yb) == 0:
            break
        hvp, g = hessian_product(model, xb, yb)
        gg = float(g @ g)
        vals.append(float(g @ hvp(g)) / gg if gg > 0 else math.nan)
    return float(np.mean(vals)) if vals else math.nan


def track(cfg: TrackedRun) -> dict[str, Any]:
    """Train ``cfg`` and return what it recorded:

    ``steps`` (the record iterations: 0, every, 2·every, …, and the last), per record
    ``lambda`` and ``residual`` (the reference's λ and its Lanczos residual), ``batch_sharpness``,
    ``lr`` (the step about to be taken), ``rel_l1`` {member: RelL1 to k = 1}, ``rate`` (the
    shadow's growth rate over the window ending there, NaN at 0); ``step_lrs`` (every iteration's
    step), ``binds`` (iterations where the cap was below the schedule), ``final_acc`` and
    ``predictions`` per variant, ``seconds`` {``steps``: all variants' steps, ``shadow``,
    ``sharpness``, ``total``}."""
    cfg.validate()
    settings = determinism.configure(cfg.threads)
    device = torch.device(cfg.device)
    data = load_data(cfg).to(device, DTYPES[cfg.dtype])
    loader = Loader(data.x_train, data.y_train, cfg.batch_size, seed=cfg.batch_seed)
    per_epoch = len(loader)
    epochs = cfg.epochs if cfg.epochs is not None else math.ceil(cast(int, cfg.max_steps) / per_epoch)
    total = epochs * per_epoch if cfg.max_steps is None else min(cfg.max_steps, epochs * per_epoch)
    base = build_model(cfg.model, in_channels=data.in_channels, num_classes=data.num_classes,
                       activation=cfg.activation, beta=cfg.beta, input_size=data.input_size, pool=cfg.pool,
                       shortcut=cfg.shortcut, widths=cfg.widths, hidden=cfg.hidden,
                       seed=cfg.init_seed).to(device=device, dtype=DTYPES[cfg.dtype])
    engine = LoopEngine(cfg, base)
    ref, ref_opt = engine.models[0], engine.opts[0]
    names = [v.name for v in cfg.variants]
    schedule = SharedSchedule(engine.opts)
    xs, ys = data.x_train[:cfg.sharp_size], data.y_train[:cfg.sharp_size]
    shadow = Shadow(ref, ref_opt, cfg.shadow_delta) if cfg.shadow else None
    cap = CurvatureCap(cfg.cap_c, cfg.momentum, cfg.weight_decay) if cfg.controller == "cap" else None
    growth = GrowthController(cfg.down, cfg.up) if cfg.controller == "growth" else None
    out: dict[str, Any] = {"steps": [], "lambda": [], "residual": [], "batch_sharpness": [], "lr": [],
                           "rel_l1": {n: [] for n in names[1:]}, "rate": [], "step_lrs": [], "binds": 0,
                           "settings": settings}
    seconds = {"steps": 0.0, "shadow": 0.0, "sharpness": 0.0}
    t_start = time.perf_counter()
    lam = math.nan

    def record(step: int, scheduled: float) -> None:
        nonlocal lam
        rate = math.nan
        if shadow is not None and step > 0:
            rate = shadow.rate(ref)
            if growth is not None:
                growth.update(rate)
        t0 = time.perf_counter()
        bs = math.nan
        if cfg.sharpness:
            ref.train()
            pair = top_eigenpair(ref, xs, ys, iters=cfg.lanczos_iters)
            lam = pair.value
            out["residual"].append(pair.relative_residual)
            bs = batch_sharpness(ref, xs, ys, cfg.batch_size, cfg.batch_sharpness_batches)
        seconds["sharpness"] += time.perf_counter() - t0
        out["steps"].append(step)
        out["lambda"].append(lam)
        out["batch_sharpness"].append(bs)
        out["lr"].append(next_lr(scheduled))
        out["rate"].append(rate)
        for n, d in zip(names[1:], engine.rel_l1()[1:], strict=True):
            out["rel_l1"][n].append(d)
        if shadow is not None:
            t0 = time.perf_counter()
            shadow.restart(ref, ref_opt)
            seconds["shadow"] += time.perf_counter() - t0

    def next_lr(scheduled: float) -> float:
        lr = scheduled
        if cap is not None:
            lr = cap.limit(lam) if cap.limit(lam) < lr else lr
        if growth is not None:
            lr = growth.step(lr)
        return lr

    step = 0
    for epoch in range(epochs):
        scheduled = lr_at(cfg, epoch)
        engine.begin_epoch(scheduled)
        for xb, yb in loader.epoch(epoch):
            if step % cfg.every == 0:
                record(step, scheduled)
            lr = scheduled
            if cap is not None:
                lr = cap.step(scheduled, lam)
                out["binds"] += int(lr < scheduled)
            if growth is not None:
                lr = growth.step(lr)
            schedule.set(lr)
            t0 = time.perf_counter()
            engine.step(xb, yb)
            seconds["steps"] += time.perf_counter() - t0
            if shadow is not None:
                t0 = time.perf_counter()
                shadow.step(xb, yb, lr, cross_entropy)
                seconds["shadow"] += time.perf_counter() - t0
            step += 1
            if step >= total:
                break
        if step >= total:
            break
    record(step, lr_at(cfg, epochs - 1))
    if torch.get_num_threads() != cfg.threads:
        torch.set_num_threads(cfg.threads)
    out["step_lrs"] = schedule.history
    preds = engine.predict(data.x_test)
    out["final_acc"] = {n: float((p == data.y_test).double().mean()) for n, p in zip(names, preds, strict=True)}
    out["predictions"] = {n: p.to(torch.int16).cpu().numpy() for n, p in zip(names, preds, strict=True)}
    out["labels"] = data.y_test.to(torch.int16).cpu().numpy()
    seconds["total"] = time.perf_counter() - t_start
    out["seconds"] = seconds
    out["config"] = cfg.to_dict()
    return out
