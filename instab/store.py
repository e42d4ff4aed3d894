"""Storage for cached results: atomic, checksummed files, and the content hashes behind cache keys.

- :func:`save_object` / :func:`load_object` — a pickled object written atomically (temporary file,
  fsync, rename) with a SHA-256 of its payload; a missing, truncated or corrupted file loads as
  ``None`` and is recomputed, never used.
- :func:`code_hash` — a SHA-256 over the source of the ``instab`` modules a computation runs: the
  named modules and every ``instab`` module they import, found by reading their import statements.
  A cell's cache key covers the code that cell runs and nothing else: a comment added to a module
  it never imports leaves its key unchanged.
- :func:`library_versions` — the versions of the libraries whose arithmetic a result depends on.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import os
import socket
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from instab.paths import PACKAGE

_MAGIC = b"INSTAB1\n"


def atomic_write(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_object(path: str | Path, obj: Any) -> None:
    """Pickle ``obj`` (with ``torch.save``, so tensors keep their bits) to ``path`` atomically,
    with a SHA-256 of the payload for integrity."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    atomic_write(Path(path), _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def load_object(path: str | Path) -> Any | None:
    """Load what :func:`save_object` wrote, or ``None`` if the file is missing, truncated or corrupted."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    head = len(_MAGIC) + 65
    if not raw.startswith(_MAGIC) or len(raw) < head:
        return None
    digest, payload = raw[len(_MAGIC):head - 1], raw[head:]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    import torch

    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - an unreadable file is recomputed
        return None


def module_file(name: str) -> Path | None:
    """The source file of ``instab`` module ``name`` (``instab.pde`` → its ``__init__.py``)."""
    parts = name.split(".")
    if parts[0] != "instab":
        return None
    rel = PACKAGE.joinpath(*parts[1:])
    for candidate in ((rel.parent / f"{rel.name}.py") if len(parts) > 1 else None, rel / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _imports(name: str, source: str) -> set[str]:
    """The ``instab`` modules that module ``name``'s source imports (anywhere in the file)."""
    out: set[str] = set()
    f = module_file(name)
    package = name if f is not None and f.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "instab"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "instab":
                continue
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names if module_file(f"{mod}.{a.name}") is not None}
    return {m for m in out if module_file(m) is not None}


def module_closure(names: Iterable[str]) -> list[str]:
    """The ``instab`` modules ``names`` and everything they import from ``instab``, transitively, sorted."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        f = module_file(name)
        if f is None:
            raise ValueError(f"{name!r} is not a module of instab")
        seen.add(name)
        todo += sorted(_imports(name, f.read_text()) - seen)
    return sorted(seen)


@functools.cache
def code_hash(*names: str) -> str:
    """SHA-256 (16 hex digits) of the source of modules ``names`` and of every ``instab`` module
    they import, transitively: the code a cached computation runs."""
    h = hashlib.sha256()
    for name in module_closure(names):
        f = module_file(name)
        assert f is not None
        h.update(name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose arithmetic a cached result depends on."""
    import numpy
    import torch

    return {"torch": torch.__version__, "numpy": numpy.__version__}
