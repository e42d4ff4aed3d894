"""The last bit grows (paper §4.1–4.2, Fig. 2 left): what the chapter ``book/sgd_growth.md`` runs.

- :func:`controls` — k = 1 trained twice, k = 2, 4 (exact scalings) beside k = 1 and k = 3, in
  lockstep; :func:`control_claims` decides them (bitwise equal, or not).
- :func:`fig2_left` — RelL1(k = 1, k) per iteration under step decay for every network and member
  (:func:`instab.studies.sgd.growth`); :func:`fig2_left_claims`: ≥ 3 decades from the last bit.
- :func:`restraint` / :func:`restraint_claims` — a constant-lr run: does the exponential growth stop,
  does training stay bounded, does RelL1 stay contained?
- :func:`perturbations` / :func:`perturbation_claims` — other one-ulp perturbations side by side.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

from instab import growth
from instab.findings import tolerance
from instab.report import Claim, claim, decide
from instab.studies.sgd import (
    SgdParams,
    check_members,
    config,
    cost_row,
    curve,
    dry_run_of,
    ensemble_variants,
    members,
    network,
    unanimous,
)
from instab.train import History, RunConfig, Variant, dumps, train

__all__ = ["Params", "GrowthPlan", "plan", "Controls", "controls", "controls_report", "control_claims",
           "NetworkGrowth", "Fig2Left", "Restraint", "Perturbation", "Perturbations", "fig2_left",
           "fig2_left_report", "fig2_left_claims", "restraint", "unrelated_rel_l1", "restraint_report",
           "restraint_claims", "containment", "containment_claim", "containment_verdict", "sources",
           "perturbations", "perturbations_report", "perturbation_claims", "dry_run"]


@dataclasses.dataclass
class Params(SgdParams):
    """The chapter's parameters (its parameters cell)."""

    members: list[int]
    controls: dict[str, Any]
    growth: dict[str, dict[str, Any]]
    restraint: dict[str, Any] | None
    perturbations: dict[str, Any]

    def validate(self) -> Self:
        super().validate()
        plan(self)  # every configuration, validated before any training
        return self


@dataclass
class GrowthPlan:
    """Every run of the chapter: the Fig. 2 (left) runs by network, the constant-lr run, the
    perturbations side by side, and the controls (trained apart, twice)."""

    growth: dict[str, RunConfig]
    controls: RunConfig
    perturbations: RunConfig
    restraint: RunConfig | None
    members: list[int]

    def configs(self) -> list[RunConfig]:
        """Every configuration of the grid (the controls run apart: they are trained twice)."""
        held = [self.restraint] if self.restraint is not None else []
        return [*self.growth.values(), *held, self.perturbations]

    def describe(self) -> str:
        lines = [f"growth {name}: {c.model} {c.activation} on {c.dataset}, {c.epochs} epochs, "
                 f"k = 1 and {self.members}" for name, c in self.growth.items()]
        if self.restraint is not None:
            r = self.restraint
            lines.append(f"restraint: {r.model} {r.activation}, constant lr {r.lr}, {r.epochs} epochs, "
                         f"k = 1 and {self.members}")
        return "\n".join(lines)


