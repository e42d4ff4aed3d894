"""The README's "Writing a chapter" recipe, followed literally, gives a chapter that builds: its
blocks are written into a copy of the project, the chapter is added to the table of contents with
its parameter files and its finding, and the driver executes it and checks the finding."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instab import paths

README = paths.ROOT / "README.md"


def recipe_blocks(text: str) -> dict[str, str]:
    """path → content of each fenced block of the recipe whose first line names its file
    (``# file: PATH`` or ``<!-- file: PATH -->``); the named line itself is left out."""
    section = text.split("## Writing a chapter", 1)[1]
    out = {}
    for m in re.finditer(r"^(`{3,})\w*\n(.*?)^\1$", section, flags=re.M | re.S):
        first, _, body = m.group(2).partition("\n")
        named = re.match(r"(?:# file: |<!-- file: )(\S+)", first)
        if named:
            out[named.group(1)] = body
    return out


def test_the_recipe_names_its_files() -> None:
    blocks = recipe_blocks(README.read_text())
    assert set(blocks) == {"instab/studies/toy.py", "book/toy.md", "book/findings.yml"}
    assert "`book/params/ci/toy.yml` and `book/params/paper/toy.yml` (`r: 0.3`)" in README.read_text()
    assert "(`- file: book/toy`)" in README.read_text()


@pytest.mark.slow
def test_the_readme_recipe_builds_a_chapter(tmp_path: Path) -> None:
    root = tmp_path / "project"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=paths.ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (paths.ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(paths.ROOT / name, root / name)
    blocks = recipe_blocks(README.read_text())
    (root / "instab/studies/toy.py").write_text(blocks["instab/studies/toy.py"])
    (root / "book/toy.md").write_text(blocks["book/toy.md"])
    with (root / "book/findings.yml").open("a") as f:
        f.write(blocks["book/findings.yml"])
    for scale in ("ci", "paper"):  # step 3
        (root / f"book/params/{scale}/toy.yml").write_text("r: 0.3\n")
    toc = (root / "_toc.yml").read_text()
    (root / "_toc.yml").write_text(toc.replace("      - file: book/multilayer\n",
                                               "      - file: book/multilayer\n      - file: book/toy\n"))
    env = {**os.environ, "PYTHONPATH": str(root), "INSTAB_BUILD": str(tmp_path / "build"),
           "INSTAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "instab.book", "execute", "--params", "ci", "--chapter", "toy"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "executed toy (ci)" in proc.stdout + proc.stderr
    assert (tmp_path / "build/executed/ci/toy/results.json").exists()


def test_the_readme_stays_short() -> None:
    """Five minutes for a contributor: the long explanations live in book/building.md."""
    assert len(README.read_text().splitlines()) < 150
