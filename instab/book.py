"""The build driver behind ``make book``: convert, execute, cache by content hash, render.

Flow (see README)::

    book/<chapter>.md --jupytext--> .ipynb --papermill (parameters)--> _build/executed/<scale>/<chapter>/
        <chapter>.ipynb + results.json --stage + jupyter-book build (execution off)--> _build/html/

Usage::

    python -m instab.book build   [--params default|ci|paper] [--chapter NAME ...] [--force] [--jobs N] [--timeout S]
    python -m instab.book execute [--params ...] [--chapter NAME ...] [--force] [--env NAME] [--timeout S]
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
scale, the lock file (``requirements/lock.txt``) or the floating-point environment changed (a
SHA-256 over those); the driver says which chapters it skipped.  A failing chapter does not stop
the others: every chapter is executed, the book is rendered with the failing chapters' notebooks
and red scorecard rows, and the command then exits non-zero naming each failing chapter and claim.

While a chapter runs, the driver prints a line as each code cell starts and the chapter's own
output (progress bars at most every few seconds).  Each scale gives a chapter an execution
timeout (:data:`EXECUTION_TIMEOUTS`; ``--timeout SECONDS`` or ``$INSTAB_EXECUTION_TIMEOUT``
overrides it, 0 for none): a chapter that runs past it fails, named, like any failing chapter.

``robust`` executes the book under each non-native floating-point environment
(:data:`instab.determinism.ENVIRONMENTS`) into ``_build/robust/<env>/`` (its own executed
notebooks and grid cache; the native build is untouched), prints one table claim × environment,
and fails if any claim fails or changes its verdict in any environment.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import yaml

from instab import lockfile, paths

ROOT = paths.ROOT
BUILD = paths.build_root()
#: Executed notebooks of a non-native floating-point environment: ``ROBUST / <env> / executed / <scale>``.
ROBUST = BUILD / "robust"
SCALES = ("default", "ci", "paper")
#: One BLAS thread in the chapters' kernels (torch pins its own threads through instab.determinism).
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: How long one chapter may run at each scale, in seconds (None: no limit).  Well above what a
#: chapter takes on a 2-core CPU (longest recorded from an empty cache: sgd 138 s at ci, 621 s at
#: default), so only a hang or a runaway run trips it; the paper scale's GPU grids run for hours.
#: ``$INSTAB_EXECUTION_TIMEOUT`` (``--timeout``) overrides it.
EXECUTION_TIMEOUTS: dict[str, int | None] = {"default": 1800, "ci": 600, "paper": None}
TIMEOUT_VAR = "INSTAB_EXECUTION_TIMEOUT"


def _shown(path: Path, root: Path | None = None) -> str:
    """``path`` relative to the repository (or ``root``) when it lies inside it, else absolute
    (``$INSTAB_BUILD`` may point outside the repository)."""
    try:
        return str(path.relative_to(root or ROOT))
    except ValueError:
        return str(path)


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
    :func:`instab.store.code_hash`), the paper's transcribed numbers, the library versions, the
    lock file (:func:`instab.lockfile.digest` of :data:`instab.paths.LOCK`) and the floating-point
    environment.  The driver itself is not among them: chapters do not import it."""
    from instab import store
    from instab.determinism import environment_key

    h = hashlib.sha256()
    h.update(scale.encode())
    h.update(environment_key().encode())  # another floating-point environment re-executes
    h.update(lockfile.digest().encode())  # another locked environment re-executes
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


def execution_timeout(scale: str, environ: Mapping[str, str] | None = None) -> int | None:
    """How long a chapter may run at ``scale``, in seconds (None: no limit): ``$INSTAB_EXECUTION_TIMEOUT``
    when set (whole seconds; ``0`` or ``none``: no limit), else the scale's :data:`EXECUTION_TIMEOUTS`.

    Raises ``SystemExit`` naming the value when it is not a number of seconds."""
    env = os.environ if environ is None else environ
    raw = env.get(TIMEOUT_VAR, "").strip()
    if not raw:
        return EXECUTION_TIMEOUTS[scale]
    if raw.lower() == "none":
        return None
    seconds = int(raw) if raw.isdigit() else -1
    if seconds < 0:
        raise SystemExit(f"error: execution timeout {raw!r} ({TIMEOUT_VAR} or --timeout) is not a whole number of "
                         f"seconds; give one, or 0 (or 'none') for no limit")
    return seconds or None