def plan(p: Params) -> GrowthPlan:
    """Build and validate every configuration from the parameters.  ``growth`` holds the Fig. 2
    (left) runs (per-iteration RelL1 on a log grid), ``restraint`` one constant-lr run long enough
    for RelL1 to reach its plateau (RelL1 at every iteration); both train k = 1 and every k of
    ``members`` in lockstep.  Raises ``ValueError`` naming the bad parameter."""
    member_ks = check_members(p.members)
    common = p.common
    curves = {name: config(common, over, f"growth[{name!r}]", variants=ensemble_variants(member_ks),
                           rel_l1_every="log") for name, over in p.growth.items()}
    ctrl = config(common, p.controls, "controls",
                  variants=(Variant(1), Variant(1, threads=common.get("threads", 1)), Variant(2), Variant(3),
                            Variant(4)), rel_l1_every=1)
    threads = int(common.get("threads", 1))
    # each re-injected source with the ensemble's k; the initial weight moved at as many entries
    inits = [None, *(int(i) for i in np.random.default_rng(0).integers(0, 2**16, len(member_ks) - 1))]
    pert = config(common, p.perturbations, "perturbations", rel_l1_every="log",
                  variants=(Variant(1), *(Variant(k) for k in member_ks),
                            *(Variant(k, form="release") for k in member_ks),
                            *(Variant(1, init_ulp=1, init_index=i) for i in inits),
                            Variant(1, threads=2 if threads == 1 else 1)))
    held = None
    if p.restraint is not None:
        held = config(common, p.restraint, "restraint", variants=ensemble_variants(member_ks), rel_l1_every=1)
        if held.lr_decay_every != 0 or held.max_steps is not None:
            raise ValueError(f"restraint: lr_decay_every={held.lr_decay_every!r} is not allowed; the restraint "
                             "run keeps its learning rate constant (lr_decay_every: 0, no max_steps)")
    return GrowthPlan(curves, ctrl, pert, held, member_ks)


# ---------------------------------------------------------------------------------------- controls
@dataclass
class Controls:
    """The controls: one lockstep run (``history``), whether a second run of the whole
    configuration was bitwise equal (``same_run``), and the wall time of both."""

    history: History
    same_run: bool
    seconds: float


def controls(p: GrowthPlan) -> Controls:
    """Train the controls twice (in this process): k = 1, a second copy of k = 1, k = 2, 3, 4."""
    t0 = time.perf_counter()
    ctrl = train(p.controls)
    again = train(p.controls)
    return Controls(ctrl, dumps(ctrl) == dumps(again), time.perf_counter() - t0)


def controls_report(c: Controls) -> str:
    """The controls' lines: max RelL1 against k = 1 and test accuracy per variant."""
    h = c.history
    lines = [f"controls: 2 runs of {len(h.variants)} variants in {c.seconds:.1f} s wall"]
    acc = {v: 100 * a for v, a in h.final_acc().items()}
    for v in h.variants:
        r = np.array(h.iter_rel_l1[v])
        lines.append(f"{v:16s} max RelL1 against k=1 over {len(r) - 1} iterations: {r.max():.3e}   "
                     f"test accuracy {acc[v]:.2f}%")
    lines.append(f"two separate runs of the whole configuration bitwise equal: {c.same_run}")
    return "\n".join(lines)


def control_claims(c: Controls, shown_in: str = "fig-sgd-growth") -> list[Claim]:
    """Controls of the machinery (verdict ``fact``: they fail the chapter if they do not hold, and
    are never counted as evidence): k = 1 twice — RelL1 exactly 0 throughout, the same accuracy,
    the whole run bitwise equal; k = 2, 4 equal to k = 1 (exact scalings in binary).  Evidence
    (the paper's §4.1, "choosing k odd can create changes at the last significant bit"): k = 3
    differs from the first step on — not true by construction (every rounding of (η/3)(3g) could
    land on fl(ηg)), and the premise of every growth claim."""
    h = c.history
    twice = np.array(h.iter_rel_l1[h.variants[1]])
    acc = {v: 100 * a for v, a in h.final_acc().items()}
    out = [claim("control: k=1 trained twice, RelL1", float(twice.max()), 0.0,
                 criterion="exactly 0 at every iteration",
                 ok=bool(np.all(twice == 0)) and acc[h.variants[1]] == acc["k=1"] and c.same_run,
                 verdict="fact", shown_in=shown_in)]
    for k in (2, 4):
        r = np.array(h.iter_rel_l1[f"k={k}"])
        out.append(claim(f"control: k={k} equals k=1", float(r.max()), 0.0, criterion="RelL1 exactly 0, same accuracy",
                         ok=bool(np.all(r == 0)) and acc[f"k={k}"] == acc["k=1"], verdict="fact",
                         shown_in=shown_in))
    r3 = np.array(h.iter_rel_l1["k=3"])
    out.append(claim("control: k=3 differs from k=1", float(r3[-1]), None, criterion="RelL1 > 0 after the first step",
                     ok=bool(np.all(r3[1:] > 0)), verdict="reproduced", shown_in=shown_in))
    return out


