"""What the nonlinear chapter's steps (:mod:`instab.studies.nonlinear`) return — the data of each
figure and table of paper §5.4, with the lines the chapter prints of it — and the claim rules that
decide it from the data alone (the two that read the parameters, ``threshold_claims`` and
``fig4_claims``, are in :mod:`instab.studies.nonlinear`, which the chapter calls for every rule).

- :class:`Thresholds` — the map's thresholds for both poolings; :class:`Bifurcation` — the
  bifurcation diagram, Lyapunov exponent and showcase steps of (★);
- :class:`Fig4` — paper Fig. 4's runs and the growth of their RelL1 (:func:`fig4_values`,
  :func:`precision_claims`, :func:`start_ratio`); :class:`Table3` — paper Table 3's conditions for
  the checkerboard beside the map's curvature (:func:`table3_claims`);
- :class:`Transitioning`, :class:`Reduction`, :class:`Measured`, :class:`Sweep` — the
  transitioning regime, (8) against (★), the thresholds measured on the scheme, and the sign of
  Λ against measured amplification (:func:`transitioning_claims`, :func:`reduction_claims`,
  :func:`measured_claims`, :func:`sweep_claims`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from instab.findings import tolerance
from instab.pde import nonlinear as nl
from instab.pde.nonlinear import Growth, NonlinearRun
from instab.pde.sigma_map import SigmaMap
from instab.report import Claim, claim, paper

#: The registry's findings whose tolerances the rules read: mean pooling's 0.03 (the paper quotes one
#: digit), sum pooling, float64's amplification, and when the sign of Λ predicts amplification.
CALIBRATED, SUM_POOLING = "nonlinear-mean-pooling-calibration", "nonlinear-sum-pooling"
FLOAT64, LYAPUNOV_SIGN = "nonlinear-float64-amplification", "nonlinear-lyapunov-sign"

#: Why matching 0.03 is no evidence: the pooling was chosen so that it does.
CALIBRATION = ("a calibration — mean pooling is chosen because it gives 0.03 (as in the authors' release, "
               "sunyx523/surprising-instabilities, single_layer/PySun.py, AvgPooling)")


@dataclass
class Thresholds:
    """The map's thresholds: ``maps`` (one per pooling), ``dt_blow`` = 2/α and ``dt_conv`` =
    2/λ(σ*) of the chapter's pooling, and ``lines`` (per pooling: σ*, ŷ*, λ's terms, thresholds)."""

    maps: dict[str, SigmaMap]
    sign: int
    dt_blow: float
    dt_conv: float
    sigma_star: float
    lines: list[str]

    def conv(self, pooling: str) -> float:
        """The convergence threshold 2/λ(σ*) with ``pooling``."""
        return self.maps[pooling].convergence_threshold(self.sign)


@dataclass
class Bifurcation:
    """The map's attractor ``orbit`` (map_keep × len(dts)) and full Lyapunov exponent ``lyap`` over
    ``dts``; the ``showcase`` steps (name → Δt), what the map says of each (``kind``) and its
    exponent (``exponent``)."""

    dts: np.ndarray
    orbit: np.ndarray
    lyap: np.ndarray
    showcase: dict[str, float]
    kind: dict[str, str]
    exponent: dict[str, float]

    def lines(self) -> list[str]:
        return [f"{name:>16}: Δt = {dt:<7} map says {self.kind[name]:<9} "
                f"Lyapunov exponent {self.exponent[name]:+.4f} per step" for name, dt in self.showcase.items()]

    def names(self, *kinds: str) -> list[str]:
        """The showcase steps the map puts in one of ``kinds``."""
        return [name for name in self.showcase if self.kind[name] in kinds]


@dataclass
class Fig4:
    """The runs of paper Fig. 4: ``runs[dtype, name]`` (unperturbed and perturbed in lockstep) for
    each precision and showcase step, the ``growths`` of their RelL1, the exponent of a long orbit
    of (★) at each chaotic step (``lyap_long``) and the ``finest`` precision."""

    runs: dict[tuple[str, str], NonlinearRun]
    growths: dict[tuple[str, str], Growth]
    lyap_long: dict[str, float]
    finest: str

    def lines(self) -> list[str]:
        out = []
        for (dname, name), g in self.growths.items():
            run = self.runs[dname, name]
            end = (f"blew up at n = {run.blew_up_at}" if run.blew_up_at is not None
                   else f"final loss {run.loss[-1]:.6g}")
            out.append(f"{dname} {name:>16}: RelL1 first {g.first:.2e}, peak {g.peak:.2e}, "
                       f"plateau {g.plateau:.2e} ({g.decades:.1f} decades, rate {g.rate:.3f} per step); {end}")
        return out


def fig4_values(f4: Fig4, bif: Bifurcation) -> dict[str, float]:
    """The values Fig. 4 reports beside its claims: each chaotic run's growth rate and the long
    orbit's Lyapunov exponent."""
    out = {}
    for (dname, name), g in f4.growths.items():
        if bif.kind[name] == "chaotic":
            out[f"growth_rate.{dname}.{name}"] = g.rate
            out[f"lyapunov.{name}"] = f4.lyap_long[name]
    return out