def cells_as_run(nb: Mapping, injected: bool) -> list[tuple[str, str]]:
    """The cells papermill runs, as (cell type, first line of source): the notebook's cells, with
    papermill's ``injected-parameters`` cell after the cell tagged ``parameters`` (at the top if
    none is) when parameters are passed."""
    cells = []
    for c in nb["cells"]:
        lines = [ln.strip() for ln in "".join(c.get("source", "")).splitlines() if ln.strip()]
        cells.append((str(c.get("cell_type")), lines[0] if lines else ""))
    if injected:
        tagged = [i for i, c in enumerate(nb["cells"]) if "parameters" in c.get("metadata", {}).get("tags", [])]
        cells.insert(tagged[0] + 1 if tagged else 0, ("code", "# Parameters (injected by papermill)"))
    return cells


def _visible(line: str) -> str:
    """What a terminal shows of a line redrawn with carriage returns: its last non-empty part."""
    parts = [p for p in line.split("\r") if p]
    return parts[-1] if parts else ""


class _Stream:
    """A file papermill writes one of the kernel's streams to (``stdout_file``/``stderr_file``)."""

    def __init__(self, progress: ChapterProgress, name: str) -> None:
        self.progress, self.name = progress, name

    def write(self, text: str) -> int:
        self.progress.output(text, self.name)
        return len(text)

    def flush(self) -> None:
        pass


class ChapterProgress(logging.Handler):
    """One chapter's execution as lines on the terminal, each prefixed with ``label``.

    A line as each code cell starts (its number, the chapter's time so far, its first line), from
    papermill's log (``log_output=True``: this handler), and the chapter's stdout and stderr line by
    line (papermill's ``stdout_file``/``stderr_file``: :meth:`stream`).  A progress bar, redrawn with
    carriage returns, shows its latest state at most once every ``every`` seconds, and its last
    state when its line ends, so a log file stays readable.  :attr:`where` names the running cell.
    """

    CELL_START = re.compile(r"Executing Cell (\d+)-*$")

    def __init__(self, label: str, cells: list[tuple[str, str]], every: float = 15.0,
                 clock: Callable[[], float] = time.monotonic, write: Callable[[str], None] = say) -> None:
        super().__init__(logging.INFO)
        self.label, self.cells, self.every, self.clock, self.write = label, cells, every, clock, write
        self.code = [i for i, (kind, _) in enumerate(cells) if kind == "code"]
        self.start = clock()
        self.where = "before its first cell"
        self._partial: dict[str, str] = {}  # per stream: output after its last newline
        self._shown: dict[str, tuple[str, float]] = {}  # per stream: partial line last written, when

    def stream(self, name: str) -> _Stream:
        """A file for papermill's ``stdout_file`` or ``stderr_file``: what the kernel writes goes to :meth:`output`."""
        return _Stream(self, name)

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.funcName == "log_output_message":  # outputs come through stream() instead
            return
        if m := self.CELL_START.match(msg):
            self.cell_started(int(m.group(1)) - 1)
        elif record.levelno >= logging.WARNING:  # papermill's own warnings, e.g. an unknown parameter
            self.write(f"{self.label}: papermill: {msg.strip()}")

    def cell_started(self, index: int) -> None:
        """Papermill started cell ``index`` (0-based among all cells): a line for a code cell."""
        if index >= len(self.cells) or self.cells[index][0] != "code":
            return
        n = self.code.index(index) + 1
        self.where = f"cell {n}/{len(self.code)}: {' '.join(self.cells[index][1].split())[:80]}"
        self.write(f"{self.label}: {self.where} (at {self.clock() - self.start:.0f} s)")

    def output(self, text: str, stream: str = "stdout") -> None:
        """Output of the chapter on ``stream``: complete lines at once, the current partial line
        (a progress bar) at most every :attr:`every` seconds."""
        *lines, rest = (self._partial.get(stream, "") + text).split("\n")
        shown, when = self._shown.get(stream, ("", -math.inf))
        for line in map(_visible, lines):
            if line.strip() and line != shown:
                self.write(f"{self.label} | {line.rstrip()}")
            shown, when = "", -math.inf
        self._partial[stream] = rest = _visible(rest)
        now = self.clock()
        if rest.strip() and rest != shown and now - when >= self.every:
            self.write(f"{self.label} | {rest.rstrip()}")
            shown, when = rest, now
        self._shown[stream] = (shown, when)

    def finish(self) -> None:
        """Write what is left of each stream's last partial line (if not written already)."""
        for stream, rest in self._partial.items():
            if rest.strip() and rest != self._shown.get(stream, ("", 0.0))[0]:
                self.write(f"{self.label} | {rest.rstrip()}")
        self._partial.clear()

    @contextlib.contextmanager
    def attached(self) -> Iterator[ChapterProgress]:
        """Receive papermill's log (INFO and up, not passed on to the root logger) while in the block."""
        log = logging.getLogger("papermill")
        level, propagate = log.level, log.propagate
        log.addHandler(self)
        log.setLevel(logging.INFO)
        log.propagate = False
        try:
            yield self
        finally:
            log.removeHandler(self)
            log.setLevel(level)
            log.propagate = propagate
            self.finish()


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
        say(f"skipped {chapter} ({scale}): source, parameters, instab, lock and environment unchanged")
        return False
    out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    (out / "results.json").unlink(missing_ok=True)  # never show a stale one beside a failed run
    src = build_root(env) / "converted" / scale / f"{chapter}.ipynb"
    src.parent.mkdir(parents=True, exist_ok=True)
    say(f"convert book/{chapter}.md -> {_shown(src)}")
    nb = jupytext.read(ROOT / "book" / f"{chapter}.md")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(nb, src, fmt="ipynb")
    pf = params_file(chapter, scale)
    parameters = yaml.safe_load(pf.read_text()) if pf else {}
    timeout = execution_timeout(scale)
    say(f"execute {chapter} ({scale}) with papermill" + (f", parameters from {pf.relative_to(ROOT)}" if pf else "")
        + (f", timeout {timeout} s" if timeout else ", no timeout"))
    t0 = time.perf_counter()
    progress = ChapterProgress(f"{chapter} ({scale})", cells_as_run(nb, injected=bool(parameters)))
    deadline = None if timeout is None else time.monotonic() + timeout

    def remaining(cell: object) -> int:
        """Each cell may run for what is left of the chapter's timeout (nbclient's per-cell timeout)."""
        assert deadline is not None
        return max(1, math.ceil(deadline - time.monotonic()))

    # At the timeout nbclient interrupts the kernel and fails the cell (with this error if the
    # kernel records none), without waiting on a kernel that does not stop
    timeout_error = {"ename": "ExecutionTimeout", "evalue": f"chapter {chapter!r} ({scale}) ran past its execution "
                     f"timeout of {timeout} s", "traceback": []}
    try:
        with progress.attached():
            papermill.execute_notebook(str(src), str(executed), parameters=parameters or None, cwd=str(out),
                                       kernel_name="python3", progress_bar=False, log_output=True,
                                       stdout_file=progress.stream("stdout"), stderr_file=progress.stream("stderr"),
                                       request_save_on_cell_execute=False, execution_timeout=timeout,
                                       timeout_func=remaining if deadline is not None else None,
                                       interrupt_on_timeout=True, error_on_timeout=timeout_error)
    except (papermill.PapermillExecutionError, TimeoutError) as e:
        see = f"\n  see {_shown(executed)}"
        if deadline is not None and time.monotonic() >= deadline:
            raise ChapterFailed(f"chapter {chapter!r} ({scale}) ran past its execution timeout of {timeout} s, in "
                                f"{progress.where}; raise it with --timeout SECONDS or {TIMEOUT_VAR}=SECONDS (0: no "
                                f"limit)" + see) from None
        if isinstance(e, papermill.PapermillExecutionError):
            raise ChapterFailed(f"chapter {chapter!r} ({scale}) failed in cell {e.exec_count}: "
                                f"{e.ename}: {e.evalue}" + see) from None
        raise ChapterFailed(f"chapter {chapter!r} ({scale}) failed in {progress.where}: {e}" + see) from None
    stamp.write_text(digest)
    say(f"executed {chapter} ({scale}) in {time.perf_counter() - t0:.0f} s")
    return True


