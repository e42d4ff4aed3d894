"""The paper's reported numbers, and a chapter's ``results.json`` (what the scorecard shows).

``reported.yml`` is a transcription of the paper's tables and figures: facts to compare against,
never used as results.  A chapter records each claim it reproduces with :meth:`Results.claim`, then
calls :meth:`Results.finish`, which writes ``results.json`` beside the executed notebook and raises
if any claim failed — a chapter whose science fails, fails.
"""

from __future__ import annotations

import json
import math
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
    node: Any = _reported()
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and part.isdigit() and int(part) in node:
            node = node[int(part)]
        else:
            have = list(node) if isinstance(node, dict) else node
            raise KeyError(f"{key!r}: no {part!r} in reported.yml (have: {have})")
    return _numbers(node)


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


@dataclass
class Claim:
    """One reproduced claim: our number, the paper's (if it reports one), and whether it holds."""

    name: str
    ours: Any
    paper: Any = None
    criterion: str = ""
    ok: bool = True


@dataclass
class Results:
    """The numbers a chapter reproduces.  ``chapter`` names it; ``params`` are its parameters."""

    chapter: str
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def claim(self, name: str, ours: Any, paper: Any = None, *, criterion: str = "", ok: bool) -> bool:
        """Record a claim; ``ok`` is the chapter's test of it.  Returns ``ok``."""
        self.claims.append(Claim(name, _plain(ours), _plain(paper), criterion, bool(ok)))
        return bool(ok)

    def value(self, name: str, value: Any) -> None:
        """Record a number that is reported but not itself a pass/fail claim."""
        self.values[name] = _plain(value)

    def table(self) -> str:
        """The claims as a fixed-width text table (printed by the chapter)."""
        rows = [("claim", "ours", "paper", "criterion", "ok")]
        for c in self.claims:
            rows.append((c.name, _fmt(c.ours), _fmt(c.paper), c.criterion, "yes" if c.ok else "NO"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join("  ".join(s.ljust(w) for s, w in zip(r, widths, strict=True)).rstrip() for r in rows)

    def finish(self, path: str | Path = "results.json") -> None:
        """Write ``results.json`` and raise ``AssertionError`` naming every failed claim."""
        Path(path).write_text(json.dumps({"chapter": self.chapter, "params": _plain(self.params),
                                          "claims": [asdict(c) for c in self.claims],
                                          "values": self.values}, indent=1))
        failed = [c for c in self.claims if not c.ok]
        if failed:
            raise AssertionError("claims not reproduced: " + "; ".join(
                f"{c.name}: ours={_fmt(c.ours)} paper={_fmt(c.paper)} ({c.criterion})" for c in failed))


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return str(x)


def scorecard(results_files: list[Path]) -> str:
    """A MyST markdown scorecard: every claim of every chapter, ours next to the paper's."""
    lines = []
    for f in results_files:
        data = json.loads(Path(f).read_text())
        lines += [f"### {{doc}}`{data['chapter']}`", "", "| claim | ours | paper | criterion | reproduced |",
                  "|---|---|---|---|---|"]
        for c in data["claims"]:
            cells = [c["name"], _fmt(c["ours"]), _fmt(c["paper"]), c["criterion"], "✅" if c["ok"] else "❌"]
            lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in cells) + " |")
        lines.append("")
    return "\n".join(lines) if lines else "*No chapter has been executed yet.*\n"
