"""App. D (Table 6): stability bounds of the linearised one-layer CNN under Nesterov momentum — what the
momentum chapter runs and how it decides.

- :class:`Params` — the parameters shared with the linear chapter (:class:`instab.studies.onelayer.OneLayerParams`)
  and the momentum chapter's own.
- :func:`table6` — Table 6: the paper's theory (60)–(61), its limit on each window, the exact windowed
  bound (eq-momentum-exact), the same found by simulation, the paper's measurements.
- :func:`runs` — runs of (51)–(52) in float32 below (60), between (60) and the exact bound, above both.
- :func:`mu_sweep` — the upper bound against the momentum coefficient μ: exact, the paper's μ → 1 form,
  and found by simulation.

Claim rules (measured data in, :class:`~instab.report.Claim` out): :func:`table6_claims`,
:func:`run_claims`, :func:`mu_claims` — the bisection claims of Table 6 and of the μ sweep are one rule,
:func:`instab.studies.linear.bisection_claim`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from instab import bounds, checks
from instab.bounds import AlphaBounds
from instab.findings import tolerance
from instab.pde.onelayer import (
    LinearisedCNN,
    OneLayerRun,
    empirical_alpha_bounds,
    nesterov_coefficients,
    outcome,
    windowed_alpha_bounds,
)
from instab.report import Claim, claim
from instab.studies.linear import (
    bisection_claim,
    calibration_claims,
    empty_interval_claim,
    precision_claims,
)
from instab.studies.onelayer import (
    OneLayerParams,
    bounds_columns,
    bounds_header,
    halfwidths,
    minima,
    reported_windowed,
)

__all__ = ["Params", "Table6Row", "Table6", "table6", "Runs", "runs", "MuSweep", "mu_sweep", "table6_claims",
           "run_claims", "mu_claims", "damping_claim", "DAMPING", "outcome"]

SHOWN_TABLE6 = "sec-momentum-table6"


@dataclass
class Params(OneLayerParams):
    """The momentum chapter's parameters: the shared ones (Δt is (51)–(52)'s, 1e-4 in the paper), the
    momentum μ of Table 6, the μ at which the upper bound is also found by simulation, the window of the
    runs and of the μ sweep, and the runs' weight decays and length."""

    PAPER_DT: ClassVar[float] = 1e-4

    dt: float = 1e-4
    momentum: float = 0.9
    mu_values: list[float] = field(default_factory=lambda: [0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99])
    mu_kernel: int = 32
    run_alphas: list[float] = field(default_factory=lambda: [1.30e8, 1.38e8, 1.55e8])
    run_steps: int = 400

    def validate(self) -> Params:
        super().validate()
        checks.in_range("momentum", self.momentum, 0.0, 0.999999)
        checks.each("mu_values", self.mu_values, checks.in_range, 0.0, 0.999999)
        checks.in_range("mu_kernel", self.mu_kernel, 1, self.image_size)
        if isinstance(self.mu_kernel, bool) or not isinstance(self.mu_kernel, int):
            raise ValueError(f"mu_kernel={self.mu_kernel!r} is not allowed; it must be an integer")
        checks.each("run_alphas", self.run_alphas, checks.positive)
        checks.positive("run_steps", self.run_steps, integer=True)
        return self

    @property
    def paper_setting(self) -> bool:
        return super().paper_setting and self.momentum == 0.9

    def recorded(self) -> dict[str, Any]:
        return dict(image_kind=self.image_kind, image_size=self.image_size, kernel_sizes=self.kernel_sizes,
                    dt=self.dt, momentum=self.momentum, a=self.a, beta=self.beta, search_steps=self.search_steps)

    @property
    def coefficients(self) -> tuple[float, float]:
        """(μ, η) of (51)–(52) (:func:`instab.pde.onelayer.nesterov_coefficients`)."""
        return nesterov_coefficients(self.dt, self.momentum)


def _paper_bound(spectrum: tuple[float, float], p: Params) -> AlphaBounds:
    """(60) on a window's spectrum: the paper's μ → 1 limit 4/(3Δt²) with the window's λ range."""
    return bounds.alpha_interval(*spectrum, bounds.paper_momentum_z_limit(p.dt), p.a, p.beta)


def _exact(image: np.ndarray, w: int, spectrum: tuple[float, float], p: Params, momentum: float) -> AlphaBounds:
    return windowed_alpha_bounds(image, w, p.dt, p.a, p.beta, momentum=momentum, spectrum=spectrum)


@dataclass
class Table6Row:
    """One window w of Table 6: the paper's (60) on it, the exact interval and the bisected one."""

    w: int
    paper: AlphaBounds
    exact: AlphaBounds
    found: AlphaBounds


