"""Math and string builtins: the same results as Python (math bit for bit); errors are EvalErrors; types checked."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqwen_spec.expr import EvalError, Scope, check_expr, evaluate, parse_expr
from aqwen_spec.types import FLOAT, INT, STR, OptionalT, Type


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def ev(text: str, **env: object) -> object:
    return evaluate(parse_expr(text), dict(env))


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
positive = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(x=positive, y=finite, z=positive)
def test_same_bits_as_python_math(x: float, y: float, z: float) -> None:
    assert bits(ev("sqrt(x)", x=x)) == bits(math.sqrt(x))  # type: ignore[arg-type]
    assert bits(ev("log(x)", x=x)) == bits(math.log(x))  # type: ignore[arg-type]
    if z != 1.0:
        assert bits(ev("log(x, z)", x=x, z=z)) == bits(math.log(x, z))  # type: ignore[arg-type]
    assert bits(ev("hypot(y, x)", x=x, y=y)) == bits(math.hypot(y, x))  # type: ignore[arg-type]
    assert ev("floor(y)", y=y) == math.floor(y)
    assert ev("ceil(y)", y=y) == math.ceil(y)
    if abs(y) < 700:
        assert bits(ev("exp(y)", y=y)) == bits(math.exp(y))  # type: ignore[arg-type]
    if x < 1e100:
        assert bits(ev("pow(x, 0.37)", x=x)) == bits(math.pow(x, 0.37))  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "value"), [
    ("sqrt(16)", 4.0), ("pow(2, 10)", 1024.0), ("pow(2, 0.5)", math.sqrt(2)), ("log(8, 2)", 3.0),
    ("floor(-2.5)", -3), ("ceil(2.1)", 3), ("floor(7)", 7), ("hypot(3, 4)", 5.0), ("exp(0)", 1.0),
])
def test_values(text: str, value: object) -> None:
    got = ev(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("text", "message"), [
    ("sqrt(-1)", "sqrt(-1) is undefined (math domain error)"),
    ("log(0)", "log(0) is undefined"),
    ("log(8, 1)", "division by zero"),
    ("exp(1000)", "exp() overflowed"),
    ("pow(10, 400)", "pow() overflowed"),
    ("sqrt(n)", "sqrt() of null, not a number"),
])
def test_errors_are_eval_errors(text: str, message: str) -> None:
    with pytest.raises(EvalError) as info:
        ev(text, n=None)
    assert message in info.value.message


def _check(text: str, **names: Type) -> tuple[Type, list[tuple[str, str]]]:
    t, problems = check_expr(parse_expr(text), Scope(dict(names)))
    return t, [(p.code, p.message) for p in problems]


@pytest.mark.parametrize(("text", "type_"), [
    ("sqrt(x)", FLOAT), ("pow(i, 2)", FLOAT), ("floor(x)", INT), ("ceil(i)", INT), ("log(x, 10)", FLOAT),
])
def test_types(text: str, type_: Type) -> None:
    assert _check(text, x=FLOAT, i=INT) == (type_, [])


@pytest.mark.parametrize(("text", "codes"), [
    ('sqrt("4")', {"AQ306"}), ("pow(x)", {"AQ306"}), ("log(x, 2, 3)", {"AQ306"}),
    ("floor(maybe)", {"AQ306", "AQ313"}),  # a value that may be null, where null fails
])
def test_misuse_is_reported(text: str, codes: set[str]) -> None:
    _, problems = _check(text, x=FLOAT, maybe=OptionalT(FLOAT))
    assert {code for code, _ in problems} == codes


@pytest.mark.parametrize(("text", "value"), [
    ('strip("  a b  ")', "a b"), ('strip("xxaxx", "x")', "a"), ('lstrip("007", "0")', "7"),
    ('rstrip("12.500", "0")', "12.5"), ('rstrip("a\\n")', "a"), ('splitlines("a\\nb\\r\\nc")', ["a", "b", "c"]),
    ('byte_len("é1")', 3), ('len("é1")', 2),
])
def test_string_functions(text: str, value: object) -> None:
    assert ev(text) == value


def test_string_functions_are_typed() -> None:
    assert _check('rstrip(s, "0")', s=STR) == (STR, [])
    assert _check("byte_len(s)", s=STR) == (INT, [])
    assert [c for c, _ in _check("rstrip(s, 0)", s=STR)[1]] == ["AQ306"]