def precision_claims(growths: Mapping[tuple[str, str], Growth], chaotic: Sequence[str],
                     dtypes: Sequence[str]) -> list[Claim]:
    """With two precisions, at each chaotic step: the finer one starts from a perturbation below
    ``start_ratio`` × the coarser one's and is amplified ≥ ``decades`` too (the registry's)."""
    if len(set(dtypes)) < 2:
        return []
    ratio, decades = tolerance(FLOAT64, "start_ratio"), tolerance(FLOAT64, "decades")
    fine, coarse = sorted(set(dtypes), key=lambda d: np.finfo(d).eps)[:2]
    out = []
    for name in chaotic:
        gf, gc = growths[fine, name], growths[coarse, name]
        out.append(claim(f"{name}: {fine} amplifies from a smaller start", gf.first / gc.first, None,
                         criterion=f"{fine} first RelL1 < {ratio:g} × {coarse}'s, and grows ≥ {decades:g} "
                                   "decades too",
                         ok=gf.first < ratio * gc.first and gf.decades >= decades, verdict="extension",
                         shown_in="fig-nonlinear-precision"))
    return out


def start_ratio(growths: Mapping[tuple[str, str], Growth], chaotic: Sequence[str], dtypes: Sequence[str]) -> str:
    """The finer precision's first RelL1 over the coarser one's, at each chaotic step (text)."""
    if len(set(dtypes)) < 2:
        return "(one precision only)"
    fine, coarse = sorted(set(dtypes), key=lambda d: np.finfo(d).eps)[:2]
    return ", ".join(f"{growths[fine, n].first / growths[coarse, n].first:.1e}" for n in chaotic)


@dataclass
class Table3:
    """Paper Table 3's stability conditions for this image (``max_dt`` per regime, ``alpha_min``
    of the transitioning regime at the convergence threshold) beside the map's curvature at 0
    (``lam0``) and at σ* (``lam_star``)."""

    image_sum: float
    power_min: float
    power_max: float
    max_dt: dict[str, float]
    alpha_min: float
    lam0: float
    lam_star: float
    dt_conv: float

    def lines(self) -> list[str]:
        out = [f"Ī = {self.image_sum:g}, min|Î|² = {self.power_min:g}, max|Î|² = {self.power_max:.6g}"]
        for regime in nl.REGIMES:
            out.append(f"  {regime:>13}: Table 3 stable for Δt < {self.max_dt[regime]:.4g}"
                       + (f" (never: α < α_min = {self.alpha_min:.4g})" if self.max_dt[regime] == 0 else ""))
        out.append(f"  map: λ(0) = α − w²β/4 + O(1/M) = {self.lam0:.4f} (< 0: σ = 0 repels at every Δt); "
                   f"λ(σ*) = {self.lam_star:.4f} → converges for Δt < {self.dt_conv:.6f}")
        return out


def table3_claims(t3: Table3) -> list[Claim]:
    """The transitioning regime is unstable at every Δt: λ(0) < 0 for the map, and Table 3's
    α_min exceeds α (its maximal Δt is 0).  Both are the paper's formulas evaluated, not a run: a
    ``fact`` (if it failed, our formulas would be wrong, and the chapter fails)."""
    return [claim("transitioning regime unstable at every Δt", t3.lam0, None,
                  criterion="λ(0) < 0 (map) and Table 3's α_min > α (formulas evaluated)",
                  ok=t3.lam0 < 0 and t3.max_dt["transitioning"] == 0, verdict="fact",
                  shown_in="fig-nonlinear-regimes")]


