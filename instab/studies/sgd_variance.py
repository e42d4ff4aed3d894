"""Floating point against batch order (paper §4.2, Tables 1 left and 4): what the chapter
``book/sgd_variance.md`` runs (its other tables: :mod:`instab.studies.sgd_tables`).

- :class:`Params` / :func:`plan` — the chapter's parameters and every run (:class:`VariancePlan`).
- :func:`k_seed_grid` / :func:`accuracy_table` — the k × seed grids (initialisation fixed) and their
  final test accuracies as an array [k, seed].
- :func:`tables` — each grid as a :class:`Grid`: its table, its diverged runs and the
  :class:`~instab.ensemble.Spread` of the seeds without one: STD over k (floating point) against
  STD over seeds (batch selection) and their population ratio with its interval
  (:func:`instab.ensemble.std_ratio`; Table 1 left, Table 4, Table 5).

Claim rules (measured data in, :class:`~instab.report.Claim` out): :func:`diverged_claim` (how often
a run diverges); :func:`ratio_claims` decides "about the same", "comparable (even exceeds)" and
"greater or similar" against :func:`similar_band`, the ratios the paper itself calls similar;
:func:`k_effect_claims` tests the premise of "greater", a k effect common to every seed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from instab import checks, findings
from instab.ensemble import (
    Spread,
    band_decision,
    diverged,
    floor_decision,
    k_effect_decision,
    proportion_interval,
    seeds_without,
    spread,
    std_ratio,
)
from instab.report import Claim, decide, judge, paper, printed, printed_halfwidth
from instab.studies.sgd import SgdParams, config, cost_row, dry_run_of, grid_base, network_name
from instab.train import History, RunConfig, Variant

__all__ = ["Params", "VariancePlan", "plan", "k_seed_grid", "accuracy_table", "LABELS", "Grid", "grid", "tables",
           "paper_table", "paper_spreads", "table_report", "diverged_report", "diverged_claim", "diverged_factor",
           "ratio_report", "similar_band", "band_report", "paper_rows", "ratio_claims", "nominal_verdicts",
           "k_effect_claims", "grids_value", "dry_run"]

#: The paper's own tables among the grids: their claims must hold; other grids are Table 5 rows.
LABELS = {"relu": "Table 1 left (ReLU)", "swish": "Table 4 (Swish)"}


@dataclasses.dataclass
class Params(SgdParams):
    """The chapter's parameters (its parameters cell)."""

    k_values: list[int]
    seeds: list[int]
    tables: dict[str, dict[str, Any]]
    float64: dict[str, Any] | None
    gradient_batches: int

    def validate(self) -> Self:
        super().validate()
        checks.each("k_values", self.k_values, checks.positive, integer=True)
        checks.each("seeds", self.seeds, checks.in_range, 0, 2**31 - 1)
        checks.positive("gradient_batches", self.gradient_batches, integer=True)
        if "relu" not in self.tables or "swish" not in self.tables:
            raise ValueError(f"tables={list(self.tables)!r} is not allowed; "
                             "it needs a 'relu' (Table 1) and a 'swish' (Table 4) grid")
        plan(self)  # every configuration, validated before any training
        return self


@dataclass
class VariancePlan:
    """Every run of the chapter: the k × seed grids by name, and the float64 grid."""

    tables: dict[str, list[RunConfig]]
    ks: list[int]
    seeds: list[int]
    float64: list[RunConfig] = dataclasses.field(default_factory=list)
    float64_ks: list[int] = dataclasses.field(default_factory=list)
    float64_seeds: list[int] = dataclasses.field(default_factory=list)

    def configs(self) -> list[RunConfig]:
        """Every configuration of the grid."""
        return [c for cells in self.tables.values() for c in cells] + self.float64

    def describe(self) -> str:
        lines = []
        for name, cells in self.tables.items():
            c = cells[0]
            lines.append(f"table {name}: {network_name(c)} on {c.dataset}, {len(self.ks)} k × "
                         f"{len(self.seeds)} seeds, {c.epochs} epochs ({len(cells)} cells, {c.engine} engine)")
        if self.float64:
            c = self.float64[0]
            lines.append(f"float64: {network_name(c)} on {c.dataset}, {len(self.float64_ks)} k × "
                         f"{len(self.float64_seeds)} seeds, {c.epochs} epochs ({c.engine} engine)")
        return "\n".join(lines)


