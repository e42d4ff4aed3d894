"""App. E (Fig. 6): the largest stable learning rate of multilayer networks against 2/α and
2/(α + λ₀) — the experiment of the multilayer chapter.

One cell (:class:`instab.threshold.ThresholdConfig`) is one (network, α): λ₀, the top Hessian
eigenvalue of the training loss at initialisation, then a bisection for the largest non-divergent
learning rate (or a sharpness trace).  Cells run through the one runner, :func:`instab.grid.run_grid`,
on any engine; their results are plain numbers.

The chapter's steps, each returning data, and the claim rules that decide them:
:class:`Params` (its parameters, validated; :meth:`Params.plan` builds the cells);
:func:`fig6` (paper Fig. 6: Δt* against 2/α, eq. (65), and 2/(α+λ₀), eq. (64)) /
:func:`fig6_claims`; :func:`edge` (one more cell per network at α = 10 λ₀) / :func:`edge_claims`;
:func:`sharpness` (the sharpness along runs the linear theory calls unstable) /
:func:`sharpness_claims`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instab import bounds
from instab.findings import tolerance
from instab.report import Claim, claim, paper
from instab.stability import Divergence
from instab.studies.params import StudyParams
from instab.threshold import ThresholdConfig


# ------------------------------------------------------------------------------- the chapter's plan
@dataclass
class Plan:
    """The multilayer chapter's cells, built and validated from its parameters: one
    :class:`ThresholdConfig` per (network, α), and the sharpness traces."""

    cells: list[ThresholdConfig]
    traces: list[ThresholdConfig]
    shared: dict[str, Any]
    widths: dict[str, Any]

    def config(self, network: str, alpha: float, **overrides: Any) -> ThresholdConfig:
        """One more cell (e.g. at α = 10 λ₀, known only once λ₀ is measured)."""
        w = self.widths.get(network)
        shape = {"hidden" if network == "mlp" else "widths": tuple(w) if w else None}
        return ThresholdConfig(**{**self.shared, "network": network, "alpha": float(alpha), **shape,
                                  **overrides}).validate()


def plan(*, networks: list[str], widths: dict[str, Any], alphas: list[float], dataset: str, train_size: int,
         downsample: int, pad_to: int | None, steps: int, rtol: float, norm_factor: float, lanczos_iters: int,
         trace_network: str, trace_alphas: list[float], trace_lr_factor: float, trace_steps: int,
         trace_every: int, device: str, **_: Any) -> Plan:
    """Validate the chapter's parameters (``ValueError`` naming the bad one, before any work) and
    build its cells.  Parameters the plan does not use (``workers``, ``executor``) are ignored."""
    from instab import checks, models

    checks.each("networks", networks, lambda _, n: models.validate_model_name(n))
    for n in networks:
        if widths.get(n) is not None:
            checks.each(f"widths[{n!r}]", widths[n], checks.positive, integer=True)
    checks.each("alphas", alphas, checks.positive)
    if len(alphas) < 2 or list(alphas) != sorted(alphas):
        raise ValueError(f"alphas={alphas!r} is not allowed; it must be increasing, with at least two values")
    checks.one_of("dataset", dataset, ["fashion_mnist", "cifar10"])
    checks.positive("train_size", train_size, integer=True)
    checks.one_of("downsample", downsample, [1, 2, 4])
    checks.positive("steps", steps, integer=True)
    checks.in_range("rtol", rtol, 1e-4, 0.1)
    checks.in_range("norm_factor", norm_factor, 1.5, 1e6)
    checks.positive("lanczos_iters", lanczos_iters, integer=True)
    checks.one_of("trace_network", trace_network, networks)
    checks.each("trace_alphas", trace_alphas, checks.positive)
    checks.in_range("trace_lr_factor", trace_lr_factor, 1.0, 100.0)
    checks.in_range("trace_every", trace_every, 1, trace_steps)
    shared = dict(dataset=dataset, train_size=train_size, downsample=downsample, pad_to=pad_to, steps=steps,
                  rtol=rtol, norm_factor=norm_factor, lanczos_iters=lanczos_iters, device=device)
    p = Plan([], [], shared, dict(widths))
    p.cells = [p.config(n, a) for n in networks for a in alphas]
    p.traces = [p.config(trace_network, a, steps=trace_steps, trace_lr_factor=trace_lr_factor,
                         trace_every=trace_every) for a in trace_alphas]
    return p


def dry_run(params: dict[str, Any]) -> dict[str, Any]:
    """Build and validate the chapter's cells, check device, engine and data, and estimate the cost
    — training nothing.  A cell's bisection runs about log(hi/lo)/log(1 + rtol) ≈ 12 trials of
    ``steps`` full-batch steps on ``train_size`` images (and λ₀'s Lanczos steps); a trace runs once.
    The α = 10 λ₀ cells and the last trace depend on measured λ₀ and are counted as one more cell
    per network and one more trace."""
    from instab import cost

    p = plan(**params)
    trials = 12

    def hours(c: ThresholdConfig, runs: float) -> float:
        image_epochs = runs * c.steps * c.train_size / cost.IMAGES.get(c.dataset, 50_000)
        return image_epochs * cost.model_epoch_seconds(c.network, c.dataset) / 3600

    cells = p.cells + [p.config(n, 1.0) for n in params["networks"]]
    traces = p.traces + [p.traces[0]] if p.traces else []
    rows = [{"what": "bisection cells (network, α), incl. α = 10 λ₀", "cells": len(cells), "runs": len(cells) * trials,
             "model_epochs": sum(trials * c.steps * c.train_size / cost.IMAGES.get(c.dataset, 50_000) for c in cells),
             "gpu_hours": sum(hours(c, trials) for c in cells)},
            {"what": "sharpness traces", "cells": len(traces), "runs": len(traces),
             "model_epochs": sum(c.steps * c.train_size / cost.IMAGES.get(c.dataset, 50_000) for c in traces),
             "gpu_hours": sum(hours(c, 1) for c in traces)}]
    checks = cost.environment_checks(params["device"], {params["dataset"]}, params.get("executor"))
    models = {(c.network, c.dataset) for c in cells + traces}
    return {"rows": rows, "total": cost.summary(rows, models), "checks": checks}


# ------------------------------------------------------------------------------- the chapter's steps
@dataclass
class Params(StudyParams):
    """The multilayer chapter's parameters (its parameters cell: same names, same defaults)."""

    networks: list[str] = field(default_factory=lambda: ["mlp", "cnn", "resnet8"])
    widths: dict[str, Any] = field(default_factory=lambda: {"mlp": [64], "cnn": [8, 16], "resnet8": [4, 8, 16]})
    alphas: list[float] = field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0])
    dataset: str = "fashion_mnist"
    train_size: int = 256
    downsample: int = 2
    pad_to: int | None = None
    steps: int = 200
    rtol: float = 0.01
    norm_factor: float = 10.0
    lanczos_iters: int = 20
    trace_network: str = "mlp"
    trace_alphas: list[float] = field(default_factory=lambda: [0.001, 0.1])
    trace_lr_factor: float = 1.5
    trace_steps: int = 400
    trace_every: int = 20
    device: str = "cpu"
    workers: int = 2
    executor: str | None = None

    def plan(self) -> Plan:
        """The chapter's cells (:func:`plan`)."""
        return plan(**self.as_dict())

    def validate(self) -> Params:
        """Raise ``ValueError`` naming the first bad parameter (before any cell runs)."""
        from instab import checks

        self.plan()
        checks.positive("workers", self.workers, integer=True)
        if self.executor is not None:
            from instab.executors import check_spec

            check_spec(self.executor)
        return self

    def resolution(self) -> float:
        """The relative step excess the step budget resolves, ``ln(norm_factor) / (2 steps)``."""
        return Divergence(self.norm_factor).resolution(self.steps)

    def upper(self) -> float:
        """How far above a linear threshold a measured Δt* may lie: the bisection's bracket
        ``1 + rtol`` and twice the step budget's resolution."""
        return 1 + self.rtol + 2 * self.resolution()

    def recorded(self) -> dict[str, Any]:
        """The parameters ``results.json`` records."""
        return dict(networks=self.networks, alphas=self.alphas, train_size=self.train_size,
                    downsample=self.downsample, steps=self.steps, rtol=self.rtol, norm_factor=self.norm_factor)


