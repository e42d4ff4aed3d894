"""The findings registry: every statement of the paper the book tests, counted once, with the
verdict expected at each scale fixed before the run (``book/findings.yml``).

A chapter records *claims* (rows of evidence, :mod:`instab.report`); the registry groups them into
*findings*.  A finding names its chapter, the paper's words and section, the criterion, the claims
that are its evidence (exact names, or a prefix ending in ``*``), and the verdict expected at each
scale (``ci``, ``default``, ``paper``; ``null`` where the chapter is not executed at that scale).
Its verdict at a scale is computed from its evidence (:func:`verdict_of`); :func:`check` lists every
disagreement — an unregistered claim, a claim claimed by two findings, evidence that is missing, a
verdict that differs from the expected one — so the build fails until the registry or the data are
reviewed.  ``kind: control`` findings are checks of the machinery (k = 1 twice bitwise, a bound that
holds by construction): shown, never counted as evidence about the paper.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from instab import paths
from instab.report import MACHINERY, VERDICTS, sane

#: The scales a registry entry states a verdict for.
SCALES = ("ci", "default", "paper")
#: What a finding is about: a statement of the paper, one of ours, or a check of the machinery.
KINDS = ("paper", "ours", "control")
#: Verdicts a finding may be expected to have: the claims' (:data:`instab.report.VERDICTS`).
FINDING_VERDICTS = tuple(VERDICTS)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One registered finding (see the module docstring)."""

    id: str
    chapter: str
    kind: str
    section: str
    quote: str
    criterion: str
    evidence: tuple[str, ...]
    expected: Mapping[str, str | list[str] | None]
    #: the claims whose verdict is the finding's (default: all of its evidence)
    decided_by: tuple[str, ...] = ()
    #: why the expected verdict differs between scales (required when it does)
    why_scale: str = ""
    #: the criterion's tolerance(s), fixed here before the run and read by the chapter's rule
    #: (:func:`tolerance`): a number, or named numbers
    tolerance: float | Mapping[str, float] | None = None
    #: revisions made after data at some scale were seen: each {date, was, why} (listed by the report)
    revised: tuple[Mapping[str, str], ...] = ()

    def matches(self, claim_name: str, patterns: Sequence[str] | None = None) -> bool:
        """Whether ``claim_name`` is one of ``patterns`` (default: the evidence): an exact name, or a
        prefix ending in ``*``."""
        return any(_match(p, claim_name) for p in (self.evidence if patterns is None else patterns))