def k_seed_grid(base: RunConfig, ks: Sequence[int], seeds: Sequence[int], *,
                lockstep: bool = True) -> list[RunConfig]:
    """The paper's Table 1 / 4 grid: perturbations k × batch-order seeds, initialisation fixed.

    ``lockstep=True``: one cell per seed training all k together on shared batches (RelL1
    measured); ``False``: one cell per (k, seed), k-major order (more parallel cells).
    """
    variants = [Variant(k=int(k), form=base.variants[0].form) for k in ks]
    if lockstep:
        return [base.replace(variants=tuple(variants), batch_seed=int(s)) for s in seeds]
    return [base.replace(variants=(v,), batch_seed=int(s)) for v in variants for s in seeds]


def accuracy_table(histories: Sequence[History], ks: Sequence[int], seeds: Sequence[int], *,
                   last: int | None = None) -> np.ndarray:
    """Test accuracy as an array [k, seed] from :func:`k_seed_grid`'s results (either layout).

    ``last=None``: final accuracy; ``last=n``: mean over the last n epochs (the authors' measure).
    """
    table = np.full((len(ks), len(seeds)), np.nan)
    for h in histories:
        seed = h.config["batch_seed"]
        accs = h.final_acc() if last is None else h.mean_last_acc(last)
        for name, v in zip(h.variants, h.config["variants"], strict=True):
            if v["k"] in ks and seed in seeds:
                table[list(ks).index(v["k"]), list(seeds).index(seed)] = accs[name]
    if np.isnan(table).any():
        raise ValueError("accuracy_table: some (k, seed) cells are missing from the histories")
    return table


def plan(p: Params) -> VariancePlan:
    """Build and validate every configuration from the parameters.

    ``tables`` are the k × seed grids (Table 1 left: ``"relu"``, Table 4: ``"swish"``, further
    names: Table 5 rows; the first cell of each keeps its trained network for Table 1 right),
    ``float64`` a k × seed grid of the table it names (``table``) in float64 (its own ``k_values``,
    ``seeds`` and RunConfig overrides, e.g. a longer schedule).  The grids of MLPs run on the
    stacked engine (:mod:`instab.batched`) unless an ``engine`` is given, and test only after the
    last epoch.  Raises ``ValueError`` naming the bad parameter before any training."""
    common, seeds, f64_params = p.common, p.seeds, p.float64
    ks = [int(k) for k in p.k_values]
    if 1 not in ks or 3 not in ks:
        raise ValueError(f"k_values={list(p.k_values)!r} is not allowed; it must hold 1 (SGD) and 3")
    if len(set(ks)) != len(ks) or len(set(seeds)) != len(list(seeds)):
        raise ValueError("k_values and seeds must not repeat values")
    if len(list(seeds)) < 2 or len(ks) < 2:
        raise ValueError("k_values and seeds need at least two values each (STDs)")
    grids = {}
    for name, over in p.tables.items():
        base = grid_base(config(common, over, f"tables[{name!r}]", rel_l1_every="log"), {**common, **over})
        grids[name] = k_seed_grid(base, ks, [int(s) for s in seeds])
        grids[name][0] = grids[name][0].replace(keep_final=True)  # Table 1 right: the trained network
    f64: list[RunConfig] = []
    f64_ks: list[int] = []
    f64_seeds: list[int] = []
    if f64_params is not None:
        table = f64_params.get("table")
        if not isinstance(table, str) or table not in p.tables:
            raise ValueError(f"float64: table={table!r} is not allowed; choose one of {list(p.tables)}")
        f64_ks = [int(k) for k in f64_params.get("k_values", ks)]
        f64_seeds = [int(x) for x in f64_params.get("seeds", seeds)]
        if 1 not in f64_ks or len(f64_ks) < 2 or len(f64_seeds) < 2:
            raise ValueError(f"float64: k_values={f64_ks!r} / seeds={f64_seeds!r} are not allowed; "
                             "k_values must hold 1, and both need two values or more")
        over = {**p.tables[table], **{k: v for k, v in f64_params.items() if k not in ("table", "k_values", "seeds")}}
        base = grid_base(config(common, over, "float64", rel_l1_every="log", dtype="float64"), {**common, **over})
        f64 = k_seed_grid(base, f64_ks, f64_seeds)
    return VariancePlan(grids, ks, [int(s) for s in seeds], f64, f64_ks, f64_seeds)


