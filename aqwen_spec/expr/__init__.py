"""The small, safe expression language of specs: preconditions, return values, filters and effect programs.

Parse with :func:`parse_expr` / :func:`parse_program`, check with :func:`check_expr` /
:func:`check_program`, and run with :func:`evaluate` / :func:`execute`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aqwen_spec.expr import ast
from aqwen_spec.expr.checker import Problem, Scope, check_expr, check_program, expected_bool
from aqwen_spec.expr.errors import EffectFailed, EvalError, EvalLimitError, ExprSyntaxError
from aqwen_spec.expr.functions import FUNCTIONS, MAX_SIZE, Builtin
from aqwen_spec.expr.parser import MAX_NESTING, MAX_TEXT, parse_expr, parse_program
from aqwen_spec.expr.sampling import SAMPLING_FUNCTIONS, sampling_rng

if TYPE_CHECKING:
    from aqwen_spec.expr.evaluator import (
        DEFAULT_MAX_STEPS,
        compile_expr,
        compile_program,
        evaluate,
        execute,
        make_env,
        rollback,
    )

# The evaluator is loaded on first use: linting only parses and checks.
_EVALUATOR = frozenset(
    {"DEFAULT_MAX_STEPS", "compile_expr", "compile_program", "evaluate", "execute", "make_env", "rollback"}
)


def __getattr__(name: str) -> Any:
    if name in _EVALUATOR:
        from aqwen_spec.expr import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module 'aqwen_spec.expr' has no attribute '{name}'")

__all__ = [
    "DEFAULT_MAX_STEPS",
    "FUNCTIONS",
    "MAX_NESTING",
    "MAX_SIZE",
    "MAX_TEXT",
    "SAMPLING_FUNCTIONS",
    "Builtin",
    "EffectFailed",
    "EvalError",
    "EvalLimitError",
    "ExprSyntaxError",
    "Problem",
    "Scope",
    "ast",
    "check_expr",
    "check_program",
    "compile_expr",
    "compile_program",
    "evaluate",
    "execute",
    "expected_bool",
    "make_env",
    "parse_expr",
    "parse_program",
    "rollback",
    "sampling_rng",
]
