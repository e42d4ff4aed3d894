"""Stability controllers for perturbed SGD (the paper's §6 open question: "adaptive optimization
schemes that are constructed to ensure numerical stability").

Each decides one step size per iteration from a cell's **reference run** (k = 1) only, and
:class:`SharedSchedule` applies that step to every member of the cell (each its own
:class:`~instab.optim.PerturbedSGD` with its own k): a controller whose decisions differed between
the k runs would itself amplify the last bit.

- :class:`CurvatureCap` — η_t = min(η, c · 2(1+μ)/(λ_t + α)), λ_t the top Hessian eigenvalue of
  the reference's training loss (:func:`instab.stability.momentum_limit`, the linear stability
  limit of heavy-ball SGD, times c < 1).
- :class:`GrowthController` — a :class:`Shadow` run (the reference with every weight moved by a
  small relative amount, renormalised back to that size at the end of every window: Benettin's
  method) measures the finite-time Lyapunov exponent of the training map over each window; the
  step is multiplied by ``down`` (never below ``floor`` × η) after a window whose exponent
  exceeds the growth budget's rate and by ``up`` (never above η) after one that does not.
- ``replay`` — a step schedule given in advance, one step per iteration (open loop: e.g. a
  controller's median schedule, to separate its feedback from its schedule).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from instab import checks, determinism, store
from instab.data import Loader
from instab.metrics import rel_l1
from instab.optim import PerturbedSGD
from instab.runspec import DTYPES, load_data
from instab.stability import batch_sharpness, hessian_spectrum, momentum_limit
from instab.step import cross_entropy, lr_at
from instab.train import LoopEngine, RunConfig

__all__ = ["CONTROLLERS", "CurvatureCap", "GrowthController", "Shadow", "SharedSchedule", "TrackedRun",
           "perturb_all_ulp", "perturb_relative", "sgd_args", "track"]


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
        return self.c * momentum_limit(curvature, momentum=self.momentum, weight_decay=self.weight_decay)

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
    """A multiplicative step scale s ∈ [``floor``, 1], updated once per window from the measured
    finite-time growth rate: s ← max(floor, s·``down``) when the rate is above ``tolerance`` (per
    iteration, natural log), else s ← min(1, s·``up``).  The step is s times the scheduled η."""

    down: float = 0.9
    up: float = 1.05
    tolerance: float = 0.0
    floor: float = 0.1
    scale: float = 1.0
    rates: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.down < 1 or not self.up >= 1:
            raise ValueError(f"down={self.down!r}, up={self.up!r} are not allowed; need 0 < down < 1 <= up")
        if not 0 < self.floor <= 1:
            raise ValueError(f"floor={self.floor!r} is not allowed; the smallest step scale, in (0, 1]")

    @staticmethod
    def budget_rate(decades: float, iterations: int) -> float:
        """The per-iteration rate (natural log) at which a perturbation grows ``decades`` decades
        over ``iterations``: the tolerance of a growth budget."""
        return decades * math.log(10) / iterations

    def update(self, rate: float) -> float:
        """Take one window's growth rate; return the new scale."""
        self.rates.append(rate)
        if not math.isfinite(rate) or rate > self.tolerance:
            self.scale = max(self.floor, self.scale * self.down)
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
    """A shadow of a reference run for the finite-time Lyapunov exponent of the training map
    (Benettin's renormalised two-run method).

    :meth:`restart` copies the reference's weights and momentum buffers and moves every weight by a
    relative ``delta`` (:func:`perturb_relative`; 0: one ulp up); the shadow then takes the
    reference's steps (k = 1, same batches, same step size).  At the end of each window
    :meth:`rate` is ln(RelL1_end / RelL1_start) per iteration, and :meth:`renormalise` scales the
    shadow's difference from the reference (weights and momentum buffers alike) back to the
    start's RelL1 along its current direction, so the next window measures the growth of the
    direction the dynamics selected: the rates' running mean converges to the largest Lyapunov
    exponent of the (stochastic) training map.  Why not the last bit itself: every later step
    rounds the two runs differently and adds an error of the last bit's own size, so over a
    window of m steps mere accumulation grows a one-ulp start up to (1 + m)-fold; a ``delta``
    well above the last bit (e.g. 2⁻¹⁴) measures the linearised growth without that floor.
    """

    def __init__(self, reference: nn.Module, opt: PerturbedSGD, delta: float = 0.0):
        self.delta = delta
        self.restarts = 0
        self.renormalisations = 0
        self.model = copy.deepcopy(reference)
        self.opt = PerturbedSGD(self.model.parameters(), **sgd_args(opt), k=1)
        self.start = math.nan
        self.steps = 0

    def restart(self, reference: nn.Module, opt: PerturbedSGD) -> None:
        """Copy the reference's state and perturb it afresh (a new random direction)."""
        self.model.load_state_dict(reference.state_dict())
        # a deep copy: load_state_dict keeps the reference's momentum buffers themselves (same
        # dtype and device), which the two optimizers would then both update
        self.opt.load_state_dict(copy.deepcopy(opt.state_dict()))
        self.opt.param_groups[0]["k"] = 1
        perturb_relative(self.model, self.delta, seed=self.restarts)
        self.restarts += 1
        self.start = rel_l1(reference, self.model)
        self.steps = 0

    @torch.no_grad()
    def renormalise(self, reference: nn.Module, opt: PerturbedSGD) -> None:
        """Scale the difference from the reference (weights and momentum buffers) back to the
        start's RelL1 along its current direction; a difference that vanished or is no longer
        finite is restarted along a fresh direction."""
        now = rel_l1(reference, self.model)
        if not (math.isfinite(now) and now > 0 and math.isfinite(self.start)):
            self.restart(reference, opt)
            return
        f = self.start / now
        for ps, pr in zip(self.model.parameters(), reference.parameters(), strict=True):
            ps.copy_(pr + f * (ps - pr))
            bs, br = self.opt.state.get(ps, {}).get("momentum_buffer"), opt.state.get(pr, {}).get("momentum_buffer")
            if bs is not None and br is not None:
                bs.copy_(br + f * (bs - br))
        self.renormalisations += 1
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
        """ln(RelL1(reference, shadow) now / at the window's start) per iteration of the window."""
        now = rel_l1(reference, self.model)
        if not self.steps or not self.start > 0:
            return math.nan
        if not now > 0:
            return -math.inf if now == 0 else math.nan
        return math.log(now / self.start) / self.steps