def paper_table(key: str, ks: Sequence[int] = (1, 3, 5, 7, 9, 11)) -> np.ndarray:
    """A k × seed accuracy table the paper reports (``reported.yml``), as an array [k, seed]."""
    return np.array([paper(f"{key}.k{k}") for k in ks], dtype=float)


def paper_spreads() -> dict[str, Spread]:
    """:func:`~instab.ensemble.spread` of the paper's Table 1 (left, ``"relu"``) and Table 4 (``"swish"``)."""
    return {"relu": spread(paper_table("table1_left_resnet56_cifar10_relu")),
            "swish": spread(paper_table("table4_resnet56_cifar10_swish"))}


#: The registry's finding whose criterion says which run diverged (``chance_factor``) and how many may.
DIVERGED = "sgd-diverged-runs"


def diverged_runs(table: np.ndarray, classes: int = 10) -> np.ndarray:
    """The runs of a grid of test accuracies in % that diverged (:func:`~instab.ensemble.diverged`
    with the registry's ``chance_factor`` × chance, 100 / ``classes``)."""
    return diverged(table, chance=100 / classes, factor=findings.tolerance(DIVERGED, "chance_factor"))


@dataclass
class Grid:
    """One k × seed grid in % (:func:`grid`): its ``table`` [k, seed], the ``diverged`` mask, the
    seeds ``kept`` (indices; those with no diverged run) and the :class:`~instab.ensemble.Spread`
    of the kept ones."""

    table: np.ndarray
    diverged: np.ndarray
    kept: np.ndarray
    spread: Spread


def grid(t: np.ndarray) -> Grid:
    """One k × seed grid in %: ``table``, the ``diverged`` mask, the seeds ``kept`` (those with no
    diverged run, :func:`~instab.ensemble.seeds_without`) and the :func:`~instab.ensemble.spread` of
    the kept ones.  Where a run diverged, the spread's ``alternatives`` are the ratio's intervals two
    other ways — the k rows without a diverged run instead of the seeds, and every run kept — so
    that a verdict that depends on how the diverged run is left out is not decided
    (:func:`ratio_claims`)."""
    bad = diverged_runs(t)
    kept = seeds_without(bad)
    if kept.size < 2:
        raise ValueError(f"grid: only {kept.size} of {t.shape[1]} seeds have no diverged run; the STD ratio "
                         "needs two (look at the training: most runs diverged)")
    sp = spread(t[:, kept])
    if bad.any():
        rows = seeds_without(bad.T)
        other = [t[rows, :]] if rows.size >= 2 else []
        for name, x in zip(("k rows without a diverged run", "every run kept"), [*other, t], strict=False):
            _, lo, hi = std_ratio(x)
            sp.alternatives[name] = (lo, hi)
    return Grid(t, bad, kept, sp)


