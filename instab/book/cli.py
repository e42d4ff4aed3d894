"""The build driver behind ``make book``: convert, execute, cache by content hash, render.

The command line of :mod:`instab.book` (``python -m instab.book ACTION ...``; the package's
docstring describes the actions)."""

from __future__ import annotations

import argparse
import sys

from instab.book import execution, pdf, plan, registry, rendering, robustness, sources
from instab.book.console import shown
from instab.book.settings import TIMEOUT_VAR, Settings


#: The exit status when every chapter ran but the registry and the data disagree (a driver that runs
#: chapters in processes of their own tells that apart from a failed chapter, and checks the
#: registry itself once every chapter has run).
REGISTRY_DISAGREES = execution.REGISTRY_DISAGREES


def main(argv: list[str] | None = None) -> None:
    from instab.determinism import ENVIRONMENTS, check_environment

    ap = argparse.ArgumentParser(prog="python -m instab.book", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["build", "execute", "render", "pdf", "robust", "plan", "list"])
    ap.add_argument("--params", default="default", help=f"scale: one of {', '.join(sources.SCALES)}")
    ap.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    ap.add_argument("--force", action="store_true", help="re-execute even if unchanged")
    ap.add_argument("--jobs", type=int, default=1,
                    help="cores to use: chapters run side by side, each in its own kernel, while their grids' "
                         "worker processes fit in this many (default 1: one chapter at a time)")
    per_scale = ", ".join(f"{k} {v or 'none'}" for k, v in execution.EXECUTION_TIMEOUTS.items())
    ap.add_argument("--timeout", metavar="SECONDS",
                    help=f"how long one chapter may run, in seconds (0: no limit; default per scale: {per_scale}; "
                         f"also ${TIMEOUT_VAR})")
    ap.add_argument("--env", action="append",
                    help=f"floating-point environment, one of {', '.join(ENVIRONMENTS)} (execute: one, default "
                         "native; robust: repeatable, default every non-native one)")
    a = ap.parse_args(argv)
    if a.params not in sources.SCALES:
        ap.error(f"--params {a.params!r} is not a scale; choose one of {', '.join(sources.SCALES)}")
    # a bad value fails here, before any work
    execution.execution_timeout(a.params, None if a.timeout is None else {TIMEOUT_VAR: a.timeout})
    try:
        envs = [check_environment(e) for e in a.env or []]
    except ValueError as e:
        ap.error(str(e))
    known = sources.chapters()
    todo = a.chapter or known
    bad = [c for c in todo if c not in known]
    if bad:
        ap.error(f"unknown chapter(s) {bad}; chapters in _toc.yml: {', '.join(known)}")
    # native: the environment as the user set it (its key goes into every cache key)
    env = envs[0] if a.action == "execute" and len(envs) == 1 else "native"
    try:
        settings = Settings.resolve(env, a.timeout)  # the settings, read once, passed down
    except ValueError as e:  # a bad $INSTAB_EXECUTOR
        ap.error(str(e))
    settings.export(kernels=a.action in ("build", "execute"))  # what the chapters' processes inherit
    if a.action == "list":
        print("\n".join(known))
        return
    if a.action == "pdf":  # the rendered book printed: nothing executed or rendered again
        pdf.build_pdf(required=True, settings=settings)
        return
    sources.check_shared_file(a.params)  # fail before any work if a parameter file is missing
    for c in todo:  # or sets an unknown name
        sources.check_parameter_file(c, a.params)
    if a.action == "plan":
        plans = [p for p in (plan.dry_run(c, a.params) for c in todo) if p]
        print("\n\n".join(plans) if plans else f"no chapter among {todo} has a dry run")
        return
    if a.action == "robust":
        robustness.robust(a.params, envs or [e for e in ENVIRONMENTS if e != "native"], a.jobs, force=a.force,
                          chapters=a.chapter or None, settings=settings)
        return
    if len(envs) > 1 or (envs and envs[0] != "native" and a.action != "execute"):
        ap.error(f"--env {envs} is not allowed with {a.action!r}: only 'execute' takes one non-native environment")
    failed: list[str] = []
    executed: set[str] = set()
    if a.action in ("build", "execute"):
        failed = execution.execute_all(todo, a.params, force=a.force, jobs=a.jobs, settings=settings,
                                       executed=executed)
    if a.action in ("build", "render"):
        rendering.render(a.params, executed=executed if a.action == "build" else None, settings=settings)
        if a.action == "build":
            pdf.build_pdf(settings=settings)
    # every finding of the chapters at hand decided from their data, against the registry's expected verdict
    problems = registry.decide(a.params, todo, env)[2] if a.action in ("build", "execute", "render") else []
    if failed or problems:
        where = f"at scale {a.params!r}{'' if env == 'native' else f' under {env}'}"
        msg = f"error: {len(failed)} chapter(s) failed {where}:\n" + execution.failures(failed, a.params, env) \
            if failed else ""
        if problems:
            msg += ("\n" if msg else "error: ") + f"the findings registry ({shown(registry.REGISTRY)}) and " \
                f"the data disagree {where}:\n" + "\n".join(f"  registry: {p}" for p in problems)
        if failed:
            raise SystemExit(msg)
        print(msg, file=sys.stderr, flush=True)
        raise SystemExit(REGISTRY_DISAGREES)