@dataclass
class Fig6:
    """Paper Fig. 6 measured: per network λ₀ at initialisation (``lam0``), the largest non-divergent
    step at each α (``lr_max``), the bounds 2/α (``bound``, eq. (65)) and 2/(α+λ₀) (``pred``, eq.
    (64)), ``ratio`` = Δt*/(2/α); ``grid`` the cells' results by (network, α) and ``trace_runs``
    the sharpness traces by α."""

    networks: list[str]
    alphas: list[float]
    grid: dict[tuple[str, float], dict]
    trace_runs: dict[float, dict]
    lam0: dict[str, float]
    lr_max: dict[str, np.ndarray]
    bound: np.ndarray
    pred: dict[str, np.ndarray]
    ratio: dict[str, np.ndarray]

    def lines(self) -> list[str]:
        out = []
        for n in self.networks:
            out.append(f"{n}: {self.grid[(n, self.alphas[0])]['parameters']} parameters, "
                       f"λ₀ = {self.lam0[n]:.4g} at initialisation")
            out.append(f"  {'α':>8} {'Δt*':>10} {'2/α':>10} {'2/(α+λ₀)':>10} "
                       f"{'Δt*/(2/α)':>10} {'Δt*/(2/(α+λ₀))':>15}")
            for i, a in enumerate(self.alphas):
                out.append(f"  {a:>8g} {self.lr_max[n][i]:>10.4g} {self.bound[i]:>10.4g} {self.pred[n][i]:>10.4g} "
                           f"{self.ratio[n][i]:>10.4f} {self.lr_max[n][i] / self.pred[n][i]:>15.4f}")
        return out

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n in self.networks:
            out[f"{n}.lambda0"] = self.lam0[n]
            out[f"{n}.lr_max"] = self.lr_max[n]
            out[f"{n}.ratio_to_2_over_alpha"] = self.ratio[n]
            out[f"{n}.prediction_2_over_alpha_plus_lambda0"] = self.pred[n]
        return out

    def beyond_64(self) -> float:
        """The largest Δt*/(2/(α+λ₀)) over networks and α (how far beyond (64) a run survives)."""
        return float(max(np.max(self.lr_max[n] / self.pred[n]) for n in self.networks))