def tables(p: VariancePlan, runs: Mapping[RunConfig, History]) -> dict[str, Grid]:
    """Tables 1 (left), 4 and 5's grids by name: :func:`grid` of the final test accuracies in %."""
    return {name: grid(100 * accuracy_table([runs[c] for c in cells], p.ks, p.seeds))
            for name, cells in p.tables.items()}


def diverged_report(grids: Mapping[str, Grid], seeds: Sequence[int]) -> str:
    """Per grid: how many runs diverged, which (k index, seed), and the seeds left out."""
    lines = []
    for name, g in grids.items():
        bad = np.argwhere(g.diverged)
        where = ", ".join(f"k row {i}, seed {seeds[j]} ({g.table[i, j]:.2f}%)" for i, j in bad)
        lines.append(f"{name}: {len(bad)} of {g.table.size} runs diverged" + (f" — {where}; the STD ratio "
                     f"uses the {g.kept.size} seeds without one" if len(bad) else ""))
    return "\n".join(lines)


def diverged_claim(grids: Mapping[str, Grid], shown_in: str = "sec-sgd-diverged") -> Claim:
    """Ours: how often plain SGD diverges in these grids (every grid's runs pooled): the 95% Wilson
    interval of the share of diverged runs (:func:`diverged_runs`) below the registry's
    ``share_max`` → extension (divergence is rare here), above it → refuted, else inconclusive."""
    n_bad = int(sum(int(g.diverged.sum()) for g in grids.values()))
    n = int(sum(g.table.size for g in grids.values()))
    lo, hi = proportion_interval(n_bad, n)
    share_max = findings.tolerance(DIVERGED, "share_max")
    factor = findings.tolerance(DIVERGED, "chance_factor")
    return decide("diverged runs: share of the grids' runs", n_bad / n, [lo, hi],
                  criterion=f"a run diverged: accuracy not finite or below {factor:g} × chance; 95% Wilson "
                            f"interval of the share of {n} runs below {share_max:.0%}",
                  decision=None if lo <= share_max <= hi else hi < share_max, verdict="extension",
                  shown_in=shown_in)


def table_report(p: VariancePlan, name: str, t: np.ndarray) -> str:
    """One grid as the paper prints it: k rows, seed columns, STD over each."""
    c = p.tables[name][0]
    lines = ["", f"{name}: {network_name(c)} on {c.dataset}, {c.train_size} training images, {c.epochs} epochs "
                 "— final test accuracy %",
             "        " + "".join(f"seed {s:<3d}" for s in p.seeds) + "   STD"]
    lines += [f"k = {k:<3d} " + "".join(f"{x:8.2f}" for x in t[i]) + f"   {t[i].std():.3f}"
              for i, k in enumerate(p.ks)]
    lines.append("STD     " + "".join(f"{x:8.3f}" for x in t.std(axis=0)))
    return "\n".join(lines)


def ratio_report(spreads: Mapping[str, Spread]) -> str:
    """Per grid: mean accuracy, both STDs as the paper prints them, the population ratio with its
    interval, in STD and in variance terms, and the test of a k effect."""
    lines = []
    for name, sp in spreads.items():
        lo, hi = sp.ratio_interval
        vlo, vhi = sp.variance_ratio_interval
        lines.append(f"{name}: mean accuracy {sp.mean:.2f}%, STD over k {sp.fp_std:.3f}, "
                     f"STD over seeds {sp.sgd_std:.3f} (their ratio {sp.paper_ratio:.2f}); "
                     f"σ(k)/σ(seeds) {sp.ratio:.2f} (95%: {lo:.2f}–{hi:.2f}), in variance "
                     f"{sp.variance_ratio:.2f} ({vlo:.2f}–{vhi:.2f}); k effect p = {sp.k_effect_p:.2f}")
    return "\n".join(lines)


