"""§3 and Fig. 1: the heat equation under scheme (2) — what the heat chapter runs and how it decides.

- :class:`Params` — the chapter's parameters, validated in one call.
- :func:`fig1` — the stable and unstable runs of the paper's Fig. 1 (profiles and max|u| per step).
- :func:`amplifier` — |A(ω)| of eq. (3), derived and as printed, for the amplifier figure.
- :func:`growth_rates` — the measured growth per step of each run against max|A| (derived and as printed).
- :func:`threshold` — the stability threshold r* found by bisection on simulated runs.
- :func:`one_ulp` — the difference of two runs whose initial data differ by one ulp.

Claim rules (measured data in, :class:`~instab.report.Claim` out): :func:`growth_claims`,
:func:`decay_claim`, :func:`threshold_claim`, :func:`one_ulp_claims`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from instab import bounds, checks
from instab.findings import tolerance
from instab.pde import heat
from instab.report import Claim, claim, paper
from instab.studies.params import StudyParams

__all__ = ["Params", "Fig1", "fig1", "amplifier", "GrowthRate", "growth_rates", "measured_rate", "Threshold",
           "threshold", "OneUlp", "one_ulp", "growth_claims", "decay_claim", "threshold_claim",
           "one_ulp_claims"]


#: Upper bounds that keep a run within a machine's memory and time (checked before any work).
MAX_POINTS = 1e6
MAX_STEPS = 1e7


@dataclass
class Params(StudyParams):
    """The heat chapter's parameters (its parameters cell): the ratios r = Δt/Δx² of Fig. 1, the grid
    [0, length] with spacing dx, the steps drawn, the run's length, the ratios of the amplifier figure
    and the window over which growth per step is measured."""

    r_values: list[float] = field(default_factory=lambda: [0.4, 0.8])
    length: float = 30.0
    dx: float = 1.0
    profile_steps: list[int] = field(default_factory=lambda: [0, 4, 8, 12, 16, 20])
    n_steps: int = 400
    amplifier_r: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.4, 0.5, 0.6, 0.8])
    rate_window: int = 100

    def validate(self) -> Params:
        checks.each("r_values", self.r_values, checks.positive)
        checks.positive("length", self.length)
        checks.positive("dx", self.dx)
        if self.length / self.dx > MAX_POINTS:
            raise ValueError(f"length={self.length!r} with dx={self.dx!r} is not allowed; the grid may have at most "
                             f"{MAX_POINTS:g} points (length/dx)")
        checks.positive("n_steps", self.n_steps, integer=True, at_most=MAX_STEPS)
        checks.each("profile_steps", self.profile_steps, checks.in_range, 0, self.n_steps, integer=True)
        checks.each("amplifier_r", self.amplifier_r, checks.positive)
        checks.in_range("rate_window", self.rate_window, 2, self.n_steps, integer=True)
        if not any(r < 0.5 for r in self.r_values) or not any(r > 0.5 for r in self.r_values):
            raise ValueError(f"r_values={self.r_values!r} is not allowed; it needs one value below and one "
                             f"above 1/2")
        return self

    def recorded(self) -> dict[str, object]:
        """The parameters written to ``results.json``."""
        return dict(r_values=self.r_values, length=self.length, dx=self.dx, n_steps=self.n_steps)

    @property
    def r_stable(self) -> float:
        return min(self.r_values)

    @property
    def r_unstable(self) -> float:
        return max(self.r_values)


@dataclass
class Fig1:
    """The paper's Fig. 1: the grid ``x``, the triangle ``u0`` and one run of scheme (2) per r."""

    x: np.ndarray
    u0: np.ndarray
    runs: dict[float, heat.HeatRun]

    @property
    def n_interior(self) -> int:
        return self.x.size - 2


def grid(p: Params) -> tuple[np.ndarray, np.ndarray]:
    """The grid 0, Δx, …, L and the triangle on it (Fig. 1's initial condition)."""
    x = heat.spatial_grid(p.length, p.dx)
    return x, heat.triangle(x)


def fig1(p: Params) -> Fig1:
    """Fig. 1 (left and right): scheme (2) from the triangle for each r, ``n_steps`` steps, profiles
    at ``profile_steps``."""
    x, u0 = grid(p)
    return Fig1(x, u0, {r: heat.simulate(u0, r, p.n_steps, snapshot_steps=p.profile_steps) for r in p.r_values})


def amplifier(p: Params, n_omega: int = 400) -> tuple[np.ndarray, dict[float, np.ndarray], np.ndarray]:
    """(ωΔx, {r: |A(ω)|} derived (eq. (3) with its factor 2), |A(ω)| as printed at r = 0.8)."""
    omega = np.linspace(0, np.pi, n_omega)
    return (omega, {r: np.abs(bounds.heat_amplifier(omega, r)) for r in p.amplifier_r},
            np.abs(bounds.heat_amplifier_as_printed(omega, 0.8)))


@dataclass
class GrowthRate:
    """One run's measured growth of max|u| per step against max|A| over the Dirichlet modes, derived
    (``predicted``) and as printed (``printed``), with the relative differences."""

    r: float
    measured: float
    predicted: float
    printed: float

    @property
    def rel(self) -> float:
        return abs(self.measured - self.predicted) / self.predicted

    @property
    def rel_printed(self) -> float:
        return abs(self.measured - self.printed) / self.printed


def measured_rate(sup: np.ndarray, window: int) -> float:
    """Geometric-mean growth of max|u| per step over the last ``window`` finite steps."""
    finite = sup[np.isfinite(sup) & (sup > 0)]
    tail = finite[-window:]
    return float((tail[-1] / tail[0]) ** (1.0 / (tail.size - 1)))


