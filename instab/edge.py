"""Full-batch gradient descent with momentum at the edge of stability, and a causal test of the
curvature cap there (the paper's §6 question, where the cap can bind).

Under full-batch gradient descent the sharpness λ (the top eigenvalue of the training loss's
Hessian) rises until the step reaches the linear stability limit, η(λ + α) = 2(1 + μ) for heavy-ball
momentum μ and weight decay α, and then hovers there (Cohen et al., ICLR 2021).  :class:`EdgeRun`
trains the reference (k = 1) until its stability ratio η(λ + α)/(2(1 + μ)) reaches ``edge_at`` (not
counting the first ``settle`` iterations, whose catapult is a transient) and for ``hover``
iterations more, then continues from that one state in three arms, each a k = 1 run
beside a perturbed k run (:class:`~instab.optim.PerturbedSGD`, the paper's perturbation):

- ``none``: the same step η (the runs stay at the edge);
- ``cap``: η_t = min(η, c · 2(1 + μ)/(λ_t + α)), λ_t re-estimated at every iteration on the k = 1
  run (Lanczos warm-started from the previous top vector) — at the edge it binds;
- ``constant``: the constant step equal to the capped arm's mean step (the same total step
  without the feedback: separates the cap's mechanism from its smaller steps).

Every iteration records the ratio, the step, the training loss and RelL1 between the arm's two
runs.  The loss is the square loss on one-hot targets by default, as in Cohen et al.'s clearest
demonstrations: under cross-entropy a small subset is fitted (its sharpness then falls) or the
network collapses to a constant output before the edge is reached (``loss="cross_entropy"``
keeps the paper's loss).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from instab import checks, determinism, store
from instab.controllers import sgd_args
from instab.growth import ulp_floor
from instab.metrics import rel_l1
from instab.models import build_model
from instab.optim import PerturbedSGD
from instab.runspec import DTYPES, RunSpec, load_data
from instab.stability import hessian_spectrum, momentum_limit
from instab.step import cross_entropy, predict

__all__ = ["ARMS", "LOSSES", "EdgeRun", "chance_loss", "edge_run", "square_loss"]

#: the three arms from the edge state
ARMS = ("none", "cap", "constant")


def square_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """½‖f(x) − one_hot(y)‖² averaged over the samples: the square loss of Cohen et al. (ICLR
    2021), under which full-batch GD sharpens progressively and then hovers at the edge."""
    return 0.5 * ((logits - F.one_hot(y, logits.shape[-1]).to(logits.dtype)) ** 2).sum(dim=-1).mean()


#: the losses an edge run may train on
LOSSES = {"square": square_loss, "cross_entropy": cross_entropy}


def chance_loss(loss: str, classes: int) -> float:
    """The loss of the best constant output on balanced classes (1/C each): ln C under
    cross-entropy, ½(1 − 1/C) under the square loss; a run whose final loss is not below it has
    lost everything it learnt."""
    return math.log(classes) if loss == "cross_entropy" else 0.5 * (1 - 1 / classes)


@dataclass(frozen=True)
class EdgeRun:
    """One full-batch run to the edge and its three arms (a grid cell: ``key``, ``validate``,
    ``compute``).  ``train_size`` images are the whole batch; ``lanczos_iters`` warm-started
    Lanczos steps estimate λ every ``probe_every`` iterations while reaching the edge and in the
    ``none``/``constant`` arms, every iteration in the ``cap`` arm."""

    dataset: str = "fashion_mnist"
    train_size: int = 1000
    test_size: int = 10000
    model: str = "mlp"
    hidden: tuple[int, ...] = (64, 32)
    activation: str = "swish"
    lr: float = 0.5
    loss: str = "square"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    init_seed: int = 0
    k: int = 3
    warmup_max: int = 2000
    settle: int = 100
    edge_at: float = 0.95
    hover: int = 200
    arm_steps: int = 400
    cap_c: float = 0.9
    lanczos_iters: int = 8
    probe_every: int = 5
    threads: int = 1
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> EdgeRun:
        for name in ("train_size", "test_size", "warmup_max", "arm_steps", "lanczos_iters", "probe_every",
                     "threads"):
            checks.positive(name, getattr(self, name), integer=True)
        checks.in_range("hover", self.hover, 0, 10**6, integer=True)
        checks.in_range("settle", self.settle, 0, self.warmup_max, integer=True)
        checks.positive("lr", self.lr)
        checks.in_range("momentum", self.momentum, 0.0, 0.999)
        checks.in_range("cap_c", self.cap_c, 0.01, 0.999)
        checks.in_range("edge_at", self.edge_at, 0.1, 1.0)
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r} is not allowed; choose one of {list(LOSSES)}")
        if self.model != "mlp":
            raise ValueError(f"model={self.model!r} is not allowed; the edge run trains an 'mlp'")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 2:
            raise ValueError(f"k={self.k!r} is not allowed; the perturbed member, an integer >= 2")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not allowed; choose one of {list(DTYPES)}")
        if not isinstance(self.init_seed, int) or self.init_seed < 0:
            raise ValueError(f"init_seed={self.init_seed!r} is not allowed; an integer >= 0")
        return self

    def key(self) -> str:
        blob = repr(sorted({**self.to_dict(), "code": store.code_hash(__name__),
                            "libraries": store.library_versions(),
                            "fp_environment": determinism.environment_key()}.items()))
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def compute(self, checkpoint: str | Path | None = None, **kwargs: Any) -> dict[str, Any]:
        return edge_run(self)


class _Pair:
    """The k = 1 run and the perturbed k run of one arm, from one state."""

    def __init__(self, model: nn.Module, opt: PerturbedSGD, k: int, loss: Any):
        self.loss = loss
        self.models = [copy.deepcopy(model), copy.deepcopy(model)]
        self.opts = []
        for m, kk in zip(self.models, (1, k), strict=True):
            o = PerturbedSGD(m.parameters(), **sgd_args(opt), k=kk)
            state = copy.deepcopy(opt.state_dict())
            state["param_groups"][0]["k"] = kk
            o.load_state_dict(state)
            self.opts.append(o)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
        losses = []
        for m, o in zip(self.models, self.opts, strict=True):
            for g in o.param_groups:
                g["lr"] = lr
            losses.append(_gd_step(m, o, self.loss, x, y))
        return losses[0]


def _gd_step(model: nn.Module, opt: PerturbedSGD, loss_fn: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    model.train()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return float(loss.detach())


def edge_run(cfg: EdgeRun) -> dict[str, Any]:
    """Run ``cfg`` (see the module): ``warmup`` {``steps``, ``ratio``, ``loss``, ``reached``: the
    iteration the ratio first reached ``edge_at``, or None}; per arm {``ratio`` (every iteration:
    from λ_t where estimated, else the last estimate), ``lr``, ``loss``, ``rel_l1``,
    ``binds`` (iterations where the cap was below η), ``final_loss``, ``test_acc`` per member,
    ``disagree`` (test images where one member is right and the other wrong),
    ``residual`` (the largest relative Lanczos residual of its λ estimates)}; ``start`` {``loss``,
    ``ratio``} (the state the arms start from);
    ``floor`` (the network's one-ulp RelL1); ``chance`` (:func:`chance_loss`); ``n_test`` (test images); ``seconds``."""
    cfg.validate()
    settings = determinism.configure(cfg.threads)
    t_start = time.perf_counter()
    run = _EdgeState(cfg)
    warm, lam = run.warmup()
    arms: dict[str, Any] = {}
    start_vector = run.vector
    with torch.no_grad():
        start = {"loss": float(run.loss_fn(run.model(run.x), run.y)), "ratio": run.ratio(lam, cfg.lr)}
    for arm in ARMS:
        run.vector = start_vector
        fixed = float(np.mean(arms["cap"]["lr"])) if arm == "constant" else cfg.lr
        arms[arm], lam = run.arm(arm, fixed, lam)
    return {"warmup": warm, "start": start, "arms": arms, "floor": ulp_floor(run.model.parameters()),
            "chance": chance_loss(cfg.loss, run.data.num_classes),
            "n_test": int(run.data.y_test.numel()), "settings": settings,
            "seconds": time.perf_counter() - t_start, "config": cfg.to_dict()}


class _EdgeState:
    """One edge run's data, network, optimizer and warm-started Lanczos vector (:func:`edge_run`)."""

    def __init__(self, cfg: EdgeRun) -> None:
        self.cfg = cfg
        device, dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
        spec = RunSpec(model=cfg.model, dataset=cfg.dataset, train_size=cfg.train_size, test_size=cfg.test_size)
        self.data = data = load_data(spec).to(device, dtype)
        self.x, self.y = data.x_train, data.y_train
        self.loss_fn = LOSSES[cfg.loss]
        self.model = build_model(cfg.model, in_channels=data.in_channels, num_classes=data.num_classes,
                                 activation=cfg.activation, input_size=data.input_size, hidden=cfg.hidden,
                                 seed=cfg.init_seed).to(device=device, dtype=dtype)
        self.opt = PerturbedSGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, k=1)
        self.vector: torch.Tensor | None = None
        self.residuals: list[float] = []

    def ratio(self, lam: float, lr: float) -> float:
        """The stability ratio η(λ + α)/(2(1 + μ)) of step ``lr`` on curvature ``lam``."""
        return lr / momentum_limit(lam, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay)

    def cap_limit(self, lam: float) -> float:
        """The cap's step on curvature ``lam``: c · 2(1 + μ)/(λ + α)."""
        return self.cfg.cap_c * momentum_limit(lam, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay)

    def curvature(self, m: nn.Module) -> float:
        """λ of ``m`` on the training set (Lanczos, warm-started from the last estimate's vector)."""
        s = hessian_spectrum(m, self.loss_fn, self.x, self.y, iters=self.cfg.lanczos_iters, start=self.vector)
        self.vector = s.vector
        self.residuals.append(s.top.relative_residual)
        return s.top.value

    def warmup(self) -> tuple[dict[str, Any], float]:
        """Full-batch GD at η until the ratio reaches ``edge_at`` (after ``settle``), then ``hover``
        iterations more: the record and the last λ."""
        cfg = self.cfg
        warm: dict[str, Any] = {"steps": [], "ratio": [], "loss": [], "reached": None}
        lam = math.nan
        end = cfg.warmup_max
        for t in range(cfg.warmup_max + cfg.hover):
            if t % cfg.probe_every == 0:
                lam = self.curvature(self.model)
                warm["steps"].append(t)
                warm["ratio"].append(self.ratio(lam, cfg.lr))
                if warm["reached"] is None and t >= cfg.settle and warm["ratio"][-1] >= cfg.edge_at:
                    warm["reached"] = t
                    end = t + cfg.hover
            if t >= end:
                break
            warm["loss"].append(_gd_step(self.model, self.opt, self.loss_fn, self.x, self.y))
        return warm, lam

    def arm(self, arm: str, fixed: float, lam: float) -> tuple[dict[str, Any], float]:
        """One arm from the warm-up's end: k = 1 and k side by side at step ``fixed`` (or the cap's);
        its record and the last λ."""
        cfg = self.cfg
        pair = _Pair(self.model, self.opt, cfg.k, self.loss_fn)
        rec: dict[str, Any] = {"ratio": [], "lr": [], "loss": [], "rel_l1": [], "binds": 0}
        self.residuals.clear()
        cap_limit = self.cap_limit(lam)
        for t in range(cfg.arm_steps):
            if arm == "cap" or t % cfg.probe_every == 0:
                lam = self.curvature(pair.models[0])
                cap_limit = self.cap_limit(lam)
            lr = fixed
            if arm == "cap" and cap_limit < cfg.lr:
                lr = cap_limit
                rec["binds"] += 1
            rec["ratio"].append(self.ratio(lam, lr))
            rec["lr"].append(lr)
            rec["loss"].append(pair.step(self.x, self.y, lr))
            rec["rel_l1"].append(rel_l1(pair.models[0], pair.models[1]))
        with torch.no_grad():
            rec["final_loss"] = float(self.loss_fn(pair.models[0](self.x), self.y))
        right = [predict(m, self.data.x_test) == self.data.y_test for m in pair.models]
        rec["test_acc"] = [float(r.double().mean()) for r in right]
        rec["disagree"] = int((right[0] != right[1]).sum())
        rec["residual"] = max(self.residuals, default=math.nan)
        return rec, lam