def fig6(p: Params, pl: Plan) -> Fig6:
    """Run every (network, α) cell and the sharpness traces (one process and thread per cell,
    cached), and compare Δt* with 2/α (eq. (65)) and 2/(α+λ₀) (eq. (64))."""
    from instab.grid import run_grid

    out = run_grid(pl.cells + pl.traces, workers=p.workers, executor=p.executor, desc="(network, α) cells")
    grid = {(c.network, c.alpha): r for c, r in zip(pl.cells, out[:len(pl.cells)], strict=True)}
    trace_runs = dict(zip(p.trace_alphas, out[len(pl.cells):], strict=True))
    lam0 = {n: grid[(n, p.alphas[0])]["lambda0"] for n in p.networks}
    lr_max = {n: np.array([grid[(n, a)]["lr"] for a in p.alphas]) for n in p.networks}
    bound = bounds.multilayer_lr_bound(np.array(p.alphas))
    pred = {n: np.asarray(bounds.multilayer_lr_bound(np.array(p.alphas), lam0[n])) for n in p.networks}
    ratio = {n: lr_max[n] / bound for n in p.networks}
    return Fig6(list(p.networks), list(p.alphas), grid, trace_runs, lam0, lr_max, np.asarray(bound), pred, ratio)


def fig6_claims(f6: Fig6, p: Params) -> list[Claim]:
    """Per network: Δt*/(2/α) is within the registry's tolerance (5%) of 1 at the largest α (the
    paper's Fig. 6) and rises with α (non-decreasing to the bisection's precision, last > first).
    (The floor and the ceiling, checked over these α and the α = 10 λ₀ cell, are :func:`edge_claims`.)"""
    upper, tol = p.upper(), tolerance("multilayer-fig6-ratio-approaches-1")
    out = []
    for n in f6.networks:
        r = f6.ratio[n]
        out += [claim(f"{n}: Δt*/(2/α) at the largest α", r[-1], paper("fig6_multilayer.claim"),
                      criterion=f"within {100 * tol:g}% of 1", ok=abs(r[-1] - 1) <= tol, verdict="reproduced",
                      shown_in="fig-multilayer-fig6"),
                claim(f"{n}: Δt*/(2/α) rises with α", r, None,
                      criterion=f"non-decreasing (to {upper - 1:.1%}) and last > first",
                      ok=bool(np.all(np.diff(r) >= -(upper - 1) * r[:-1]) and r[-1] > r[0]),
                      verdict="reproduced", shown_in="fig-multilayer-fig6")]
    return out


