"""Executing chapters: convert a chapter to a notebook, run it with papermill (its parameters, a
timeout per scale), show its progress line by line, skip it when its content hash is unchanged or
when it needs a GPU this machine lacks, and go on past a failing chapter."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from instab import report
from instab.book import console, downloads, plan, sources
from instab.book.console import say, visible
from instab.book.settings import TIMEOUT_VAR, Settings

#: A chapter's process exits with this when it ran but its findings disagree with the registry
#: (:data:`instab.book.cli.REGISTRY_DISAGREES`): no failed chapter; the caller checks the registry.
REGISTRY_DISAGREES = 3

#: How long one chapter may run at each scale, in seconds (None: no limit).  Well above what a
#: chapter takes on a 2-core CPU (longest recorded from an empty cache: sgd 138 s at ci, 621 s at
#: default), so only a hang or a runaway run trips it; the paper scale's GPU grids run for hours.
#: ``$INSTAB_EXECUTION_TIMEOUT`` (``--timeout``) overrides it.
EXECUTION_TIMEOUTS: dict[str, int | None] = {"default": 1800, "ci": 600, "paper": None}


_PRINTING = threading.Lock()


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
        for line in map(visible, lines):
            if line.strip() and line != shown:
                self.write(f"{self.label} | {line.rstrip()}")
            shown, when = "", -math.inf
        self._partial[stream] = rest = visible(rest)
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


def skip_without_gpu(chapter: str, scale: str, out: Path) -> bool:
    """Whether the chapter's parameters ask for a CUDA GPU this machine lacks: then its executed
    files go, ``SKIPPED.md`` in ``out`` says so with its dry run, and a line says why."""
    if not plan.gpu_needed(sources.chapter_parameters(chapter, scale)):
        return False
    import torch

    if torch.cuda.is_available():
        return False
    dry = plan.dry_run(chapter, scale) or ""
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / f"{chapter}.ipynb", out / "results.json", out / sources.STAMP):
        stale.unlink(missing_ok=True)
    (out / "SKIPPED.md").write_text(f"This chapter was **not executed at the {scale} scale** on the machine that built "
                                    f"this book: its parameters ask for a CUDA GPU and there is none.  Run it where a "
                                    f"GPU is: `python -m instab.book build --params {scale} --chapter {chapter}` "
                                    f"(engines: README, \"Running the paper scale\").  Its dry run:\n\n```text\n{dry}"
                                    f"\n```\n")
    say(f"skipped {chapter} ({scale}): its parameters ask for a CUDA GPU and this machine has none; "
        f"dry run below\n{dry}")
    return True


def is_current(chapter: str, scale: str, out: Path, digest: str, force: bool) -> bool:
    """Whether the chapter executed in ``out`` is current (content hash ``digest``, its files
    checked) and may be reused (never with ``force``); a line says it, or why it runs again."""
    problem = sources.cache_problem(out, chapter, digest)
    if not force and problem is None:
        say(f"skipped {chapter} ({scale}): source, parameters, instab, lock and environment unchanged "
            f"(executed files checked)")
        return True
    if not force and (out / sources.STAMP).exists() and problem:
        say(f"executing {chapter} ({scale}) again: {problem}")
    return False


def clear_outputs(out: Path) -> None:
    """Remove what a previous execution left in ``out`` that this one rewrites (its record, its
    ``results.json``, its figures, ``SKIPPED.md``): never a stale file beside a failed run."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "SKIPPED.md").unlink(missing_ok=True)
    (out / sources.STAMP).unlink(missing_ok=True)
    (out / "results.json").unlink(missing_ok=True)
    for stale in downloads.figures(out):
        stale.unlink()


def convert(chapter: str, scale: str, build: Path) -> tuple[Path, Any]:
    """``book/<chapter>.md`` as a notebook under ``<build>/converted/<scale>/`` (jupytext, with the
    python3 kernel), beside the kernels' start-up file (:func:`instab.book.downloads.use_kernel_startup`:
    the kernel saves each glued figure as SVG); returns its path and the notebook."""
    import jupytext

    downloads.use_kernel_startup(build)
    src = build / "converted" / scale / f"{chapter}.ipynb"
    src.parent.mkdir(parents=True, exist_ok=True)
    say(f"convert book/{chapter}.md -> {console.shown(src)}")
    nb = jupytext.read(sources.ROOT / "book" / f"{chapter}.md")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(nb, src, fmt="ipynb")
    return src, nb


