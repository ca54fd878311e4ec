"""Math builtins: ``sqrt``, ``exp``, ``log``, ``pow``, ``floor``, ``ceil``, ``hypot``.

Each gives exactly what Python's :mod:`math` gives for the same arguments (the same floating-point bits), so a tool
ported from Python computes the same results. Domain errors (``sqrt(-1)``, ``log(0)``) and overflow are
:class:`FunctionError`s with the function's name, never a Python exception text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from aqwen_spec.expr.functions import ArgError, Builtin, FunctionError
from aqwen_spec.types import FLOAT, INT, Type, is_numeric

__all__ = ["MATH_FUNCTIONS"]


def _number(x: Any, fn: str) -> int | float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise FunctionError(f"{fn}() of {type(x).__name__ if x is not None else 'null'}, not a number")
    return x


def _guarded(fn: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        values = [_number(a, fn) for a in args]
        try:
            return impl(*values)
        except ValueError:
            shown = ", ".join(repr(v) for v in values)
            raise FunctionError(f"{fn}({shown}) is undefined (math domain error)") from None
        except OverflowError:
            raise FunctionError(f"{fn}() overflowed: the result is too large for a float") from None
        except ZeroDivisionError:
            raise FunctionError(f"{fn}(): division by zero (a log base of 1)") from None

    call.__name__ = f"_{fn}"
    return call


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _rule(result: Type) -> Callable[[list[Type], dict[str, Type]], Type]:
    def rule(args: list[Type], kwargs: dict[str, Type]) -> Type:
        for t in args:
            if not is_numeric(t):  # an optional number must be narrowed first: null has no square root
                raise ArgError(f"expected a number, got {t.render()}")
        return result

    return rule


MATH_FUNCTIONS: list[Builtin] = [
    Builtin("sqrt", _guarded("sqrt", math.sqrt), _rule(FLOAT), 1, 1, "sqrt(x)"),
    Builtin("exp", _guarded("exp", math.exp), _rule(FLOAT), 1, 1, "exp(x)"),
    Builtin("log", _guarded("log", _log), _rule(FLOAT), 1, 2, "log(x, base?)"),
    Builtin("pow", _guarded("pow", math.pow), _rule(FLOAT), 2, 2, "pow(x, y)"),
    Builtin("floor", _guarded("floor", math.floor), _rule(INT), 1, 1, "floor(x)"),
    Builtin("ceil", _guarded("ceil", math.ceil), _rule(INT), 1, 1, "ceil(x)"),
    Builtin("hypot", _guarded("hypot", math.hypot), _rule(FLOAT), 1, None, "hypot(x, y, ...)"),
]