def sgd_args(opt: PerturbedSGD) -> dict[str, Any]:
    """The settings of ``opt``'s (first) parameter group, to build another optimizer like it."""
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
#: RunSpec fields the tracked run's loop does not honour, with the value it runs with: any other
#: value is refused (:meth:`TrackedRun.validate`) rather than silently ignored.
IGNORED = {"augment": False, "rel_l1_every": 0, "keep_final": False, "acc_every": 0, "eval_every": 1}


@dataclass(frozen=True)
class TrackedRun(RunConfig):
    """A lockstep run (k = 1 and every perturbed k of ``variants``, :class:`instab.train.LoopEngine`)
    that records, every ``every`` iterations, the curvature of the reference's training loss and
    RelL1 of every member — and may control its step size (``controller``: ``"none"``, ``"cap"``,
    ``"growth"`` or ``"replay"``, decided on the reference, applied to all).  A grid cell
    (:func:`track`).

    ``sharpness``: record on the reference λ and λ_min, the extreme Hessian eigenvalues of the mean
    training loss on the first ``sharp_size`` training images (Lanczos, ``lanczos_iters`` steps,
    residual kept), λ of the minibatch about to be stepped on (Lanczos warm-started from the
    subset's top vector), and the batch sharpness (the mean over ``batch_sharpness_batches``
    fixed minibatches of that subset of gᵀH g/gᵀg, each minibatch's own gradient and Hessian); the
    cap needs it.  ``shadow``: run a renormalised :class:`Shadow` (relative perturbation
    ``shadow_delta``) and record its growth rate over each window; the growth controller needs
    it.  ``cap_c``: the cap's safety factor.  ``down``, ``up``, ``step_floor``: the growth
    controller's multipliers and smallest step scale; ``growth_budget``: the decades a
    perturbation may grow over the whole run (its tolerance, :meth:`GrowthController.budget_rate`).
    ``replay``: the step of every iteration (controller ``"replay"``)."""

    controller: str = "none"
    every: int = 10
    sharpness: bool = True
    shadow: bool = True
    sharp_size: int = 512
    lanczos_iters: int = 20
    batch_sharpness_batches: int = 4
    shadow_delta: float = 2.0**-14
    cap_c: float = 0.8
    down: float = 0.9
    up: float = 1.05
    step_floor: float = 0.1
    growth_budget: float = 2.0
    replay: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "replay", tuple(float(v) for v in self.replay))

    def total_steps(self) -> int:
        """The number of iterations the run takes."""
        per_epoch = math.ceil(cast(int, self.train_size) / self.batch_size) if self.train_size else None
        if self.max_steps is not None:
            return self.max_steps if self.epochs is None or per_epoch is None else min(
                self.max_steps, self.epochs * per_epoch)
        if per_epoch is None:
            raise ValueError("a tracked run needs train_size or max_steps to know its length")
        return cast(int, self.epochs) * per_epoch

    def validate(self, *, check_data: bool = False) -> TrackedRun:  # type: ignore[override]
        super().validate(check_data=check_data)
        if self.controller not in CONTROLLERS:
            raise ValueError(f"controller={self.controller!r} is not allowed; choose one of {list(CONTROLLERS)}")
        if self.engine != "loop":
            raise ValueError("a tracked run sets each step's size on every optimizer: engine must be 'loop'")
        for name, value in IGNORED.items():
            if getattr(self, name) != value:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed in a tracked run (its loop does "
                                 f"not honour it); leave it at {value!r}")
        for name in ("every", "sharp_size", "lanczos_iters", "batch_sharpness_batches"):
            checks.positive(name, getattr(self, name), integer=True)
        if self.controller == "cap" and not self.sharpness:
            raise ValueError("controller='cap' needs sharpness=True (it caps the step by the curvature)")
        if self.controller == "growth" and not self.shadow:
            raise ValueError("controller='growth' needs shadow=True (it measures the growth on a shadow run)")
        if not 0 <= self.shadow_delta < 0.1:
            raise ValueError(f"shadow_delta={self.shadow_delta!r} is not allowed; in [0, 0.1) (0: one ulp)")
        checks.positive("growth_budget", self.growth_budget)
        CurvatureCap(self.cap_c, self.momentum, self.weight_decay)
        GrowthController(self.down, self.up, floor=self.step_floor)
        if (self.controller == "replay") != bool(self.replay):
            raise ValueError("replay: a step per iteration with controller='replay', none otherwise "
                             f"(controller={self.controller!r}, {len(self.replay)} steps given)")
        if self.replay:
            n = self.total_steps()
            if len(self.replay) != n or not all(math.isfinite(v) and v > 0 for v in self.replay):
                raise ValueError(f"replay: {len(self.replay)} steps given; the run takes {n}, each finite and > 0")
        if self.variants[0].k != 1:
            raise ValueError("the first variant is the reference the controllers decide on: it must be k = 1")
        return self

    def key(self) -> str:
        blob = repr((RunConfig.key(self), store.code_hash(__name__)))
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def compute(self, checkpoint: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return track(self)


CONTROLLERS = ("none", "cap", "growth", "replay")


def track(cfg: TrackedRun) -> dict[str, Any]:
    """Train ``cfg`` and return what it recorded:

    ``steps`` (the record iterations: 0, every, 2·every, …, and the last), per record
    ``lambda``, ``lambda_min`` and ``residual`` (the reference's extreme eigenvalues on the subset and
    the top one's Lanczos residual), ``lambda_batch`` (λ of the minibatch stepped on next; NaN at
    the last record), ``batch_sharpness``, ``lr`` (the step about to be taken), ``rel_l1`` {member:
    RelL1 to k = 1}, ``rate`` (the shadow's growth rate over the window ending there, NaN at 0),
    ``train_loss`` (the reference's mean loss on the stepped batches of the window ending there);
    ``step_lrs`` (every iteration's step), ``binds`` (iterations where the cap was below the
    schedule), ``final_acc`` and ``predictions`` per variant, ``seconds`` {``steps``: all variants'
    steps, ``shadow``, ``sharpness``, ``total``}."""
    t = _Tracker(cfg)
    step = 0
    for epoch in range(t.epochs):
        scheduled = lr_at(cfg, epoch)
        t.engine.begin_epoch(scheduled)
        for xb, yb in t.loader.epoch(epoch):
            if step % cfg.every == 0:
                t.record(step, scheduled, (xb, yb))
            t.train_step(xb, yb, t.controlled_lr(scheduled, step))
            step += 1
            if step >= t.total:
                break
        if step >= t.total:
            break
    t.record(step, lr_at(cfg, t.epochs - 1), None)
    return t.finish()


class _Tracker:
    """One tracked run's state (:func:`track`): its data, engine, controllers, record and timers."""

    def __init__(self, cfg: TrackedRun) -> None:
        cfg.validate()
        settings = determinism.configure(cfg.threads)
        self.cfg, self.device = cfg, torch.device(cfg.device)
        self.data = data = load_data(cfg).to(self.device, DTYPES[cfg.dtype])
        self.loader = Loader(data.x_train, data.y_train, cfg.batch_size, seed=cfg.batch_seed)
        per_epoch = len(self.loader)
        self.epochs = cfg.epochs if cfg.epochs is not None else math.ceil(cast(int, cfg.max_steps) / per_epoch)
        self.total = (self.epochs * per_epoch if cfg.max_steps is None
                      else min(cfg.max_steps, self.epochs * per_epoch))
        base = cfg.network(data).to(device=self.device, dtype=DTYPES[cfg.dtype])
        self.engine = LoopEngine(cfg, base)
        self.ref, self.ref_opt = self.engine.models[0], self.engine.opts[0]
        self.names = [v.name for v in cfg.variants]
        self.schedule = SharedSchedule(self.engine.opts)
        self.xs, self.ys = data.x_train[:cfg.sharp_size], data.y_train[:cfg.sharp_size]
        self.shadow = Shadow(self.ref, self.ref_opt, cfg.shadow_delta) if cfg.shadow else None
        self.cap = CurvatureCap(cfg.cap_c, cfg.momentum, cfg.weight_decay) if cfg.controller == "cap" else None
        self.growth = (GrowthController(cfg.down, cfg.up, GrowthController.budget_rate(cfg.growth_budget, self.total),
                                        cfg.step_floor) if cfg.controller == "growth" else None)
        self.out: dict[str, Any] = {
            "steps": [], "lambda": [], "lambda_min": [], "lambda_batch": [], "residual": [], "batch_sharpness": [],
            "lr": [], "rel_l1": {n: [] for n in self.names[1:]}, "rate": [], "train_loss": [], "step_lrs": [],
            "binds": 0, "settings": settings}
        self.seconds = {"steps": 0.0, "shadow": 0.0, "sharpness": 0.0}
        self.t_start = time.perf_counter()
        self.lam = math.nan
        self.losses: list[float] = []

    def record(self, step: int, scheduled: float, batch: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        """One record: the shadow's growth rate, the spectrum, the step about to be taken, RelL1."""
        out, rate = self.out, math.nan
        if self.shadow is not None and step > 0:
            rate = self.shadow.rate(self.ref)
            if self.growth is not None:
                self.growth.update(rate)
        t0 = time.perf_counter()
        lam_min, lam_batch, bs = self._spectrum(batch)
        self.seconds["sharpness"] += time.perf_counter() - t0
        out["steps"].append(step)
        out["lambda"].append(self.lam)
        out["lambda_min"].append(lam_min)
        out["lambda_batch"].append(lam_batch)
        out["batch_sharpness"].append(bs)
        out["lr"].append(self.next_lr(scheduled, step))
        out["rate"].append(rate)
        out["train_loss"].append(sum(self.losses) / len(self.losses) if self.losses else math.nan)
        self.losses.clear()
        for n, d in zip(self.names[1:], self.engine.rel_l1()[1:], strict=True):
            out["rel_l1"][n].append(d)
        if self.shadow is not None:
            t0 = time.perf_counter()
            if step == 0:
                self.shadow.restart(self.ref, self.ref_opt)
            else:
                self.shadow.renormalise(self.ref, self.ref_opt)
            self.seconds["shadow"] += time.perf_counter() - t0

    def _spectrum(self, batch: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[float, float, float]:
        """(λ_min, λ of ``batch``, batch sharpness), NaN without ``sharpness``; sets ``lam`` (λ_max)
        and records the top eigenvalue's Lanczos residual."""
        cfg, ref = self.cfg, self.ref
        bs = lam_min = lam_batch = math.nan
        if cfg.sharpness:
            ref.train()
            spec = hessian_spectrum(ref, cross_entropy, self.xs, self.ys, iters=cfg.lanczos_iters)
            self.lam, lam_min = spec.top.value, spec.bottom
            self.out["residual"].append(spec.top.relative_residual)
            if batch is not None:
                lam_batch = hessian_spectrum(ref, cross_entropy, *batch, iters=cfg.lanczos_iters,
                                             start=spec.vector).top.value
            bs = batch_sharpness(ref, cross_entropy, self.xs, self.ys, cfg.batch_size, cfg.batch_sharpness_batches)
        return lam_min, lam_batch, bs

    def next_lr(self, scheduled: float, step: int) -> float:
        """The step the controllers would take next (recorded; it changes no state but the growth
        controller's)."""
        if self.cfg.replay:
            return self.cfg.replay[min(step, self.total - 1)]
        lr = scheduled
        if self.cap is not None:
            lr = min(lr, self.cap.limit(self.lam))
        if self.growth is not None:
            lr = self.growth.step(lr)
        return lr

    def controlled_lr(self, scheduled: float, step: int) -> float:
        """The step of iteration ``step``: the schedule's, replayed, capped or controlled; set on
        every variant's optimizer."""
        lr = scheduled
        if self.cfg.replay:
            lr = self.cfg.replay[step]
        if self.cap is not None:
            lr = self.cap.step(scheduled, self.lam)
            self.out["binds"] += int(lr < scheduled)
        if self.growth is not None:
            lr = self.growth.step(lr)
        self.schedule.set(lr)
        return lr

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> None:
        """Every variant steps on the batch; the shadow follows the reference."""
        t0 = time.perf_counter()
        before = float(self.engine.sums[0])
        self.engine.step(xb, yb)
        self.losses.append(float(self.engine.sums[0]) - before)
        self.seconds["steps"] += time.perf_counter() - t0
        if self.shadow is not None:
            t0 = time.perf_counter()
            self.shadow.step(xb, yb, lr, cross_entropy)
            self.seconds["shadow"] += time.perf_counter() - t0

    def finish(self) -> dict[str, Any]:
        """The record with the final accuracies, predictions and timings."""
        cfg, out, data = self.cfg, self.out, self.data
        if torch.get_num_threads() != cfg.threads:
            torch.set_num_threads(cfg.threads)
        out["step_lrs"] = self.schedule.history
        preds = self.engine.predict(data.x_test)
        out["final_acc"] = {n: float((p == data.y_test).double().mean())
                            for n, p in zip(self.names, preds, strict=True)}
        out["predictions"] = {n: p.to(torch.int16).cpu().numpy() for n, p in zip(self.names, preds, strict=True)}
        out["labels"] = data.y_test.to(torch.int16).cpu().numpy()
        self.seconds["total"] = time.perf_counter() - self.t_start
        out["seconds"] = self.seconds
        out["config"] = cfg.to_dict()
        return out