def _printed_ratio_extremes(row: str) -> tuple[float, float, float]:
    """Table 5 row ``row``: its printed ratio and the smallest and largest ratio its printed STDs
    allow (each STD half a printed digit either way)."""
    key = f"table5_swish.{row}"
    fp, sgd = paper(f"{key}.fp_std"), paper(f"{key}.sgd_std")
    h_fp, h_sgd = printed_halfwidth(f"{key}.fp_std"), printed_halfwidth(f"{key}.sgd_std")
    return fp / sgd, (fp - h_fp) / (sgd + h_sgd), (fp + h_fp) / (sgd - h_sgd)


def similar_band() -> tuple[list[float], float, str]:
    """The STD ratios σ(k)/σ(seeds) the paper itself calls similar: ``[floor, ceiling]``, the smallest
    and the largest at the precision it prints, the printed smallest (``nominal`` floor) and the
    derivation.

    The paper calls every ratio it reports "about the same" (Table 1), "comparable (even exceeds)"
    (Table 4) or "greater or similar" (Table 5, each row).  Tables 1 and 4 are recomputed from their
    accuracies (printed to 0.01 points, which moves a ratio by well under 1%); each Table 5 row is
    taken with its STDs half a printed digit either way.  The floor is the extreme that favours the
    paper (its printed 0.09 / 0.10 is 0.90): the chapter shows the verdicts at the nominal floor too."""
    own = paper_spreads()
    rows = {row: _printed_ratio_extremes(row) for row in paper("table5_swish")}
    low = {"Table 1 left": own["relu"].paper_ratio, "Table 4": own["swish"].paper_ratio,
           **{f"Table 5 {row}": v[1] for row, v in rows.items()}}
    high = {"Table 1 left": own["relu"].paper_ratio, "Table 4": own["swish"].paper_ratio,
            **{f"Table 5 {row}": v[2] for row, v in rows.items()}}
    nominal = min([own["relu"].paper_ratio, own["swish"].paper_ratio, *(v[0] for v in rows.values())])
    src_lo, floor = min(low.items(), key=lambda kv: kv[1])
    src_hi, ceiling = max(high.items(), key=lambda kv: kv[1])

    def shown(source: str) -> str:
        if not source.startswith("Table 5"):
            return ""
        key = f"table5_swish.{source.removeprefix('Table 5 ')}"
        return f" (printed {printed(key + '.fp_std')} / {printed(key + '.sgd_std')})"

    reason = (f"[{floor:.2f}, {ceiling:.2f}]: the smallest and the largest ratio the paper calls similar, "
              f"{src_lo}{shown(src_lo)} and {src_hi}{shown(src_hi)}, at the precision it prints (the smallest "
              f"as printed is {nominal:.2f}); the paper's other ratios lie between")
    return [floor, ceiling], nominal, reason


def ratio_decision(name: str, interval: Sequence[float], band: Sequence[float]) -> bool | None:
    """The paper's sentence for grid ``name`` against the 95% interval of ρ and the paper's band of
    "similar" (:func:`similar_band`): Table 1 ("about the same") inside the band; Table 4
    ("comparable (even exceeds)") above 1 (an interval above the floor but below 1 is *corrected*:
    comparable, not exceeding — the caller's ``if_fails``); the others ("greater or similar") above
    the floor.  True holds, False fails, None straddles."""
    lo, hi = interval
    if name == "relu":
        return band_decision([lo, hi], band)
    if name == "swish":
        return True if lo > 1 else False if hi < band[0] or (lo >= band[0] and hi < 1) else None
    return floor_decision([lo, hi], band[0])


