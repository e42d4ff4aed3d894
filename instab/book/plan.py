"""The dry run of a chapter that needs a GPU: what it would train and what that would cost.

The driver names no chapter here.  A chapter ``NAME`` plans when its study module
``instab.studies.NAME`` has a function ``dry_run(params) -> dict`` (``params``: the chapter's
parameters at the scale, :func:`instab.book.sources.chapter_parameters`) that builds and validates
every cell, checks the device, the engine and the data, and trains nothing.  It returns::

    {"rows": [{"what": str, "cells": int, "runs": int, "model_epochs": float, "gpu_hours": float}, ...],
     "total": {"runs": int, "model_epochs": float, "gpu_hours": float, "epoch_seconds_source": str,
               "constants": [str, ...]},  # constants: optional, the cost model's (instab.cost.constants)
     "checks": [str, ...]}

(:func:`instab.cost.summary` makes ``total`` from the rows).  ``plan`` prints it for every chapter
that has one; ``build``/``execute`` skip a chapter whose parameters ask for a CUDA device
(:func:`gpu_needed`) on a machine without one, and its page gives this dry run instead.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

from instab.book import sources

#: Where a chapter's study module lives: ``STUDIES.<chapter>``.
STUDIES = "instab.studies"
ROW_KEYS = ("what", "cells", "runs", "model_epochs", "gpu_hours")
TOTAL_KEYS = ("runs", "model_epochs", "gpu_hours", "epoch_seconds_source")


def gpu_needed(params: dict) -> bool:
    """Does a chapter with these parameters ask for a CUDA device (``device`` or ``common.device``)?"""
    devices = [params.get("device"), (params.get("common") or {}).get("device")]
    return any(str(d).startswith("cuda") for d in devices if d)


def study_module(chapter: str) -> ModuleType | None:
    """The chapter's study module ``instab.studies.<chapter>``, or None when there is none (an
    error while importing one that exists is raised, not taken for its absence)."""
    name = f"{STUDIES}.{chapter}"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def study_plan(chapter: str, scale: str) -> dict[str, Any] | None:
    """What the study's ``dry_run`` returns for the chapter's parameters at ``scale`` (None when the
    chapter has no study module or the module no ``dry_run``); ``ValueError`` naming the chapter
    and the key when the answer lacks one the driver prints."""
    study = study_module(chapter)
    if study is None or not hasattr(study, "dry_run"):
        return None
    plan = study.dry_run(sources.chapter_parameters(chapter, scale))
    missing = [k for k in ("rows", "total", "checks") if k not in plan]
    missing += [f"total.{k}" for k in TOTAL_KEYS if k not in plan.get("total", {})]
    missing += sorted({f"rows[{i}].{k}" for i, r in enumerate(plan.get("rows", [])) for k in ROW_KEYS if k not in r})
    if missing:
        raise ValueError(f"{STUDIES}.{chapter}.dry_run returned a plan without {', '.join(missing)}; "
                         f"see instab.book.plan for what it must return")
    return plan


def dry_run(chapter: str, scale: str) -> str | None:
    """The chapter's dry run as text (``None`` if its study module has no ``dry_run``)."""
    plan = study_plan(chapter, scale)
    if plan is None:
        return None
    lines = [f"{chapter} ({scale}): dry run, nothing trained"]
    lines.append(f"  {'':56s} {'cells':>5s} {'runs':>5s} {'model-epochs':>12s} {'GPU-hours':>9s}")
    lines += [f"  {r['what'][:56]:56s} {r['cells']:5d} {r['runs']:5d} {r['model_epochs']:12.0f} {r['gpu_hours']:9.1f}"
              for r in plan["rows"]]
    t = plan["total"]
    lines.append(f"  {'total':56s} {'':5s} {t['runs']:5d} {t['model_epochs']:12.0f} {t['gpu_hours']:9.1f}")
    lines.append(f"  GPU time per epoch: {t['epoch_seconds_source']}")
    lines += [f"  {c}" for c in t.get("constants", [])]
    lines += [f"  {c}" for c in plan["checks"]]
    return "\n".join(lines)
