"""The build driver behind ``make book``: convert, execute, cache by content hash, render.

Flow (the book's page ``book/building.md``)::

    book/<chapter>.md --jupytext--> .ipynb --papermill (parameters)--> _build/executed/<scale>/<chapter>/
        <chapter>.ipynb + results.json --stage + jupyter-book build (execution off)--> _build/html/

Usage::

    python -m instab.book build   [--params default|ci|paper] [--chapter NAME ...] [--force] [--jobs N] [--timeout S]
    python -m instab.book execute [--params ...] [--chapter NAME ...] [--force] [--env NAME] [--timeout S]
    python -m instab.book render  [--params ...]
    python -m instab.book robust  [--params ci] [--env NAME ...] [--jobs N]
    python -m instab.book plan    [--params paper] [--chapter NAME ...]

``plan`` is the dry run: for every chapter whose study module ``instab.studies.<chapter>`` has a
``dry_run(params)`` (:mod:`instab.book.plan`) it builds and validates every cell from the
chapter's parameters, checks the device, the engine and the data, and prints the number of cells,
runs, model-epochs and the estimated GPU-hours — training nothing.  A chapter whose parameters ask for a CUDA device is
skipped by ``build``/``execute`` on a machine without one, with one line saying why and its plan;
the book is rendered with a page that says so.

A chapter is re-executed only when its source, its parameter files, the ``instab`` package, the
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

The package, module by module (each imports only those above it)::

    console     the driver's lines, paths as shown, the reading of carriage returns
    sources     the table of contents, chapters, parameter files and cells, content hash, out_dir
    settings    Settings: build folder, grid cache, engine, read once; what the kernels inherit
    plan        gpu_needed and the dry run (a chapter's study module's ``dry_run``)
    execution   execute, execute_all, progress lines, timeouts, failures
    downloads   each chapter's downloads: figures as SVG (the kernel's start-up file), tables as CSV
    statistics  the execution-statistics page, from the executed chapters' records
    report_page the reproducibility report's parts counted from the registry and the build
    registry    the findings registry decided over the executed chapters
    skeleton    the page of a chapter not built at a scale
    rendering   for_reader, the book's config, render
    pdf         the whole book as one PDF (singlehtml printed by chromium)
    robustness  robust
    cli         main (``python -m instab.book``, :mod:`instab.book.__main__`)

The names below are re-exported here (``from instab import book; book.chapters()``).  To replace
one in a test, patch it where it is defined (``monkeypatch.setattr(book.sources, "out_dir", ...)``):
the modules call each other through their modules (``sources.out_dir``), not through this package.
"""

from __future__ import annotations

from instab.book import (
    cli,
    console,
    downloads,
    execution,
    plan,
    rendering,
    report_page,
    robustness,
    settings,
    sources,
    statistics,
)
from instab.book.cli import main
from instab.book.console import say
from instab.book.execution import (
    EXECUTION_TIMEOUTS,
    ChapterFailed,
    ChapterProgress,
    cells_as_run,
    execute,
    execute_all,
    execution_timeout,
    failures,
)
from instab.book.plan import dry_run, gpu_needed
from instab.book.rendering import (
    HIDDEN_INPUT_TAGS,
    REPOSITORY_VAR,
    book_config,
    for_reader,
    render,
    repository_url,
    web_url,
)
from instab.book.robustness import robust
from instab.book.settings import BLAS_THREADS, TIMEOUT_VAR, Settings
from instab.book.sources import (
    ROOT,
    SCALES,
    build_root,
    chapter_modules,
    chapter_parameters,
    chapters,
    check_parameter_file,
    content_hash,
    is_notebook,
    out_dir,
    parameter_names,
    params_file,
    toc_files,
)

__all__ = [
    "BLAS_THREADS", "EXECUTION_TIMEOUTS", "HIDDEN_INPUT_TAGS", "REPOSITORY_VAR", "ROOT", "SCALES", "TIMEOUT_VAR",
    "ChapterFailed", "ChapterProgress", "Settings", "book_config", "build_root", "cells_as_run", "chapter_modules",
    "chapter_parameters", "chapters", "check_parameter_file", "cli", "console", "content_hash", "downloads", "dry_run",
    "execute", "execute_all", "execution", "execution_timeout", "failures", "for_reader", "gpu_needed", "is_notebook",
    "main", "out_dir", "parameter_names", "params_file", "plan", "render", "rendering", "report_page", "repository_url",
    "robust", "robustness", "say", "settings", "sources", "statistics", "toc_files", "web_url",
]