def ratio_claims(spreads: Mapping[str, Spread], band: Sequence[float],
                 paper_spreads: Mapping[str, Spread], paper_rows: Sequence[str],
                 shown_in: str = "fig-sgd-std") -> list[Claim]:
    """One claim per grid from the 95% interval of ρ = σ(k)/σ(seeds) (:func:`~instab.ensemble.spread`), by
    :func:`ratio_decision` against the paper's own band of "similar" (:func:`similar_band`):

    - Table 1 (ReLU), "about the same": inside [floor, ceiling] → reproduced, wholly outside →
      refuted, else inconclusive;
    - Table 4 (Swish), "comparable (even exceeds)": above 1 → reproduced; above the floor but below
      1 → corrected (comparable, not exceeding); below the floor → refuted; else inconclusive;
    - Table 5 rows, "greater or similar": above the floor → reproduced (greater where above 1),
      below it → refuted, else inconclusive.  Grids not in ``paper_rows`` (:func:`paper_rows`: a
      ReLU Table 5 row) are ours: extension when it holds.

    Where a run diverged, the decision must be the same with the diverged run left out each way
    (the spread's ``alternatives``); otherwise it is inconclusive."""
    out = []
    floor, ceiling = band
    for name, sp in spreads.items():
        lo, hi = sp.ratio_interval
        label = LABELS.get(name, f"Table 5 row {name}")
        ivs = sp.intervals()
        # compare outcomes, not booleans: Table 4's False is corrected above the floor, refuted below it
        outcomes = {(ratio_decision(name, iv, band), name == "swish" and iv[0] >= floor) for iv in ivs}
        decision = outcomes.pop()[0] if len(outcomes) == 1 else None
        if name == "relu":
            criterion = f"about the same: 95% interval inside [{floor:.2f}, {ceiling:.2f}]"
        elif name == "swish":
            criterion = (f"comparable (even exceeds): 95% interval above 1 → reproduced; above {floor:.2f} but "
                         "below 1 → corrected; below → refuted")
        else:
            criterion = f"greater or similar: 95% interval above {floor:.2f}" + (" (above 1: greater)"
                                                                                   if lo > 1 else "")
        if sp.alternatives:
            criterion += "; the same with the diverged run left out each way"
        if_fails = "corrected" if name == "swish" and lo >= floor else "refuted"
        ref = round(paper_spreads[name].paper_ratio, 3) if name in paper_spreads else None
        out.append(decide(f"{label}: STD over k / STD over seeds", sp.ratio, [lo, hi], ref, criterion=criterion,
                          decision=decision, verdict="reproduced" if name in paper_rows else "extension",
                          if_fails=if_fails, shown_in=shown_in))
    return out


#: The registry's finding on the k effect (its tolerance ``alpha``: the family-wise level).
K_EFFECT = "sgd-k-effect"


def k_effect_claims(spreads: Mapping[str, Spread], paper_spreads: Mapping[str, Spread],
                    shown_in: str = "sec-sgd-k-effect") -> list[Claim]:
    """Ours: the premise of the law-of-total-variance argument, tested on each grid.  Without a k
    effect common to every seed (:func:`~instab.ensemble.k_effect_p`), σ(seeds)² = σ(k)² + Var_s(E[acc | s]), so
    ρ ≤ 1 in expectation and "greater" can only come from a k effect.  Per grid the F test's p
    (beside it the paper's own grid's, where it has one), Bonferroni over the grids at the
    registry's ``alpha``; then the row that decides the finding, over every grid: each shows the
    absence → holds (``extension``); one shows an effect → refuted; else inconclusive."""
    alpha, share_max = findings.tolerance(K_EFFECT, "alpha"), findings.tolerance(K_EFFECT, "share_max")
    names = list(spreads)
    ps = [float(spreads[n].k_effect_p) for n in names]
    shares = [spreads[n].k_effect_share for n in names]
    m = len(names)
    out = []
    decisions = k_effect_decision(ps, [u for _, u in shares], alpha, share_max)  # per grid, once
    for name, q, (point, up), d in zip(names, ps, shares, decisions, strict=True):
        ref = round(float(paper_spreads[name].k_effect_share[0]), 3) if name in paper_spreads else None
        label = LABELS.get(name, f"Table 5 row {name}")
        out.append(judge(f"no k effect: {label}", point, [0.0, up], ref,
                         criterion=f"share of the spread over k that every seed shares (upper 95% bound {up:.2g}) "
                                   f"below {share_max:g} → no material k effect (extension); F test p = {q:.2g} < "
                                   f"{alpha:g}/{m} (Bonferroni over the {m} grids) → a k effect (refuted); else "
                                   "inconclusive",
                         holds=d, sane=True, if_holds="extension", shown_in=shown_in))
    ups = np.array([u for _, u in shares], dtype=float)
    every = False if False in decisions else True if all(d is True for d in decisions) else None
    largest = float(np.nanmax(ups)) if np.isfinite(ups).any() else math.nan  # the bound that decides
    out.append(judge("no k effect: every grid", largest, None, None,
                     criterion=f"every grid's upper bound below {share_max:g} → no material k effect anywhere "
                               f"(extension; an intersection-union test, each at 95%); a grid's F test p < "
                               f"{alpha:g}/{m} → a k effect (refuted); else inconclusive (the row that decides)",
                     holds=every, sane=True, if_holds="extension", shown_in=shown_in))
    return out


