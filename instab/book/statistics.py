"""The execution-statistics page: when, where and how long each chapter ran, at every scale (and
under every floating-point environment) that has an executed record, generated when the book is
rendered from the executed chapters' own records — papermill's metadata in the executed notebook
(start, end, duration, papermill's and Python's versions), ``results.json``'s ``environment``
(floating-point environment, CPU, threads, torch, NumPy, MKL, oneDNN) and the chapter cache's record
(``.content-hash``: whether the files are vouched for) — never typed."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from instab.book import sources

#: How a chapter's row got into this build.
EXECUTED_NOW = "executed by this build"
FROM_CACHE = "reused from the chapter cache"
EARLIER = "executed earlier"
FAILED = "**failed** (its page shows the error)"
NOT_EXECUTED = "not executed (needs a GPU)"


def wall_time(seconds: float | None) -> str:
    """``5.7 s``, ``3 min 12 s``, ``1 h 02 min``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def chapter_record(out: Path, chapter: str) -> dict[str, Any] | None:
    """What the executed chapter in ``out`` records about its run (``None``: nothing there):
    ``status`` (``ok``, ``failed`` or ``skipped``), ``start``, ``end``, ``duration`` (s),
    ``papermill``, ``python`` and ``environment`` (``results.json``'s, ``{}`` when absent)."""
    nb_path, res_path = out / f"{chapter}.ipynb", out / "results.json"
    if (out / "SKIPPED.md").exists():
        return {"status": "skipped", "environment": {}}
    if not nb_path.is_file():
        return None
    try:
        meta = json.loads(nb_path.read_text()).get("metadata", {})
    except ValueError:
        meta = {}
    pm = meta.get("papermill") or {}
    try:
        env = json.loads(res_path.read_text()).get("environment", {}) if res_path.is_file() else {}
    except ValueError:
        env = {}
    vouched = (out / sources.STAMP).exists() and sources.cache_problem(out, chapter) is None
    return {"status": "ok" if vouched and not pm.get("exception") else "failed",
            "start": pm.get("start_time"), "end": pm.get("end_time"), "duration": pm.get("duration"),
            "papermill": pm.get("version"), "python": (meta.get("language_info") or {}).get("version"),
            "environment": env}


def _when(iso: str | None) -> str:
    """``2026-12-04T20:58:35.603144+00:00`` as ``2026-12-04 20:58 UTC``."""
    return "—" if not iso else f"{iso[:10]} {iso[11:16]} UTC"


def _libraries(r: Mapping[str, Any]) -> str:
    env = r.get("environment") or {}
    parts = [("Python", r.get("python")), ("papermill", r.get("papermill")), ("torch", env.get("torch")),
             ("NumPy", env.get("numpy")), ("MKL", env.get("mkl")), ("oneDNN", env.get("onednn"))]
    return ", ".join(f"{k} {v}" for k, v in parts if v) or "—"


def _fp_env(env: Mapping[str, Any]) -> str:
    if not env:
        return "—"
    set_vars = ", ".join(f"`{k}={v}`" for k, v in (env.get("vars") or {}).items() if v)
    return f"{env.get('name', '?')}: kernels {env.get('cpu_capability', '?')}" + (f" ({set_vars})" if set_vars else "")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def scale_section(scale: str, env: str, records: Mapping[str, dict[str, Any]], how: Mapping[str, str]) -> str:
    """One scale's (and environment's) tables: when and how long; where; which libraries."""
    lines = ["| chapter | executed | wall time | in this build |", "|---|---|---|---|"]
    for c, r in records.items():
        status = {"skipped": NOT_EXECUTED, "failed": FAILED}.get(r["status"], how.get(c, EARLIER))
        lines.append(f"| {{doc}}`{c} <{c}>` | {_when(r.get('end'))} | {wall_time(r.get('duration'))} | {status} |")
    ran = {c: r for c, r in records.items() if r["status"] != "skipped"}
    if ran:
        total = sum(r.get("duration") or 0.0 for r in ran.values())
        lines += ["", f"Wall time of the {len(ran)} executed chapter(s), one after the other: {wall_time(total)}.", ""]
        lines += ["| chapter | floating-point environment | CPU | threads |", "|---|---|---|---|"]
        for c, r in ran.items():
            e = r["environment"]
            cpu = " ".join(str(e[k]) for k in ("cpu", "machine") if e.get(k)) or "—"
            lines.append(f"| {c} | {_cell(_fp_env(e))} | {_cell(cpu)} | {e.get('threads', '—')} |")
        libs = {c: _libraries(r) for c, r in ran.items()}
        if len(set(libs.values())) == 1:
            lines += ["", f"Libraries (every chapter): {next(iter(libs.values()))}."]
        else:
            lines += ["", "| chapter | libraries |", "|---|---|"] + [f"| {c} | {_cell(v)} |" for c, v in libs.items()]
    where = "" if env == "native" else f", floating-point environment **{env}** (`make robust`)"
    return f"## The {scale} scale{where}\n\n" + "\n".join(lines) + "\n"


def environments(build: Path | None = None) -> list[str]:
    """``native`` and every environment with a build of its own under ``_build/robust/``."""
    robust = sources.build_root(build=build) / "robust"
    return ["native", *sorted(p.name for p in robust.iterdir() if p.is_dir())] if robust.is_dir() else ["native"]


def statistics_markdown(scale: str, executed_now: Collection[str] | None = None,
                        chapters: list[str] | None = None) -> str:
    """The page's generated part: a section per scale and environment with an executed record,
    the build's own scale first.  ``executed_now``: the chapters this build executed at ``scale``
    (``None`` when it only rendered); the others at that scale came from the chapter cache."""
    chapters = chapters if chapters is not None else sources.chapters()
    sections = []
    for env in environments():
        for s in sorted(sources.SCALES, key=lambda x: (x != scale, sources.SCALES.index(x))):
            records = {c: r for c in chapters if (r := chapter_record(sources.out_dir(c, s, env), c)) is not None}
            if not records:
                continue
            how: dict[str, str] = {}
            if s == scale and env == "native":
                how = {c: EXECUTED_NOW if executed_now is not None and c in executed_now else FROM_CACHE
                       for c in records}
            sections.append(scale_section(s, env, records, how))
    if not sections:
        return "No chapter has been executed yet.\n"
    head = (f"This book was rendered at the **{scale}** scale; its chapters are those of the first section.  "
            f"The other sections are the chapters' latest runs at other scales or under other floating-point "
            f"environments that this build folder holds.\n\n" if len(sections) > 1 else "")
    return head + "\n".join(sections)