def _match(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern or (any(ch in pattern for ch in "?[") and fnmatch.fnmatchcase(name, pattern))


class RegistryError(ValueError):
    """The registry itself is malformed (names the file, the entry and the field)."""


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps the last
    silently: a second ``expected`` or ``why_scale`` would replace the first unseen)."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(path: str | Path, chapters: Iterable[str] | None = None) -> list[Finding]:
    """Read and validate the registry at ``path``; with ``chapters``, each entry's chapter must be one."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeys)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise RegistryError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("findings"), list):
        raise RegistryError(f"{path}: expected a mapping with a list 'findings'")
    known = None if chapters is None else set(chapters)
    out: list[Finding] = []
    for i, e in enumerate(raw["findings"]):
        where = f"{path}: findings[{i}]" + (f" ({e.get('id')!r})" if isinstance(e, dict) else "")
        _check_entry(e, where, known)
        tol, revised = e.get("tolerance"), e.get("revised") or []
        criterion = render_criterion(str(e["criterion"]).strip(), tol, where)
        f = Finding(str(e["id"]), e["chapter"], e["kind"], str(e["section"]), str(e["quote"]).strip(),
                    criterion, tuple(e["evidence"]), dict(e["expected"]), tuple(e.get("decided_by") or ()),
                    str(e.get("why_scale") or "").strip(), dict(tol) if isinstance(tol, dict) else tol,
                    tuple({k: str(v).strip() for k, v in r.items()} for r in revised))
        if any(g.id == f.id for g in out):
            raise RegistryError(f"{where}: id {f.id!r} is used twice")
        out.append(f)
    return out


def _check_entry(e: Any, where: str, known: set[str] | None) -> None:
    """Raise :class:`RegistryError` naming the registry entry ``e`` (at ``where``) and what is wrong
    with it: a missing or unknown field, a kind, chapter or verdict not allowed, a scale's verdicts
    without their reason, evidence that names no claim, a tolerance or a revision not well formed."""
    if not isinstance(e, dict):
        raise RegistryError(f"{where}: each finding must be a mapping")
    required = ("id", "chapter", "kind", "section", "quote", "criterion", "evidence", "expected")
    missing = [k for k in required if k not in e]
    if missing:
        raise RegistryError(f"{where}: missing {missing}")
    allowed = {*required, "decided_by", "why_scale", "tolerance", "revised"}
    if set(e) - allowed:
        raise RegistryError(f"{where}: unknown field(s) {sorted(set(e) - allowed)}; allowed {sorted(allowed)}")
    if e["kind"] not in KINDS:
        raise RegistryError(f"{where}: kind={e['kind']!r} is not allowed; choose one of {list(KINDS)}")
    if known is not None and e["chapter"] not in known:
        raise RegistryError(f"{where}: chapter={e['chapter']!r} is not a chapter; choose one of {sorted(known)}")
    exp = e["expected"]
    if not isinstance(exp, dict) or set(exp) != set(SCALES):
        raise RegistryError(f"{where}: expected must give a verdict (or null) for each of {list(SCALES)}")
    for s, v in exp.items():
        for one in (v if isinstance(v, list) else [v]):
            if one is not None and one not in FINDING_VERDICTS:
                raise RegistryError(f"{where}: expected.{s}={one!r} is not allowed; choose one of "
                                    f"{list(FINDING_VERDICTS)}, a list of them, or null")
        if isinstance(v, list) and (len(v) < 2 or "inconclusive" not in v or len(set(v)) != len(v)):
            raise RegistryError(f"{where}: expected.{s}={v!r}: a list names decided verdicts and "
                                f"'inconclusive' (an ensemble too small to decide the same way on every CPU: "
                                f"the book does not decide the finding at that scale)")
    if len({str(v) for v in exp.values() if v is not None}) > 1 and not e.get("why_scale"):
        raise RegistryError(f"{where}: its expected verdict depends on the scale; say why (why_scale)")
    said = {one for v in exp.values() for one in (v if isinstance(v, list) else [v])}
    if e["kind"] == "ours" and said & {"reproduced", "corrected"}:
        raise RegistryError(f"{where}: a finding of ours holds as 'extension' (or fails: 'refuted'); "
                            f"'reproduced' and 'corrected' are verdicts about the paper")
    if e["kind"] == "control" and any(v not in (None, "fact") for v in exp.values()):
        raise RegistryError(f"{where}: a control's expected verdict is 'fact' (it is no evidence about the paper)")
    evidence = e["evidence"]
    if not isinstance(evidence, list) or not evidence or not all(isinstance(x, str) for x in evidence):
        raise RegistryError(f"{where}: evidence must be a non-empty list of claim names or prefixes ('name*')")
    tol = e.get("tolerance")
    values = list(tol.values()) if isinstance(tol, dict) else [tol]
    if tol is not None and not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf
                                   for v in values):
        raise RegistryError(f"{where}: tolerance={tol!r} must be a positive finite number or a mapping of "
                            f"names to such numbers")
    revised = e.get("revised") or []
    if not isinstance(revised, list) or not all(isinstance(r, dict) and set(r) == {"date", "was", "why"}
                                                and all(str(v).strip() for v in r.values()) for r in revised):
        raise RegistryError(f"{where}: revised must be a list of {{date, was, why}}, each said, got {revised!r}")


#: A tolerance in a criterion's text: ``{tol}`` (a finding's one tolerance) or ``{tol.name}`` (a
#: named one), ``%`` before the brace to print it as a percentage (``{tol%}``: 0.01 → "1%").
PLACEHOLDER = re.compile(r"\{tol(?:\.(\w+))?(%?)\}")


def render_criterion(text: str, tol: float | Mapping[str, float] | None, where: str = "criterion") -> str:
    """A criterion's text with its tolerances written in from the registry's values
    (:data:`PLACEHOLDER`), so that the text and the rule read one number.  Raises
    :class:`RegistryError` for a placeholder that names no tolerance, and for a tolerance the text
    never names (a number the reader of the criterion would not see)."""
    named: dict[str | None, float] = ({k: float(v) for k, v in tol.items()} if isinstance(tol, Mapping)
                                      else {} if tol is None else {None: float(tol)})
    used: set[str | None] = set()

    def value(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in named:
            raise RegistryError(f"{where}: criterion names {m.group(0)!r}, but the tolerance is "
                                f"{tol!r}: use " + (", ".join(f"{{tol.{k}}}" for k in named if k) or "{tol}"))
        used.add(key)
        v = float(named[key])
        return f"{100 * v:g}%" if m.group(2) else f"{v:g}"

    out = PLACEHOLDER.sub(value, text)
    missing = [k for k in named if k not in used]
    if missing:
        shown = ", ".join("{tol}" if k is None else f"{{tol.{k}}}" for k in missing)
        raise RegistryError(f"{where}: the criterion's text does not name its tolerance ({shown}): write it "
                            f"from the registry's value, not as a typed number")
    return out


@functools.cache
def _tolerances(path: Path, mtime_ns: int) -> dict[str, float | Mapping[str, float] | None]:
    return {f.id: f.tolerance for f in load(path)}


def tolerances(path: str | Path | None = None) -> dict[str, float | Mapping[str, float] | None]:
    """Every finding's tolerance: {id: number, mapping or None}, from the registry at ``path``
    (default :data:`instab.paths.REGISTRY`), re-read when the file changes."""
    p = Path(path if path is not None else paths.REGISTRY).resolve()
    return _tolerances(p, p.stat().st_mtime_ns)


def tolerance(finding: str, key: str | None = None, path: str | Path | None = None) -> float:
    """The tolerance the registry fixes for ``finding``'s criterion (``key``: one of its named
    tolerances).  A chapter's claim rule reads it here, so that changing it in the registry — not in
    the code — changes the verdict, and a verdict the registry does not expect fails the build."""
    every = tolerances(path)
    if finding not in every:
        raise KeyError(f"finding {finding!r} is not in the registry {path or paths.REGISTRY}")
    tol = every[finding]
    if isinstance(tol, Mapping):
        if key is None or key not in tol:
            raise KeyError(f"finding {finding!r}: tolerance {key!r} is not registered; it has {sorted(tol)}")
        return float(tol[key])
    if tol is None or key is not None:
        raise KeyError(f"finding {finding!r} registers " + ("no tolerance" if tol is None else "one unnamed tolerance"))
    return float(tol)


def assign(findings: Sequence[Finding], chapter: str, claims: Sequence[Mapping[str, Any]]) -> tuple[
        dict[str, list[Mapping[str, Any]]], list[str]]:
    """Each claim of ``chapter`` under the one finding whose evidence names it: ({finding id:
    claims}, problems) — a claim no finding names, or two do, is a problem."""
    mine = [f for f in findings if f.chapter == chapter]
    rows: dict[str, list[Mapping[str, Any]]] = {f.id: [] for f in mine}
    problems = []
    for c in claims:
        owners = [f.id for f in mine if f.matches(c["name"])]
        if not owners:
            problems.append(f"{chapter}: claim {c['name']!r} belongs to no finding of the registry")
        elif len(owners) > 1:
            problems.append(f"{chapter}: claim {c['name']!r} belongs to {len(owners)} findings {owners}")
        else:
            rows[owners[0]].append(c)
    return rows, problems


def verdict_of(f: Finding, rows: Sequence[Mapping[str, Any]]) -> tuple[str | None, str]:
    """A finding's verdict from its evidence rows: (verdict, problem).

    ``failed`` if a row is not sane (:func:`instab.report.sane`); else the one verdict its deciding
    rows (``decided_by``, else every row; a ``fact`` or ``calibration`` row beside rows of evidence
    is shown, not counted) share; ``corrected`` if some hold and others are refuted or corrected
    (one rule for a statement true on part of its stated range or settings and false on the rest:
    the book states where it holds), whatever rows that cannot decide would say; ``inconclusive``
    if the rows that decide, decide one way (reproduced, refuted, extension) and others cannot
    decide; a finding whose deciding rows decide different ways otherwise is a problem of the
    registry (split it, or say which rows decide).  ``(None, "")`` when it has no rows (not
    executed at this scale)."""
    if not rows:
        return None, ""
    if any(not sane(r) for r in rows):
        return "failed", ""
    deciding = [r for r in rows if not f.decided_by or f.matches(r["name"], f.decided_by)]
    if not deciding:
        return None, f"{f.id}: none of its rows is one of decided_by {list(f.decided_by)}"
    evidence = [r for r in deciding if r["verdict"] not in MACHINERY]
    deciding = evidence or deciding  # a fact or calibration beside evidence is shown, never counted
    verdicts = sorted({r["verdict"] for r in deciding})
    if "refuted" in verdicts and set(verdicts) & {"reproduced", "corrected"} and \
            set(verdicts) <= {"reproduced", "corrected", "refuted", "inconclusive"}:
        return "corrected", ""  # it holds on part of its stated range or settings, fails on the rest
    decided = [v for v in verdicts if v != "inconclusive"]
    if "corrected" in decided and set(decided) <= {"corrected", "reproduced"}:
        return "corrected", ""  # it needs a correction somewhere, whatever the undecided rows say
    if len(decided) == 1 and "inconclusive" in verdicts:  # some rows decide (one way), others cannot
        return "inconclusive", ""
    if len(verdicts) > 1:
        return None, (f"{f.id}: its deciding rows disagree ({', '.join(verdicts)}): split the finding or "
                      f"name the rows that decide it (decided_by)")
    return verdicts[0], ""


def _fmt_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{r['name']} = {r['ours']!r} ({r['verdict']})" for r in rows[:4]) + (
        f"; … {len(rows) - 4} more" if len(rows) > 4 else "")


def check(findings: Sequence[Finding], results: Mapping[str, Mapping[str, Any]], scale: str) -> tuple[
        dict[str, str | None], list[str]]:
    """Decide every finding of the executed chapters (``results``: chapter → its results.json) at
    ``scale``: ({finding id: verdict}, problems).  A problem is an unregistered or doubly registered
    claim, a finding of an executed chapter with no evidence, or a computed verdict that differs
    from the registry's expected one (naming both and the numbers)."""
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} is not allowed; choose one of {list(SCALES)}")
    verdicts: dict[str, str | None] = {}
    problems: list[str] = []
    for chapter, res in results.items():
        rows, p = assign(findings, chapter, res["claims"])
        problems += p
        for f in (f for f in findings if f.chapter == chapter):
            v, why = verdict_of(f, rows[f.id])
            if why:
                problems.append(why)
            verdicts[f.id] = v
            expected = f.expected[scale]
            if v is None and not why and expected is not None:
                problems.append(f"{f.id}: expected {expected_text(expected)} at the {scale} scale, but no claim of "
                                f"{chapter} is its evidence ({list(f.evidence)})")
            elif v is not None and v not in allowed(f, scale):
                problems.append(f"{f.id}: verdict {v} at the {scale} scale, the registry expects "
                                f"{expected_text(expected)}: {_fmt_rows(rows[f.id])}")
    return verdicts, problems


