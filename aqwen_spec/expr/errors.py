"""Exceptions raised by the expression language: syntax errors, runtime errors and effect failures."""

from __future__ import annotations

from aqwen_spec.diagnostics import Pos


class ExprSyntaxError(Exception):
    """Text that is not a valid expression or effect program.

    ``pos`` is 1-based within the parsed text; ``hint`` suggests a fix when one is known.
    """

    def __init__(self, message: str, pos: Pos, hint: str | None = None) -> None:
        super().__init__(f"{message} (line {pos.line}, col {pos.col})")
        self.message = message
        self.pos = pos
        self.hint = hint


class EvalError(Exception):
    """A runtime error in an expression or effect: missing key, field of null, division by zero, ..."""

    def __init__(self, message: str, pos: Pos | None = None) -> None:
        where = f" (line {pos.line}, col {pos.col})" if pos is not None else ""
        super().__init__(message + where)
        self.message = message
        self.pos = pos


class EvalLimitError(EvalError):
    """Evaluation exceeded its step budget or built a string or list larger than allowed."""


class EffectFailed(Exception):
    """An effect program ran ``fail <message>``; every change it made has been rolled back."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