# ------------------------------------------------------------------------------------ Fig. 2 left
@dataclass
class Restraint:
    """A run's restraint: per ensemble member (``members``) :func:`instab.growth.restraint` of its
    RelL1 against k = 1 (plateau, early and late growth rates and their ratio); whether every
    variant's training loss stayed finite and ended below its first epoch's (``loss_bounded``);
    each variant's last training loss (``final_loss``)."""

    members: dict[str, dict[str, Any]]
    loss_bounded: bool = True
    final_loss: dict[str, float] = field(default_factory=dict)

    def value(self) -> dict[str, Any]:
        """The results' value (``restraint``, beside the level of two initialisations)."""
        return {"members": self.members, "loss_bounded": self.loss_bounded, "final_loss": self.final_loss}

    def report(self, h: History, unrelated: float) -> str:
        return restraint_report(self, h, unrelated)

    def claims(self, plateau_limit: float, shown_in: str = "fig-sgd-restraint") -> list[Claim]:
        return restraint_claims(self, plateau_limit, shown_in)

    def verdict(self, plateau_limit: float) -> str:
        return containment_verdict(self, plateau_limit)


@dataclass
class NetworkGrowth:
    """One network of Fig. 2 (left): per member, the RelL1 curve against k = 1 (``curves``:
    (iterations, RelL1)), its growth (``growth``, :func:`instab.growth.summary`) and the run's
    restraint under the decayed schedule (``held``)."""

    growth: dict[str, dict[str, Any]]
    held: Restraint
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class Fig2Left:
    """Paper Fig. 2 (left), per network (``"<name> (<model>)"``)."""

    networks: dict[str, NetworkGrowth]

    def report(self) -> str:
        return fig2_left_report(self)

    def claims(self, shown_in: str = "fig-sgd-growth") -> list[Claim]:
        return fig2_left_claims(self, shown_in)

    def least_decades(self) -> float:
        """The least growth of any member of any network, in decades."""
        return min(g["decades"] for f in self.networks.values() for g in f.growth.values())


def fig2_left(p: GrowthPlan, runs: Mapping[RunConfig, History]) -> Fig2Left:
    """Paper Fig. 2 (left): per network, its :class:`NetworkGrowth`."""
    out: dict[str, NetworkGrowth] = {}
    for name, c in p.growth.items():
        h = runs[c]
        curves = {m: curve(h, m) for m in members(h)}
        out[f"{name} ({c.model})"] = NetworkGrowth(growth={m: growth.summary(*sr) for m, sr in curves.items()},
                                                   held=restraint(h), curves=curves)
    return Fig2Left(out)


def fig2_left_report(fig: Fig2Left) -> str:
    """One line per network: the growth over the ensemble, in decades, and the first values."""
    lines = []
    for name, f in fig.networks.items():
        per = f.growth
        d = [g["decades"] for g in per.values()]
        first = max(g["first"] for g in per.values())
        lines.append(f"{name:24s} growth over the ensemble: {min(d):.1f}–{max(d):.1f} decades "
                     f"(members {list(per)}), first values ≤ {first:.1e}")
    return "\n".join(lines)


#: The registry's findings whose tolerances the growth rules read.
GROWTH, CONTAINED, RESTRAINED, CONTAINMENT = ("sgd-fig2-left-growth", "sgd-fig2-left-contained",
                                              "sgd-constant-lr-growth-restrained", "sgd-constant-lr-containment")


def plateau_limit() -> float:
    """The level below which RelL1 counts as contained at a constant lr (the registry's
    ``plateau_limit``; RelL1 is bounded by 2)."""
    return tolerance(CONTAINMENT, "plateau_limit")