@dataclass
class Edge:
    """The cells at α = 10 λ₀ (``results``, one per network) and, over every α ≥ 10 λ₀ measured
    (``alphas``), ``dev`` = Δt*/(2/(α+λ₀)) − 1 and ``gap`` = λ₀/α (2/α over 2/(α+λ₀), minus 1);
    over every α measured, the grid's and α = 10 λ₀: ``floor`` = Δt*/(2/(α+λ₀)) and ``ceiling`` =
    Δt*/(2/α)."""

    networks: list[str]
    results: list[dict]
    alphas: dict[str, np.ndarray]
    dev: dict[str, np.ndarray]
    gap: dict[str, np.ndarray]
    floor: dict[str, np.ndarray] = field(default_factory=dict)
    ceiling: dict[str, np.ndarray] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [f"{n}: α ≥ 10 λ₀ at α = {np.round(self.alphas[n], 4).tolist()}: "
                f"Δt*/(2/(α+λ₀)) − 1 = {np.round(self.dev[n], 4).tolist()}, "
                f"λ₀/α = {np.round(self.gap[n], 4).tolist()}; within 5% everywhere: "
                f"{'yes' if np.all(np.abs(self.dev[n]) <= 0.05) else 'no'}" for n in self.networks]

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n, e in zip(self.networks, self.results, strict=True):
            out[f"{n}.alpha_10_lambda0.lr_max"] = e["lr"]
            out[f"{n}.alpha_ge_10_lambda0.max_deviation_from_64"] = float(np.max(np.abs(self.dev[n])))
        return out

    def max_dev(self) -> float:
        """The largest Δt*/(2/(α+λ₀)) − 1 over the networks (quoted in the prose)."""
        return max(float(np.max(self.dev[n])) for n in self.networks)


def edge(p: Params, pl: Plan, f6: Fig6) -> Edge:
    """One more cell per network at α = 10 λ₀ (known once λ₀ is measured), and the deviation from
    (64) over every α ≥ 10 λ₀."""
    from instab.grid import run_grid

    results = run_grid([pl.config(n, 10 * f6.lam0[n]) for n in f6.networks], workers=p.workers,
                       executor=p.executor, desc="α = 10 λ₀ cells")
    alphas, dev, gap, floor, ceiling = {}, {}, {}, {}, {}
    for n, e in zip(f6.networks, results, strict=True):
        a_all = np.array(list(f6.alphas) + [e["config"]["alpha"]])
        lr_all = np.append(f6.lr_max[n], e["lr"])
        keep = a_all >= 10 * f6.lam0[n] * (1 - 1e-12)
        alphas[n] = a_all[keep]
        dev[n] = lr_all[keep] / bounds.multilayer_lr_bound(a_all[keep], f6.lam0[n]) - 1
        gap[n] = f6.lam0[n] / a_all[keep]
        floor[n] = lr_all / bounds.multilayer_lr_bound(a_all, f6.lam0[n])
        ceiling[n] = lr_all / bounds.multilayer_lr_bound(a_all)
    return Edge(list(f6.networks), results, alphas, dev, gap, floor, ceiling)


#: The registry's finding for the first guess on where (64) takes over from (65), stated (with
#: its tolerance, 5%) before the α = 10 λ₀ cells were run.
EDGE_GUESS = "multilayer-edge-5pct-guess"


def edge_claims(ed: Edge, p: Params) -> list[Claim]:
    """Per network, beyond the paper: (64) with λ₀ at initialisation is a floor (Δt* ≥ 0.95 ·
    2/(α+λ₀)) and (65) a ceiling (Δt*/(2/α) ≤ :meth:`Params.upper`) at every α measured, the grid's
    and α = 10 λ₀; and the first guess on where (64) takes over — for α ≥ 10 λ₀, Δt* within 5% of
    2/(α+λ₀) — decided by the data: ``extension`` if it holds at every such α, ``refuted`` if not
    (the row fails only on a non-finite number)."""
    upper = p.upper()
    out = []
    for n in ed.networks:
        floor, ceiling, dev = ed.floor[n], ed.ceiling[n], ed.dev[n]
        holds = bool(np.all(np.abs(dev) <= tolerance(EDGE_GUESS)))
        out += [claim(f"{n}: Δt* ≥ 0.95·2/(α+λ₀) at every α", floor.min(), None,
                      criterion="min over α (the grid's and 10λ₀) of Δt*/(2/(α+λ₀)) ≥ 0.95",
                      ok=bool(np.all(floor >= 0.95)), verdict="extension", shown_in="fig-multilayer-fig6"),
                claim(f"{n}: Δt* ≤ 2/α at every α", ceiling.max(), None,
                      criterion=f"max over α (the grid's and 10λ₀) of Δt*/(2/α) ≤ 1 + rtol + 2·resolution = "
                                f"{upper:.4f}",
                      ok=bool(np.all(ceiling <= upper)), verdict="extension", shown_in="fig-multilayer-fig6"),
                claim(f"{n}: α ≥ 10λ₀ ⇒ Δt* within 5% of 2/(α+λ₀) (first guess)", np.round(dev, 4), None,
                      criterion=f"|Δt*/(2/(α+λ₀)) − 1| ≤ {tolerance(EDGE_GUESS)} at every α ≥ 10λ₀: holds → extension, "
                                "fails → refuted",
                      ok=holds, verdict="extension", sane=bool(np.all(np.isfinite(dev))),
                      shown_in="fig-multilayer-fig6")]
    return out


