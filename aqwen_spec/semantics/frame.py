"""Many evaluations in one frame: what ``evaluate(expr, env)`` gives each call, without a copy of the env per call.

:func:`aqwen_spec.expr.evaluate` copies its env into a fresh frame with a fresh step budget on every call. Code that
evaluates many expressions over the same names (a gold run's arguments and branch conditions, a verifier's checks)
makes one :class:`Frame` instead: the names are copied once, and each evaluation gets a fresh budget in it. The
results, and the errors, are the same as ``evaluate``'s: expressions only read their frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aqwen_spec.expr import EvalError
from aqwen_spec.expr.evaluator import _BUDGET, DEFAULT_MAX_STEPS, StateEnv, _Budget, compile_expr


class Frame:
    """A copy of ``env`` (a :class:`StateEnv` stays one, reading the same live state) with a step budget; with
    ``own``, ``env`` itself (a dict the caller made for this and no longer changes)."""

    __slots__ = ("budget", "names")

    def __init__(self, env: Mapping[str, Any], own: bool = False) -> None:
        names: dict[str, Any]
        if own and isinstance(env, dict):
            names = env
        else:
            names = StateEnv(env.state, env) if isinstance(env, StateEnv) else dict(env)
        self.budget = names[_BUDGET] = _Budget(DEFAULT_MAX_STEPS)
        self.names = names

    def set(self, name: str, value: Any) -> None:
        """Bind a name for later evaluations (a result bound with ``as:``)."""
        self.names[name] = value

    def evaluate(self, expr: Any, fn: Any = None) -> Any:
        """``evaluate(expr, env)``; ``fn`` is ``compile_expr(expr)`` when the caller kept it."""
        if fn is None:
            fn = compile_expr(expr)
        budget = self.budget
        budget.left = DEFAULT_MAX_STEPS
        budget.depth = 0
        try:
            return fn(self.names)
        except EvalError:
            raise
        except RecursionError:
            raise EvalError("value nested too deeply", getattr(expr, "pos", None)) from None
        except Exception as e:  # a bug or an exotic value must still surface as EvalError, as evaluate() does
            raise EvalError(f"internal error: {type(e).__name__}: {e}", getattr(expr, "pos", None)) from None