def fig2_left_claims(fig: Fig2Left, shown_in: str = "fig-sgd-growth") -> list[Claim]:
    """Per network: every member grows ≥ ``decades`` from a first value < ``first_max``
    (unanimous); and the caption's "then are contained at higher epochs" under the decayed
    schedule, by the rule of the constant-lr runs (:func:`restraint_claims`): every member's late
    growth rate below ``rate_ratio`` × its early one → reproduced, none → refuted, split →
    inconclusive (the registry's numbers)."""
    decades, first_max = tolerance(GROWTH, "decades"), tolerance(GROWTH, "first_max")
    rate_ratio = tolerance(CONTAINED, "rate_ratio")
    out = []
    for name, f in fig.networks.items():
        per = f.growth
        d = [g["decades"] for g in per.values()]
        out.append(decide(f"Fig. 2 left {name}: growth (decades)", float(np.median(d)), [min(d), max(d)],
                          criterion=f"every member: ≥ {decades:g} decades from a first value < {first_max:g}",
                          decision=unanimous([g["decades"] >= decades and g["first"] < first_max
                                              for g in per.values()]),
                          verdict="reproduced", shown_in=shown_in))
    for name, f in fig.networks.items():
        ratios = [g["late_over_early"] for g in f.held.members.values()]
        out.append(decide(f"contained at higher epochs (decayed schedule): {name}", float(np.median(ratios)),
                          [min(ratios), max(ratios)],
                          criterion=f"every member: late growth rate < {rate_ratio:g} × the early rate (as at a "
                                    "constant lr)",
                          decision=unanimous([r < rate_ratio for r in ratios]), verdict="reproduced",
                          shown_in=shown_in))
    return out


# ------------------------------------------------------------------------------------ constant lr
def restraint(h: History, *, tail: float = 0.1) -> Restraint:
    """A run's :class:`Restraint` (the last ``tail`` of the run is its late phase)."""
    per = {name: growth.restraint(*curve(h, name), tail=tail) for name in members(h)}
    losses = [np.asarray(v, float) for v in h.train_loss.values()]
    bounded = bool(all(np.all(np.isfinite(x)) and x[-1] < x[0] for x in losses))
    return Restraint(per, bounded, {k: float(v[-1]) for k, v in h.train_loss.items()})


def unrelated_rel_l1(config: RunConfig, seeds: tuple[int, int] = (0, 1)) -> float:
    """RelL1 between two initialisations of ``config``'s network (init seeds ``seeds``): the
    level of two unrelated networks, to read a RelL1 plateau against."""
    from instab.metrics import rel_l1

    nets = [network(config, seed=s) for s in seeds]
    return float(rel_l1(nets[0], nets[1]))


def restraint_report(held: Restraint, h: History, unrelated: float) -> str:
    """Per member: first value, early and late growth rates, RelL1 at mid-run and at the end; the
    level of two initialisations; every variant's training loss, first → last epoch."""
    lines = [f"{m:6s} first {g['first']:.1e}; growth {g['early_rate']:.2e} decades/iteration early, "
             f"{g['late_rate']:.2e} late (ratio {g['late_over_early']:.3f}); RelL1 {g['middle']:.3f} at mid-run, "
             f"{g['plateau']:.3f} at the end" for m, g in held.members.items()]
    lines.append(f"two initialisations of the network: RelL1 {unrelated:.3f}")
    loss = {v: f"{h.train_loss[v][0]:.3f} → {h.train_loss[v][-1]:.3f}" for v in h.variants}
    lines.append(f"training loss, first → last epoch: {loss}")
    return "\n".join(lines)


