"""Where things are: the repository, the lock file, the data, the grid cache and the build, in one place.

Every location honours its environment variable, so a cluster's workers, a CI job or a reader
can move it: ``$INSTAB_DATA`` (data sets, default ``<repository>/data``), ``$INSTAB_CACHE``
(grid cells, default ``<build>/cache``) and ``$INSTAB_BUILD`` (executed chapters and the book,
default ``<repository>/_build``).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository (the folder holding ``instab/``, ``book/`` and ``_toc.yml``).
ROOT = Path(__file__).resolve().parent.parent
#: The package's own folder.
PACKAGE = ROOT / "instab"
#: The locked environment: every dependency pinned with its hashes (``make lock`` writes it).
LOCK = ROOT / "requirements" / "lock.txt"
#: The findings registry: each finding's criterion, tolerance and expected verdicts (``instab.findings``).
REGISTRY = ROOT / "book" / "findings.yml"


def data_root() -> Path:
    """``$INSTAB_DATA`` if set, else ``<repository>/data``."""
    env = os.environ.get("INSTAB_DATA")
    return Path(env) if env else ROOT / "data"


def build_root() -> Path:
    """``$INSTAB_BUILD`` if set, else ``<repository>/_build``."""
    env = os.environ.get("INSTAB_BUILD")
    return Path(env) if env else ROOT / "_build"


def cache_root() -> Path:
    """``$INSTAB_CACHE`` if set, else ``<build>/cache``: where the grid stores its cells."""
    env = os.environ.get("INSTAB_CACHE")
    return Path(env) if env else build_root() / "cache"