@dataclass
class Transitioning:
    """The transitioning regime below the paper's 0.03: the map's F'(0) = 1 − Δt λ(0) (``amp0``)
    and a run of (8) at ``dt`` from the N(0, 1) kernel scaled into the regime (max|β(K*I)| =
    ``start``): ``left_at`` the first iteration at which a position left it (None: never),
    ``end`` max|β(K*I)| at the end of the run (or when it left), ``finite`` whether the run stayed
    finite."""

    dt: float
    lam0: float
    amp0: float
    start: float
    n_iter: int
    left_at: int | None
    end: float
    finite: bool

    @property
    def map_stable(self) -> bool:
        """Whether the map says σ = 0 attracts (|F'(0)| < 1)."""
        return self.amp0 < 1

    @property
    def run_stable(self) -> bool | None:
        """What the run says, by the criterion fixed in advance: unstable (False) if it left the
        regime, stable (True) if it stayed and max|β(K*I)| did not grow, else None (undecided)."""
        if self.left_at is not None:
            return False
        return True if self.end <= self.start else None

    def line(self) -> str:
        run = (f"left the transitioning regime at n = {self.left_at}" if self.left_at is not None
               else f"stayed in it for {self.n_iter} iterations")
        return (f"Δt = {self.dt:g} (< 0.03): map F'(0) = 1 − Δt·λ(0) = {self.amp0:.4f} "
                f"({'attracts' if self.map_stable else 'repels'}); run of (8) from max|β(K*I)| = "
                f"{self.start:g}: {run}, max|β(K*I)| = {self.end:.3g}")


def transitioning_claims(tr: Transitioning) -> list[Claim]:
    """The paper's "when Δt < 0.03 … all regimes are stable", for the transitioning regime: the
    map's multiplier |F'(0)| (a formula evaluated: shown as a ``fact``) and a run (measured: started
    inside the regime, it stays in it and does not grow → stable, ``reproduced``; it leaves it →
    unstable, ``refuted``; stays but grows → ``inconclusive``).  The measured row fails if it
    contradicts the map.  (The kernel still converges — it leaves the regime — which the
    finding's converging rows show: the statement holds in part.)"""
    shown = "sec-nonlinear-table3"
    return [claim("transitioning regime below 0.03: the map's multiplier |F'(0)| (computed)", tr.amp0, None,
                  criterion=f"Δt = {tr.dt:g}: |F'(0)| = |1 − Δt λ(0)| (< 1 attracts, > 1 repels), a formula "
                            "evaluated: shown, the run decides",
                  ok=bool(np.isfinite(tr.amp0)), verdict="fact", shown_in=shown),
            claim("transitioning regime below 0.03: stable? (run of (8), measured)", tr.left_at, None,
                  criterion=f"Δt = {tr.dt:g}, start max|β(K*I)| = {tr.start:g}, {tr.n_iter} iterations: stays "
                            "and does not grow → stable (reproduced); leaves the regime → unstable (refuted); "
                            "agrees with the map",
                  ok=tr.run_stable, verdict="reproduced",
                  sane=tr.finite and (tr.run_stable is None or tr.run_stable == tr.map_stable), shown_in=shown)]


@dataclass
class Reduction:
    """Scheme (8) against (★) at the converging showcase step, in ``dtype`` (float64 if run):
    ``gap`` = max|σₙ(8) − σₙ(★)| / max|σ|, ``perp_ratio`` = ‖K⊥ⁿ‖ / (|1−αΔt|ⁿ ‖K⊥⁰‖) at n = ``n``;
    ``tol`` the gap allowed; ``orbits``: the first 61 iterates of (★) per non-blow-up step."""

    dtype: str
    dt: float
    gap: float
    n: int
    perp_ratio: float
    tol: float
    orbits: dict[str, np.ndarray]

    def line(self) -> str:
        return (f"Δt = {self.dt} ({self.dtype}): max|σ_n(8) − σ_n(★)| / max|σ| = {self.gap:.2e}; "
                f"‖K⊥^{self.n}‖ / (|1−αΔt|^{self.n} ‖K⊥^0‖) = {self.perp_ratio:.12f}")


