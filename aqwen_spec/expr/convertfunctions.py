"""Conversions that may fail softly or take any sequence: ``try_int``, ``try_float`` and ``list``.

``try_int(s)`` and ``try_float(s)`` are Python's ``int(s)`` and ``float(s)`` of a text, or null where Python raises
``ValueError``, so input validation is one line (``let n = try_int(text)`` then ``if n == null { fail ... }``).
"""

from __future__ import annotations

import math
from typing import Any

from aqwen_spec.expr.functions import MAX_SIZE, ArgError, Builtin, FunctionError, _want
from aqwen_spec.types import ANY, FLOAT, INT, STR, ListT, MapT, OptionalT, Type, is_stringlike, unwrap_optional

__all__ = ["CONVERT_FUNCTIONS"]

_MAX_INT = 2**63


def _try_int(s: Any) -> int | None:
    if not isinstance(s, str) or len(s) > 4300:
        return None
    try:
        n = int(s)
    except ValueError:
        return None
    return n if -_MAX_INT < n < _MAX_INT else None


def _try_float(s: Any) -> float | None:
    if not isinstance(s, str) or len(s) > 4300:
        return None
    try:
        x = float(s)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _list(x: Any) -> list[Any]:
    if isinstance(x, str):
        return list(x)
    if isinstance(x, list):
        if len(x) > MAX_SIZE:
            raise FunctionError("list(): too large")
        return list(x)
    raise FunctionError(f"list() needs a str or a list, got {'null' if x is None else type(x).__name__}")


def _r_try(result: Type) -> Any:
    def rule(a: list[Type], k: dict[str, Type]) -> Type:
        _want(a[0], is_stringlike, "a str")
        return OptionalT(result)

    return rule


def _r_list(a: list[Type], k: dict[str, Type]) -> Type:
    t = unwrap_optional(a[0])
    if isinstance(t, ListT):
        return t
    if t == ANY:
        return ListT(ANY)
    if is_stringlike(t):
        return ListT(STR)
    if isinstance(t, MapT):
        raise ArgError(f"a map has keys and values: write keys(m) or values(m), not list() of a {t.render()}")
    raise ArgError(f"expected a str or a list, got {a[0].render()}")


CONVERT_FUNCTIONS: list[Builtin] = [
    Builtin("try_int", _try_int, _r_try(INT), 1, 1, "try_int(s)"),
    Builtin("try_float", _try_float, _r_try(FLOAT), 1, 1, "try_float(s)"),
    Builtin("list", _list, _r_list, 1, 1, "list(x)", collection=True),
]
