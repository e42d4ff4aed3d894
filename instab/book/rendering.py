"""Rendering the book: each executed notebook as the reader sees it (:func:`for_reader`), the
book's ``_config.yml`` with its repository buttons, and ``jupyter-book build`` over the staged
pages, with the scorecard of every chapter's claims."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from instab import findings
from instab.book import console, downloads, registry, release, report_page, sources, statistics
from instab.book.console import say
from instab.book.settings import Settings
from instab.book.skeleton import NOT_BUILT_IMAGE, NOT_BUILT_SVG, not_built_page

#: Cells whose code a reader need not scroll past (the rendered page collapses it; the output stays).
HIDDEN_INPUT_TAGS = ("parameters", "injected-parameters", "setup")


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
                out["text"] = console.carriage_returns("".join(out["text"]))
        cell["outputs"] = [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]
    return json.dumps(nb, indent=1)


#: Where each chapter's downloads are staged beside the pages (``book/data/<chapter>/``).
DOWNLOADS = "data"


#: The repository's web address for the book's launch (Binder) and repository buttons, when
#: ``_config.yml`` names none and git's ``origin`` remote is not on GitHub or GitLab.
REPOSITORY_VAR = "INSTAB_REPOSITORY_URL"


def web_url(remote: str) -> str | None:
    """A GitHub or GitLab remote (https, ssh or ``git@host:``) as ``https://host/owner/name``; else None."""
    m = re.match(r"^(?:https://|ssh://git@|git@)(github\.com|gitlab\.com)[/:]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$",
                 remote.strip())
    return f"https://{m.group(1)}/{m.group(2)}/{m.group(3)}" if m else None


def repository_url(config: Mapping, environ: Mapping[str, str] | None = None, root: Path = sources.ROOT) -> str | None:
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


@dataclass
class Staged:
    """The chapters' pages as :func:`stage_chapters` staged them: the ``results.json`` of each
    executed chapter, and the chapters that stopped before writing one (``missing``), were not
    executed at the scale (``not_run``: they need a GPU) or were not built (``not_built``)."""

    results: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    not_built: list[str] = field(default_factory=list)


