"""The paper's reported numbers, and a chapter's ``results.json`` (what the scorecard shows).

``reported.yml`` is a transcription of the paper's tables and figures: facts to compare against,
never used as results.  A chapter records each claim it reproduces with :meth:`Results.claim`, then
calls :meth:`Results.finish`, which writes ``results.json`` beside the executed notebook and raises
if any claim failed — a chapter whose science fails, fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


@cache
def _reported() -> dict[str, Any]:
    return yaml.safe_load(resources.files("instab").joinpath("reported.yml").read_text())


def paper(key: str) -> Any:
    """A number the paper reports, by dotted path into ``reported.yml``.

    >>> paper("fig1_heat.cfl")
    0.5
    """
    return _numbers(_node(key))


def printed(key: str) -> str:
    """The number at ``key`` as the paper prints it (its text in ``reported.yml``, trailing zeros kept
    where the file quotes it)."""
    return str(_node(key)).strip()


def printed_halfwidth(key: str) -> float:
    """Half a unit in the last digit of the number at ``key`` as the paper prints it (its text in
    ``reported.yml``): the precision of a rounded number, e.g. 3.8e6 → 5e4, 1.42e8 → 5e5.

    >>> printed_halfwidth("table2_linear.empirical_windowed.16.alpha_min")
    50000.0
    """
    from decimal import Decimal

    exponent = Decimal(str(_node(key)).strip()).as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"{key!r}: {_node(key)!r} is not a finite number")
    return 0.5 * 10.0**exponent


def _node(key: str) -> Any:
    node: Any = _reported()
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and part.isdigit() and int(part) in node:
            node = node[int(part)]
        else:
            have = list(node) if isinstance(node, dict) else node
            raise KeyError(f"{key!r}: no {part!r} in reported.yml (have: {have})")
    return node


def _numbers(node: Any) -> Any:
    """YAML 1.1 (PyYAML) reads ``1.07e9`` as a string (it wants ``1.07e+9``): convert such strings."""
    if isinstance(node, dict):
        return {k: _numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_numbers(v) for v in node]
    if isinstance(node, str):
        try:
            return float(node)
        except ValueError:
            return node
    return node


def _plain(x: Any) -> Any:
    """Convert NumPy / torch scalars and arrays to JSON-ready Python values (NaN/inf as strings)."""
    if hasattr(x, "tolist"):
        x = x.tolist()
    if isinstance(x, float):
        return x if math.isfinite(x) else repr(x)
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


#: What a claim's verdict says about the paper's statement (the scorecard groups and counts by it).
VERDICTS: dict[str, str] = {
    "reproduced": "the paper's statement holds in our runs",
    "corrected": "the paper's statement is wrong in a detail; ours is the right one",
    "refuted": "the paper's statement fails in our runs",
    "extension": "our own claim, beyond the paper",
    "calibration": "a number we set up to match the paper (a definition or normalisation), not evidence",
    "fact": "true by construction: shown, never counted as evidence",
    "inconclusive": "the ensemble cannot decide it at this scale: shown, not failing, counted apart",
}
#: Verdicts that count as evidence about the paper.
EVIDENCE = ("reproduced", "corrected", "refuted", "extension")


def check_verdict(verdict: str) -> str:
    """Raise ``ValueError`` naming ``verdict`` and the allowed ones unless it is one of :data:`VERDICTS`."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not allowed; choose one of {list(VERDICTS)}")
    return verdict


#: Verdicts a claim rule names for when its criterion holds; ``refuted`` and ``inconclusive`` are
#: outcomes only the data give (a criterion that fails, an interval that straddles).
IF_HOLDS = ("reproduced", "corrected", "extension", "calibration", "fact")
#: Verdicts whose criterion failing means the machinery, not the paper, is wrong: the claim is not
#: sane and the chapter fails (a control, or a number set up to match the paper).
MACHINERY = ("calibration", "fact")


@dataclass
class Claim:
    """One claim: our number, the paper's (if it reports one), the criterion, whether it held
    (``ok``), what that says about the paper (``verdict``, one of :data:`VERDICTS`, decided by the
    data) and whether the measurement is sane (``sane``: if not, the chapter fails)."""

    name: str
    ours: Any
    paper: Any = None
    criterion: str = ""
    ok: bool = True
    verdict: str = "reproduced"
    interval: Any = None
    #: the label of the figure, table or section that shows the claim (the scorecard links it)
    shown_in: str | None = None
    sane: bool = True


def _has_nan(x: Any) -> bool:
    if isinstance(x, float):
        return math.isnan(x)
    if isinstance(x, str):
        return x == "nan"
    if isinstance(x, list | tuple):
        return any(_has_nan(v) for v in x)
    if isinstance(x, dict):
        return any(_has_nan(v) for v in x.values())
    return False