def restraint_claims(held: Restraint, plateau_limit: float,
                     shown_in: str = "fig-sgd-restraint") -> list[Claim]:
    """At a constant lr (beyond the paper, whose Fig. 2 left uses a decayed schedule), over the
    ensemble: the exponential growth stops (≥ ``decades``, then a late rate < ``rate_ratio`` × the
    early one: the registry's);
    the training loss stays bounded; and whether RelL1 stays contained below ``plateau_limit``
    (:func:`containment_claim`: the data decide)."""
    per = held.members
    ratios = [g["late_over_early"] for g in per.values()]
    decades, rate_ratio = tolerance(RESTRAINED, "decades"), tolerance(RESTRAINED, "rate_ratio")
    return [
        decide("constant lr: the exponential growth stops", float(np.median(ratios)), [min(ratios), max(ratios)],
               criterion=f"every member: ≥ {decades:g} decades of growth, then a late rate < {rate_ratio:g} × "
                         "the early rate",
               decision=unanimous([g["late_over_early"] < rate_ratio and g["decades"] >= decades
                                   for g in per.values()]),
               verdict="extension", shown_in=shown_in),
        claim("constant lr: training loss bounded", max(held.final_loss.values()), None,
              criterion="finite, and below its first epoch's, for every variant", ok=held.loss_bounded,
              verdict="extension", shown_in=shown_in),
        containment_claim(held, plateau_limit, shown_in=shown_in),
    ]


def containment(held: Restraint, plateau_limit: float) -> bool | None:
    """Is RelL1 contained at a constant lr?  True when every member ends below ``plateau_limit``,
    False when every member ends at or above it, None when the ensemble straddles it."""
    return unanimous([g["plateau"] < plateau_limit for g in held.members.values()])


def containment_claim(held: Restraint, plateau_limit: float,
                      shown_in: str = "fig-sgd-restraint") -> Claim:
    """Beyond the paper (its containment is shown under a decayed schedule), our statement: the
    caption's containment holds even at a constant lr, RelL1 ending below ``plateau_limit``.  The
    data decide, and the chapter never fails on it: every member contained → ``extension``; no
    member contained → ``refuted`` (at a constant lr the difference is not contained); the
    ensemble straddling the limit → ``inconclusive``.  The claim fails only on a non-finite
    plateau."""
    plateaus = [g["plateau"] for g in held.members.values()]
    d = containment(held, plateau_limit)
    return claim("constant lr: RelL1 contained below plateau_limit", float(np.median(plateaus)), None,
                 interval=[min(plateaus), max(plateaus)],
                 criterion=(f"every member ends < {plateau_limit:g} → contained even without the decay "
                            "(extension); every member ≥ it → not contained (refuted); straddling → inconclusive"),
                 ok=d, verdict="extension", if_fails="refuted", sane=bool(np.all(np.isfinite(plateaus))),
                 shown_in=shown_in)


def containment_verdict(held: Restraint, plateau_limit: float) -> str:
    """The sentence the chapter quotes on the containment at a constant lr."""
    plateaus = [g["plateau"] for g in held.members.values()]
    where = f"RelL1 ends between {min(plateaus):.3f} and {max(plateaus):.3f} over the ensemble"
    return {True: f"{where}, below plateau_limit = {plateau_limit:g} for every member: the difference is "
                  "contained even without the decay.",
            False: f"{where}, at or above plateau_limit = {plateau_limit:g} for every member: at a constant "
                   "learning rate the difference is not contained.",
            None: f"{where}, on both sides of plateau_limit = {plateau_limit:g}: this ensemble cannot say "
                  "whether the difference is contained (inconclusive)."}[containment(held, plateau_limit)]


# ------------------------------------------------------------------------ other one-ulp perturbations
def sources(h: History) -> dict[str, list[str]]:
    """The perturbation run's variants by source: ``"k (paper form)"``, ``"k (release form)"``,
    ``"initial weight"``, ``"thread count"`` (k = 1, the reference, left out)."""
    out: dict[str, list[str]] = {}
    for name, v in zip(h.variants[1:], h.config["variants"][1:], strict=True):
        source = ("initial weight" if v["init_ulp"] else "thread count" if v["threads"] is not None
                  else "k (release form)" if v["form"] == "release" else "k (paper form)")
        out.setdefault(source, []).append(name)
    return out


