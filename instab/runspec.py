"""What a lockstep training run is (paper §4.2), below both engines: :class:`Variant` (one
perturbation: k and form of :class:`instab.optim.PerturbedSGD`, a one-ulp change of an initial
weight, a thread count) and :class:`RunSpec` (everything that determines a run: network, data,
SGD's settings, the schedule, the variants, the engine), validated before any training, with the
network (:meth:`RunSpec.network`) and the data (:func:`load_data`) it names.
:class:`instab.train.RunConfig` is a ``RunSpec`` that the grid can run (``compute``).

Nothing here imports an engine or the training loop: the imports point down, from
:mod:`instab.train` to :mod:`instab.batched` to this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from instab import determinism, store
from instab.checks import one_of
from instab.checks import positive as _positive
from instab.data import DATASETS, Data, load
from instab.models import ACTIVATIONS, POOLS, SHORTCUTS, build_model, validate_model_name
from instab.optim import check_form, check_k

#: Bump when a change to the training code changes results: cached cells keyed on it recompute.
#: (Cache keys also include the source of every module the training runs, :func:`instab.store.code_hash`.)
ENGINE_VERSION = 1

#: Floating-point types a run can train in (``RunSpec.dtype``).
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: How the lockstep variants are computed (``RunSpec.engine``).
ENGINES = ("loop", "stacked")
#: The module whose source, with that of every instab module it imports (the loop, both engines,
#: the optimizer, the models, the data), keys a run's cache entry (:func:`instab.store.code_hash`).
TRAINING_CODE = "instab.train"

_Spec = TypeVar("_Spec", bound="RunSpec")


# --------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class Variant:
    """One perturbed run within a lockstep group.

    k, form:
        The PerturbedSGD perturbation (k = 1: plain SGD).
    init_ulp, init_index:
        Move one initial weight by ``init_ulp`` ulps with ``nextafter`` (0: none), as Summers &
        Dinneen perturb one weight: the entry ``init_index`` (modulo its size; ``None``: the middle)
        of the last weight matrix, whose input — a hidden feature — varies with the image
        (:func:`perturb_init`).  (Element 0 of an MLP's first layer, which an earlier version moved,
        multiplies a corner pixel that is 0 in every Fashion-MNIST image: a one-ulp change there
        only meets weight decay and is rounded away.)
    threads:
        Thread count for this variant's steps (``None``: the run's ``threads``).
    """

    k: int = 1
    form: str = "paper"
    init_ulp: int = 0
    init_index: int | None = None
    threads: int | None = None

    @property
    def name(self) -> str:
        parts = [f"k={self.k}"]
        if self.form != "paper":
            parts.append(self.form)
        if self.init_ulp:
            parts.append(f"init{self.init_ulp:+d}ulp" + ("" if self.init_index is None else f"@{self.init_index}"))
        if self.threads is not None:
            parts.append(f"threads={self.threads}")
        return ",".join(parts)


def ks(*values: int, form: str = "paper") -> tuple[Variant, ...]:
    """Variants for the given k values, e.g. ``ks(1, 3, 5)``."""
    return tuple(Variant(k=k, form=form) for k in values)


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's result (hashed by :mod:`instab.grid`); the grid's cell is its
    subclass :class:`instab.train.RunConfig`, which adds ``compute`` (the training).

    The schedule is the paper's step decay: ``lr`` is multiplied by ``lr_decay`` every
    ``lr_decay_every`` epochs (``lr_decay_every=0``: constant).  ``max_steps`` stops training after
    that many iterations (for the fixed-lr runs with lr × iterations constant); ``epochs`` then
    defaults to enough epochs.  ``rel_l1_every``: record RelL1 every so many iterations
    (``0``: only per epoch; ``"log"``: ~20 points per decade of iterations).  ``keep_final``: keep
    the reference variant's final weights and optimizer state in ``History.final_state``.  ``foreach``: the
    optimizer's multi-tensor path (the faster one on CPU too; same arithmetic as the single-tensor
    path).  ``acc_every``: also record every variant's test accuracy every so many iterations
    (``History.iter_acc``; 0: only per epoch).  ``eval_every``: the test pass after every so many
    epochs and after the last (``History.test_epoch``; a grid that needs only the final accuracy
    sets it to ``epochs``).  ``dtype``: ``"float32"`` (the paper's) or
    ``"float64"`` for the weights, the optimizer and the data.  ``engine``: ``"loop"`` trains the
    variants one after another on each batch; ``"stacked"`` trains them as one computation on
    parameters stacked along a leading axis (:mod:`instab.batched`; every network, ``torch.func``
    for the conv nets) — the same algorithm, faster for many small runs, but other bits than
    ``"loop"`` (another summation order in the matrix products and convolutions), so the engine is
    part of the cache key like any other field.
    """

    model: str = "cnn"
    dataset: str = "fashion_mnist"
    variants: tuple[Variant, ...] = (Variant(1), Variant(3))
    epochs: int | None = 1
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    dampening: float = 0.0
    lr_decay: float = 0.1
    lr_decay_every: int = 40
    init_seed: int = 0
    batch_seed: int = 0
    augment: bool = False
    augment_seed: int = 0
    train_size: int | None = None
    test_size: int | None = None
    pad_to: int | None = None
    activation: str = "relu"
    beta: float = 1.0
    pool: str = "max"
    shortcut: str = "conv"
    widths: tuple[int, ...] | None = None
    hidden: tuple[int, ...] | None = None
    threads: int = 1
    device: str = "cpu"
    rel_l1_every: int | str = 0
    foreach: bool | None = True
    keep_final: bool = False
    acc_every: int = 0
    eval_every: int = 1
    dtype: str = "float32"
    engine: str = "loop"

    def __post_init__(self) -> None:
        # normalise lists given from YAML / papermill into tuples so configs hash and compare
        variants = tuple(v if isinstance(v, Variant) else Variant(**v) if isinstance(v, dict) else Variant(v)
                         for v in self.variants)
        object.__setattr__(self, "variants", variants)
        for name in ("widths", "hidden"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))

    def replace(self: _Spec, **changes: Any) -> _Spec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """SHA-256 of the canonical configuration, the engine version, the source of the modules the
        training runs (:func:`instab.store.code_hash`), the library versions and the floating-point
        environment (:func:`instab.determinism.environment_key`): the grid's cache key."""
        blob = repr(sorted({**self.to_dict(), "engine_version": ENGINE_VERSION, "code": store.code_hash(TRAINING_CODE),
                            "libraries": store.library_versions(),
                            "fp_environment": determinism.environment_key()}.items()))
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def network(self, data: Data, *, seed: int | None = None) -> nn.Module:
        """The run's network at its seeded initialisation (``seed`` overrides ``init_seed``), shaped
        for ``data`` (its channels, classes and input size), on the CPU in float32."""
        return build_model(self.model, in_channels=data.in_channels, num_classes=data.num_classes,
                           activation=self.activation, beta=self.beta, input_size=data.input_size, pool=self.pool,
                           shortcut=self.shortcut, widths=self.widths, hidden=self.hidden,
                           seed=self.init_seed if seed is None else seed)

    def data_key(self) -> tuple[Any, ...]:
        """What decides the data this run loads (the grid checks each data set once)."""
        return (self.dataset, self.train_size, self.test_size, self.pad_to)

    def check_data(self: _Spec) -> _Spec:
        """Raise before any training if the data set is not on disk (and cannot be fetched)."""
        return self.validate(check_data=True)

    def validate(self: _Spec, *, check_data: bool = False) -> _Spec:
        """Raise ``ValueError`` naming the first bad field (before any training)."""
        validate_model_name(self.model)
        for name, allowed in (("dataset", DATASETS), ("activation", ACTIVATIONS), ("pool", POOLS),
                              ("shortcut", SHORTCUTS)):
            one_of(name, getattr(self, name), allowed)
        self._check_optimizer()
        self._check_length()
        _check_variants(self.variants)
        self._check_recording()
        one_of("dtype", self.dtype, DTYPES)
        one_of("engine", self.engine, ENGINES)
        self._check_device()
        if check_data:
            load_data(self)
        return self

    def _check_optimizer(self) -> None:
        """The step, the batch, the threads and SGD's coefficients."""
        _positive("lr", self.lr)
        _positive("batch_size", self.batch_size, integer=True)
        _positive("threads", self.threads, integer=True)
        _positive("beta", self.beta)
        for name in ("momentum", "weight_decay", "dampening"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"{name}={value!r} is not allowed; it must be a number >= 0")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True is not allowed without momentum > 0 and dampening = 0")

    def _check_length(self) -> None:
        """How long the run trains and its step decay."""
        if self.epochs is None and self.max_steps is None:
            raise ValueError("epochs=None is not allowed without max_steps")
        if self.epochs is not None:
            _positive("epochs", self.epochs, integer=True)
        if self.max_steps is not None:
            _positive("max_steps", self.max_steps, integer=True)
        if not (isinstance(self.lr_decay_every, int) and self.lr_decay_every >= 0):
            raise ValueError(f"lr_decay_every={self.lr_decay_every!r} is not allowed; "
                             "it must be an integer >= 0")
        _positive("lr_decay", self.lr_decay)

    def _check_recording(self) -> None:
        """What the run records, and how often."""
        every = self.rel_l1_every
        if not (every == "log" or (isinstance(every, int) and not isinstance(every, bool) and every >= 0)):
            raise ValueError(f"rel_l1_every={self.rel_l1_every!r} is not allowed; an integer >= 0 or 'log'")
        _positive("eval_every", self.eval_every, integer=True)
        if isinstance(self.acc_every, bool) or not isinstance(self.acc_every, int) or self.acc_every < 0:
            raise ValueError(f"acc_every={self.acc_every!r} is not allowed; it must be an integer >= 0")

    def _check_device(self) -> None:
        """The engine's and the device's requirements."""
        if self.engine == "stacked":
            reason = unsupported(self)
            if reason:
                raise ValueError(f"engine='stacked' is not allowed here: {reason}; use engine='loop'")
        if not (self.device == "cpu" or str(self.device).startswith("cuda")):
            raise ValueError(f"device={self.device!r} is not allowed; choose 'cpu' or 'cuda[:n]'")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} is not allowed: CUDA is not available here")
        if self.model == "vgg16_bn" and self.dataset == "fashion_mnist" and self.pad_to != 32:
            raise ValueError("pad_to must be 32 for vgg16_bn on fashion_mnist (VGG16 takes 32×32 inputs)")