#: Two quotes overlap when they share this many consecutive words (a sentence of the paper, not a phrase).
OVERLAP_WORDS = 12


def _words(text: str) -> list[str]:
    return " ".join(text.lower().replace("…", " ").split()).split(" ")


def shared_words(a: str, b: str, n: int = OVERLAP_WORDS) -> str | None:
    """The first run of ``n`` consecutive words quote ``a`` shares with quote ``b``, or None."""
    wa, wb = _words(a), " ".join(_words(b))
    for i in range(len(wa) - n + 1):
        run = " ".join(wa[i:i + n])
        if run in wb:
            return run
    return None


def overlapping_quotes(fs: Sequence[Finding]) -> list[str]:
    """Pairs of ``kind: paper`` findings whose quotes overlap: one sentence (or table cell) of the
    paper is one finding; its other settings are that finding's rows, or findings of our own."""
    paper = [f for f in fs if f.kind == "paper"]
    out = []
    for i, f in enumerate(paper):
        for g in paper[i + 1:]:
            run = shared_words(f.quote, g.quote)
            if run is not None:
                out.append(f"{f.id} and {g.id} quote the same text: '{run}…'")
    return out


def allowed(f: Finding, scale: str) -> tuple[str, ...]:
    """The verdicts the registry accepts for ``f`` at ``scale``: one, or (where the scale's ensemble
    is too small to decide the same way on every CPU) decided verdicts and ``inconclusive``: the
    book does not decide the finding at that scale, and its page says so."""
    v = f.expected.get(scale)
    return tuple(v) if isinstance(v, list) else () if v is None else (v,)


