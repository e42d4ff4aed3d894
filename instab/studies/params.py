"""What every study's ``Params`` shares: built from a chapter's parameters cell, validated in one call.

A chapter's set-up cell is one line, ``p = study.Params.from_namespace(globals()).validate()``:
:meth:`StudyParams.from_namespace` picks the dataclass's fields out of the notebook's namespace (the
parameters cell, after papermill's injected overrides) and :meth:`StudyParams.validate` raises
``ValueError`` naming the bad parameter, its value and what is allowed, before any work starts.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from typing import Any, Self

#: The first line of the cell papermill injects with the parameters it was given.
INJECTED_HEADER = "# Parameters"


def injected_names(namespace: Mapping[str, Any]) -> list[str]:
    """The names papermill assigned in the cell it injected (found in IPython's input history, ``In``,
    of the namespace): a misspelled parameter would otherwise run silently with the defaults."""
    names: list[str] = []
    for source in namespace.get("In", None) or []:
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_HEADER):
            for node in ast.parse(source).body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else [])
                names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


@dataclasses.dataclass
class StudyParams:
    """Base of the studies' ``Params``: subclasses are dataclasses whose fields are the chapter's
    parameters, and override :meth:`validate`."""

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> Self:
        """The parameters named by this class's fields, taken from ``namespace`` (``globals()`` of
        the chapter); a field missing from it, or a name papermill was given that is no field
        (:func:`injected_names`), raises ``ValueError`` naming it and the chapter's parameters."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(injected_names(namespace)) - set(names))
        if unknown:
            chapter = cls.__module__.rsplit(".", 1)[-1]
            raise ValueError(f"parameter(s) {unknown} given to chapter {chapter!r} are not its parameters; "
                             f"its parameters are {names}")
        missing = [n for n in names if n not in namespace]
        if missing:
            raise ValueError(f"{cls.__module__}.{cls.__qualname__}: parameter(s) {missing} missing from the "
                             f"chapter's parameters cell (expected: {names})")
        return cls(**{n: namespace[n] for n in names})

    def validate(self) -> Self:
        """Check every parameter; return ``self`` (so the set-up cell is one expression)."""
        return self

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for ``Results.params``)."""
        return dataclasses.asdict(self)
