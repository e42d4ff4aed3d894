"""Floating point against batch order (paper §4.2, Tables 1, 4, 5): what the chapter
``book/sgd_variance.md`` runs.

- :func:`k_seed_grid` / :func:`accuracy_table` — the k × seed grids (initialisation fixed) and their
  final test accuracies as an array [k, seed].
- :func:`tables` / :func:`spread` — STD over k (floating point) against STD over seeds (batch
  selection) and their population ratio with its interval (:func:`instab.ensemble.std_ratio`;
  Table 1 left, Table 4, Table 5), on the seeds without a diverged run
  (:func:`instab.ensemble.diverged`, counted by :func:`diverged_claim`); :func:`ratio_claims`
  decides "about the same", "comparable (even exceeds)" and "greater or similar" against
  :func:`similar_band`, the ratios the paper itself calls similar.
- :func:`disagreements` / :func:`share_claims` — the share of test images runs that differ only in
  k label differently.
- :func:`table5` — Table 5's rows; :func:`paper_inconsistency` — Table 4 against Table 5.
- :func:`float64` / :func:`float64_claims` — a grid again in double precision.
- :func:`table1_right` / :func:`table1_right_claims` — the two relative gradient errors of Table 1
  (right): :func:`floating_point_error`, :func:`batch_fluctuation`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, cast

import numpy as np
import torch
from scipy import stats
from torch import nn

from instab import checks, findings
from instab.data import batch_order
from instab.ensemble import (
    band_decision,
    bootstrap_interval,
    diverged,
    floor_decision,
    mean_interval,
    proportion_interval,
    seeds_without,
    std_ratio,
)
from instab.growth import summary
from instab.optim import perturbed_update
from instab.report import Claim, claim, decide, judge, paper, printed, printed_halfwidth
from instab.studies.sgd import (
    SgdParams,
    config,
    cost_row,
    curve,
    dry_run_of,
    grid_base,
    network_name,
    trained_state,
    unanimous,
)
from instab.train import History, RunConfig, Variant, gradient, load_data, lr_at

__all__ = ["Params", "VariancePlan", "plan", "k_seed_grid", "accuracy_table", "spread", "paper_table", "tables",
           "table_report", "paper_spreads", "k_effect_p", "similar_band", "ratio_decision", "nominal_verdicts",
           "paper_rows", "grid", "K_EFFECT", "k_effect_share", "k_effect_decision", "k_effect_claims",
           "diverged_runs", "diverged_report", "diverged_claim", "DIVERGED", "ratio_report", "ratio_claims",
           "grids_value", "pairwise_disagreement",
           "disagreement_over_k", "disagreements", "disagreement_report", "share_claims", "table5_row", "table5",
           "table5_report", "paper_inconsistency", "float64", "float64_report", "float64_claims",
           "float64_verdict", "floating_point_error", "batch_fluctuation", "table1_right", "table1_right_report",
           "table1_right_claims", "orders_of_magnitude", "table1_right_orders", "band_report", "diverged_factor",
           "SHARE", "FLOAT64", "dry_run", "LABELS"]

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


# ------------------------------------------------------------------------- Table 1 left, 4, 5
def k_effect_p(table: np.ndarray) -> float:
    """p-value of a k effect common to every seed (two-way ANOVA without replication, F test of
    the k rows against the residual, ``scipy.stats.f``).  Without one (the k values exchangeable:
    no perturbation shifts accuracy the same way for every batch order) the law of total variance
    gives σ(seeds)² = σ(k)² + Var_s(E[acc | s]) ≥ σ(k)², so ρ ≤ 1 in expectation; with one, ρ may
    exceed 1.  :func:`~instab.ensemble.std_ratio` assumes neither."""
    k, s, ms_k, ms_e = _k_mean_squares(table)
    if ms_e == 0:
        return math.nan
    return float(stats.f.sf(ms_k / ms_e, k - 1, (k - 1) * (s - 1)))


def _k_mean_squares(table: np.ndarray) -> tuple[int, int, float, float]:
    """(K, S, MS_k, MS_e): a [k, seed] grid's two-way ANOVA mean squares of the k rows and of the
    residual (no replication)."""
    t = np.asarray(table, dtype=float)
    k, s = t.shape
    g, rows, cols = t.mean(), t.mean(axis=1, keepdims=True), t.mean(axis=0, keepdims=True)
    ms_k = s * float(((rows - g) ** 2).sum()) / (k - 1)
    ms_e = float(((t - rows - cols + g) ** 2).sum()) / ((k - 1) * (s - 1))
    return k, s, ms_k, ms_e


def spread(table: np.ndarray) -> dict[str, Any]:
    """STDs of an accuracy table [k, seed] and their ratio.

    - ``std_over_seeds``: per k, the STD over batch-order seeds (the SGD noise; Table 1's STD column);
    - ``std_over_k``: per seed, the STD over the floating-point perturbations k (Table 1's STD row);
    - ``fp_std``, ``sgd_std``: their means as the paper prints them (population STD, ddof = 0), and
      ``paper_ratio`` = fp_std / sgd_std, the paper's own statistic (shown beside its tables);
    - ``ratio`` and ``ratio_interval``: the population ratio ρ = σ(k) / σ(seeds), point and 95%
      interval from one estimator (:func:`~instab.ensemble.std_ratio`: a crossed random-effects
      model with or without a k effect, so ρ > 1 is possible; coverage tested by simulation), and
      ``variance_ratio`` = ρ² with its interval (the paper speaks of variances);
    - ``k_effect_p``: the test of a k effect common to every seed (:func:`k_effect_p`), and
      ``k_effect_share``: its share of the spread over k, median and upper bound (:func:`k_effect_share`).
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or min(t.shape) < 2:
        raise ValueError(f"spread needs a [k, seed] table with at least 2×2 entries, got shape {t.shape}")
    over_seeds, over_k = t.std(axis=1), t.std(axis=0)
    fp, sgd = float(over_k.mean()), float(over_seeds.mean())
    point, lo, hi = std_ratio(t)
    return {"mean": float(t.mean()), "std_over_seeds": over_seeds, "std_over_k": over_k, "fp_std": fp,
            "sgd_std": sgd, "paper_ratio": fp / sgd if sgd > 0 else math.inf, "ratio": point,
            "ratio_interval": (lo, hi), "variance_ratio": point**2, "variance_ratio_interval": (lo**2, hi**2),
            "k_effect_p": k_effect_p(t), "k_effect_share": k_effect_share(t)}


def paper_table(key: str, ks: Sequence[int] = (1, 3, 5, 7, 9, 11)) -> np.ndarray:
    """A k × seed accuracy table the paper reports (``reported.yml``), as an array [k, seed]."""
    return np.array([paper(f"{key}.k{k}") for k in ks], dtype=float)


def paper_spreads() -> dict[str, dict[str, Any]]:
    """:func:`spread` of the paper's Table 1 (left, ``"relu"``) and Table 4 (``"swish"``)."""
    return {"relu": spread(paper_table("table1_left_resnet56_cifar10_relu")),
            "swish": spread(paper_table("table4_resnet56_cifar10_swish"))}


#: The registry's finding whose criterion says which run diverged (``chance_factor``) and how many may.
DIVERGED = "sgd-diverged-runs"


def diverged_runs(table: np.ndarray, classes: int = 10) -> np.ndarray:
    """The runs of a grid of test accuracies in % that diverged (:func:`~instab.ensemble.diverged`
    with the registry's ``chance_factor`` × chance, 100 / ``classes``)."""
    return diverged(table, chance=100 / classes, factor=findings.tolerance(DIVERGED, "chance_factor"))


def grid(t: np.ndarray) -> dict[str, Any]:
    """One k × seed grid in %: ``table``, the ``diverged`` mask, the seeds ``kept`` (those with no
    diverged run, :func:`~instab.ensemble.seeds_without`) and the :func:`spread` of the kept ones.
    Where a run diverged, the spread's ``alternatives`` are the ratio's intervals two other ways —
    the k rows without a diverged run instead of the seeds, and every run kept — so that a verdict
    that depends on how the diverged run is left out is not decided (:func:`ratio_claims`)."""
    bad = diverged_runs(t)
    kept = seeds_without(bad)
    if kept.size < 2:
        raise ValueError(f"grid: only {kept.size} of {t.shape[1]} seeds have no diverged run; the STD ratio "
                         "needs two (look at the training: most runs diverged)")
    sp = spread(t[:, kept])
    if bad.any():
        rows = seeds_without(bad.T)
        other = [t[rows, :]] if rows.size >= 2 else []
        sp["alternatives"] = {name: std_ratio(x)[1:] for name, x in
                              zip(("k rows without a diverged run", "every run kept"), [*other, t], strict=False)}
    return {"table": t, "diverged": bad, "kept": kept, "spread": sp}


def tables(p: VariancePlan, runs: Mapping[RunConfig, History]) -> dict[str, dict[str, Any]]:
    """Tables 1 (left), 4 and 5's grids by name: :func:`grid` of the final test accuracies in %."""
    return {name: grid(100 * accuracy_table([runs[c] for c in cells], p.ks, p.seeds))
            for name, cells in p.tables.items()}


def diverged_report(grids: Mapping[str, Mapping[str, Any]], seeds: Sequence[int]) -> str:
    """Per grid: how many runs diverged, which (k index, seed), and the seeds left out."""
    lines = []
    for name, g in grids.items():
        bad = np.argwhere(g["diverged"])
        where = ", ".join(f"k row {i}, seed {seeds[j]} ({g['table'][i, j]:.2f}%)" for i, j in bad)
        lines.append(f"{name}: {len(bad)} of {g['table'].size} runs diverged" + (f" — {where}; the STD ratio "
                     f"uses the {g['kept'].size} seeds without one" if len(bad) else ""))
    return "\n".join(lines)


def diverged_claim(grids: Mapping[str, Mapping[str, Any]], shown_in: str = "sec-sgd-diverged") -> Claim:
    """Ours: how often plain SGD diverges in these grids (every grid's runs pooled): the 95% Wilson
    interval of the share of diverged runs (:func:`diverged_runs`) below the registry's
    ``share_max`` → extension (divergence is rare here), above it → refuted, else inconclusive."""
    n_bad = int(sum(int(g["diverged"].sum()) for g in grids.values()))
    n = int(sum(g["table"].size for g in grids.values()))
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


def ratio_report(spreads: Mapping[str, Mapping[str, Any]]) -> str:
    """Per grid: mean accuracy, both STDs as the paper prints them, the population ratio with its
    interval, in STD and in variance terms, and the test of a k effect."""
    lines = []
    for name, sp in spreads.items():
        lo, hi = sp["ratio_interval"]
        vlo, vhi = sp["variance_ratio_interval"]
        lines.append(f"{name}: mean accuracy {sp['mean']:.2f}%, STD over k {sp['fp_std']:.3f}, "
                     f"STD over seeds {sp['sgd_std']:.3f} (their ratio {sp['paper_ratio']:.2f}); "
                     f"σ(k)/σ(seeds) {sp['ratio']:.2f} (95%: {lo:.2f}–{hi:.2f}), in variance "
                     f"{sp['variance_ratio']:.2f} ({vlo:.2f}–{vhi:.2f}); k effect p = {sp['k_effect_p']:.2f}")
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
    low = {"Table 1 left": own["relu"]["paper_ratio"], "Table 4": own["swish"]["paper_ratio"],
           **{f"Table 5 {row}": v[1] for row, v in rows.items()}}
    high = {"Table 1 left": own["relu"]["paper_ratio"], "Table 4": own["swish"]["paper_ratio"],
            **{f"Table 5 {row}": v[2] for row, v in rows.items()}}
    nominal = min([own["relu"]["paper_ratio"], own["swish"]["paper_ratio"], *(v[0] for v in rows.values())])
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


def ratio_claims(spreads: Mapping[str, Mapping[str, Any]], band: Sequence[float],
                 paper_spreads: Mapping[str, Mapping[str, Any]], paper_rows: Sequence[str],
                 shown_in: str = "fig-sgd-std") -> list[Claim]:
    """One claim per grid from the 95% interval of ρ = σ(k)/σ(seeds) (:func:`spread`), by
    :func:`ratio_decision` against the paper's own band of "similar" (:func:`similar_band`):

    - Table 1 (ReLU), "about the same": inside [floor, ceiling] → reproduced, wholly outside →
      refuted, else inconclusive;
    - Table 4 (Swish), "comparable (even exceeds)": above 1 → reproduced; above the floor but below
      1 → corrected (comparable, not exceeding); below the floor → refuted; else inconclusive;
    - Table 5 rows, "greater or similar": above the floor → reproduced (greater where above 1),
      below it → refuted, else inconclusive.  Grids not in ``paper_rows`` (:func:`paper_rows`: a
      ReLU Table 5 row) are ours: extension when it holds.

    Where a run diverged, the decision must be the same with the diverged run left out each way
    (``spread["alternatives"]``); otherwise it is inconclusive."""
    out = []
    floor, ceiling = band
    for name, sp in spreads.items():
        lo, hi = sp["ratio_interval"]
        label = LABELS.get(name, f"Table 5 row {name}")
        ivs = [(lo, hi), *sp.get("alternatives", {}).values()]
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
        if sp.get("alternatives"):
            criterion += "; the same with the diverged run left out each way"
        if_fails = "corrected" if name == "swish" and lo >= floor else "refuted"
        ref = round(paper_spreads[name]["paper_ratio"], 3) if name in paper_spreads else None
        out.append(decide(f"{label}: STD over k / STD over seeds", sp["ratio"], [lo, hi], ref, criterion=criterion,
                          decision=decision, verdict="reproduced" if name in paper_rows else "extension",
                          if_fails=if_fails, shown_in=shown_in))
    return out


#: The registry's finding on the k effect (its tolerance ``alpha``: the family-wise level).
K_EFFECT = "sgd-k-effect"


def k_effect_share(table: np.ndarray, *, level: float = 0.95, draws: int = 20_000,
                   seed: int = 0) -> tuple[float, float]:
    """How much of the spread over k within a seed is a k effect shared by every seed: the share
    π = σ_a² / (σ_a² + σ_e²) of the crossed model of :func:`~instab.ensemble.std_ratio`, as its
    generalized pivotal quantity (R_k = MS_k·df_k/χ², R_e likewise; σ_a² = max(0, (R_k − R_e)/S),
    a variance), returned as (median, one-sided ``level`` upper bound).  (nan, nan) for a grid
    with no residual spread."""
    k, s, ms_k, ms_e = _k_mean_squares(table)
    if ms_e == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    r_k = ms_k * (k - 1) / rng.chisquare(k - 1, draws)
    r_e = ms_e * (k - 1) * (s - 1) / rng.chisquare((k - 1) * (s - 1), draws)
    a = np.maximum(0.0, (r_k - r_e) / s)
    share = a / (a + r_e)
    return float(np.quantile(share, 0.5)), float(np.quantile(share, level))


def k_effect_decision(ps: Sequence[float], uppers: Sequence[float], alpha: float,
                      share_max: float) -> list[bool | None]:
    """Per grid, is there no material k effect common to every seed?  False (a k effect) when its F
    test's p < alpha / m (Bonferroni over the m grids); True when the upper bound of its share of
    the spread over k (:func:`k_effect_share`) lies below ``share_max`` (an equivalence test: absence
    shown, not merely not detected); otherwise None (the grid cannot tell)."""
    m = len(ps)
    out: list[bool | None] = []
    for q, up in zip(ps, uppers, strict=True):
        out.append(None if not np.isfinite(q) else False if q < alpha / m
                   else True if np.isfinite(up) and up < share_max else None)
    return out


def k_effect_claims(spreads: Mapping[str, Mapping[str, Any]], paper_spreads: Mapping[str, Mapping[str, Any]],
                    shown_in: str = "sec-sgd-k-effect") -> list[Claim]:
    """Ours: the premise of the law-of-total-variance argument, tested on each grid.  Without a k
    effect common to every seed (:func:`k_effect_p`), σ(seeds)² = σ(k)² + Var_s(E[acc | s]), so
    ρ ≤ 1 in expectation and "greater" can only come from a k effect.  Per grid the F test's p
    (beside it the paper's own grid's, where it has one), Bonferroni over the grids at the
    registry's ``alpha``; then the row that decides the finding, over every grid: each shows the
    absence → holds (``extension``); one shows an effect → refuted; else inconclusive."""
    alpha, share_max = findings.tolerance(K_EFFECT, "alpha"), findings.tolerance(K_EFFECT, "share_max")
    names = list(spreads)
    ps = [float(spreads[n]["k_effect_p"]) for n in names]
    shares = [spreads[n]["k_effect_share"] for n in names]
    m = len(names)
    out = []
    for name, q, (point, up), d in zip(names, ps, shares, k_effect_decision(ps, [u for _, u in shares], alpha,
                                                                           share_max), strict=True):
        ref = round(float(paper_spreads[name]["k_effect_share"][0]), 3) if name in paper_spreads else None
        label = LABELS.get(name, f"Table 5 row {name}")
        out.append(judge(f"no k effect: {label}", point, [0.0, up], ref,
                         criterion=f"share of the spread over k that every seed shares (upper 95% bound {up:.2g}) "
                                   f"below {share_max:g} → no material k effect (extension); F test p = {q:.2g} < "
                                   f"{alpha:g}/{m} (Bonferroni over the {m} grids) → a k effect (refuted); else "
                                   "inconclusive",
                         holds=d, sane=True, if_holds="extension", shown_in=shown_in))
    ups = np.array([u for _, u in shares], dtype=float)
    decisions = k_effect_decision(ps, list(ups), alpha, share_max)
    every = False if False in decisions else True if all(d is True for d in decisions) else None
    largest = float(np.nanmax(ups)) if np.isfinite(ups).any() else math.nan  # the bound that decides
    out.append(judge("no k effect: every grid", largest, None, None,
                     criterion=f"every grid's upper bound below {share_max:g} → no material k effect anywhere "
                               f"(extension; an intersection-union test, each at 95%); a grid's F test p < "
                               f"{alpha:g}/{m} → a k effect (refuted); else inconclusive (the row that decides)",
                     holds=every, sane=True, if_holds="extension", shown_in=shown_in))
    return out


def band_report(spreads: Mapping[str, Mapping[str, Any]], band: Sequence[float], nominal: float) -> str:
    """The verdicts again at the paper's printed smallest ratio, and the paper's own two grids under
    the same statistic."""
    own = "; ".join(f"{name} {sp['ratio']:.2f} ({sp['ratio_interval'][0]:.2f}–{sp['ratio_interval'][1]:.2f})"
                    for name, sp in paper_spreads().items())
    return (f"at the paper's printed smallest ratio {nominal:.2f} instead: {nominal_verdicts(spreads, band, nominal)}"
            f"\nthe paper's own grids: {own}")


def diverged_factor() -> str:
    """The registry's chance factor of a diverged run, as the chapter quotes it."""
    return f"{findings.tolerance(DIVERGED, 'chance_factor'):g}"


def nominal_verdicts(spreads: Mapping[str, Mapping[str, Any]], band: Sequence[float], nominal: float) -> str:
    """The verdicts again at the paper's printed smallest ratio instead of its printed-precision
    extreme (the floor that favours the paper), for the reader to compare."""
    words = {True: "holds", False: "fails", None: "undecided"}
    return "; ".join(f"{name}: {words[ratio_decision(name, sp['ratio_interval'], [nominal, band[1]])]}"
                     for name, sp in spreads.items())


def paper_rows(p: VariancePlan) -> list[str]:
    """The grids that test the paper's own statements: Table 1 (ReLU), Table 4 (Swish) and the
    Table 5 rows with Swish ("The Swish activation is used"); a ReLU Table 5 row is ours."""
    return [name for name, cells in p.tables.items()
            if name in LABELS or cells[0].activation == "swish"]


def grids_value(p: VariancePlan, spreads: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The grids' summary, by name (the results' value ``grids``)."""
    return {name: {"k": p.ks, "seeds": p.seeds, "ratio": sp["ratio"], "ratio_ci95": list(sp["ratio_interval"]),
                   "fp_std": sp["fp_std"], "sgd_std": sp["sgd_std"], "mean": sp["mean"]}
            for name, sp in spreads.items()}


# --------------------------------------------------------------------------- prediction disagreement
def pairwise_disagreement(predictions: Sequence[np.ndarray], *, interval: bool = True,
                          level: float = 0.95) -> dict[str, float]:
    """Mean share of test images classified differently over all pairs of runs, with a 95% interval
    over the test images (given these runs) when ``interval``:

    - two runs: the share is a proportion of independent trials (each test image differs or not),
      so the Wilson interval (:func:`~instab.ensemble.proportion_interval`);
    - more runs: per image, the share of the pairs that label it differently is no binomial count
      (the pairs share runs), and there are ≥ 10 images: the BCa bootstrap over the images
      (:func:`~instab.ensemble.bootstrap_interval`)."""
    p = np.stack([np.asarray(x) for x in predictions])
    if p.shape[0] < 2:
        raise ValueError("pairwise_disagreement needs at least two runs")
    pairs = list(itertools.combinations(range(p.shape[0]), 2))
    diff = np.stack([p[i] != p[j] for i, j in pairs]).mean(axis=0)  # per image: share of pairs differing
    out = {"mean": float(diff.mean()), "low": math.nan, "high": math.nan, "pairs": len(pairs)}
    if interval:
        if len(pairs) == 1:
            lo, hi = proportion_interval(int(diff.sum()), diff.size, level=level)
        else:
            lo, hi = bootstrap_interval(diff, level=level)
        out.update(low=lo, high=hi)
    return out


def disagreement_over_k(histories: Sequence[History]) -> dict[str, Any]:
    """Share of test images that runs differing only in k label differently: per seed (one
    lockstep cell), the mean over its pairs of k; then the mean over seeds with a Student-t
    interval over seeds (:func:`~instab.ensemble.mean_interval`: the seeds are the independent
    units, few of them, and each per-seed share is a mean over many images and pairs, so near
    normal; n = 1 seed: no interval, undecided).  Beside it, the same share between runs differing
    only in batch order (k = 1 of every seed), with an interval over test images
    (:func:`pairwise_disagreement`)."""
    per_seed = [pairwise_disagreement([h.predictions[v] for v in h.variants], interval=False)["mean"]
                for h in histories]
    mean, lo, hi = mean_interval(per_seed)
    seeds = pairwise_disagreement([h.predictions[h.variants[0]] for h in histories])
    return {"per_seed": per_seed, "mean": mean, "low": lo, "high": hi, "over_seeds": seeds}


def disagreements(p: VariancePlan, runs: Mapping[RunConfig, History]) -> dict[str, dict[str, Any]]:
    """:func:`disagreement_over_k` of every grid, by name."""
    return {name: disagreement_over_k([runs[c] for c in cells]) for name, cells in p.tables.items()}


def disagreement_report(dis: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for name, d in dis.items():
        o = d["over_seeds"]
        lines.append(f"{name}: runs differing only in k disagree on {100 * d['mean']:.2f}% of test images "
                     f"(95% {100 * d['low']:.2f}–{100 * d['high']:.2f}); runs differing in batch order on "
                     f"{100 * o['mean']:.2f}% (95% {100 * o['low']:.2f}–{100 * o['high']:.2f})")
    return "\n".join(lines)


#: The registry's finding whose tolerance ``share_floor`` says how large a relabelled share counts.
SHARE = "sgd-last-bit-changes-predictions"
#: The float64 sentence's finding: ``decades`` of growth and the largest ``first`` RelL1 of a double.
FLOAT64 = "sgd-float64"


def share_claims(dis: Mapping[str, Mapping[str, Any]], shown_in: str = "sec-sgd-relabelled") -> list[Claim]:
    """Runs differing only in k label a share of the test images differently: holds when the 95%
    interval lies above the registry's ``share_floor``, fails below it, inconclusive when it
    contains it."""
    floor = findings.tolerance(SHARE, "share_floor")
    return [decide(f"{LABELS.get(name, f'Table 5 row {name}')}: share of test images the k runs label differently",
                   d["mean"], [d["low"], d["high"]], criterion=f"95% interval above {floor:.0%}",
                   decision=floor_decision([d["low"], d["high"]], floor), verdict="reproduced", shown_in=shown_in)
            for name, d in dis.items()]


# ------------------------------------------------------------------------------------------ Table 5
def table5_row(name: str, config: RunConfig, sp: Mapping[str, Any],
               disagreement: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One row of Table 5 from a k × seed grid: the network, the data set, mean accuracy, STD over k
    (floating point), STD over seeds (batch selection), their ratio and its 95% interval
    (:func:`spread`), and the share of test images the k runs label differently, if given."""
    row = {"name": name, "network": network_name(config), "dataset": config.dataset, "mean": sp["mean"],
           "fp_std": sp["fp_std"], "sgd_std": sp["sgd_std"], "ratio": sp["ratio"],
           "ratio_ci95": [float(x) for x in sp["ratio_interval"]], "dtype": config.dtype}
    if disagreement is not None:
        row["disagreement"] = disagreement["mean"]
        row["disagreement_ci95"] = [disagreement["low"], disagreement["high"]]
    return row


def table5(p: VariancePlan, spreads: Mapping[str, Mapping[str, Any]],
           dis: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Paper Table 5: a row per grid (:func:`table5_row`)."""
    return [table5_row(name, p.tables[name][0], spreads[name], dis[name]) for name in p.tables]


def table5_report(rows: Sequence[Mapping[str, Any]]) -> str:
    """Our rows beside the paper's (Swish), then Table 4 against Table 5 for the same experiment."""
    lines = [f"{'network, data set':36s} {'mean ± fp STD':>14s} {'SGD STD':>8s} {'ratio':>6s} {'95% interval':>13s}"]
    for row in rows:
        lo, hi = row["ratio_ci95"]
        lines.append(f"{row['network'] + ', ' + row['dataset']:36s} {row['mean']:7.2f} ± {row['fp_std']:.2f} "
                     f"{row['sgd_std']:8.2f} {row['ratio']:6.2f}   {lo:5.2f}–{hi:5.2f}")
    for row_name, v in paper("table5_swish").items():
        lines.append(f"{'paper: ' + row_name:36s} {v['mean']:7.2f} ± {v['fp_std']:.2f} "
                     f"{v['sgd_std']:8.2f} {v['fp_std'] / v['sgd_std']:6.2f}")
    t4, t5 = paper_spreads()["swish"], paper("table5_swish.resnet56_cifar10")
    lines += ["", f"ResNet-56 / CIFAR-10 / Swish in the paper — Table 4: STD over k {t4['fp_std']:.3f}, over seeds "
                  f"{t4['sgd_std']:.3f}, ratio {t4['ratio']:.2f};  Table 5 and §4.2: {t5['fp_std']:.2f} vs "
                  f"{t5['sgd_std']:.2f}, ratio {t5['fp_std'] / t5['sgd_std']:.2f}"]
    return "\n".join(lines)


def paper_inconsistency(shown_in: str = "sec-sgd-table5") -> Claim:
    """A fact of the transcribed paper: Table 4's accuracies and Table 5 (and §4.2) give one
    experiment (ResNet-56, CIFAR-10, Swish) ratios that differ by more than 10%."""
    t4, t5 = paper_spreads()["swish"], paper("table5_swish.resnet56_cifar10")
    return claim("paper: Table 4 and Table 5 give different STDs for one experiment",
                 [round(t4["ratio"], 3), round(t5["fp_std"] / t5["sgd_std"], 3)], None,
                 criterion="ratios from the transcribed tables differ by > 10%",
                 ok=abs(t4["ratio"] - t5["fp_std"] / t5["sgd_std"]) > 0.1 * t4["ratio"], verdict="fact",
                 shown_in=shown_in)


# ------------------------------------------------------------------------------------------ float64
def float64(p: VariancePlan, runs: Mapping[RunConfig, History], table: str) -> dict[str, Any]:
    """The float64 grid: :func:`grid` of its accuracies in % (``spread`` on the seeds without a
    diverged run), :func:`disagreement_over_k`, the growth of RelL1(k = 1, k = 3) per seed
    (``growth``), and the RelL1 curves per seed in float64 and in float32 (the grid ``table`` of the
    same network; ``curves``: [(float64, float32 or None)])."""
    f64_runs = [runs[c] for c in p.float64]
    g64 = grid(100 * accuracy_table(f64_runs, p.float64_ks, p.float64_seeds))
    same = {h.config["batch_seed"]: h for h in (runs[c] for c in p.tables[table])}
    curves = []
    for h in f64_runs:
        h32 = same.get(h.config["batch_seed"])
        curves.append((curve(h, "k=3"), curve(h32, "k=3") if h32 is not None else None))
    return {**g64, "disagreement": disagreement_over_k(f64_runs),
            "growth": [summary(*curve(h, "k=3")) for h in f64_runs], "curves": curves,
            "iterations": p.float64[0].max_steps or f64_runs[0].steps[-1]}


def float64_report(p: VariancePlan, f: Mapping[str, Any]) -> str:
    sp64, d64, c64 = f["spread"], f["disagreement"], p.float64[0]
    lo64, hi64 = sp64["ratio_interval"]
    first64, dec64 = [g["first"] for g in f["growth"]], [g["decades"] for g in f["growth"]]
    return "\n".join([
        f"float64 grid: {len(p.float64_ks)} k × {len(p.float64_seeds)} seeds, {c64.epochs} epochs "
        f"({f['iterations']} iterations)",
        f"RelL1(k=1, k=3) after the first differing iteration: {min(first64):.1e}–{max(first64):.1e}; "
        f"growth {min(dec64):.1f}–{max(dec64):.1f} decades",
        f"mean accuracy {sp64['mean']:.2f}%, STD over k {sp64['fp_std']:.3f}, STD over seeds {sp64['sgd_std']:.3f}, "
        f"ratio {sp64['ratio']:.2f} (95%: {lo64:.2f}–{hi64:.2f}); k runs disagree on {100 * d64['mean']:.2f}% "
        f"of test images (95% {100 * d64['low']:.2f}–{100 * d64['high']:.2f})"])


def _same_decision(decisions: Sequence[bool | None]) -> bool | None:
    """The decision when every way of leaving a diverged run out gives it, else None."""
    return decisions[0] if len(set(decisions)) == 1 else None


def float64_claims(f: Mapping[str, Any], band: Sequence[float], shown_in: str = "fig-sgd-float64") -> list[Claim]:
    """In float64: the perturbation starts at a double's last bit (< 1e-13) and grows ≥ 8 decades
    for every seed; the STD ratio ("similar conclusions": about the same, as Table 1's grid, inside
    :func:`similar_band`) and the relabelled share are judged as in float32."""
    sp64, d64 = f["spread"], f["disagreement"]
    lo64, hi64 = sp64["ratio_interval"]
    first64, dec64 = [g["first"] for g in f["growth"]], [g["decades"] for g in f["growth"]]
    first_max, decades = findings.tolerance(FLOAT64, "first_max"), findings.tolerance(FLOAT64, "decades")
    disagreement_floor = findings.tolerance(SHARE, "share_floor")
    return [
        decide("float64: the perturbation starts at the last bit of a double", float(np.median(first64)),
               [min(first64), max(first64)], criterion=f"every seed: first RelL1 < {first_max:g}", verdict="extension",
               decision=unanimous([x < first_max for x in first64]), shown_in=shown_in),
        decide("float64: the last bit grows to the plateau", float(np.median(dec64)), [min(dec64), max(dec64)],
               criterion=f"every seed: ≥ {decades:g} decades of growth", verdict="reproduced",
               decision=unanimous([d >= decades for d in dec64]), shown_in=shown_in),
        decide("float64: STD over k / STD over seeds (paper: similar conclusions for 64 bit)", sp64["ratio"],
               [lo64, hi64], criterion=f"about the same: 95% interval inside [{band[0]:.2f}, {band[1]:.2f}] (the "
                                       "same with a diverged run left out each way)",
               decision=_same_decision([band_decision(iv, band) for iv in [(lo64, hi64),
                                                                           *sp64.get("alternatives", {}).values()]]),
               verdict="reproduced", shown_in=shown_in),
        judge("float64: share of test images the k runs label differently", d64["mean"], [d64["low"], d64["high"]],
              criterion=f"95% interval above {disagreement_floor:.0%}",
              holds=floor_decision([d64["low"], d64["high"]], disagreement_floor),
              sane=bool(np.isfinite(d64["mean"])), shown_in=shown_in),
    ]


def float64_value(p: VariancePlan, f: Mapping[str, Any]) -> dict[str, Any]:
    """The float64 grid's row (the results' value ``float64``)."""
    return {**table5_row("float64", p.float64[0], f["spread"], f["disagreement"]), "k": p.float64_ks,
            "seeds": p.float64_seeds, "first_rel_l1": [g["first"] for g in f["growth"]],
            "decades": [g["decades"] for g in f["growth"]]}


def float64_verdict(f: Mapping[str, Any], band: Sequence[float]) -> str:
    """The sentence the chapter quotes on the float64 ratio."""
    sp64, d64 = f["spread"], f["disagreement"]
    lo64, hi64 = sp64["ratio_interval"]
    shown = f"[{band[0]:.2f}, {band[1]:.2f}]"
    return (f"At this scale the STD over k is {sp64['fp_std']:.2f} points against {sp64['sgd_std']:.2f} over seeds; "
            f"σ(k)/σ(seeds) is {sp64['ratio']:.2f} (95% interval {lo64:.2f}–{hi64:.2f}): "
            + {True: f"inside {shown}, about the same, as in float32 — the paper's remark is reproduced",
               False: f"outside {shown} — not about the same at this scale",
               None: f"the interval reaches past an end of {shown}, so whether the two are about the same is "
                     "inconclusive at this scale"}[band_decision([lo64, hi64], band)]
            + f"; runs differing only in k still label {100 * d64['mean']:.1f}% of the test images differently.")


# ------------------------------------------------------------------------------------ Table 1 right
def floating_point_error(v: Sequence[torch.Tensor], lr: float, k: int = 3,
                         form: str = "paper") -> dict[str, float]:
    """Relative error of the perturbed update against SGD's (paper §4.1, Table 1 right):
    ‖Δθ_k − Δθ_1‖ / ‖Δθ_1‖ over all parameters (``norm``), and elementwise |Δθ_k − Δθ_1| / |Δθ_1|
    over the nonzero entries (``mean``, ``max``, ``share_changed``), and in units of the last
    bit of each entry of Δθ_1 (its float32 ulp, :func:`torch.nextafter`): ``share_beyond_last_bit``,
    the share of the nonzero entries that moved by more than one ulp.  Bounded by 2⁻²² = 2^-(s-1)."""
    num = den = 0.0
    rel_max, rel_sum, changed, count, beyond = 0.0, 0.0, 0, 0, 0
    for t in v:
        u1_32 = perturbed_update(t, lr, 1, form)
        u1, uk = u1_32.double(), perturbed_update(t, lr, k, form).double()
        ulp = (torch.nextafter(u1_32.abs(), torch.full_like(u1_32, math.inf)) - u1_32.abs()).double()
        num += float(((uk - u1) ** 2).sum())
        den += float((u1 ** 2).sum())
        nz = u1 != 0
        r = ((uk - u1).abs()[nz] / u1.abs()[nz])
        if r.numel():
            rel_max = max(rel_max, float(r.max()))
            rel_sum += float(r.sum())
            changed += int((r > 0).sum())
            count += r.numel()
            beyond += int(((uk - u1).abs()[nz] > ulp[nz]).sum())
    return {"norm": math.sqrt(num / den) if den > 0 else math.nan, "mean": rel_sum / max(count, 1),
            "max": rel_max, "share_changed": changed / max(count, 1),
            "share_beyond_last_bit": beyond / max(count, 1)}


def batch_fluctuation(model: nn.Module, config: RunConfig, *, n_batches: int = 50,
                      seed: int = 0) -> dict[str, float]:
    """Relative fluctuation of the minibatch gradient from batch selection (Table 1 right):
    E_B ‖g_B − g‖ / ‖g‖ with g the gradient of the mean loss over the whole training subset and
    g_B over a minibatch of ``config.batch_size`` drawn by a batch-order seed; the mean over
    ``n_batches`` batches (and the median).  The network is in training mode (BatchNorm uses batch
    statistics, as in SGD's steps)."""
    data = load_data(config)
    model.train()
    full = gradient(model, data.x_train, data.y_train)
    norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in full))
    ratios: list[float] = []
    epoch = 0
    while len(ratios) < n_batches:
        for idx in batch_order(len(data.y_train), config.batch_size, seed=seed, epoch=epoch, drop_last=True):
            gb = gradient(model, data.x_train[idx], data.y_train[idx], batch_size=len(idx))
            d = math.sqrt(sum(float(((a.double() - b.double()) ** 2).sum())
                              for a, b in zip(gb, full, strict=True)))
            ratios.append(d / norm)
            if len(ratios) == n_batches:
                break
        epoch += 1
    return {"mean": float(np.mean(ratios)), "median": float(np.median(ratios)), "full_grad_norm": norm}


def table1_right(p: VariancePlan, runs: Mapping[RunConfig, History], n_batches: int) -> dict[str, Any]:
    """Paper Table 1 (right) on the trained Table 4 network (seed 0, k = 1): the relative error of
    the k = 3 update against SGD's on the final momentum direction (``fp``,
    :func:`floating_point_error`) and the minibatch gradient's relative fluctuation (``batch``,
    :func:`batch_fluctuation`)."""
    ref = p.tables["swish"][0]
    model, v = trained_state(runs[ref])
    return {"fp": floating_point_error(v, lr_at(ref, cast(int, ref.epochs) - 1), k=3),
            "batch": batch_fluctuation(model, ref, n_batches=n_batches), "n_batches": n_batches}


def table1_right_report(t: Mapping[str, Any]) -> str:
    fp, bs = t["fp"], t["batch"]
    return "\n".join([
        f"floating point (k=3): ‖Δθ₃ − Δθ₁‖/‖Δθ₁‖ = {fp['norm']:.3e}; elementwise mean {fp['mean']:.3e}, "
        f"max {fp['max']:.3e} (2^-23 = {2**-23:.3e}); {100 * fp['share_changed']:.1f}% of the entries change, "
        f"{100 * fp['share_beyond_last_bit']:.3f}% by more than their last bit",
        f"batch selection: E‖g_B − g‖/‖g‖ = {bs['mean']:.2f} (median {bs['median']:.2f}) over "
        f"{t['n_batches']} batches",
        f"batch selection / floating point: {bs['mean'] / fp['norm']:.2e}"])


def orders_of_magnitude(batch: float, fp: float) -> float:
    """log10 of the batch-selection fluctuation over the floating-point error (Table 1 right)."""
    return math.log10(batch / fp) if batch > 0 and fp > 0 else math.nan


def table1_right_orders(t: Mapping[str, Any]) -> float:
    """Orders of magnitude between the batch fluctuation and the floating-point error of Table 1 right."""
    return orders_of_magnitude(float(t["batch"]["mean"]), float(t["fp"]["norm"]))


def table1_right_claims(t: Mapping[str, Any], shown_in: str = "sec-sgd-table1-right") -> list[Claim]:
    """Table 1 (right), judged against the paper's own numbers:

    - a control: the largest entry of the update's relative error |x − y|/|x| within 2^{−(s−1)} =
      2^-22 (s = 23, the paper's Table 1 prints 2^{−s} = 2^-23): y = fl[(η/k)·fl(k g)] carries two
      more roundings than x = fl(η g), so it holds by construction (a fact: failing, the arithmetic
      broke), and the perturbation is there at all (norm > 0);
    - the paper's "a potential perturbation in the last significant bit of ηg_t", counted in
      units of each entry's last bit (its ulp): no entry moved by more than one ulp → reproduced;
      a share of at most the registry's ``share_max`` moved by more (the last bit, and in those
      entries the next one too) → corrected with that share; a larger share → refuted;
    - "8 orders of magnitude": log10 of the batch fluctuation E‖g_B − g‖/‖g‖ over the
      floating-point error, measured norm-wise (‖Δθ₃ − Δθ₁‖/‖Δθ₁‖) and as the paper does (2^-23),
      both round to the paper's 8 ([7.5, 8.5)) → reproduced; both do not → refuted; they disagree →
      inconclusive."""
    fp, bs = t["fp"], t["batch"]
    worst, beyond = float(fp["max"]), float(fp["share_beyond_last_bit"])
    share_max = findings.tolerance("sgd-fp-last-bit", "share_max")
    orders = orders_of_magnitude(float(bs["mean"]), float(fp["norm"]))
    orders_paper = orders_of_magnitude(float(bs["mean"]), 2.0**-23)
    rounds = {7.5 <= o < 8.5 for o in (orders, orders_paper)}
    return [
        claim("Table 1 right: relative gradient error, floating point", worst, 2.0**-22,
              criterion="largest entry of |x − y|/|x| ≤ 2^-(s-1) = 2^-22 (s = 23, the paper's 2^-s = 2^-23 of "
                        "Table 1; three roundings against one: by construction)",
              ok=0 < fp["norm"] and worst <= 2**-22 * (1 + 2**-20), verdict="fact", shown_in=shown_in),
        claim("Table 1 right: the perturbation is in the last bit of ηg", beyond, 0.0,
              criterion=f"share of the update's entries that moved by more than their last bit (one ulp of x): 0 "
                        f"→ reproduced; ≤ {share_max:g} → corrected (in those entries the next bit too); more → "
                        "refuted",
              ok=beyond <= share_max, verdict="reproduced" if beyond == 0 else "corrected",
              sane=bool(np.isfinite(beyond)), shown_in=shown_in),
        decide("Table 1 right: relative gradient fluctuation, batch selection (orders of magnitude)", orders,
               [min(orders, orders_paper), max(orders, orders_paper)], 8,
               criterion="log10(E‖g_B − g‖/‖g‖ over the floating-point error, norm-wise and as the paper's 2^-23) "
                         "rounds to the paper's 8 (in [7.5, 8.5)): both → reproduced, neither → refuted, one → "
                         "inconclusive",
               decision=rounds.pop() if len(rounds) == 1 else None, verdict="reproduced", shown_in=shown_in),
    ]


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
