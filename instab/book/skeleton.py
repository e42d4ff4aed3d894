"""The page of a chapter not built at a scale: its title, a note saying why, and the chapter's
skeleton — every heading, label, labelled equation and figure (with a placeholder image) — so that
links from other pages to its sections, figures and equations still resolve, to the mark.
"""

from __future__ import annotations

import re

#: The placeholder drawn for each figure of a chapter not built at this scale.
NOT_BUILT_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="480" height="60" viewBox="0 0 480 60">'
                 '<rect width="480" height="60" fill="#f3f3f3" stroke="#999"/>'
                 '<text x="240" y="36" font-family="sans-serif" font-size="16" text-anchor="middle" fill="#555">'
                 'not built at this scale</text></svg>\n')
NOT_BUILT_IMAGE = "_not_built.svg"

_FENCE = re.compile(r"^(`{3,})\{([\w:-]+)\}(.*)$")
_GLUE_ROLE = re.compile(r"\{glue(:\w+)?\}`[^`]*`")


def skeleton(source: str) -> str:
    """The chapter's MyST ``source`` (jupytext front matter included) reduced to what other pages
    can link to: ``(label)=`` targets, headings, labelled display equations, and each figure (a
    glued one or a plain one) as a figure of :data:`NOT_BUILT_IMAGE` with its name and caption
    (glue roles in a caption, which only the executed notebook can fill, become "…")."""
    text = source.split("\n---\n", 1)[1] if source.startswith("---\n") else source
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            ticks, directive = fence.group(1), fence.group(2)
            body = []
            i += 1
            while i < len(lines) and lines[i] != ticks:
                body.append(lines[i])
                i += 1
            if directive in ("glue:figure", "figure"):
                opts = [b for b in body if b.startswith(":name:")]
                caption = [_GLUE_ROLE.sub("…", b) for b in body if not b.startswith(":")]
                out += ["", f"```{{figure}} {NOT_BUILT_IMAGE}", *opts, ":alt: not built at this scale",
                        *caption, "```", ""]
        elif re.match(r"^\(.+\)=$", line) or line.startswith("#"):
            out.append(line)
            if line.startswith("#"):
                out.append("")
        elif line.startswith("$$"):
            block = [line]
            while not re.search(r"\$\$\s*(\(.+\))?\s*$", block[-1]) or len(block) == 1 and line.count("$$") < 2:
                i += 1
                if i >= len(lines):
                    break
                block.append(lines[i])
            if re.search(r"\$\$\s*\(.+\)\s*$", block[-1]):
                out += ["", *block, ""]
        i += 1
    return "\n".join(out).strip() + "\n"


def not_built_page(source: str, note: str) -> str:
    """The whole page: the chapter's title, ``note`` (why it was not built), then its skeleton."""
    skel = skeleton(source)
    head, _, rest = skel.partition("\n")
    if not head.startswith("# "):
        head, rest = "# (untitled chapter)", skel
    return f"{head}\n\n{note.strip()}\n\n{rest.strip()}\n"