def counts(findings: Sequence[Finding], verdicts: Mapping[str, str | None]) -> dict[str, int]:
    """Findings about the paper and ours (controls apart) per verdict, each counted once."""
    out = {v: 0 for v in (*FINDING_VERDICTS, "failed")}
    for f in findings:
        v = verdicts.get(f.id)
        if v is not None and f.kind != "control":
            out[v] += 1
    return out


#: Short names of the verdicts in the verdict-by-scale table.
_NOT_RUN = "—"


def expected_text(v: str | list[str] | None) -> str:
    """A verdict (or an expected one, or the several a scale allows) as a table cell shows it."""
    if isinstance(v, list):
        return " or ".join(v)
    return _NOT_RUN if v is None else ("**failed**" if v == "failed" else v)


def verdict_table(findings: Sequence[Finding], verdicts: Mapping[str, str | None], scale: str,
                  problems: Sequence[str] = ()) -> str:
    """MyST markdown: the findings counted by verdict (each once; controls apart), then one row per
    finding with its expected verdict at every scale and this build's computed one, and the reason
    wherever the verdict depends on the scale.  ``problems`` (from :func:`check`) are listed first."""
    lines: list[str] = []
    if problems:
        lines += ["```{error}", f"The registry and this build disagree ({len(problems)}):", ""]
        lines += [f"- {p}" for p in problems] + ["```", ""]
    of_paper = counts([f for f in findings if f.kind == "paper"], verdicts)
    of_ours = counts([f for f in findings if f.kind == "ours"], verdicts)
    decided = [f for f in findings if verdicts.get(f.id) is not None]
    lines += [f"Findings decided in this build (**{scale}** scale): "
              f"{len([f for f in decided if f.kind == 'paper'])} about the paper, "
              f"{len([f for f in decided if f.kind == 'ours'])} of our own, and "
              f"{len([f for f in decided if f.kind == 'control'])} controls of the machinery (not counted).", "",
              "| verdict | the paper's | ours | meaning |", "|---|---|---|---|"]
    lines += [f"| {v} | {of_paper[v]} | {of_ours[v]} | {VERDICTS[v]} |" for v in FINDING_VERDICTS
              if of_paper[v] or of_ours[v] or v not in ("fact", "calibration")]
    lines += [f"| **failed** | {of_paper['failed']} | {of_ours['failed']} | a claim of the finding is not sane, "
              "or a control broke |", ""]
    lines += ["", "Expected verdicts at the ci, default and paper scales (— where a scale is not executed or not yet "
              "reviewed), and the verdict this build computed:", "",
              f"| finding | chapter | paper | expected: {' · '.join(SCALES)} | this build ({scale}) |",
              "|---|---|---|---|---|"]
    for f in sorted(findings, key=lambda f: (f.kind == "control", f.chapter, f.id)):
        got = verdicts.get(f.id)
        ok = allowed(f, scale)
        mark = "" if got is None or got in ok else " ≠ expected"
        if got is not None and len(ok) > 1:  # the registry accepts several: the book does not decide it here
            mark += f" (not decided at the {scale} scale: {' or '.join(ok)} are accepted)"
        name = f.id + {"ours": " (ours)", "control": " (control)"}.get(f.kind, "")
        why = f" — *{f.why_scale}*" if f.why_scale else ""
        why += "".join(f" — **revised** {r['date']} (was: {r['was']}; why: {r['why']})" for r in f.revised)
        expected = " · ".join(expected_text(f.expected[s]) for s in SCALES)
        evidence = f" ({{ref}}`rows <scorecard-{f.chapter}>`)" if got is not None else ""
        cells = [name + why, f"{{doc}}`{f.chapter} <{f.chapter}>`", f.section, expected,
                 expected_text(got) + mark + evidence]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