def reduction_claims(red: Reduction) -> list[Claim]:
    """(8) follows (★) to ``tol`` (rounding), and K⊥ decays by exactly (1 − αΔt) per step."""
    return [claim("scheme (8) follows the σ-map (★)", red.gap, None,
                  criterion=f"max relative gap < {red.tol:g} ({red.dtype}, converging Δt)",
                  ok=red.gap < red.tol, verdict="extension", shown_in="fig-nonlinear-reduction"),
            claim("K⊥ decays by (1 − αΔt) per step", red.perp_ratio, None,
                  criterion=f"‖K⊥^{red.n}‖ / (|1−αΔt|^{red.n}‖K⊥^0‖) = 1 ± 1e-6",
                  ok=abs(red.perp_ratio - 1) < 1e-6, verdict="extension", shown_in="fig-nonlinear-reduction")]


@dataclass
class Measured:
    """Both thresholds bisected on the full scheme (``conv``, ``blow`` and the runs each took),
    the slow-convergence ``bias`` of the convergence one, and the other pooling run at 0.9 × the
    paper's 0.03 and at 0.9 × its own map threshold: ``other_runs`` = (label, Δt, last relative
    change, whether the map says it converges)."""

    pooling: str
    conv: float
    conv_calls: int
    blow: float
    blow_calls: int
    bias: float
    other: str
    other_runs: list[tuple[str, float, float, bool]]

    def lines(self, th: Thresholds) -> list[str]:
        out = [f"{self.pooling} pooling: convergence threshold measured {self.conv:.6f} ({self.conv_calls} runs), "
               f"map {th.dt_conv:.6f}",
               f"{self.pooling} pooling: blow-up threshold measured {self.blow:.6f} ({self.blow_calls} runs), "
               f"map {th.dt_blow:.6f}"]
        for label, dt, change, converges in self.other_runs:
            out.append(f"{self.other} pooling, Δt = {label} = {dt:.5f}: last relative change {change:.2e} "
                       f"(map: {'converges' if converges else 'does not converge'})")
        return out


def calibrated_threshold(name: str, dt: float, how: str, of: str) -> Claim:
    """The convergence threshold ``dt`` within the registry's :data:`CALIBRATED` share of the
    paper's 0.03 (one digit): a ``calibration`` (:data:`CALIBRATION` says why), its criterion
    "``how`` N% ``of`` (one digit)"."""
    ref = paper("fig4_nonlinear.converge_below_dt")
    return claim(name, dt, ref, criterion=f"{how} {100 * tolerance(CALIBRATED):g}% {of} (one digit): {CALIBRATION}",
                 ok=abs(dt - ref) < tolerance(CALIBRATED) * ref, verdict="calibration",
                 shown_in="fig-nonlinear-bifurcation")