def execute_all(todo: list[str], scale: str, force: bool = False, jobs: int = 1, env: str = "native") -> list[str]:
    """Execute chapters, ``jobs`` at a time, and return the names of those that failed (each
    failure is reported as it happens; a failure does not stop the other chapters).

    With ``jobs > 1`` each chapter runs in its own driver process (papermill changes the working
    directory of the whole process, so two executions must not share one), whose progress lines
    are printed as they come.
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
        with subprocess.Popen(cmd + (["--force"] if force else []), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
            assert proc.stdout is not None
            for ln in proc.stdout:  # the driver's lines (each names its chapter) as they come
                if ln.startswith(("[instab.book]", "error", "  see")) or "Error" in ln:
                    print(ln.rstrip("\n"), flush=True)
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
    """What a terminal shows of ``text``: each line as :func:`_visible` reads it."""
    return "\n".join(_visible(line) for line in text.split("\n"))


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


#: The repository's web address for the book's launch (Binder) and repository buttons, when
#: ``_config.yml`` names none and git's ``origin`` remote is not on GitHub or GitLab.
REPOSITORY_VAR = "INSTAB_REPOSITORY_URL"


def web_url(remote: str) -> str | None:
    """A GitHub or GitLab remote (https, ssh or ``git@host:``) as ``https://host/owner/name``; else None."""
    m = re.match(r"^(?:https://|ssh://git@|git@)(github\.com|gitlab\.com)[/:]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$",
                 remote.strip())
    return f"https://{m.group(1)}/{m.group(2)}/{m.group(3)}" if m else None


