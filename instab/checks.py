"""Parameter validation shared by chapters and package entry points.

Each check raises ``ValueError`` naming the parameter, the bad value and what is allowed, so a
bad chapter parameter fails before any work starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def one_of(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {allowed}")
    return value


def positive(name: str, value: Any, *, integer: bool = False, at_most: float | None = None) -> Any:
    """A finite positive number (an integer with ``integer``), at most ``at_most`` if given: the bound
    that keeps a size or a step count from asking for more than a machine has, before any work."""
    kind = int if integer else (int, float)
    what = "integer" if integer else "number"
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or not value > 0:
        raise ValueError(f"{name}={value!r} is not allowed; it must be a finite positive {what}")
    if at_most is not None and value > at_most:
        raise ValueError(f"{name}={value!r} is not allowed; it must be a positive {what} at most {at_most:g}")
    return value


def in_range(name: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> Any:
    """A number in [lo, hi] (an integer with ``integer``)."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
        raise ValueError(f"{name}={value!r} is not allowed; it must be {'an integer' if integer else 'a number'} "
                         f"in [{lo}, {hi}]")
    return value


def each(name: str, values: Any, check, *args, **kwargs) -> list:
    """Apply ``check`` to every element of a non-empty list parameter."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"{name}={values!r} is not allowed; it must be a list")
    values = list(values)
    if not values:
        raise ValueError(f"{name}=[] is not allowed; it must be a non-empty list")
    return [check(f"{name}[{i}]", v, *args, **kwargs) for i, v in enumerate(values)]
