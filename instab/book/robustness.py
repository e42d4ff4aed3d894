"""``robust``: the book under each non-native floating-point environment
(:data:`instab.determinism.ENVIRONMENTS`), each in its own build folder, compared claim by claim
with the native build."""

from __future__ import annotations

import subprocess
import sys

from instab import findings, report
from instab.book import console, registry, sources
from instab.book.console import say
from instab.book.settings import Settings


def _finding_holds(finding: findings.Finding, chapter: str, scale: str, envs: list[str],
                   claims_of: dict[tuple[str, str], list[dict]]) -> bool:
    """Whether ``finding`` — one with rows, which the registry allows several verdicts at ``scale``
    — gets an allowed verdict in every environment: then a row may change with the bits (a kinked
    sweep split in one environment and not in another) as long as the finding stays allowed."""
    for env in envs:
        rows, _ = findings.assign([finding], chapter, [c for c in claims_of.get((chapter, env), [])
                                                       if finding.matches(c["name"])])
        verdict, why = findings.verdict_of(finding, rows[finding.id])
        if why or verdict not in findings.allowed(finding, scale):
            return False
    return True


def execute_environments(scale: str, cols: list[str], jobs: int, force: bool, chapters: list[str] | None,
                         settings: Settings) -> dict[str, int]:
    """Execute the book (or its ``chapters``) under each environment of ``cols`` (native first: the
    reference, skipped when its build is current), each in driver processes and folders of its
    own; returns each environment's exit status."""
    failed_envs = {}
    for env in cols:
        say(f"environment {env}: execute the {scale} book into {console.shown(settings.root(env))}/")
        cmd = [sys.executable, "-m", "instab.book", "execute", "--params", scale, "--jobs", str(jobs)]
        cmd += ["--env", env] if env != "native" else []
        cmd += [arg for c in chapters or [] for arg in ("--chapter", c)]
        rc = subprocess.run(cmd + (["--force"] if force else []), cwd=sources.ROOT).returncode
        failed_envs[env] = rc
    return failed_envs


Table = dict[tuple[str, str], dict[str, tuple[str, bool]]]
Claims = dict[tuple[str, str], list[dict]]


def claims_table(scale: str, cols: list[str], chapters: list[str] | None) -> tuple[Table, Claims]:
    """Each claim's (verdict, sane) in each environment of ``cols`` that executed its chapter, by
    (chapter, claim); and each (chapter, environment)'s claims from its ``results.json``."""
    import json

    table: Table = {}
    claims_of: Claims = {}
    for env in cols:
        for c in chapters or sources.chapters():
            res = sources.out_dir(c, scale, env) / "results.json"
            if not res.exists():
                continue
            claims_of[(c, env)] = json.loads(res.read_text())["claims"]
            for cl in claims_of[(c, env)]:
                table.setdefault((c, cl["name"]), {})[env] = (cl.get("verdict", "?"), report.sane(cl))
    return table, claims_of


def print_table(table: Table, cols: list[str]) -> None:
    """The table claim × environment: each claim's verdict (``—``: not there), ``NOT SANE`` marked."""
    width = min(70, max((len(f"{c}: {n}") for c, n in table), default=10))
    print(f"\n{'claim':{width}s}  " + "  ".join(f"{e:>15s}" for e in cols))
    for (c, n), row in table.items():
        cells = []
        for e in cols:
            v = row.get(e)
            cells.append(f"{'—' if v is None else v[0] + ('' if v[1] else ' NOT SANE'):>15s}")
        label = f"{c}: {n}"
        print(f"{label[:width]:{width}s}  " + "  ".join(cells))


def judge_rows(table: Table, claims_of: Claims, scale: str, cols: list[str]) -> tuple[list[str], list[str]]:
    """The claims that fail in an environment or change their verdict across them (problems), and
    those whose change the registry allows (tolerated: :func:`_finding_holds`)."""
    problems: list[str] = []
    tolerated: list[str] = []
    by_id = {f.id: f for f in registry.registry()}
    owner = registry.finding_of(scale)  # claim → finding, from the native build
    for (c, n), row in table.items():
        label = f"{c}: {n}"
        verdicts = {row[e][0] if e in row else None for e in cols}
        finding = by_id.get(owner.get(c, {}).get(n, ""))
        # each row's verdict being allowed is not enough: rows that split (one reproduced, one
        # refuted) make a finding ``corrected``, which the registry may not allow; a row missing
        # in one environment is a change, never tolerated (rows outside a finding's decided_by
        # may move: only the finding's verdict, from the rows that decide it, must stay allowed)
        may_vary = finding is not None and None not in verdicts and len(findings.allowed(finding, scale)) > 1 \
            and _finding_holds(finding, c, scale, cols, claims_of)
        if len(verdicts) > 1 and may_vary:
            tolerated.append(f"{label} ({', '.join(sorted(str(v) for v in verdicts))}: the registry allows "
                             f"either at this scale)")
        elif len(verdicts) > 1:
            seen = ", ".join(f"{e}={row[e][0] if e in row else None}" for e in cols)
            problems.append(f"{label}: verdict changes across environments ({seen})")
        for e in cols:
            if e in row and not row[e][1]:
                problems.append(f"{label}: fails under {e}")
    return problems, tolerated


def missing_and_disagreeing(scale: str, cols: list[str], chapters: list[str] | None) -> list[str]:
    """The chapters without ``results.json`` in an environment, and each environment's findings
    that disagree with the registry (named, not only an exit code)."""
    problems = []
    for c in chapters or sources.chapters():
        for e in cols:
            if not (sources.out_dir(c, scale, e) / "results.json").exists():
                problems.append(f"{c}: no results.json under {e}")
    for e in cols:
        problems += [f"under {e}: registry: {p}" for p in registry.decide(scale, chapters, e)[2]]
    return problems


def robust(scale: str, envs: list[str], jobs: int, force: bool = False, chapters: list[str] | None = None,
           settings: Settings | None = None) -> None:
    """Execute the book (or its ``chapters``) under each environment in ``envs`` (each in its own
    processes and folders, under the build of ``settings``, default :meth:`Settings.resolve`),
    print claim × environment against the native build, and exit non-zero if any claim fails or
    changes its verdict (a claim missing from one environment counts as a change) — unless the
    registry allows its finding, at this scale, several verdicts (an ensemble too small to decide
    the same way on every CPU) and the finding's verdict, computed from its rows in each
    environment, is an allowed one (the change is listed, and each environment's verdict is still
    checked against the registry when its chapters execute)."""
    settings = settings if settings is not None else Settings.resolve()
    cols = ["native", *envs]
    failed_envs = execute_environments(scale, cols, jobs, force, chapters, settings)
    table, claims_of = claims_table(scale, cols, chapters)
    print_table(table, cols)
    problems, tolerated = judge_rows(table, claims_of, scale, cols)
    problems += missing_and_disagreeing(scale, cols, chapters)
    bad_envs = [e for e, rc in failed_envs.items() if rc]
    if problems or bad_envs:
        raise SystemExit("error: the claims do not hold in every floating-point environment:\n  "
                         + "\n  ".join(problems + [f"execution failed under {e}" for e in bad_envs]))
    for t in tolerated:
        say(f"robust: {t}")
    say(f"robust: every one of {len(table)} claims keeps its verdict under {', '.join(cols)}"
        + (f", but for {len(tolerated)} that the registry allows to be decided or inconclusive at the {scale} "
           f"scale" if tolerated else ""))
