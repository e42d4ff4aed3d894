"""The build driver behind ``make book``: convert, execute, cache by content hash, render.

Flow (see README)::

    book/<chapter>.md --jupytext--> .ipynb --papermill (parameters)--> _build/executed/<scale>/<chapter>/
        <chapter>.ipynb + results.json --stage + jupyter-book build (execution off)--> _build/html/

Usage::

    python -m instab.book build   [--params default|ci|paper] [--chapter NAME ...] [--force]
    python -m instab.book execute [--params ...] [--chapter NAME ...] [--force]
    python -m instab.book render  [--params ...]

A chapter is re-executed only when its source, its parameter file, the ``instab`` package or the
scale changed (a SHA-256 over those bytes); the driver says which chapters it skipped.
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

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
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


def content_hash(chapter: str, scale: str, root: Path = ROOT) -> str:
    """SHA-256 over everything an executed chapter depends on."""
    h = hashlib.sha256()
    h.update(scale.encode())
    parts = [root / "book" / f"{chapter}.md"]
    pf = params_file(chapter, scale, root)
    if pf is not None:
        parts.append(pf)
    parts += sorted(p for p in (root / "instab").rglob("*") if p.suffix in {".py", ".yml"} and p.name != "book.py")
    for p in parts:
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def out_dir(chapter: str, scale: str) -> Path:
    return BUILD / "executed" / scale / chapter


def execute(chapter: str, scale: str, force: bool = False) -> bool:
    """Convert and execute one chapter; returns False when the cache made it unnecessary."""
    import jupytext
    import papermill

    out = out_dir(chapter, scale)
    digest = content_hash(chapter, scale)
    stamp = out / ".content-hash"
    executed = out / f"{chapter}.ipynb"
    if not force and executed.exists() and stamp.exists() and stamp.read_text() == digest:
        say(f"skipped {chapter} ({scale}): source, parameters and instab unchanged")
        return False
    out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    src = BUILD / "converted" / scale / f"{chapter}.ipynb"
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
        raise SystemExit(f"error: chapter {chapter!r} ({scale}) failed in cell {e.exec_count}: "
                         f"{e.ename}: {e.evalue}\n  see {executed.relative_to(ROOT)}") from None
    stamp.write_text(digest)
    say(f"executed {chapter} ({scale}) in {time.perf_counter() - t0:.0f} s")
    return True


def execute_all(todo: list[str], scale: str, force: bool = False, jobs: int = 1) -> None:
    """Execute chapters, ``jobs`` at a time; all failures are reported together.

    With ``jobs > 1`` each chapter runs in its own driver process (papermill changes the working
    directory of the whole process, so two executions must not share one).
    """
    if jobs < 1:
        raise SystemExit(f"error: --jobs {jobs} is not allowed; it must be a positive integer")
    if jobs == 1:
        for i, c in enumerate(todo, 1):
            say(f"chapter {i}/{len(todo)}: {c}")
            execute(c, scale, force=force)
        return
    from concurrent.futures import ThreadPoolExecutor

    def one(chapter: str) -> int:
        cmd = [sys.executable, "-m", "instab.book", "execute", "--params", scale, "--chapter", chapter]
        proc = subprocess.run(cmd + (["--force"] if force else []), cwd=ROOT, capture_output=True, text=True)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                 if ln.startswith(("[instab.book]", "error")) or "Error" in ln]
        print("\n".join(lines), flush=True)
        return proc.returncode

    say(f"executing {len(todo)} chapter(s), {jobs} at a time, each in its own process")
    with ThreadPoolExecutor(jobs) as pool:
        codes = dict(zip(todo, pool.map(one, todo), strict=True))
    failed = [c for c, rc in codes.items() if rc]
    if failed:
        raise SystemExit(f"error: chapter(s) failed: {', '.join(failed)} (messages above; executed notebooks "
                         f"under {(BUILD / 'executed' / scale).relative_to(ROOT)})")


def render(scale: str, root: Path = ROOT) -> Path:
    """Stage the executed notebooks with the book's pages and run ``jupyter-book build``."""
    from instab.report import scorecard

    site = BUILD / "site"
    if site.exists():
        shutil.rmtree(site)
    (site / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(root / name, site / name)
    results = []
    for f in toc_files(root):
        md = root / f"{f}.md"
        name = Path(f).name
        if is_notebook(md):
            nb = out_dir(name, scale) / f"{name}.ipynb"
            if not nb.exists():
                raise SystemExit(f"error: chapter {name!r} has not been executed at scale {scale!r}; "
                                 f"run: python -m instab.book execute --params {scale} --chapter {name}")
            shutil.copy(nb, site / f"{f}.ipynb")
            res = nb.parent / "results.json"
            if res.exists():
                results.append(res)
        else:
            shutil.copy(md, site / f"{f}.md")
    for extra in (root / "book").glob("*.png"):
        shutil.copy(extra, site / "book" / extra.name)
    (site / "book" / "_scorecard.md").write_text(
        f"Scale of this build: **{scale}**.\n\n" + scorecard(results))
    say(f"render {len(results)} executed chapter(s) with jupyter-book (execution off, warnings are errors)")
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--path-output", str(root),
           "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=root, env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    if proc.returncode:
        raise SystemExit(f"error: jupyter-book build failed (exit {proc.returncode}): {' '.join(cmd)}")
    index = BUILD / "html" / "index.html"
    say(f"book written to {index.relative_to(root)}")
    return index


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instab.book", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["build", "execute", "render", "list"])
    ap.add_argument("--params", default="default", help=f"scale: one of {', '.join(SCALES)}")
    ap.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    ap.add_argument("--force", action="store_true", help="re-execute even if unchanged")
    ap.add_argument("--jobs", type=int, default=1,
                    help="chapters executed at once (each in its own kernel; default 1)")
    a = ap.parse_args(argv)
    for var in BLAS_THREADS:  # kernels inherit it: NumPy/SciPy's BLAS sums in one fixed order
        os.environ.setdefault(var, "1")
    if a.params not in SCALES:
        ap.error(f"--params {a.params!r} is not a scale; choose one of {', '.join(SCALES)}")
    known = chapters()
    todo = a.chapter or known
    bad = [c for c in todo if c not in known]
    if bad:
        ap.error(f"unknown chapter(s) {bad}; chapters in _toc.yml: {', '.join(known)}")
    if a.action == "list":
        print("\n".join(known))
        return
    for c in todo:  # fail before any work if a parameter file is missing
        params_file(c, a.params)
    if a.action in ("build", "execute"):
        execute_all(todo, a.params, force=a.force, jobs=a.jobs)
    if a.action in ("build", "render"):
        render(a.params)


if __name__ == "__main__":
    main()
