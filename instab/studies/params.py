"""What every study's ``Params`` shares: built from a chapter's parameters cell, validated in one call.

A chapter's set-up cell is one line, ``p = study.Params.from_namespace(globals()).validate()``:
:meth:`StudyParams.from_namespace` picks the dataclass's fields out of the notebook's namespace (the
parameters cell, after papermill's injected overrides) and :meth:`StudyParams.validate` raises
``ValueError`` naming the bad parameter, its value and what is allowed, before any work starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Self


@dataclasses.dataclass
class StudyParams:
    """Base of the studies' ``Params``: subclasses are dataclasses whose fields are the chapter's
    parameters, and override :meth:`validate`."""

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> Self:
        """The parameters named by this class's fields, taken from ``namespace`` (``globals()`` of
        the chapter); a field missing from it raises ``ValueError`` naming it."""
        names = [f.name for f in dataclasses.fields(cls)]
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
