"""The whole book as one PDF, built offline: Sphinx's ``singlehtml`` builder (through
``jupyter-book build --builder singlehtml``) joins every page of the staged site into one HTML
page — chapters, numbered figures, MathJax (served locally, no CDN), the bibliography — and
Debian's chromium, the browser ``make setup`` installs for the browser test, prints it headless.
Chosen over a LaTeX builder because it needs nothing beyond what the book already installs (a
TeX distribution is over a gigabyte) and prints the page exactly as a reader sees it, MathJax's
typesetting included; about 15 s on top of the HTML, so ``build`` makes it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from instab.book import console, sources
from instab.book.console import say
from instab.book.settings import Settings

#: Where the PDF goes: beside the HTML book, so the release archive carries it.
PDF_NAME = "instab.pdf"
#: Browsers that can print a page headless, first found is used.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str | None:
    """The first of :data:`BROWSERS` on ``PATH``, or None."""
    return next((b for b in map(shutil.which, BROWSERS) if b), None)


def build_pdf(root: Path = sources.ROOT, *, required: bool = False, settings: Settings | None = None) -> Path | None:
    """Print the staged site (``<build>/site``, written by :func:`instab.book.rendering.render`) to
    ``<build>/html/instab.pdf`` (the build of ``settings``, default :meth:`Settings.resolve`).
    Without a browser: ``SystemExit`` naming the ones looked for if ``required`` (``make pdf``),
    else a line saying so and None (``make book`` still succeeds)."""
    build = (settings if settings is not None else Settings.resolve()).build
    site, html = build / "site", build / "html"
    if not (site / "_toc.yml").exists() or not html.is_dir():
        raise SystemExit(f"error: no rendered book under {console.shown(build, root)} to print; "
                         "run `python -m instab.book build` (or `make book`) first")
    exe = browser()
    if exe is None:
        msg = f"no browser to print the PDF with (looked for {', '.join(BROWSERS)}; `make setup` installs chromium)"
        if required:
            raise SystemExit(f"error: {msg}")
        say(f"skipped the PDF: {msg}")
        return None
    work = build / "pdf"
    shutil.rmtree(work, ignore_errors=True)
    say("pdf: join every page into one (jupyter-book, singlehtml builder)")
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--builder", "singlehtml",
           "--path-output", str(work)]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    joined = work / "_build" / "singlehtml" / "book" / "intro.html"
    if proc.returncode or not joined.exists():
        raise SystemExit(f"error: the single-page book failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                         + proc.stdout[-2000:] + proc.stderr[-2000:])
    # the builder writes the page under book/ but links its styles, figures and MathJax relative to
    # its root (_static/, _images/): printed from there, the PDF had none of them
    page = joined.parent.parent / "instab-print.html"
    shutil.copyfile(joined, page)
    out = html / PDF_NAME
    out.unlink(missing_ok=True)
    say(f"pdf: print it with {Path(exe).name} (headless)")
    printed = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                              "--run-all-compositor-stages-before-draw", "--virtual-time-budget=30000",
                              f"--print-to-pdf={out}", page.as_uri()], capture_output=True, text=True, timeout=600)
    if printed.returncode or not out.exists() or out.stat().st_size == 0:
        raise SystemExit(f"error: {Path(exe).name} could not print {page} (exit {printed.returncode}):\n"
                         + printed.stderr[-2000:])
    say(f"PDF written to {console.shown(out, root)} ({out.stat().st_size / 1e6:.1f} MB)")
    return out