@dataclass
class Sharpness:
    """The sharpness traces by α (``runs``: the small weight decays of ``trace_alphas``, then
    ``alpha_big`` = 10 λ₀ with 2/Δt = α + λ₀/2, halfway between (64) and (65))."""

    runs: dict[float, dict]
    trace_alphas: list[float]
    alpha_big: float

    def lines(self) -> list[str]:
        out = []
        for a, tr in self.runs.items():
            end, start, thr = tr["sharpness"][-1], tr["sharpness"][0], 2 / tr["lr"]
            below = np.mean(np.array(tr["sharpness"]) < thr)
            out.append(f"α = {a:g}: Δt = {tr['lr']:.4g}, 2/Δt = {thr:.4g}; "
                       f"sharpness {start:.4g} at t = 0 -> {end:.4g} at t = {tr['steps'][-1]} "
                       f"({below:.0%} of the trace below 2/Δt); "
                       f"loss {tr['loss'][0]:.4g} -> {tr['loss'][-1]:.4g}; "
                       f"{'diverged: ' + tr['reason'] if tr['diverged'] else 'did not diverge'}")
        return out

    def values(self) -> dict[str, float]:
        out = {}
        for a, tr in self.runs.items():
            label = f"alpha_{a:g}" if a in self.trace_alphas else "alpha_10_lambda0"  # 10λ₀ is measured: no key
            out[f"trace.{label}.end_sharpness_over_threshold"] = tr["sharpness"][-1] / (2 / tr["lr"])
        return out


def sharpness(p: Params, pl: Plan, f6: Fig6) -> Sharpness:
    """The traces of :func:`fig6`, and one more where α dominates: α = 10 λ₀ with Δt halfway
    between (64) and (65) in α + F̂ (2/Δt = α + λ₀/2)."""
    from instab.grid import run_grid

    runs = dict(f6.trace_runs)
    lam0 = f6.lam0[p.trace_network]
    alpha_big = 10 * lam0
    [runs[alpha_big]] = run_grid(
        [pl.config(p.trace_network, alpha_big, steps=p.trace_steps, trace_every=p.trace_every,
                   trace_lr_factor=(alpha_big + lam0) / (alpha_big + lam0 / 2))],
        workers=1, executor=p.executor, progress=False)
    return Sharpness(runs, list(p.trace_alphas), alpha_big)


def sharpness_claims(sh: Sharpness) -> list[Claim]:
    """At the smallest α the sharpness ends below 2/Δt (a catapult: above it at the start, the run
    not diverged); at the largest of ``trace_alphas`` it stays above 2/Δt while the run stays
    bounded (restrained); at α = 10 λ₀ it ends below 2/Δt (the weights decay)."""
    small = sh.runs[min(sh.trace_alphas)]
    out = [claim(f"trace α={min(sh.trace_alphas):g}: sharpness ends below 2/Δt",
                 small["sharpness"][-1] * small["lr"] / 2, None,
                 criterion="final sharpness·Δt/2 < 1 < initial, run not diverged",
                 ok=small["sharpness"][-1] < 2 / small["lr"] < small["sharpness"][0] and not small["diverged"],
                 verdict="extension", shown_in="fig-multilayer-sharpness")]
    if len(sh.trace_alphas) > 1:
        big_small = sh.runs[max(sh.trace_alphas)]
        out.append(claim(f"trace α={max(sh.trace_alphas):g}: restrained — sharpness above 2/Δt, run bounded",
                         np.min(big_small["sharpness"]) * big_small["lr"] / 2, None,
                         criterion="min over the trace of sharpness·Δt/2 > 1, run not diverged",
                         ok=np.min(big_small["sharpness"]) > 2 / big_small["lr"] and not big_small["diverged"],
                         verdict="extension", shown_in="fig-multilayer-sharpness"))
    tr = sh.runs[sh.alpha_big]
    out.append(claim("trace α=10λ₀, 2/Δt=α+λ₀/2: sharpness ends below 2/Δt", tr["sharpness"][-1] * tr["lr"] / 2,
                     None, criterion="final sharpness·Δt/2 < 1 < initial, run not diverged",
                     ok=tr["sharpness"][-1] < 2 / tr["lr"] < tr["sharpness"][0] and not tr["diverged"],
                     verdict="extension", shown_in="fig-multilayer-sharpness"))
    return out