def repository_url(config: Mapping, environ: Mapping[str, str] | None = None, root: Path = ROOT) -> str | None:
    """The repository the book's buttons point at: ``$INSTAB_REPOSITORY_URL``, else ``repository.url``
    of ``_config.yml``, else git's ``origin`` remote when it is on GitHub or GitLab; else None."""
    env = os.environ if environ is None else environ
    url = env.get(REPOSITORY_VAR) or (config.get("repository") or {}).get("url")
    if url:
        return str(url).rstrip("/")
    try:
        remote = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"],
                                capture_output=True, text=True).stdout
    except FileNotFoundError:  # no git
        return None
    return web_url(remote)


def book_config(config: Mapping, url: str | None) -> dict:
    """``_config.yml`` as the book is built with it: ``repository.url`` set to ``url``; without a
    URL, no launch buttons and no repository buttons (they need one)."""
    import copy

    cfg = copy.deepcopy(dict(config))
    if url:
        cfg["repository"] = {**(cfg.get("repository") or {}), "url": url}
        return cfg
    cfg.pop("launch_buttons", None)
    (cfg.get("repository") or {}).pop("url", None)
    cfg["html"] = {**(cfg.get("html") or {}),
                   **{b: False for b in ("use_repository_button", "use_issues_button", "use_edit_page_button")}}
    return cfg


def render(scale: str, root: Path = ROOT) -> Path:
    """Stage the executed notebooks with the book's pages and run ``jupyter-book build``."""
    from instab.report import scorecard

    site = BUILD / "site"
    if site.exists():
        shutil.rmtree(site)
    (site / "book").mkdir(parents=True)
    for name in ("_toc.yml", "references.bib"):
        shutil.copy(root / name, site / name)
    config = yaml.safe_load((root / "_config.yml").read_text())
    url = repository_url(config, root=root)
    if url is None:
        say(f"no repository URL (_config.yml's repository.url, ${REPOSITORY_VAR} or a GitHub/GitLab 'origin' "
            f"remote): the book has no launch (Binder) or repository buttons")
    (site / "_config.yml").write_text(yaml.safe_dump(book_config(config, url), sort_keys=False, allow_unicode=True))
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
    # jupyter-book writes <path-output>/_build/html: the repository's own _build, or beside a build
    # folder that $INSTAB_BUILD moved, from where the HTML goes to <build>/html
    out = root if BUILD == root / "_build" else BUILD / "jupyter-book"
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--path-output", str(out),
           "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=root, env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    if proc.returncode:
        raise SystemExit(f"error: jupyter-book build failed (exit {proc.returncode}): {' '.join(cmd)}")
    if out != root:
        shutil.rmtree(BUILD / "html", ignore_errors=True)
        shutil.move(str(out / "_build" / "html"), str(BUILD / "html"))
    index = BUILD / "html" / "index.html"
    say(f"book written to {_shown(index, root)}")
    return index


def robust(scale: str, envs: list[str], jobs: int, force: bool = False) -> None:
    """Execute the book under each environment in ``envs`` (each in its own processes and folders),
    print claim × environment against the native build, and exit non-zero if any claim fails or
    changes its verdict (a claim missing from one environment counts as a change)."""
    import json

    failed_envs = {}
    for env in ["native", *envs]:  # native: the reference (skipped when its build is current)
        say(f"environment {env}: execute the {scale} book into {_shown(build_root(env))}/")
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
    per_scale = ", ".join(f"{k} {v or 'none'}" for k, v in EXECUTION_TIMEOUTS.items())
    ap.add_argument("--timeout", metavar="SECONDS",
                    help=f"how long one chapter may run, in seconds (0: no limit; default per scale: {per_scale}; "
                         f"also ${TIMEOUT_VAR})")
    ap.add_argument("--env", action="append",
                    help=f"floating-point environment, one of {', '.join(ENVIRONMENTS)} (execute: one, default "
                         "native; robust: repeatable, default every non-native one)")
    a = ap.parse_args(argv)
    for var in BLAS_THREADS:  # kernels inherit it: NumPy/SciPy's BLAS sums in one fixed order
        os.environ.setdefault(var, "1")
    if a.params not in SCALES:
        ap.error(f"--params {a.params!r} is not a scale; choose one of {', '.join(SCALES)}")
    if a.timeout is not None:  # the chapters' processes (--jobs, robust) inherit it
        os.environ[TIMEOUT_VAR] = a.timeout
    execution_timeout(a.params)  # a bad value fails here, before any work
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