def _check_variants(variants: Sequence[Variant]) -> None:
    """At least one variant, each valid, no two alike."""
    if not variants:
        raise ValueError("variants=() is not allowed; give at least one (the reference)")
    for v in variants:
        check_k(v.k)
        check_form(v.form)
        if not isinstance(v.init_ulp, int) or isinstance(v.init_ulp, bool):
            raise ValueError(f"init_ulp={v.init_ulp!r} is not allowed; it must be an integer")
        if v.threads is not None:
            _positive("threads", v.threads, integer=True)
        if v.init_index is not None and (isinstance(v.init_index, bool) or not isinstance(v.init_index, int)
                                         or v.init_index < 0):
            raise ValueError(f"init_index={v.init_index!r} is not allowed; an integer >= 0 or None")
    if len({v.name for v in variants}) != len(variants):
        raise ValueError(f"variants={[v.name for v in variants]} is not allowed; they must differ")


def unsupported(config: RunSpec) -> str | None:
    """Why ``config`` cannot run on the stacked engine (:mod:`instab.batched`; ``None``: it can)."""
    threads = {v.threads for v in config.variants if v.threads is not None} - {config.threads}
    if threads:
        return f"variants with their own thread count {sorted(threads)} (one computation has one thread count)"
    return None


def load_data(config: RunSpec):
    kwargs: dict[str, Any] = {}
    if config.dataset == "synthetic":
        kwargs["shape"] = (3, 32, 32) if config.pad_to is None else (3, config.pad_to, config.pad_to)
    else:
        kwargs["pad_to"] = config.pad_to
    return load(config.dataset, train_size=config.train_size, test_size=config.test_size, **kwargs)