def band_report(spreads: Mapping[str, Spread], band: Sequence[float], nominal: float) -> str:
    """The verdicts again at the paper's printed smallest ratio, and the paper's own two grids under
    the same statistic."""
    own = "; ".join(f"{name} {sp.ratio:.2f} ({sp.ratio_interval[0]:.2f}–{sp.ratio_interval[1]:.2f})"
                    for name, sp in paper_spreads().items())
    return (f"at the paper's printed smallest ratio {nominal:.2f} instead: {nominal_verdicts(spreads, band, nominal)}"
            f"\nthe paper's own grids: {own}")


def diverged_factor() -> str:
    """The registry's chance factor of a diverged run, as the chapter quotes it."""
    return f"{findings.tolerance(DIVERGED, 'chance_factor'):g}"


def nominal_verdicts(spreads: Mapping[str, Spread], band: Sequence[float], nominal: float) -> str:
    """The verdicts again at the paper's printed smallest ratio instead of its printed-precision
    extreme (the floor that favours the paper), for the reader to compare."""
    words = {True: "holds", False: "fails", None: "undecided"}
    return "; ".join(f"{name}: {words[ratio_decision(name, sp.ratio_interval, [nominal, band[1]])]}"
                     for name, sp in spreads.items())


def paper_rows(p: VariancePlan) -> list[str]:
    """The grids that test the paper's own statements: Table 1 (ReLU), Table 4 (Swish) and the
    Table 5 rows with Swish ("The Swish activation is used"); a ReLU Table 5 row is ours."""
    return [name for name, cells in p.tables.items()
            if name in LABELS or cells[0].activation == "swish"]


def grids_value(p: VariancePlan, spreads: Mapping[str, Spread]) -> dict[str, Any]:
    """The grids' summary, by name (the results' value ``grids``)."""
    return {name: {"k": p.ks, "seeds": p.seeds, "ratio": sp.ratio, "ratio_ci95": list(sp.ratio_interval),
                   "fp_std": sp.fp_std, "sgd_std": sp.sgd_std, "mean": sp.mean}
            for name, sp in spreads.items()}


# ----------------------------------------------------------------------------------------- dry run
def _rows(p: Params) -> tuple[list[dict[str, Any]], list[RunConfig]]:
    v = plan(p)
    rows = [cost_row(f"table {name} ({cells[0].model}, {cells[0].dataset})", cells) for name, cells in v.tables.items()]
    if v.float64:
        rows.append(cost_row(f"float64 ({v.float64[0].model}, {v.float64[0].dataset})", v.float64))
    return rows, v.configs()


def dry_run(params: Mapping[str, Any]) -> dict[str, Any]:
    """Build and validate every configuration of the chapter's parameters, check the device, the
    engine and the data, and estimate the cost — training nothing (``{"rows", "total", "checks"}``)."""
    return dry_run_of(params, Params, _rows)