def claim(name: str, ours: Any, paper: Any = None, *, criterion: str = "", ok: bool | None, verdict: str,
          interval: Any = None, shown_in: str | None = None, sane: bool | None = None,
          if_fails: str = "refuted") -> Claim:
    """A claim, not yet recorded (a study's rule returns it; :meth:`Results.record` records it).

    ``ok`` is the criterion's outcome on the data: ``True`` — the claim's verdict is ``verdict``
    (what holding means: one of :data:`IF_HOLDS`); ``False`` — it is ``if_fails`` (``refuted``
    unless the rule states an alternative, e.g. ``corrected``); ``None`` (an ensemble whose
    interval straddles the criterion) — ``inconclusive``.  The verdict is thus an outcome of the
    data, never a label: the registry (:mod:`instab.findings`) fixes the expected one and the build
    fails when they differ.  A claim *fails* — its chapter fails — only when it is not ``sane``:
    a NaN in ``ours`` or ``interval`` (unless ``sane`` says otherwise), ``sane=False`` (a residual
    too large, a non-finite number), or a ``fact``/``calibration`` whose criterion does not hold
    (a control or a set-up that broke).  ``interval`` is an optional interval around ``ours``,
    ``shown_in`` the label of the figure or section that shows it (a MyST target of the chapter,
    which the scorecard links)."""
    if verdict not in IF_HOLDS:
        raise ValueError(f"claim {name!r}: verdict {verdict!r} names what holding means; choose one of "
                         f"{list(IF_HOLDS)} ('refuted' and 'inconclusive' are outcomes the data give)")
    check_verdict(if_fails)
    if if_fails in ("inconclusive", *MACHINERY) or if_fails == verdict:
        raise ValueError(f"claim {name!r}: if_fails={if_fails!r} is not allowed; choose 'refuted' or a decided "
                         f"verdict other than {verdict!r}")
    ours, interval = _plain(ours), _plain(interval)
    if sane is None:
        sane = not (_has_nan(ours) or _has_nan(interval))
    holds = None if ok is None else bool(ok)  # NumPy's bools too
    outcome = verdict if holds else "inconclusive" if holds is None else if_fails
    if verdict in MACHINERY and holds is not True:
        sane = False
    return Claim(name, ours, _plain(paper), criterion, holds is not False, outcome, interval, shown_in, bool(sane))


def decide(name: str, ours: Any, interval: Any, paper: Any = None, *, criterion: str, decision: bool | None,
           verdict: str, shown_in: str | None = None, if_fails: str = "refuted") -> Claim:
    """A claim about a chaotic outcome, decided by an ensemble statistic and its interval:
    ``decision`` True (the interval says it holds: ``verdict``), False (the interval says it fails:
    ``if_fails``, by default ``refuted``) or None (the interval straddles the criterion:
    ``inconclusive``)."""
    return claim(name, ours, paper, criterion=criterion, ok=decision, verdict=verdict, interval=interval,
                 shown_in=shown_in, if_fails=if_fails)


def judge(name: str, ours: Any, interval: Any, paper: Any = None, *, criterion: str, holds: bool | None,
          sane: bool, shown_in: str | None = None, if_holds: str = "reproduced", if_fails: str = "refuted") -> Claim:
    """A claim whose verdict the data decide and whose measurement has its own sanity test: the
    paper's statement ``if_holds`` (``reproduced``) if ``holds``, ``if_fails`` (``refuted``) if it
    fails, ``inconclusive`` if the interval cannot say.  The claim fails only if the measurement is
    not ``sane`` (e.g. not finite)."""
    return claim(name, ours, paper, criterion=criterion, ok=holds, verdict=if_holds, interval=interval,
                 shown_in=shown_in, sane=bool(sane), if_fails=if_fails)