@dataclass
class Perturbation:
    """One source's members: their growth (``growth``, by variant name), whether each stayed
    bitwise equal to k = 1 throughout (``same``), and their RelL1 curves against k = 1 (``steps``,
    ``rel``: [member, iteration])."""

    growth: dict[str, dict[str, Any]]
    same: list[bool] = field(default_factory=list)
    steps: np.ndarray = field(default_factory=lambda: np.empty(0))
    rel: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))


@dataclass
class Perturbations:
    """The perturbations side by side, per source (:func:`sources`)."""

    by_source: dict[str, Perturbation]

    def report(self) -> str:
        return perturbations_report(self)

    def claims(self, shown_in: str = "fig-sgd-perturbations") -> list[Claim]:
        return perturbation_claims(self, shown_in)


def perturbations(h: History) -> Perturbations:
    """Per source (:func:`sources`), its members' :class:`Perturbation`."""
    out: dict[str, Perturbation] = {}
    for source, names in sources(h).items():
        s, _ = curve(h, names[0])
        r = np.array([curve(h, n)[1] for n in names])  # [member, iteration]
        out[source] = Perturbation(steps=s, rel=r,
                                   growth={n: growth.summary(s, rn) for n, rn in zip(names, r, strict=False)},
                                   same=[bool(np.all(curve(h, n)[1] == 0)) for n in names])
    return Perturbations(out)


def perturbations_report(pert: Perturbations) -> str:
    """One line per source and member: RelL1's first and last value and its growth in decades."""
    lines = []
    for source, f in pert.by_source.items():
        for n, g in f.growth.items():
            lines.append(f"{source:18s} {n:22s} "
                         + (f"RelL1 first {g['first']:.1e}, end {g['final']:.1e}: {g['decades']:.1f} decades"
                            if np.isfinite(g["first"]) else "bitwise equal to k=1 throughout"))
    if all(pert.by_source["thread count"].same):
        lines.append("thread count: the same bits as one thread in this environment")
    return "\n".join(lines)


def perturbation_claims(pert: Perturbations, shown_in: str = "fig-sgd-perturbations") -> list[Claim]:
    """Beyond the paper: the release form and a one-ulp initial weight grow ≥ 3 decades for every
    member; another thread count gives the same bits (MKL's reproducible mode) or grows as much."""
    out = []
    for source in ("k (release form)", "initial weight"):
        dec = [g["decades"] for g in pert.by_source[source].growth.values()]
        out.append(decide(f"{source}: amplified like the paper's form", float(np.median(dec)), [min(dec), max(dec)],
                          criterion="every member: ≥ 3 decades of growth",
                          decision=unanimous([d >= 3 for d in dec]), verdict="extension", shown_in=shown_in))
    threads = pert.by_source["thread count"]
    same = threads.same
    dec = [0.0 if eq else g["decades"] for eq, g in zip(same, threads.growth.values(), strict=False)]
    out.append(decide("thread count: no change, or amplified like the paper's form", float(np.median(dec)),
                      [min(dec), max(dec)],
                      criterion="every member: bitwise equal to k=1, or ≥ 3 decades of growth",
                      decision=unanimous([eq or d >= 3 for eq, d in zip(same, dec, strict=False)]), verdict="extension",
                      shown_in=shown_in))
    return out


# ----------------------------------------------------------------------------------------- dry run
def _rows(p: Params) -> tuple[list[dict[str, Any]], list[RunConfig]]:
    g = plan(p)
    rows = [cost_row(f"growth {name}", [c]) for name, c in g.growth.items()]
    if g.restraint is not None:
        rows.append(cost_row("restraint (constant lr)", [g.restraint]))
    rows += [cost_row("perturbations side by side", [g.perturbations]),
             cost_row("controls (trained twice)", [g.controls], True)]
    return rows, g.configs()


def dry_run(params: Mapping[str, Any]) -> dict[str, Any]:
    """Build and validate every configuration of the chapter's parameters, check the device, the
    engine and the data, and estimate the cost — training nothing (``{"rows", "total", "checks"}``)."""
    return dry_run_of(params, Params, _rows)

