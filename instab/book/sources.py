"""The book's chapters as the driver finds them: the table of contents, each chapter's parameters
(its ``parameters`` cell overridden by the scale's parameter file), the content hash that decides
whether an executed chapter is current, and where each build's executed notebooks go."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from instab import findings, lockfile, paths

ROOT = paths.ROOT
SCALES = ("default", "ci", "paper")


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


#: The file of a scale's parameters that several chapters share (``book/params/<scale>/shared.yml``):
#: a chapter takes each name in it that its ``parameters`` cell has.
SHARED = "shared"


def shared_file(scale: str, root: Path = ROOT) -> Path | None:
    """The scale's shared parameter file, if it has one (never at the default scale, whose values
    are the chapters' ``parameters`` cells)."""
    f = root / "book" / "params" / scale / f"{SHARED}.yml"
    return f if scale != "default" and f.exists() else None


def scale_parameters(chapter: str, scale: str, root: Path = ROOT) -> dict:
    """What papermill runs ``chapter`` with at ``scale`` instead of its cell's values: the names of
    the scale's shared file that the chapter has, then its own parameter file's, which replace a
    shared value (an exception the file states), as ``papermill -f shared.yml -f <chapter>.yml``
    does.  Empty at the default scale."""
    pf = params_file(chapter, scale, root)
    if pf is None:
        return {}
    sf = shared_file(scale, root)
    shared = read_params_file(sf) if sf is not None else {}
    names = set(parameter_names(chapter, root)) if shared else set()
    values = {k: v for k, v in shared.items() if k in names}
    values.update(read_params_file(pf))
    return values


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
    from instab.store import module_file

    return sorted(m for m in mods if module_file(m) is not None)


def content_hash(chapter: str, scale: str, root: Path = ROOT) -> str:
    """SHA-256 over everything an executed chapter depends on: its source, its parameter file
    (and the scale's shared one when it takes a name from it), the scale, the archived grids of
    ``book/measured/`` if it reads them, the source of the ``instab`` modules it imports (transitively,
    :func:`instab.store.code_hash`), the paper's transcribed numbers, the tolerances the findings
    registry fixes for the chapter's findings (its rules read them; another tolerance re-executes,
    another expected verdict only re-checks), the library versions, the lock file
    (:func:`instab.lockfile.digest` of :data:`instab.paths.LOCK`) and the floating-point
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
    h.update(repr(sorted((f.id, repr(f.tolerance)) for f in findings.load(paths.REGISTRY)
                         if f.chapter == chapter)).encode())
    parts = [md, paths.PACKAGE / "reported.yml"]
    if "instab.studies.measured" in chapter_modules(md.read_text()):  # the archived grids it reads
        parts += sorted((root / "book" / "measured").glob("*"))
    pf = params_file(chapter, scale, root)
    if pf is not None:
        parts.append(pf)
        h.update(repr(scale_parameters(chapter, scale, root)).encode())  # with the shared values it takes
    for p in parts:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def build_root(env: str = "native", build: Path | None = None) -> Path:
    """Where a floating-point environment's build lives: the build folder (``build``, else
    :func:`instab.paths.build_root`, ``$INSTAB_BUILD`` read at each call) for native, else its
    ``robust/<env>``, whose ``executed/<scale>/`` holds that environment's executed notebooks."""
    base = paths.build_root() if build is None else build
    return base if env == "native" else base / "robust" / env


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
    unknown = [k for k in read_params_file(pf) if k not in names]
    if unknown:
        raise SystemExit(f"error: {pf.relative_to(root)} sets {', '.join(map(repr, unknown))}, which chapter "
                         f"{chapter!r} does not have; its parameters are: {', '.join(names)}")


def check_shared_file(scale: str, root: Path = ROOT) -> None:
    """Fail (``SystemExit`` naming the name) if the scale's shared parameter file sets a name that
    no chapter has: it would silently set nothing."""
    sf = shared_file(scale, root)
    if sf is None:
        return
    known = {n for c in chapters(root) for n in parameter_names(c, root)}
    unknown = [k for k in read_params_file(sf) if k not in known]
    if unknown:
        raise SystemExit(f"error: {sf.relative_to(root)} sets {', '.join(map(repr, unknown))}, which no "
                         f"chapter has")


def chapter_parameters(chapter: str, scale: str, root: Path = ROOT) -> dict:
    """The chapter's parameters at ``scale``: its ``parameters`` cell's values, overridden by the
    scale's parameter files (:func:`scale_parameters`: what papermill will run it with)."""
    values = _parameters_cell(chapter, root)
    values.update(scale_parameters(chapter, scale, root))
    return values


def out_dir(chapter: str, scale: str, env: str = "native") -> Path:
    return build_root(env) / "executed" / scale / chapter


#: The chapter cache's record, beside the executed notebook: the chapter's content hash and the
#: SHA-256 of every file the cache will reuse (the executed notebook and ``results.json``).
STAMP = ".content-hash"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_stamp(out: Path, chapter: str, digest: str) -> None:
    """Record that ``out`` holds chapter ``chapter`` executed from content ``digest``, with the
    checksum of each file that the next build may reuse instead of executing again (the executed
    notebook, ``results.json`` and the figures saved as SVG for the chapter's downloads)."""
    import json

    files = {f.name: _sha256(f) for f in (out / f"{chapter}.ipynb", out / "results.json", *sorted(out.glob("*.svg")))
             if f.is_file()}
    (out / STAMP).write_text(json.dumps({"digest": digest, "files": files}, indent=1))


def cache_problem(out: Path, chapter: str, digest: str | None = None) -> str | None:
    """Why the executed chapter in ``out`` cannot be reused (``None``: it can): no record, another
    content hash (when ``digest`` is given), or a file the record vouches for that is missing,
    damaged or edited since it was executed."""
    import json

    try:
        record = json.loads((out / STAMP).read_text())
        files = dict(record["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return "no record of an execution"
    if digest is not None and record.get("digest") != digest:
        return "its source, parameters, instab, lock or environment changed"
    if f"{chapter}.ipynb" not in files or "results.json" not in files:
        return "its record lacks the executed notebook or results.json"
    for name, sha in files.items():
        f = out / name
        if not f.is_file():
            return f"{shown_path(f)} is missing"
        if _sha256(f) != sha:
            return f"{shown_path(f)} was damaged or edited after it was executed"
    return None


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when inside it, else whole."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def damaged(out: Path, chapter: str) -> str | None:
    """What is wrong with an executed chapter whose record exists (``None`` when nothing is, or
    when there is no record: a chapter that failed keeps its notebook and results unrecorded)."""
    return cache_problem(out, chapter) if (out / STAMP).exists() else None


def read_results(path: Path) -> dict:
    """A chapter's ``results.json``; one that is not valid JSON raises ``SystemExit`` naming it."""
    import json

    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise SystemExit(f"error: {shown_path(path)} is not valid JSON ({e}); execute its chapter again "
                         f"(--force)") from None


def read_params_file(path: Path) -> dict:
    """A parameter file's mapping; invalid YAML, or YAML that is no mapping, raises ``SystemExit``
    naming the file and the line."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SystemExit(f"error: {shown_path(path)}{where}: not valid YAML: "
                         f"{getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"error: {shown_path(path)}: a parameter file is a mapping of parameter names to values, "
                         f"not a {type(data).__name__}")
    return data