@dataclass
class Results:
    """The numbers a chapter reproduces.  ``chapter`` names it; ``params`` are its parameters."""

    chapter: str
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def record(self, *claims: Claim) -> None:
        """Record claims made by :func:`claim`, :func:`decide` or :func:`judge` (a study's rules).
        Returns nothing, so that a cell ending with it shows no stray output on the page."""
        for c in claims:
            if any(d.name == c.name for d in self.claims):
                raise ValueError(f"claim {c.name!r} is recorded twice")
            self.claims.append(c)

    def value(self, name: str, value: Any) -> None:
        """Record a number that is reported but not itself a pass/fail claim."""
        self.values[name] = _plain(value)

    def table(self) -> str:
        """The claims as a fixed-width text table (printed by the chapter)."""
        rows = [("claim", "ours", "interval", "paper", "criterion", "verdict", "holds")]
        for c in self.claims:
            rows.append((c.name, _fmt(c.ours), _fmt(c.interval), _fmt(c.paper), c.criterion, c.verdict,
                         "NOT SANE" if not c.sane else "yes" if c.ok else "no"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(s.ljust(w) for s, w in zip(r, widths, strict=True)).rstrip() for r in rows)

    def finish(self, path: str | Path = "results.json") -> None:
        """Write ``results.json`` (with the floating-point environment in force) and raise
        ``AssertionError`` naming every failed claim."""
        from instab.determinism import environment

        Path(path).write_text(json.dumps({"chapter": self.chapter, "params": _plain(self.params),
                                          "environment": environment(),
                                          "claims": [asdict(c) for c in self.claims],
                                          "values": self.values}, indent=1))
        failed = [c for c in self.claims if not c.sane]
        if failed:
            raise AssertionError("claims whose measurement is not sane (or a control that broke): " + "; ".join(
                f"{c.name}: ours={_fmt(c.ours)} paper={_fmt(c.paper)} ({c.criterion})" for c in failed))


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return str(x)


def counts(claims: list[dict[str, Any]]) -> dict[str, int]:
    """Claims per verdict (every verdict listed, zeros included), and ``failed``: claims that are not
    sane (results written before claims had ``sane``: that did not hold)."""
    out = {v: sum(c.get("verdict") == v for c in claims) for v in VERDICTS}
    out["failed"] = sum(not sane(c) for c in claims)
    return out


def sane(c: Mapping[str, Any]) -> bool:
    """Whether a recorded claim (a ``results.json`` row) is sane; rows written before claims had
    ``sane`` failed exactly when they did not hold."""
    return bool(c.get("sane", c["ok"]))


def describe_environment(env: dict[str, Any]) -> str:
    """One line for a results.json ``environment`` record."""
    set_vars = ", ".join(f"{k}={v}" for k, v in env.get("vars", {}).items() if v) or "no variable set"
    return (f"floating-point environment **{env.get('name')}** ({set_vars}); CPU kernels "
            f"{env.get('cpu_capability')}, MKL {env.get('mkl')}, oneDNN {env.get('onednn')}, torch {env.get('torch')}, "
            f"NumPy {env.get('numpy')}, {env.get('threads')} thread(s); CPU {env.get('cpu')}")


def scorecard(results_files: list[Path], finding_of: dict[str, dict[str, str]] | None = None) -> str:
    """A MyST markdown scorecard: the environment, claims counted by verdict, then every claim of
    every chapter grouped by verdict, ours next to the paper's, each with the finding it is evidence
    of (``finding_of``: chapter → claim name → finding id; the chapter's section is the target
    ``scorecard-<chapter>``)."""
    data = [json.loads(Path(f).read_text()) for f in results_files]
    if not data:
        return "*No chapter has been executed yet.*\n"
    every = [c for d in data for c in d["claims"]]
    total = counts(every)
    envs = {describe_environment(d["environment"]) for d in data if "environment" in d}
    lines = [f"Executed under: {e}." for e in sorted(envs)] + [""]
    lines += ["| verdict | claims | meaning |", "|---|---|---|"]
    lines += [f"| {v} | {total[v]} | {VERDICTS[v]} |" for v in VERDICTS]
    lines += [f"| **failed** | {total['failed']} | the measurement is not sane, or a control broke: the chapter "
              "fails |", ""]
    for d in data:
        c_of = counts(d["claims"])
        summary = ", ".join(f"{c_of[v]} {v}" for v in VERDICTS if c_of[v])
        owner = (finding_of or {}).get(d["chapter"], {})
        lines += [f"(scorecard-{d['chapter']})=", f"### {{doc}}`{d['chapter']}`", "",
                  f"{summary}; {c_of['failed']} failed.", "",
                  "| claim (→ its finding) | ours | interval | paper | criterion | verdict | holds |",
                  "|---|---|---|---|---|---|---|"]
        for v in VERDICTS:
            for c in (c for c in d["claims"] if c.get("verdict") == v):
                label = c.get("shown_in")
                name = c["name"] + (f" ({{numref}}`{label}`)" if label else "")
                finding = f" → *{owner[c['name']]}*" if c["name"] in owner else ""
                cells = [name + finding, _fmt(c["ours"]), _fmt(c.get("interval")), _fmt(c["paper"]), c["criterion"],
                         v, "**not sane**" if not sane(c) else "yes" if c["ok"] else "no"]
                lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in cells) + " |")
        lines.append("")
    return "\n".join(lines)
