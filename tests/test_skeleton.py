"""A chapter not built at a scale: its page keeps every target other pages link to."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instab import book
from instab.book.skeleton import NOT_BUILT_IMAGE, not_built_page, skeleton

SOURCE = """---
jupytext:
  text_representation: {extension: .md}
---

# A chapter

Prose that goes.

$$x = 1$$ (eq-one)

$$\\begin{gathered}
y = 2,\\\\
z = 3
\\end{gathered}$$ (eq-two)

$$w = 4$$

(sec-a)=
## Section A

```{code-cell} ipython3
# a comment, not a heading
glue("a", 1)
```

```{glue:figure} fig-a-glued
:name: fig-a
:alt: words

Caption with {glue:text}`a-number:.3g` and {eq}`eq-one`.
```
"""


def test_the_skeleton_keeps_targets_headings_equations_and_figures() -> None:
    s = skeleton(SOURCE)
    assert s.startswith("# A chapter\n")
    assert "(sec-a)=\n## Section A" in s and "a comment" not in s and "Prose" not in s
    assert "$$x = 1$$ (eq-one)" in s and "\\end{gathered}$$ (eq-two)" in s and "w = 4" not in s
    assert f"```{{figure}} {NOT_BUILT_IMAGE}\n:name: fig-a\n" in s
    assert "Caption with … and {eq}`eq-one`." in s and "glue" not in s
    page = not_built_page(SOURCE, "**Not built here.**")
    assert page.startswith("# A chapter\n\n**Not built here.**\n")


@pytest.mark.book
def test_one_chapter_built_alone_renders_the_whole_book(tmp_path: Path) -> None:
    """`build --chapter heat` on a fresh clone: the other chapters' pages say they were not built,
    and every link to them still resolves (rendering turns warnings into errors)."""
    heat = book.out_dir("heat", "ci")
    shutil.copytree(heat, tmp_path / "executed" / "ci" / "heat")
    env = {**os.environ, "INSTAB_BUILD": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "instab.book", "render", "--params", "ci"], env=env,
                          capture_output=True, text=True, cwd=book.ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = (tmp_path / "html" / "book" / "sgd_variance.html").read_text()
    assert "not built at the ci scale" in page
    assert "heat" in (tmp_path / "html" / "book" / "heat.html").read_text()
