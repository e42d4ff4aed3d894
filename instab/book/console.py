"""What the driver writes to the terminal: its lines, paths as a reader finds them, and the
reading of carriage returns (a progress bar redrawn in place) that the terminal and the rendered
page share."""

from __future__ import annotations

from pathlib import Path

from instab import paths


def shown(path: Path, root: Path | None = None) -> str:
    """``path`` relative to the repository (or ``root``) when it lies inside it, else absolute
    (``$INSTAB_BUILD`` may point outside the repository)."""
    try:
        return str(path.relative_to(root or paths.ROOT))
    except ValueError:
        return str(path)


def say(msg: str) -> None:
    print(f"[instab.book] {msg}", flush=True)


def visible(line: str) -> str:
    """What a terminal shows of a line redrawn with carriage returns: its last non-empty part."""
    parts = [p for p in line.split("\r") if p]
    return parts[-1] if parts else ""


def carriage_returns(text: str) -> str:
    """What a terminal shows of ``text``: each line as :func:`visible` reads it."""
    return "\n".join(visible(line) for line in text.split("\n"))
