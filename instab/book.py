"""The build driver behind ``make book``: convert, execute, cache by content hash, render.

Flow (see README)::

    book/<chapter>.md --jupytext--> .ipynb --papermill (parameters)--> _build/executed/<scale>/<chapter>/
        <chapter>.ipynb + results.json --stage + jupyter-book build (execution off)--> _build/html/

Usage::

    python -m instab.book build   [--params default|ci|paper] [--chapter NAME ...] [--force] [--jobs N]
    python -m instab.book execute [--params ...] [--chapter NAME ...] [--force] [--env NAME]
    python -m instab.book render  [--params ...]
    python -m instab.book robust  [--params ci] [--env NAME ...] [--jobs N]
    python -m instab.book plan    [--params paper] [--chapter NAME ...]

``plan`` is the dry run: for every chapter with a study module that can plan (``sgd``,
``multilayer``) it builds and validates every cell from the chapter's parameters, checks the
device, the engine and the data, and prints the number of cells, runs, model-epochs and the
estimated GPU-hours — training nothing.  A chapter whose parameters ask for a CUDA device is
skipped by ``build``/``execute`` on a machine without one, with one line saying why and its plan;
the book is rendered with a page that says so.

A chapter is re-executed only when its source, its parameter file, the ``instab`` package, the
scale or the floating-point environment changed (a SHA-256 over those); the driver says which
chapters it skipped.  A failing chapter does not stop the others: every chapter is executed, the
book is rendered with the failing chapters' notebooks and red scorecard rows, and the command then
exits non-zero naming each failing chapter and claim.

``robust`` executes the book under each non-native floating-point environment
(:data:`instab.determinism.ENVIRONMENTS`) into ``_build/robust/<env>/`` (its own executed
notebooks and grid cache; the native build is untouched), prints one table claim × environment,
and fails if any claim fails or changes its verdict in any environment.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from instab import paths

ROOT = paths.ROOT
BUILD = paths.build_root()
#: Executed notebooks of a non-native floating-point environment: ``ROBUST / <env> / executed / <scale>``.
ROBUST = BUILD / "robust"
SCALES = ("default", "ci", "paper")
#: One BLAS thread in the chapters' kernels (torch pins its own threads through instab.determinism).
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def say(msg: str) -> None:
    print(f"[instab.book] {msg}", flush=True)


def toc_files(root: Path = ROOT) -> list[str]:
    """Every file named in ``_toc.yml`` (root first), as paths without suffix, e.g. ``book/heat``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections", []))
            for part in e.get("parts", []):
                walk(part.get("chapters", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return files


def is_notebook(md: Path) -> bool:
    """A chapter is a MyST-markdown notebook (jupytext front matter with a kernelspec)."""
    head = md.read_text().split("\n---", 1)[0]
    return "kernelspec:" in head


def chapters(root: Path = ROOT) -> list[str]:
    """Chapter names (file stems) of the notebook pages in the table of contents, in order."""
    return [Path(f).name for f in toc_files(root) if is_notebook(root / f"{f}.md")]


def params_file(chapter: str, scale: str, root: Path = ROOT) -> Path | None:
    """The parameter file of ``chapter`` at ``scale`` (None for the default scale)."""
    if scale == "default":
        return None
    f = root / "book" / "params" / scale / f"{chapter}.yml"
    if not f.exists():
        have = [s for s in SCALES if s == "default" or (root / "book/params" / s / f"{chapter}.yml").exists()]
        raise SystemExit(f"error: no parameter file {f.relative_to(root)} for chapter {chapter!r} at "
                         f"scale {scale!r}; scales with files for it: {have}")
    return f


def chapter_modules(source: str) -> list[str]:
    """The ``instab`` modules a chapter's code imports (its ``import instab...`` and
    ``from instab... import`` lines; ``from instab import x`` names module ``instab.x``)."""
    import ast

    mods = {"instab.report"}  # every chapter records its claims
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped.startswith(("import instab", "from instab")):
            continue
        node = ast.parse(stripped).body[0]
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
            mods |= {f"{node.module}.{a.name}" for a in node.names}
    from instab.store import _module_file

    return sorted(m for m in mods if _module_file(m) is not None)


def content_hash(chapter: str, scale: str, root: Path = ROOT) -> str:
    """SHA-256 over everything an executed chapter depends on: its source, its parameter file,
    the scale, the source of the ``instab`` modules it imports (transitively,
    :func:`instab.store.code_hash`), the paper's transcribed numbers, the library versions and the
    floating-point environment.  The driver itself is not among them: chapters do not import it."""
    from instab import store
    from instab.determinism import environment_key

    h = hashlib.sha256()
    h.update(scale.encode())
    h.update(environment_key().encode())  # another floating-point environment re-executes
    md = root / "book" / f"{chapter}.md"
    h.update(store.code_hash(*chapter_modules(md.read_text())).encode())
    h.update(repr(sorted(store.library_versions().items())).encode())
    parts = [md, paths.PACKAGE / "reported.yml"]
    pf = params_file(chapter, scale, root)
    if pf is not None:
        parts.append(pf)
    for p in parts:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def build_root(env: str = "native") -> Path:
    """Where a floating-point environment's build lives: ``_build`` for native, else ``_build/robust/<env>``."""
    return BUILD if env == "native" else ROBUST / env


def _parameters_cell(chapter: str, root: Path = ROOT) -> dict:
    """The values the chapter's ``parameters`` cell assigns (its defaults)."""
    import jupytext

    nb = jupytext.read(root / "book" / f"{chapter}.md")
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    values: dict = {}
    if cell is not None:
        exec(compile(cell.source, f"book/{chapter}.md (parameters)", "exec"), {}, values)  # noqa: S102
    return {k: v for k, v in values.items() if not k.startswith("_")}


def parameter_names(chapter: str, root: Path = ROOT) -> list[str]:
    """The names the chapter's ``parameters`` cell defines (what a parameter file may set)."""
    return list(_parameters_cell(chapter, root))


def check_parameter_file(chapter: str, scale: str, root: Path = ROOT) -> None:
    """Fail (``SystemExit`` naming the key and the chapter's parameters) if the scale's parameter
    file sets a name the chapter does not have: papermill would only warn and run the default."""
    pf = params_file(chapter, scale, root)
    if pf is None:
        return
    names = parameter_names(chapter, root)
    unknown = [k for k in (yaml.safe_load(pf.read_text()) or {}) if k not in names]
    if unknown:
        raise SystemExit(f"error: {pf.relative_to(root)} sets {', '.join(map(repr, unknown))}, which chapter "
                         f"{chapter!r} does not have; its parameters are: {', '.join(names)}")


def chapter_parameters(chapter: str, scale: str, root: Path = ROOT) -> dict:
    """The chapter's parameters at ``scale``: its ``parameters`` cell's values, overridden by the
    scale's parameter file (what papermill will run it with)."""
    values = _parameters_cell(chapter, root)
    pf = params_file(chapter, scale, root)
    if pf is not None:
        values.update(yaml.safe_load(pf.read_text()) or {})
    return values


def gpu_needed(params: dict) -> bool:
    """Does a chapter with these parameters ask for a CUDA device (``device`` or ``common.device``)?"""
    devices = [params.get("device"), (params.get("common") or {}).get("device")]
    return any(str(d).startswith("cuda") for d in devices if d)


def dry_run(chapter: str, scale: str) -> str | None:
    """The chapter's dry run as text (``None`` if its study module has no ``dry_run``)."""
    import importlib

    try:
        study = importlib.import_module(f"instab.studies.{chapter}")
    except ModuleNotFoundError:
        return None
    if not hasattr(study, "dry_run"):
        return None
    plan = study.dry_run(chapter_parameters(chapter, scale))
    lines = [f"{chapter} ({scale}): dry run, nothing trained"]
    lines.append(f"  {'':56s} {'cells':>5s} {'runs':>5s} {'model-epochs':>12s} {'GPU-hours':>9s}")
    lines += [f"  {r['what'][:56]:56s} {r['cells']:5d} {r['runs']:5d} {r['model_epochs']:12.0f} {r['gpu_hours']:9.1f}"
              for r in plan["rows"]]
    t = plan["total"]
    lines.append(f"  {'total':56s} {'':5s} {t['runs']:5d} {t['model_epochs']:12.0f} {t['gpu_hours']:9.1f}")
    lines.append(f"  GPU time per epoch: {t['epoch_seconds_source']}")
    lines += [f"  {c}" for c in plan["checks"]]
    return "\n".join(lines)


def out_dir(chapter: str, scale: str, env: str = "native") -> Path:
    return build_root(env) / "executed" / scale / chapter


class ChapterFailed(Exception):
    """A chapter's execution failed; the message names the chapter, the cell and the failed claims."""


def use_environment(env: str) -> None:
    """Select floating-point environment ``env`` for this process and the kernels it starts (before
    torch is imported), and point the grid cache at the environment's own folder."""
    from instab.determinism import environment_vars

    if "torch" in sys.modules:
        raise RuntimeError("use_environment must run before torch is imported")
    for var, value in environment_vars(env).items():
        if value:
            os.environ[var] = value
        else:
            os.environ.pop(var, None)
    if env != "native":
        os.environ["INSTAB_CACHE"] = str(build_root(env) / "cache")


def execute(chapter: str, scale: str, force: bool = False, env: str = "native") -> bool:
    """Convert and execute one chapter; returns False when the cache made it unnecessary.

    Raises :class:`ChapterFailed` when a cell fails (the executed notebook, with the error, and
    ``results.json``, if the chapter got as far as writing it, are kept for the book)."""
    import jupytext
    import papermill

    out = out_dir(chapter, scale, env)
    skipped = out / "SKIPPED.md"
    skipped.unlink(missing_ok=True)
    if gpu_needed(chapter_parameters(chapter, scale)):
        import torch

        if not torch.cuda.is_available():
            plan = dry_run(chapter, scale) or ""
            out.mkdir(parents=True, exist_ok=True)
            for stale in (out / f"{chapter}.ipynb", out / "results.json", out / ".content-hash"):
                stale.unlink(missing_ok=True)
            skipped.write_text(f"This chapter was **not executed at the {scale} scale** on the machine that built "
                               f"this book: its parameters ask for a CUDA GPU and there is none.  Run it where a GPU "
                               f"is: `python -m instab.book build --params {scale} --chapter {chapter}` (engines: "
                               f"README, \"Running the paper scale\").  Its dry run:\n\n```text\n{plan}\n```\n")
            say(f"skipped {chapter} ({scale}): its parameters ask for a CUDA GPU and this machine has none; "
                f"dry run below\n{plan}")
            return False
    digest = content_hash(chapter, scale)
    stamp = out / ".content-hash"
    executed = out / f"{chapter}.ipynb"
    if not force and executed.exists() and stamp.exists() and stamp.read_text() == digest:
        say(f"skipped {chapter} ({scale}): source, parameters, instab and environment unchanged")
        return False
    out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    (out / "results.json").unlink(missing_ok=True)  # never show a stale one beside a failed run
    src = build_root(env) / "converted" / scale / f"{chapter}.ipynb"
    src.parent.mkdir(parents=True, exist_ok=True)
    say(f"convert book/{chapter}.md -> {src.relative_to(ROOT)}")
    nb = jupytext.read(ROOT / "book" / f"{chapter}.md")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(nb, src, fmt="ipynb")
    pf = params_file(chapter, scale)
    parameters = yaml.safe_load(pf.read_text()) if pf else {}
    say(f"execute {chapter} ({scale}) with papermill" + (f", parameters from {pf.relative_to(ROOT)}" if pf else ""))
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(str(src), str(executed), parameters=parameters or None, cwd=str(out),
                                   kernel_name="python3", progress_bar=sys.stderr.isatty(),
                                   request_save_on_cell_execute=False)
    except papermill.PapermillExecutionError as e:
        raise ChapterFailed(f"chapter {chapter!r} ({scale}) failed in cell {e.exec_count}: "
                            f"{e.ename}: {e.evalue}\n  see {executed.relative_to(ROOT)}") from None
    stamp.write_text(digest)
    say(f"executed {chapter} ({scale}) in {time.perf_counter() - t0:.0f} s")
    return True


def execute_all(todo: list[str], scale: str, force: bool = False, jobs: int = 1, env: str = "native") -> list[str]:
    """Execute chapters, ``jobs`` at a time, and return the names of those that failed (each
    failure is reported as it happens; a failure does not stop the other chapters).

    With ``jobs > 1`` each chapter runs in its own driver process (papermill changes the working
    directory of the whole process, so two executions must not share one).
    """
    if jobs < 1:
        raise SystemExit(f"error: --jobs {jobs} is not allowed; it must be a positive integer")
    failed: list[str] = []
    if jobs == 1:
        for i, c in enumerate(todo, 1):
            say(f"chapter {i}/{len(todo)}: {c}")
            try:
                execute(c, scale, force=force, env=env)
            except ChapterFailed as e:
                say(f"error: {e}")
                failed.append(c)
        return failed
    from concurrent.futures import ThreadPoolExecutor

    def one(chapter: str) -> int:
        cmd = [sys.executable, "-m", "instab.book", "execute", "--params", scale, "--chapter", chapter]
        cmd += ["--env", env] if env != "native" else []
        proc = subprocess.run(cmd + (["--force"] if force else []), cwd=ROOT, capture_output=True, text=True)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                 if ln.startswith(("[instab.book]", "error", "  see")) or "Error" in ln]
        print("\n".join(lines), flush=True)
        return proc.returncode

    say(f"executing {len(todo)} chapter(s), {jobs} at a time, each in its own process")
    with ThreadPoolExecutor(jobs) as pool:
        codes = dict(zip(todo, pool.map(one, todo), strict=True))
    return [c for c, rc in codes.items() if rc]


def failures(chapters_: list[str], scale: str, env: str = "native") -> str:
    """What failed in each chapter: its failed claims from ``results.json``, or that it stopped
    before writing one."""
    import json

    lines = []
    for c in chapters_:
        res = out_dir(c, scale, env) / "results.json"
        if not res.exists():
            lines.append(f"  {c}: stopped before writing results.json (see its notebook)")
            continue
        bad = [cl["name"] for cl in json.loads(res.read_text())["claims"] if not cl["ok"]]
        lines.append(f"  {c}: " + ("; ".join(f"claim failed: {b}" for b in bad) if bad
                                    else "a cell failed after its claims (see its notebook)"))
    return "\n".join(lines)


#: Cells whose code a reader need not scroll past (the rendered page collapses it; the output stays).
HIDDEN_INPUT_TAGS = ("parameters", "injected-parameters", "setup")


def _carriage_returns(text: str) -> str:
    """What a terminal shows of ``text``: on each line, only what follows its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def for_reader(notebook_json: str) -> str:
    """An executed notebook as the rendered page shows it — presentation only, every output kept:
    the code of parameter and set-up cells (tags in :data:`HIDDEN_INPUT_TAGS`) collapsed, and
    consecutive stream outputs merged with carriage returns applied, so a progress bar shows its
    last state once instead of one box per update."""
    import json

    nb = json.loads(notebook_json)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if any(t in tags for t in HIDDEN_INPUT_TAGS) and "hide-input" not in tags:
            tags.append("hide-input")
        merged: list[dict] = []
        for out in cell.get("outputs", []):
            prev = merged[-1] if merged else None
            if (out.get("output_type") == "stream" and prev is not None and prev.get("output_type") == "stream"
                    and prev.get("name") == out.get("name")):
                prev["text"] = "".join(prev["text"]) + "".join(out["text"])
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = _carriage_returns("".join(out["text"]))
        cell["outputs"] = [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]
    return json.dumps(nb, indent=1)


def render(scale: str, root: Path = ROOT) -> Path:
    """Stage the executed notebooks with the book's pages and run ``jupyter-book build``."""
    from instab.report import scorecard

    site = BUILD / "site"
    if site.exists():
        shutil.rmtree(site)
    (site / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(root / name, site / name)
    results = []
    missing: list[str] = []
    not_run: list[str] = []
    for f in toc_files(root):
        md = root / f"{f}.md"
        name = Path(f).name
        if is_notebook(md):
            nb = out_dir(name, scale) / f"{name}.ipynb"
            if not nb.exists() and (nb.parent / "SKIPPED.md").exists():
                title = md.read_text().split("\n# ", 1)[-1].split("\n", 1)[0]
                (site / f"{f}.md").write_text(f"# {title}\n\n" + (nb.parent / "SKIPPED.md").read_text())
                not_run.append(name)
                continue
            if not nb.exists():
                raise SystemExit(f"error: chapter {name!r} has not been executed at scale {scale!r}; "
                                 f"run: python -m instab.book execute --params {scale} --chapter {name}")
            (site / f"{f}.ipynb").write_text(for_reader(nb.read_text()))
            res = nb.parent / "results.json"
            if res.exists():
                results.append(res)
            else:
                missing.append(name)
        else:
            shutil.copy(md, site / f"{f}.md")
    for extra in [*(root / "book").glob("*.png"), *(root / "book").glob("*.svg")]:
        shutil.copy(extra, site / "book" / extra.name)
    stopped = "".join(f"\n**Chapter `{m}` failed before recording its claims** (its page shows the error).\n"
                      for m in missing)
    stopped += "".join(f"\n**Chapter `{m}` was not executed at this scale** (it needs a GPU; its page gives its dry "
                       f"run).\n" for m in not_run)
    ran = [Path(r).parent.name for r in results]
    stopped += f"\nChapters executed at the **{scale}** scale: {', '.join(ran) if ran else 'none'}.\n"
    (site / "book" / "_scorecard.md").write_text(
        f"Scale of this build: **{scale}**.\n" + stopped + "\n" + scorecard(results))
    say(f"render {len(results)} executed chapter(s) with jupyter-book (execution off, warnings are errors)")
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--path-output", str(root),
           "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=root, env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    if proc.returncode:
        raise SystemExit(f"error: jupyter-book build failed (exit {proc.returncode}): {' '.join(cmd)}")
    index = BUILD / "html" / "index.html"
    say(f"book written to {index.relative_to(root)}")
    return index


def robust(scale: str, envs: list[str], jobs: int, force: bool = False) -> None:
    """Execute the book under each environment in ``envs`` (each in its own processes and folders),
    print claim × environment against the native build, and exit non-zero if any claim fails or
    changes its verdict (a claim missing from one environment counts as a change)."""
    import json

    failed_envs = {}
    for env in ["native", *envs]:  # native: the reference (skipped when its build is current)
        say(f"environment {env}: execute the {scale} book into {build_root(env).relative_to(ROOT)}/")
        cmd = [sys.executable, "-m", "instab.book", "execute", "--params", scale, "--jobs", str(jobs)]
        cmd += ["--env", env] if env != "native" else []
        rc = subprocess.run(cmd + (["--force"] if force else []), cwd=ROOT).returncode
        failed_envs[env] = rc
    table: dict[tuple[str, str], dict[str, tuple[str, bool]]] = {}
    for env in ["native", *envs]:
        for c in chapters():
            res = out_dir(c, scale, env) / "results.json"
            if not res.exists():
                continue
            for cl in json.loads(res.read_text())["claims"]:
                table.setdefault((c, cl["name"]), {})[env] = (cl.get("verdict", "?"), bool(cl["ok"]))
    cols = ["native", *envs]
    problems = []
    width = min(70, max((len(f"{c}: {n}") for c, n in table), default=10))
    print(f"\n{'claim':{width}s}  " + "  ".join(f"{e:>15s}" for e in cols))
    for (c, n), row in table.items():
        cells = []
        for e in cols:
            v = row.get(e)
            cells.append(f"{'—' if v is None else v[0] + ('' if v[1] else ' NO'):>15s}")
        label = f"{c}: {n}"
        print(f"{label[:width]:{width}s}  " + "  ".join(cells))
        verdicts = {row[e][0] if e in row else None for e in cols}
        if len(verdicts) > 1:
            seen = ", ".join(f"{e}={row[e][0] if e in row else None}" for e in cols)
            problems.append(f"{label}: verdict changes across environments ({seen})")
        for e in cols:
            if e in row and not row[e][1]:
                problems.append(f"{label}: fails under {e}")
    for c in chapters():
        for e in cols:
            if not (out_dir(c, scale, e) / "results.json").exists():
                problems.append(f"{c}: no results.json under {e}")
    bad_envs = [e for e, rc in failed_envs.items() if rc]
    if problems or bad_envs:
        raise SystemExit("error: the claims do not hold in every floating-point environment:\n  "
                         + "\n  ".join(problems or [f"execution failed under {e}" for e in bad_envs]))
    say(f"robust: every one of {len(table)} claims keeps its verdict under {', '.join(cols)}")


def main(argv: list[str] | None = None) -> None:
    from instab.determinism import ENVIRONMENTS, check_environment

    ap = argparse.ArgumentParser(prog="python -m instab.book", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["build", "execute", "render", "robust", "plan", "list"])
    ap.add_argument("--params", default="default", help=f"scale: one of {', '.join(SCALES)}")
    ap.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    ap.add_argument("--force", action="store_true", help="re-execute even if unchanged")
    ap.add_argument("--jobs", type=int, default=1,
                    help="chapters executed at once (each in its own kernel; default 1)")
    ap.add_argument("--env", action="append",
                    help=f"floating-point environment, one of {', '.join(ENVIRONMENTS)} (execute: one, default "
                         "native; robust: repeatable, default every non-native one)")
    a = ap.parse_args(argv)
    for var in BLAS_THREADS:  # kernels inherit it: NumPy/SciPy's BLAS sums in one fixed order
        os.environ.setdefault(var, "1")
    if a.params not in SCALES:
        ap.error(f"--params {a.params!r} is not a scale; choose one of {', '.join(SCALES)}")
    try:
        envs = [check_environment(e) for e in a.env or []]
    except ValueError as e:
        ap.error(str(e))
    known = chapters()
    todo = a.chapter or known
    bad = [c for c in todo if c not in known]
    if bad:
        ap.error(f"unknown chapter(s) {bad}; chapters in _toc.yml: {', '.join(known)}")
    if a.action == "list":
        print("\n".join(known))
        return
    for c in todo:  # fail before any work if a parameter file is missing or sets an unknown name
        check_parameter_file(c, a.params)
    if a.action == "plan":
        plans = [p for p in (dry_run(c, a.params) for c in todo) if p]
        print("\n\n".join(plans) if plans else f"no chapter among {todo} has a dry run")
        return
    if a.action == "robust":
        robust(a.params, envs or [e for e in ENVIRONMENTS if e != "native"], a.jobs, force=a.force)
        return
    if len(envs) > 1 or (envs and envs[0] != "native" and a.action != "execute"):
        ap.error(f"--env {envs} is not allowed with {a.action!r}: only 'execute' takes one non-native environment")
    env = envs[0] if envs else "native"
    if env != "native":  # native: the environment as the user set it (its key goes into every cache key)
        use_environment(env)
    failed: list[str] = []
    if a.action in ("build", "execute"):
        failed = execute_all(todo, a.params, force=a.force, jobs=a.jobs, env=env)
    if a.action in ("build", "render"):
        render(a.params)
    if failed:
        raise SystemExit(f"error: {len(failed)} chapter(s) failed at scale {a.params!r}"
                         f"{'' if env == 'native' else f' under {env}'}:\n" + failures(failed, a.params, env))


if __name__ == "__main__":
    main()