def run_papermill(chapter: str, scale: str, src: Path, out: Path, nb: Any) -> float:
    """Execute the converted notebook ``src`` into ``out`` with papermill (the scale's parameter
    file, the chapter's timeout, its progress as lines); returns the seconds it took.  Raises
    :class:`ChapterFailed` (:func:`failure`) when it fails."""
    import papermill

    pf = sources.params_file(chapter, scale)
    parameters = sources.scale_parameters(chapter, scale)
    timeout = execution_timeout(scale)
    sf = sources.shared_file(scale)
    taken = sf is not None and pf is not None and set(parameters) - set(sources.read_params_file(pf))
    shared = f"{sf.relative_to(sources.ROOT)} and " if sf is not None and taken else ""
    say(f"execute {chapter} ({scale}) with papermill"
        + (f", parameters from {shared}{pf.relative_to(sources.ROOT)}" if pf else "")
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
            papermill.execute_notebook(str(src), str(out / f"{chapter}.ipynb"), parameters=parameters or None,
                                       cwd=str(out), kernel_name="python3", progress_bar=False, log_output=True,
                                       stdout_file=progress.stream("stdout"), stderr_file=progress.stream("stderr"),
                                       request_save_on_cell_execute=False, execution_timeout=timeout,
                                       timeout_func=remaining if deadline is not None else None,
                                       interrupt_on_timeout=True, error_on_timeout=timeout_error)
    except Exception as e:  # noqa: BLE001 - papermill's, a timeout, a kernel that died or never started
        timed_out = deadline is not None and time.monotonic() >= deadline
        raise failure(e, chapter, scale, out, progress.where, timeout if timed_out else None) from None
    return time.perf_counter() - t0


def failure(e: Exception, chapter: str, scale: str, out: Path, where: str, timed_out: int | None) -> ChapterFailed:
    """The :class:`ChapterFailed` for papermill's exception ``e`` while the chapter was ``where``:
    it ran past its timeout (``timed_out``, in seconds), a cell failed, or its kernel died."""
    import papermill

    see = f"\n  see {console.shown(out / f'{chapter}.ipynb')}"
    if not isinstance(e, papermill.PapermillExecutionError | TimeoutError):
        return ChapterFailed(f"chapter {chapter!r} ({scale}) stopped in {where}: its kernel died or could "
                             f"not start ({type(e).__name__}: {e})" + see)
    if timed_out is not None:
        return ChapterFailed(f"chapter {chapter!r} ({scale}) ran past its execution timeout of {timed_out} s, in "
                             f"{where}; raise it with --timeout SECONDS or {TIMEOUT_VAR}=SECONDS (0: no "
                             f"limit)" + see)
    if isinstance(e, papermill.PapermillExecutionError):
        return ChapterFailed(f"chapter {chapter!r} ({scale}) failed in cell {e.exec_count}: "
                             f"{e.ename}: {e.evalue}" + see)
    return ChapterFailed(f"chapter {chapter!r} ({scale}) failed in {where}: {e}" + see)


def execute(chapter: str, scale: str, force: bool = False, settings: Settings | None = None) -> bool:
    """Convert and execute one chapter into the build of ``settings`` (default:
    :meth:`Settings.resolve`, native) and its floating-point environment; returns False when the
    cache made it unnecessary, or when it needs a GPU this machine lacks.  The chapter's kernel
    inherits this process's environment (:meth:`Settings.export`).

    Raises :class:`ChapterFailed` when a cell fails (the executed notebook, with the error, and
    ``results.json``, if the chapter got as far as writing it, are kept for the book)."""
    settings = settings if settings is not None else Settings.resolve()
    out = sources.out_dir(chapter, scale, settings.env)
    # SKIPPED.md is removed only when the chapter runs: an up-to-date folder is never written
    if skip_without_gpu(chapter, scale, out):
        return False
    digest = sources.content_hash(chapter, scale)
    if is_current(chapter, scale, out, digest, force):
        return False
    clear_outputs(out)
    src, nb = convert(chapter, scale, settings.root())
    seconds = run_papermill(chapter, scale, src, out, nb)
    sources.write_stamp(out, chapter, digest)
    say(f"executed {chapter} ({scale}) in {seconds:.0f} s")
    return True


def demand(chapter: str, scale: str, jobs: int, executor: str | None) -> int:
    """The cores a chapter keeps busy at ``scale``: its grid's worker processes (its ``workers``
    parameter, one thread each; 1 without one, or when its cells run on a cluster engine: its
    ``executor`` parameter, else the build's ``executor``, :attr:`Settings.executor`), at most
    ``jobs``."""
    values = sources.chapter_parameters(chapter, scale)
    workers = values.get("workers")
    engine = values.get("executor") or executor
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1 \
            or engine not in (None, "local"):
        return 1
    return min(workers, jobs)


def schedule(todo: list[str], durations: Mapping[str, float | None]) -> list[str]:
    """The order in which chapters are started: the longest first by their last recorded
    duration (a chapter never run counts as the longest), the book's order among equals."""
    def key(c: str) -> tuple[float, int]:
        d = durations.get(c)
        return (-(d if d is not None else math.inf), todo.index(c))
    return sorted(todo, key=key)


def run_packed(queue: list[str], demands: Mapping[str, int], jobs: int,
               run_one: Callable[[str], int]) -> dict[str, int]:
    """Run ``run_one(chapter)`` for every chapter of ``queue``, each in a thread, starting the first
    queued chapter whose demand fits in the cores left free (``jobs`` in all) whenever one
    finishes; returns {chapter: exit code} (1 for an exception, which is reported)."""
    queue = list(queue)
    codes: dict[str, int] = {}
    free = jobs
    done = threading.Condition()

    def run(chapter: str) -> None:
        nonlocal free
        try:
            rc = run_one(chapter)
        except Exception as e:  # noqa: BLE001 - reported as the chapter's failure, the others go on
            say(f"error: {chapter}: {e}")
            rc = 1
        with done:
            codes[chapter] = rc
            free += demands[chapter]
            done.notify_all()

    threads = []
    with done:
        while queue:
            chapter = next((c for c in queue if demands[c] <= free), None)
            if chapter is None:
                done.wait()
                continue
            queue.remove(chapter)
            free -= demands[chapter]
            t = threading.Thread(target=run, args=(chapter,), name=f"chapter-{chapter}")
            t.start()
            threads.append(t)
    for t in threads:
        t.join()
    return codes


def execute_all(todo: list[str], scale: str, force: bool = False, jobs: int = 1, settings: Settings | None = None,
                executed: set[str] | None = None) -> list[str]:
    """Execute chapters on ``jobs`` cores into the build of ``settings`` (default:
    :meth:`Settings.resolve`, native) and return the names of those that failed (each failure
    is reported as it happens; a failure does not stop the other chapters).  The names of the
    chapters that were executed (not reused from the cache, not skipped) go into ``executed``.
    With ``jobs > 1`` chapters run side by side (:func:`execute_side_by_side`)."""
    if jobs < 1:
        raise SystemExit(f"error: --jobs {jobs} is not allowed; it must be a positive integer")
    settings = settings if settings is not None else Settings.resolve()
    if jobs > 1:
        return execute_side_by_side(todo, scale, force, jobs, settings, executed)
    failed: list[str] = []
    for i, c in enumerate(todo, 1):
        say(f"chapter {i}/{len(todo)}: {c}")
        try:
            if execute(c, scale, force=force, settings=settings) and executed is not None:
                executed.add(c)
        except ChapterFailed as e:
            say(f"error: {e}")
            failed.append(c)
    return failed


def execute_side_by_side(todo: list[str], scale: str, force: bool, jobs: int, settings: Settings,
                         executed: set[str] | None) -> list[str]:
    """:func:`execute_all` with ``jobs > 1``: chapters run side by side, each in its own driver
    process (papermill changes the working directory of the whole process, so two executions must
    not share one), whose progress lines are printed as they come: a chapter is started, longest first
    (:func:`schedule`), when the cores it keeps busy (:func:`demand`: a grid's worker processes)
    are free, so the cores are never oversubscribed (on a 2-core CPU, five chapters of two workers
    each run two at a time took 840 s against 670 s one after the other).  No result depends on it: every
    process computes with its own fixed thread count.
    """
    from instab.book import statistics

    env = settings.env

    def one(chapter: str) -> int:
        cmd = [sys.executable, "-m", "instab.book", "execute", "--params", scale, "--chapter", chapter]
        cmd += ["--env", env] if env != "native" else []
        with subprocess.Popen(cmd + (["--force"] if force else []), cwd=sources.ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
            assert proc.stdout is not None
            for ln in proc.stdout:  # the driver's lines (each names its chapter) as they come
                if executed is not None and ln.startswith(f"[instab.book] executed {chapter} ({scale}) in "):
                    executed.add(chapter)
                if ln.startswith(("[instab.book]", "error", "  see", "  registry:")) or "Error" in ln:
                    with _PRINTING:  # whole lines: two chapters' threads print side by side
                        print(ln.rstrip("\n"), flush=True)
        return proc.returncode

    demands = {c: demand(c, scale, jobs, settings.executor) for c in todo}
    durations = {}
    for c in todo:
        record = statistics.chapter_record(sources.out_dir(c, scale, env), c)
        durations[c] = record.get("duration") if record else None
    queue = schedule(todo, durations)
    say(f"executing {len(todo)} chapter(s) on {jobs} cores, side by side while their worker processes fit, "
        f"each in its own process: " + ", ".join(f"{c} ({demands[c]})" for c in queue))
    codes = run_packed(queue, demands, jobs, one)
    return [c for c in todo if codes[c] and codes[c] != REGISTRY_DISAGREES]  # the caller checks the registry


def failures(chapters_: list[str], scale: str, env: str = "native") -> str:
    """What failed in each chapter: its failed claims from ``results.json``, or that it stopped
    before writing one."""
    import json

    lines = []
    for c in chapters_:
        res = sources.out_dir(c, scale, env) / "results.json"
        if not res.exists():
            lines.append(f"  {c}: stopped before writing results.json (see its notebook)")
            continue
        bad = [cl["name"] for cl in json.loads(res.read_text())["claims"] if not report.sane(cl)]
        lines.append(f"  {c}: " + ("; ".join(f"claim not sane: {b}" for b in bad) if bad
                                    else "a cell failed after its claims (see its notebook)"))
    return "\n".join(lines)