def stage_site(site: Path, root: Path = sources.ROOT) -> dict:
    """Start ``site`` afresh with the table of contents, the references and the book's
    ``_config.yml`` (:func:`book_config`: its repository buttons, the footer with the version and
    the licences); returns ``_config.yml`` as the repository has it."""
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
    cfg = book_config(config, url)
    cfg["html"] = {**(cfg.get("html") or {}), "extra_footer": release.footer_html(root)}  # version, licences
    (site / "_config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return config


def stage_placeholder(site: Path, f: str, out: Path, scale: str, staged: Staged, harm: str | None,
                      root: Path = sources.ROOT) -> None:
    """The page of chapter ``f`` (a path in ``_toc.yml``, executed into ``out``) that has no executed
    notebook to show (or one that failed its check, ``harm``): it says why, and keeps the chapter's
    sections, figures and equations as targets for links (:func:`instab.book.skeleton.not_built_page`)."""
    md, name = root / f"{f}.md", Path(f).name
    skipped = out / "SKIPPED.md"
    if harm:
        note = (f"This chapter's executed files **failed their check** ({harm}): they are not shown.  "
                f"Execute it again: `python -m instab.book build --params {scale} --chapter {name}`.")
        staged.not_built.append(name)
    elif skipped.exists():
        note = skipped.read_text()
        staged.not_run.append(name)
    else:
        note = (f"This chapter was **not built at the {scale} scale** in this build.  Build it with "
                f"`python -m instab.book build --params {scale} --chapter {name}`.")
        staged.not_built.append(name)
    say(f"{name} ({scale}) has no executed notebook: its page says so, and keeps its sections, "
        f"figures and equations as targets for links")
    (site / f"{f}.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell(not_built_page(md.read_text(), note))],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})))


def stage_chapters(site: Path, scale: str, root: Path = sources.ROOT) -> Staged:
    """Every page of ``_toc.yml`` into ``site``: each chapter's executed notebook as the reader sees
    it (:func:`for_reader`) with its downloads (:mod:`instab.book.downloads`), or its placeholder
    (:func:`stage_placeholder`); the other pages as they are."""
    staged = Staged()
    for f in sources.toc_files(root):
        md = root / f"{f}.md"
        name = Path(f).name
        if not sources.is_notebook(md):
            shutil.copy(md, site / f"{f}.md")
            continue
        nb = sources.out_dir(name, scale) / f"{name}.ipynb"
        harm = sources.damaged(nb.parent, name)
        if not nb.exists() or harm:
            stage_placeholder(site, f, nb.parent, scale, staged, harm, root)
            continue
        page = json.loads(for_reader(nb.read_text()))
        # the chapter's downloads: results.json, its figures as SVG, its tables as CSV
        downloaded = downloads.stage(name, nb.parent, site / "book" / DOWNLOADS / name)
        if downloaded["results"]:
            page["cells"].append(nbformat.v4.new_markdown_cell(
                downloads.section(name, downloaded, f"{DOWNLOADS}/{name}")))
        (site / f"{f}.ipynb").write_text(json.dumps(page, indent=1))
        res = nb.parent / "results.json"
        if res.exists():
            sources.read_results(res)  # a damaged one is named here, not deep in the scorecard
            staged.results.append(res)
        else:
            staged.missing.append(name)
    return staged


def stage_assets(site: Path, root: Path = sources.ROOT) -> None:
    """The book's images, the image of a chapter not built, and its own style sheets
    (jupyter-book adds every .css of the root's ``_static`` to each page)."""
    for extra in [*(root / "book").glob("*.png"), *(root / "book").glob("*.svg")]:
        shutil.copy(extra, site / "book" / extra.name)
    (site / "book" / NOT_BUILT_IMAGE).write_text(NOT_BUILT_SVG)
    shutil.copytree(root / "book" / "_static", site / "_static")


def scorecard_markdown(scale: str, staged: Staged) -> str:
    """The scorecard page's generated part: the build's scale, the chapters that stopped, were
    not executed or not built, those executed, and every executed chapter's claims."""
    from instab.report import scorecard

    stopped = "".join(f"\n**Chapter `{m}` failed before recording its claims** (its page shows the error).\n"
                      for m in staged.missing)
    stopped += "".join(f"\n**Chapter `{m}` was not executed at this scale** (it needs a GPU; its page gives its dry "
                       f"run).\n" for m in staged.not_run)
    stopped += "".join(f"\n**Chapter `{m}` was not built in this build** (its page says how to build it).\n"
                       for m in staged.not_built)
    ran = [Path(r).parent.name for r in staged.results]
    stopped += f"\nChapters executed at the **{scale}** scale: {', '.join(ran) if ran else 'none'}.\n"
    return f"Scale of this build: **{scale}**.\n" + stopped + "\n" + scorecard(staged.results,
                                                                             registry.finding_of(scale))


def write_generated_pages(site: Path, scale: str, staged: Staged, executed: Collection[str] | None,
                          root: Path = sources.ROOT) -> None:
    """The pages the build writes into ``<site>/book``: the scorecard, the citation, the execution
    statistics, the findings' verdicts and the reproducibility report."""
    (site / "book" / "_scorecard.md").write_text(scorecard_markdown(scale, staged))
    (site / "book" / "_citation.md").write_text(release.citation_markdown(root))
    (site / "book" / "_statistics.md").write_text(statistics.statistics_markdown(scale, executed))
    fs, verdicts, problems = registry.decide(scale)
    (site / "book" / "_findings.md").write_text(findings.verdict_table(fs, verdicts, scale, problems))
    report_page.write(site / "book", fs, verdicts, scale)


def run_jupyter_book(site: Path, settings: Settings, root: Path = sources.ROOT) -> Path:
    """``jupyter-book build`` of ``site`` (execution off, warnings are errors) into
    ``<build>/html``; returns its ``index.html``."""
    # jupyter-book writes <path-output>/_build/html: the repository's own _build, or beside a build
    # folder that $INSTAB_BUILD moved, from where the HTML goes to <build>/html
    out = root if settings.build == root / "_build" else settings.build / "jupyter-book"
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--path-output", str(out),
           "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=root, env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    if proc.returncode:
        raise SystemExit(f"error: jupyter-book build failed (exit {proc.returncode}): {' '.join(cmd)}")
    if out != root:
        shutil.rmtree(settings.build / "html", ignore_errors=True)
        shutil.move(str(out / "_build" / "html"), str(settings.build / "html"))
    return settings.build / "html" / "index.html"


def rewrite_index(index: Path, config: Mapping) -> None:
    """Jupyter-book's bare redirect ``index.html`` with the book's title and icon, so a browser
    asks for no ``/favicon.ico`` (a 404); another ``index.html`` is left as it is."""
    redirect = re.match(r'<meta http-equiv="Refresh" content="0; url=([^"]+)" />', index.read_text().strip())
    if not redirect:
        return
    import html

    target, title = redirect.group(1), html.escape(str(config.get("title", "")))
    icon = Path(str((config.get("html") or {}).get("favicon", ""))).name
    head = [f'<meta http-equiv="Refresh" content="0; url={target}" />', f"<title>{title}</title>"]
    head += [f'<link rel="icon" href="_static/{icon}">'] if icon else []
    index.write_text("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n" + "\n".join(head)
                     + f'\n</head><body><a href="{target}">{title}</a></body></html>\n')


def render(scale: str, root: Path = sources.ROOT, executed: Collection[str] | None = None,
           settings: Settings | None = None) -> Path:
    """Stage the executed notebooks with the book's pages and run ``jupyter-book build``.
    ``executed``: the chapters this build executed (the statistics page says which came from the
    chapter cache); ``None`` when the book is only rendered.  ``settings``: the build folder
    (default: :meth:`Settings.resolve`)."""
    settings = settings if settings is not None else Settings.resolve()
    site = settings.build / "site"
    config = stage_site(site, root)
    staged = stage_chapters(site, scale, root)
    stage_assets(site, root)
    write_generated_pages(site, scale, staged, executed, root)
    say(f"render {len(staged.results)} executed chapter(s) with jupyter-book (execution off, warnings are errors)")
    index = run_jupyter_book(site, settings, root)
    rewrite_index(index, config)
    say(f"book written to {console.shown(index, root)}")
    return index