@dataclass
class Table6:
    """Table 6: the Fourier theory (60)–(61) (μ → 1), one :class:`Table6Row` per window, and the paper's
    measured α^e by window (at its setting)."""

    theory: AlphaBounds
    rows: list[Table6Row]
    reported: dict[int, dict[str, float]]

    def text(self) -> str:
        """The table as printed by the chapter: per window, the lower and the upper bound from theory,
        exact, by bisection, and the paper's measurement."""
        lines = [f"{'w':>4} | " + bounds_header("(61) min", "(60) max")]
        for r in self.rows:
            lines.append(f"{r.w:>4} | " + bounds_columns(self.theory, r.exact, r.found, self.reported.get(r.w, {})))
        return "\n".join(lines)


def table6(image: np.ndarray, p: Params) -> Table6:
    """Table 6: (60)–(61) from |Î|², and for each window the paper's limit, the exact Nesterov bound
    (eq-momentum-exact) from M's spectrum and the bound found by simulation of (51)–(52)."""
    rows = []
    for w in p.kernel_sizes:
        spectrum = LinearisedCNN(image, w, p.a, p.beta).spectrum()
        found = empirical_alpha_bounds(image, w, p.dt, p.a, p.beta, momentum=p.momentum, n_steps=p.search_steps,
                                       seed=p.seed)
        rows.append(Table6Row(w, _paper_bound(spectrum, p), _exact(image, w, spectrum, p, p.momentum), found))
    return Table6(bounds.momentum_alpha_bounds(image, p.dt, p.a, p.beta), rows,
                  reported_windowed("table6_momentum.empirical_windowed", p))


@dataclass
class Runs:
    """Runs of (51)–(52) at w = ``mu_kernel``: the exact interval, the paper's (60), one run per α."""

    exact: AlphaBounds
    paper: AlphaBounds
    runs: dict[float, OneLayerRun]


def runs(image: np.ndarray, p: Params) -> Runs:
    """(51)–(52) in float32 from a N(0, 1) kernel, ``run_steps`` steps per α of ``run_alphas``."""
    spectrum = LinearisedCNN(image, p.mu_kernel, p.a, p.beta).spectrum()
    model = LinearisedCNN(image, p.mu_kernel, p.a, p.beta, dtype=np.float32)
    k0 = p.kernel(p.mu_kernel)
    return Runs(_exact(image, p.mu_kernel, spectrum, p, p.momentum), _paper_bound(spectrum, p),
                {alpha: model.run(k0, alpha, p.dt, p.run_steps, momentum=p.momentum) for alpha in p.run_alphas})


@dataclass
class MuSweep:
    """The upper bound against μ at w = ``mu_kernel``: exact on the grid ``mus`` (``exact_curve``) and at
    ``mu_values`` (``exact``), the paper's μ → 1 form (``paper``), and found by simulation (``found``)."""

    mus: np.ndarray
    exact_curve: list[float]
    paper: float
    mu_values: list[float]
    exact: list[float]
    found: list[float]


def mu_sweep(image: np.ndarray, p: Params, n_mu: int = 200) -> MuSweep:
    """The largest stable α of (51)–(52) against μ: exact, the paper's (59)–(60), and by bisection."""
    spectrum = LinearisedCNN(image, p.mu_kernel, p.a, p.beta).spectrum()
    mus = np.linspace(0.0, 0.995, n_mu)
    found = [empirical_alpha_bounds(image, p.mu_kernel, p.dt, p.a, p.beta, momentum=float(m), n_steps=p.search_steps,
                                    seed=p.seed, lower=False).alpha_max for m in p.mu_values]
    return MuSweep(mus, [_exact(image, p.mu_kernel, spectrum, p, float(m)).alpha_max for m in mus],
                   _paper_bound(spectrum, p).alpha_max, list(p.mu_values),
                   [_exact(image, p.mu_kernel, spectrum, p, float(m)).alpha_max for m in p.mu_values], found)


# -- claim rules ---------------------------------------------------------------------------------------

#: The registry's finding on the Nesterov upper bound (its tolerances: ``within``, ``apart``).
UPPER = "momentum-nesterov-upper-bound"