def growth_rates(f: Fig1, p: Params) -> list[GrowthRate]:
    """For each run of :func:`fig1`, the measured growth per step and max|A| of eq. (3), derived and
    as printed, over the grid's Dirichlet modes."""
    n = f.n_interior
    return [GrowthRate(r, measured_rate(run.sup, p.rate_window), bounds.heat_max_amplification(r, n),
                       float(np.max(np.abs(bounds.heat_amplifier_as_printed(bounds.heat_dirichlet_modes(n), r)))))
            for r, run in f.runs.items()]


@dataclass
class Threshold:
    """The r at which scheme (2) stops attenuating: by bisection on simulated runs (``r_star``), exact on
    the grid's Dirichlet modes (``exact``), and the continuum CFL bound (``cfl``)."""

    r_star: float
    exact: float
    cfl: float


def threshold(f: Fig1) -> Threshold:
    """The stability threshold of scheme (2) on Fig. 1's grid, by bisection (:func:`instab.pde.heat.empirical_cfl`)."""
    return Threshold(heat.empirical_cfl(f.x.size), bounds.heat_dirichlet_threshold(f.n_interior),
                     bounds.cfl_bound(1.0))


@dataclass
class OneUlp:
    """Two runs whose initial data differ by one ulp at one point: ``d[n]`` = max|u^n − u'^n``, and
    max|A| that predicts its growth ``d[0]·max|A|^n``."""

    r: float
    d: np.ndarray
    max_amplification: float

    @property
    def zero_steps(self) -> np.ndarray:
        """The steps at which the two runs are bitwise equal."""
        return np.flatnonzero(self.d == 0)


def one_ulp(f: Fig1, p: Params) -> dict[float, OneUlp]:
    """The one-ulp experiment for each r (:func:`instab.pde.heat.one_ulp_difference`)."""
    return {r: OneUlp(r, heat.one_ulp_difference(f.u0, r, p.n_steps), bounds.heat_max_amplification(r, f.n_interior))
            for r in p.r_values}


# -- claim rules ------------------------------------------------------------------------------------


def growth_claims(rates: list[GrowthRate]) -> list[Claim]:
    """Measured growth per step against max|A|: where the derived and the printed max|A| differ by
    more than the registry's ``apart`` (5%), the run decides between them (``corrected`` if it is
    within ``derived`` (1%) of the derived one and more than ``apart`` from the printed one); where
    they agree, the claim is the paper's (within ``derived``).  Tolerances: finding
    ``heat-amplifier`` of the registry."""
    near, apart = tolerance("heat-amplifier", "derived"), tolerance("heat-amplifier", "apart")
    out = []
    for g in rates:
        if abs(g.printed - g.predicted) > apart * g.predicted:
            out.append(claim(f"r={g.r}: growth per step = max|A| derived, not as printed", g.measured, g.printed,
                             criterion=f"within {100 * near:g}% of max|1−4r·sin²(ωΔx/2)|, "
                                       f"> {100 * apart:g}% from the printed max|1−r(1−cos ωΔx)|",
                             ok=g.rel < near and g.rel_printed > apart, verdict="corrected",
                             shown_in="fig-heat-amplifier"))
        else:
            out.append(claim(f"r={g.r}: growth per step = max|A|", g.measured, g.printed,
                             criterion=f"within {100 * near:g}% of max|1−4r·sin²(ωΔx/2)| "
                                       f"(the printed formula agrees to {100 * apart:g}% here)",
                             ok=g.rel < near, verdict="reproduced", shown_in="fig-heat-amplifier"))
    return out


def decay_claim(f: Fig1, p: Params) -> Claim:
    """The stable run decays: max|u| at the end below max|u⁰| (Fig. 1, left)."""
    sup = f.runs[p.r_stable].sup
    return claim(f"r={p.r_stable} decays", sup[-1], None, criterion="max|u| at the end < max|u⁰|",
                 ok=sup[-1] < sup[0], verdict="reproduced", shown_in="fig-heat-profiles")


def threshold_claim(t: Threshold) -> Claim:
    """The bisected threshold r* is the CFL bound 1/2 (the paper's), within the registry's
    tolerance of finding ``heat-cfl-threshold`` (1%)."""
    ref, tol = paper("fig1_heat.cfl"), tolerance("heat-cfl-threshold")
    return claim("stability threshold r* (bisection)", t.r_star, ref, criterion=f"within {100 * tol:g}% of 1/2",
                 ok=abs(t.r_star - ref) < tol * ref, verdict="reproduced", shown_in="fig-heat-amplifier")


def one_ulp_claims(ulp: dict[float, OneUlp], p: Params) -> list[Claim]:
    """Below the CFL bound a one-ulp difference is attenuated (final < initial); above it, amplified
    by more than 10⁶."""
    s, u = ulp[p.r_stable].d, ulp[p.r_unstable].d
    return [claim(f"r={p.r_stable}: one-ulp difference attenuated", s[-1] / s[0], None,
                  criterion="final/initial < 1", ok=s[-1] < s[0], verdict="reproduced", shown_in="fig-heat-one-ulp"),
            claim(f"r={p.r_unstable}: one-ulp difference amplified", u[-1] / u[0], None,
                  criterion="final/initial > 1e6", ok=u[-1] > 1e6 * u[0], verdict="reproduced",
                  shown_in="fig-heat-one-ulp")]
