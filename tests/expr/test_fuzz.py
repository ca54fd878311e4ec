"""Property tests: random text only ever parses or raises ExprSyntaxError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aqwen_spec.expr import ExprSyntaxError, parse_expr, parse_program

TOKENS = [
    "a",
    "b",
    "xs",
    "1",
    "2.5",
    '"s"',
    "'t'",
    'f"x{a}"',
    "f'{",
    "true",
    "null",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ".",
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "and",
    "or",
    "not",
    "in",
    "if",
    "else",
    "elif",
    "for",
    "where",
    "let",
    "fail",
    "delete",
    "=",
    "+=",
    ";",
    "\n",
    " ",
    "#c\n",
    "append",
    "\\",
    "&",
    "}}",
    "{{",
]

token_text = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)
any_text = st.text(max_size=200)


def _only_syntax_errors(fn: object, text: str) -> None:
    try:
        fn(text)  # type: ignore[operator]
    except ExprSyntaxError as e:
        assert e.pos.line >= 1 and e.pos.col >= 1
        assert isinstance(e.message, str) and e.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(token_text, any_text))
def test_parse_expr_only_raises_syntax_errors(text: str) -> None:
    _only_syntax_errors(parse_expr, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(token_text, any_text))
def test_parse_program_only_raises_syntax_errors(text: str) -> None:
    _only_syntax_errors(parse_program, text)
