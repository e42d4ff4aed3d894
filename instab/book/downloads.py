"""Each chapter's downloads: its ``results.json``, its figures as SVG and its tables as CSV, linked
from a "Downloads" section at the end of its page, so a reader can redo a figure or a table
without running anything.

- The figures: while the driver executes a chapter, every figure the chapter glues
  (``myst_nb.glue(name, fig)``) is also saved as ``<name>.svg`` in the chapter's folder, by a
  start-up file of the chapter's kernel (:data:`KERNEL_STARTUP`, under ``$IPYTHONDIR``); the
  notebook's outputs are unchanged, and the chapter cache's record vouches for the SVG files too.
- The tables: when the book is rendered, every table-shaped value of ``results.json`` (a list of
  records, a matrix, columns of equal length, rows of named numbers) becomes a CSV file
  (:func:`tables`), and every number of it one row of ``values.csv`` (its path and its value).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from instab.book import sources

#: Runs at the start of every chapter's kernel (the driver points ``$IPYTHONDIR`` at it).
KERNEL_STARTUP = '''\
"""instab: every figure a chapter glues is also saved as <name>.svg in its working folder (the
chapter's downloads); the notebook's outputs are unchanged."""


_INSTAB_DENSE_POINTS = 20000


def _instab_points(artist):
    """How many points an artist draws (a collection's offsets, a line's vertices)."""
    try:
        if hasattr(artist, "get_offsets"):
            return len(artist.get_offsets())
        return len(artist.get_xydata())
    except Exception:
        return 0


def _instab_glue_saves_svg():
    import sys

    import myst_nb

    real = myst_nb.glue

    def glue(name, variable, display=True):
        try:
            from matplotlib import rc_context
            from matplotlib.figure import Figure

            if isinstance(variable, Figure):
                # a dense cloud (a bifurcation diagram's points) as an image inside the SVG, the
                # axes, text and other artists as vectors: the file stays small
                dense = [a for ax in variable.axes for a in (*ax.collections, *ax.lines)
                         if _instab_points(a) > _INSTAB_DENSE_POINTS and not a.get_rasterized()]
                for a in dense:
                    a.set_rasterized(True)
                try:
                    with rc_context({"svg.hashsalt": "instab", "svg.fonttype": "none"}):
                        variable.savefig(f"{name}.svg", format="svg", bbox_inches="tight", dpi=150,
                                         metadata={"Date": None})
                finally:
                    for a in dense:
                        a.set_rasterized(False)
        except Exception as e:  # a figure that cannot be saved has no download, and the chapter goes on
            print(f"[instab.book] {name}.svg not saved: {type(e).__name__}: {e}", file=sys.__stderr__)
        return real(name, variable, display)

    glue.__doc__ = real.__doc__
    myst_nb.glue = glue


_instab_glue_saves_svg()
'''


def use_kernel_startup(build: Path | None = None) -> Path:
    """Write :data:`KERNEL_STARTUP` under ``<build>/ipython/profile_default/startup/`` (default
    build: :func:`instab.book.sources.build_root`) for the chapters' kernels, whose ``$IPYTHONDIR``
    points there (:meth:`instab.book.settings.Settings.export`); returns the folder."""
    folder = sources.build_root(build=build) / "ipython"
    startup = folder / "profile_default" / "startup" / "00-instab-figures.py"
    if not startup.is_file() or startup.read_text() != KERNEL_STARTUP:
        startup.parent.mkdir(parents=True, exist_ok=True)
        startup.write_text(KERNEL_STARTUP)
    return folder


def figures(out: Path) -> list[Path]:
    """The SVG figures an executed chapter saved in ``out``."""
    return sorted(out.glob("*.svg"))


# ───────────────────────────── tables from results.json ─────────────────────────────

Scalar = str | int | float | bool | None


def _scalar(x: Any) -> bool:
    return x is None or isinstance(x, str | int | float | bool)


def _cell(x: Any) -> Scalar:
    return x if _scalar(x) else json.dumps(x)


def _expand(name: str, x: Any) -> dict[str, Scalar]:
    """A column entry: a scalar as itself, a flat list as ``name[0]``, ``name[1]``, …"""
    if isinstance(x, list) and all(_scalar(v) for v in x):
        return {f"{name}[{i}]": v for i, v in enumerate(x)}
    return {name: _cell(x)}


def _records(rows: list[dict[str, Scalar]], first: str | None = None) -> tuple[list[str], list[list[Scalar]]]:
    header: list[str] = [first] if first else []
    for r in rows:
        header += [k for k in r if k not in header]
    return header, [[r.get(h) for h in header] for r in rows]


def _columns(x: Mapping[str, Any]) -> tuple[list[str], list[list[Scalar]]] | None:
    """A mapping with two or more lists of one length (its other entries left out) as columns; a
    list's element that is a flat list spreads over ``name[0]``, ``name[1]``, …"""
    cols = {k: v for k, v in x.items() if isinstance(v, list) and len(v) >= 2}
    n = {len(v) for v in cols.values()}
    if len(cols) < 2 or len(n) != 1:
        return None
    return _records([{c: v for k in cols for c, v in _expand(str(k), cols[k][i]).items()} for i in range(n.pop())])


def _table(x: Any) -> tuple[list[str], list[list[Scalar]]] | None:
    """``x`` as (header, rows) when it is table-shaped, else None."""
    if isinstance(x, list) and len(x) >= 2 and all(isinstance(r, dict) for r in x):  # records
        return _records([{k: v for key, val in r.items() for k, v in _expand(str(key), val).items()} for r in x])
    if (isinstance(x, list) and len(x) >= 2 and all(isinstance(r, list) and r for r in x)
            and len({len(r) for r in x}) == 1 and all(_scalar(v) for r in x for v in r)):  # a matrix
        return ["row", *(f"col{j}" for j in range(len(x[0])))], [[i, *r] for i, r in enumerate(x)]
    if isinstance(x, dict):
        columns = _columns(x)
        if columns is not None:
            return columns
        if len(x) >= 2 and all(isinstance(v, dict) and v and all(_scalar(w) or isinstance(w, list) for w in v.values())
                               for v in x.values()):  # rows of named numbers
            rows = [{"name": str(k), **{c: w for kk, vv in v.items() for c, w in _expand(str(kk), vv).items()}}
                    for k, v in x.items()]
            return _records(rows, "name")
    return None


def _has_table(x: Any) -> bool:
    return _table(x) is not None or (isinstance(x, dict) and any(_has_table(v) for v in x.values()))


def tables(values: Mapping[str, Any]) -> dict[str, tuple[list[str], list[list[Scalar]]]]:
    """Every table-shaped value under ``values``, by its dotted path: a mapping whose lists form
    columns is one table; else a mapping that holds tables is searched (its other entries, when
    they form a table, are one more, at its own path); a table's own parts are not searched again."""
    found: dict[str, tuple[list[str], list[list[Scalar]]]] = {}

    def walk(path: str, x: Any) -> None:
        if path and isinstance(x, dict) and (t := _columns(x)) is not None:
            found[path] = t
        elif isinstance(x, dict) and any(_has_table(v) for v in x.values()):
            rest = {k: v for k, v in x.items() if not _has_table(v)}
            t = _table(rest) if path and rest else None
            if t is not None:
                found[path] = t
            for k, v in x.items():
                if _has_table(v):
                    walk(f"{path}.{k}" if path else str(k), v)
        elif path and (t := _table(x)) is not None:
            found[path] = t

    walk("", dict(values))
    return found


def leaves(values: Any, path: str = "") -> list[tuple[str, Scalar]]:
    """Every scalar under ``values`` with its path (``grid.none.acc[0][2]``)."""
    if isinstance(values, dict):
        return [leaf for k, v in values.items() for leaf in leaves(v, f"{path}.{k}" if path else str(k))]
    if isinstance(values, list):
        return [leaf for i, v in enumerate(values) for leaf in leaves(v, f"{path}[{i}]")]
    return [(path, values)]


def csv_text(header: list[str], rows: list[list[Scalar]]) -> str:
    """CSV with a header line; numbers as ``repr`` (every digit), NaN and infinities as ``nan``/``inf``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else repr(v) if isinstance(v, float) and math.isfinite(v) else v for v in r])
    return buf.getvalue()


def file_name(path: str, taken: set[str]) -> str:
    """A file name for a value's path: lower case, words joined by ``-``, unique among ``taken``."""
    base = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "table"
    name, i = f"{base}.csv", 2
    while name in taken:
        name, i = f"{base}-{i}.csv", i + 1
    taken.add(name)
    return name


def stage(chapter: str, out: Path, dest: Path) -> dict[str, list[str]]:
    """Copy the executed chapter's ``results.json`` and SVG figures from ``out`` to ``dest`` and
    write its CSV tables there; returns ``{"results": [...], "figures": [...], "tables": [...]}``,
    the file names of each kind (tables first ``values.csv``)."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    res = out / "results.json"
    staged: dict[str, list[str]] = {"results": [], "figures": [], "tables": []}
    if not res.is_file():
        return staged
    shutil.copy(res, dest / "results.json")
    staged["results"].append("results.json")
    for svg in figures(out):
        shutil.copy(svg, dest / svg.name)
        staged["figures"].append(svg.name)
    values = sources.read_results(res).get("values", {})
    taken = {"values.csv"}
    (dest / "values.csv").write_text(csv_text(["value", "number"], [[p, v] for p, v in leaves(values)]))
    staged["tables"].append("values.csv")
    for path, (header, rows) in tables(values).items():
        name = file_name(path, taken)
        (dest / name).write_text(csv_text(header, rows))
        staged["tables"].append(name)
    return staged


def section(chapter: str, staged: Mapping[str, list[str]], folder: str) -> str:
    """The chapter's "Downloads" section (MyST markdown): links to the files ``staged`` under
    ``folder`` (relative to the chapter's page)."""
    def link(name: str) -> str:
        return f"{{download}}`{name} <{folder}/{name}>`"

    lines = ["## Downloads", "",
             "The data behind this chapter as this build computed it — licensed CC BY 4.0, like the text:", ""]
    if staged.get("results"):
        lines.append(f"- {link('results.json')}: every number the chapter reports and every claim it records, with "
                     f"its parameters and floating-point environment;")
    if staged.get("figures"):
        lines.append("- the figures as SVG: " + ", ".join(link(f) for f in staged["figures"]) + ";")
    if staged.get("tables"):
        lines.append(f"- the numbers as CSV: {link('values.csv')} (each number of `results.json` with its path)"
                     + (", and its tables: " + ", ".join(link(t) for t in staged["tables"][1:])
                        if len(staged["tables"]) > 1 else "") + ".")
    return "\n".join(lines) + "\n"
