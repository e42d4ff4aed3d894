"""A Sphinx extension of the book (``_config.yml``, ``extra_extensions``): each script once per page.

Sphinx 7.4 writes an inline script (``app.add_js_file(None, body=...)``) that an extension
registers after the builder started twice: the builder keeps it with the file name ``None``, and
before writing it adds its registry again with ``""``, which does not compare equal.  sphinx-thebe's
inline script declares ``const THEBE_JS_URL``; its second copy is a JavaScript error
("Identifier 'THEBE_JS_URL' has already been declared") on every page.  This extension drops the
second copy of every script from the page's context.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def script_key(script: Any) -> tuple:
    """What makes two of a page's scripts the same: file name (``None`` as ``""``), priority and
    attributes (an inline script's body among them)."""
    attributes = getattr(script, "attributes", {})
    return (getattr(script, "filename", str(script)) or "", getattr(script, "priority", 500),
            tuple(sorted((k, str(v)) for k, v in attributes.items())))


def unique_scripts(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                   doctree: Any) -> None:
    """``html-page-context`` handler: keep the first of each script in ``context["script_files"]``."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handler (late, after the themes have added their scripts)."""
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