def table6_claims(t: Table6, p: Params) -> list[Claim]:
    """Table 6: at the paper's setting (60)–(61) reproduce its theory (a calibration); per window the
    bisection equals the exact bound (the upper one against (60): :func:`~instab.studies.linear.bisection_claim`)
    and the exact bound matches the paper's measurement (both columns by one rule,
    :func:`~instab.studies.linear.precision_claims`); and, where every window has one upper bound,
    the paper's measured α_max is closer to the exact bound than to (60) (``corrected``)."""
    out = ([*calibration_claims(t.theory, "Table 6 theory", "table6_momentum.theory", formula="(60)–(61)",
                                shown_in=SHOWN_TABLE6, finding="momentum-fourier-bounds-60-61"),
            empty_interval_claim("table6_momentum.theory", "(60)–(61)", shown_in=SHOWN_TABLE6)]
           if p.paper_setting else [])
    for r in t.rows:
        for key in ("alpha_min", "alpha_max"):
            ex, bi = getattr(r.exact, key), getattr(r.found, key)
            upper = key == "alpha_max"
            out.append(bisection_claim(f"Table 6 w={r.w}: bisection {key} = exact", bi, ex,
                                       r.paper.alpha_max if upper else None, shown_in=SHOWN_TABLE6,
                                       finding=UPPER if upper else "momentum-lower-bound-bisection"))
    out += precision_claims("Table 6", {r.w: r.exact.alpha_min for r in t.rows}, minima(t.reported),
                            halfwidths("table6_momentum.empirical_windowed", t.reported), shown_in=SHOWN_TABLE6)
    out += precision_claims("Table 6", {r.w: r.exact.alpha_max for r in t.rows},
                            {w: v["alpha_max"] for w, v in t.reported.items()},
                            halfwidths("table6_momentum.empirical_windowed", t.reported, "alpha_max"),
                            shown_in=SHOWN_TABLE6, bound="alpha_max")
    measured_max = {t.reported[r.w]["alpha_max"] for r in t.rows if r.w in t.reported}
    exact_max = {r.exact.alpha_max for r in t.rows}
    if len(measured_max) == 1 and len(exact_max) == 1:  # one upper bound for every window (λ_min = 0)
        ref, ex = measured_max.pop(), exact_max.pop()
        out.append(claim("paper's measured α_max is closer to our exact bound than to (60)", ex, ref,
                         criterion="|paper − exact| < |paper − (60)|",
                         ok=abs(ref - ex) < abs(ref - t.theory.alpha_max), verdict="corrected",
                         shown_in=SHOWN_TABLE6))
    return out


def run_claims(r: Runs) -> list[Claim]:
    """Each run does what the exact bound says (‖K‖ shrinks 1000× inside, the loss overflows outside);
    where (60) predicts the opposite, the claim is a correction."""
    out = []
    for alpha, run in r.runs.items():
        predicted, o = r.exact.contains(alpha), outcome(run)
        agree = r.paper.contains(alpha) == predicted
        out.append(claim(f"run α={alpha:.3g} {'converges' if predicted else 'overflows'} (exact bound)",
                         run.loss[-1], None,
                         criterion="stable: ‖K‖ shrinks 1000×; unstable: loss overflows"
                         + ("" if agree else "; (60) predicts the opposite"),
                         ok=o.converged if predicted else o.overflowed,
                         verdict="reproduced" if agree else "corrected", shown_in="fig-momentum-runs"))
    return out


#: The registry's finding on the paper's "the choice of damping d has no impact on the stability bounds".
DAMPING = "momentum-damping-no-impact"


def damping_claim(s: MuSweep) -> Claim:
    """The paper's "the choice of damping d has no impact on the stability bounds" (App. D): d sets
    μ = (2 − dΔt)/(2 + dΔt), so the bisected upper bounds across the swept μ (``found``) must agree
    within the bisection's resolution (the registry's ``within``, either way): the largest over the
    smallest ≤ (1 + within)² → reproduced, else refuted (the bound moves with the damping)."""
    within = tolerance(DAMPING, "within")
    spread = max(s.found) / min(s.found)
    return claim("the upper bound does not move with the damping (μ sweep)", spread, 1.0,
                 criterion=f"largest over smallest bisected α_max across μ = {', '.join(f'{m:g}' for m in s.mu_values)}"
                           f" ≤ (1 + {within:g})² → reproduced; larger → refuted",
                 ok=spread <= (1 + within) ** 2, verdict="reproduced", shown_in="fig-momentum-mu")


def mu_claims(s: MuSweep) -> list[Claim]:
    """At each μ of ``mu_values`` the bisected upper bound equals the exact one, against (60)
    (:func:`~instab.studies.linear.bisection_claim`)."""
    return [bisection_claim(f"μ={m}: bisection α_max = exact", f, ex, s.paper, shown_in="fig-momentum-mu",
                            finding=UPPER)
            for m, ex, f in zip(s.mu_values, s.exact, s.found, strict=True)]
