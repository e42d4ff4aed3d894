"""What every study's ``Params`` shares: built from a chapter's parameters cell, validated in one call.

A chapter's set-up cell is one line, ``p = study.Params.from_namespace(globals()).validate()``:
:meth:`StudyParams.from_namespace` picks the dataclass's fields out of the notebook's namespace (the
parameters cell, after papermill's injected overrides) and :meth:`StudyParams.validate` raises
``ValueError`` naming the bad parameter, its value and what is allowed, before any work starts.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

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
        return cls(**{n: namespace[n] for n in names}).check_types()

    #: The largest count any integer parameter may take unless :attr:`LIMITS` states another: a
    #: step, size or seed count beyond it is a typo (days of work), refused before any work.
    MAX_COUNT: ClassVar[int] = 10**7
    #: Per-parameter upper bounds that replace :attr:`MAX_COUNT` (integers) or bound a float.
    LIMITS: ClassVar[dict[str, float]] = {}

    def check_types(self) -> Self:
        """Check every field against its annotation, before :meth:`validate`'s rules: a ``float``
        is a finite number, an ``int`` an integer (not 2.5, not ``True``) at most :attr:`MAX_COUNT`
        (or its :attr:`LIMITS`), a ``bool`` a bool, and the elements of a ``list[...]`` likewise;
        raises ``ValueError`` naming the parameter, its value and what is allowed."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check_typed(f.name, getattr(self, f.name), hints.get(f.name, Any), self.LIMITS.get(f.name),
                         self.MAX_COUNT)
        return self

    def validate(self) -> Self:
        """Check every parameter; return ``self`` (so the set-up cell is one expression)."""
        return self

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for ``Results.params``)."""
        return dataclasses.asdict(self)


def _check_typed(name: str, value: Any, hint: Any, limit: float | None, max_count: int) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and args:
        if not isinstance(value, list):
            raise ValueError(f"{name}={value!r} is not allowed; it must be a list of {args[0].__name__}"
                             if isinstance(args[0], type) else f"{name}={value!r} is not allowed; it must be a list")
        for i, v in enumerate(value):
            _check_typed(f"{name}[{i}]", v, args[0], limit, max_count)
    elif hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r} is not allowed; it must be true or false")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}={value!r} is not allowed; it must be an integer")
        top = max_count if limit is None else limit
        if value > top:
            raise ValueError(f"{name}={value!r} is not allowed; it may be at most {top:g}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{name}={value!r} is not allowed; it must be a finite number")
        if limit is not None and value > limit:
            raise ValueError(f"{name}={value!r} is not allowed; it may be at most {limit:g}")