def measured_claims(ms: Measured, th: Thresholds) -> list[Claim]:
    """The measured blow-up threshold is 2/α within 1% (the paper's 0.1); with mean pooling the
    measured convergence threshold is the paper's 0.03 within 10% (a ``calibration``: see
    :data:`CALIBRATION`); it is the map's 2/λ(σ*) within
    1% + the slow-convergence bias; the other pooling converges, or not, as (★) says (at the
    paper's 0.03 sum pooling does not: a correction of the paper's written model)."""
    tol_blow = tolerance("nonlinear-blowup-above-0.1")
    out = [claim("blow-up threshold: measured = 2/α", ms.blow, paper("fig4_nonlinear.blow_up_above_dt"),
                 criterion=f"bisection on the run within {100 * tol_blow:g}% of 2/α (the paper: blows up above 0.1)",
                 ok=abs(ms.blow - th.dt_blow) < tol_blow * th.dt_blow, verdict="reproduced",
                 shown_in="fig-nonlinear-bifurcation")]
    if ms.pooling == "mean":
        out.append(calibrated_threshold("convergence threshold (mean pooling): measured ≈ the paper's 0.03",
                                        ms.conv, "bisection on the run within", "of 0.03"))
    out.append(claim(f"convergence threshold ({ms.pooling} pooling): measured = map", ms.conv, th.dt_conv,
                     criterion=f"within {100 * (ms.bias + 0.01):.1f}% of 2/λ(σ*) (1% + the slow-convergence bias)",
                     ok=abs(ms.conv - th.dt_conv) < (ms.bias + 0.01) * th.dt_conv, verdict="extension",
                     shown_in="fig-nonlinear-bifurcation"))
    change_max = tolerance(SUM_POOLING, "change_max")
    for label, _, change, converges in ms.other_runs:
        if label.endswith("threshold"):  # below the other pooling's own map threshold: a check of the map
            out.append(claim(f"{ms.other} pooling, Δt = {label}: "
                             f"{'converges' if converges else 'does not converge'} as (★) says", change, None,
                             criterion=f"last relative change {'<' if converges else '>'} {change_max:g}",
                             ok=(change < change_max) == converges, verdict="extension",
                             shown_in="fig-nonlinear-bifurcation"))
        else:  # at the paper's 0.03: does the other pooling converge there, as the paper's runs do?
            out.append(claim(f"{ms.other} pooling, Δt = {label}: converges, as the paper's runs at 0.03", change,
                             None, criterion=f"last relative change < {change_max:g} → reproduced; does not "
                                             "converge → corrected (the paper's 0.03 is not this pooling's)",
                             ok=change < change_max, verdict="reproduced", if_fails="corrected",
                             shown_in="fig-nonlinear-bifurcation"))
    return out


@dataclass
class Sweep:
    """Across ``dts`` in (0, 2/α) (steps within 1% of 1/α left out): the map's Lyapunov exponent
    ``lyap`` and the measured amplification ``decades`` = log10(peak / first RelL1) of (8)."""

    dts: np.ndarray
    lyap: np.ndarray
    decades: np.ndarray

    def clear(self) -> tuple[np.ndarray, np.ndarray]:
        """(which steps have |Λ| ≥ the registry's ``lambda_min``, whether each step is amplified by
        ≥ its ``decades``)."""
        lam_min, decades = tolerance(LYAPUNOV_SIGN, "lambda_min"), tolerance(LYAPUNOV_SIGN, "decades")
        return np.abs(self.lyap) >= lam_min, self.decades >= decades

    def disagreements(self) -> list[float]:
        """The steps with a clear Λ where its sign does not predict amplification."""
        clear, amplified = self.clear()
        return [float(dt) for dt, c, lam, a in zip(self.dts, clear, self.lyap, amplified, strict=True)
                if c and (lam > 0) != a]

    def lines(self) -> list[str]:
        clear, amplified = self.clear()
        out = []
        for dt, c, lam, a, dec in zip(self.dts, clear, self.lyap, amplified, self.decades, strict=True):
            mark = "" if not c or (lam > 0) == a else "   <- disagrees"
            out.append(f"Δt = {dt:.5f}: Λ = {lam:+.3f}, measured {dec:5.2f} decades{mark}")
        agree = (self.lyap[clear] > 0) == amplified[clear]
        out.append(f"the sign of Λ predicts amplification at {int(agree.sum())} of "
                   f"{int(clear.sum())} steps with |Λ| ≥ {tolerance(LYAPUNOV_SIGN, 'lambda_min'):g}")
        return out


def sweep_claims(sw: Sweep) -> list[Claim]:
    """Λ > 0 ⇔ amplified: the sign of Λ predicts amplification (≥ ``decades``) at ≥ ``share`` of
    the steps with |Λ| ≥ ``lambda_min``, and there are at least 3 of them (the registry's)."""
    clear, amplified = sw.clear()
    agree = (sw.lyap[clear] > 0) == amplified[clear]
    share = float(agree.mean()) if clear.any() else float("nan")
    t = {k: tolerance(LYAPUNOV_SIGN, k) for k in ("decades", "share", "lambda_min")}
    return [claim("Λ > 0 ⇔ perturbation amplified (sweep)", share, None,
                  criterion=f"the sign of Λ predicts amplification (≥ {t['decades']:g} decades) at ≥ "
                            f"{100 * t['share']:g}% of the steps with |Λ| ≥ {t['lambda_min']:g}, at least 3 of them",
                  ok=share >= t["share"] and clear.sum() >= 3, verdict="extension",
                  shown_in="fig-nonlinear-lyapunov")]
