"""Evaluation of every operator and builtin, runtime errors, limits, and a timing print."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aqwen_spec.expr import EvalError, EvalLimitError, compile_expr, evaluate, make_env, parse_expr

ENV: dict[str, Any] = {
    "xs": [
        {"id": "a", "price": 3, "status": "open", "tags": ["x"]},
        {"id": "b", "price": 1, "status": "done", "tags": []},
        {"id": "c", "price": 2, "status": "open", "tags": ["x", "y"]},
    ],
    "m": {"k1": {"id": "k1", "n": 1}, "k2": {"id": "k2", "n": 2}},
    "n": 5,
    "f": 2.5,
    "s": "Hello",
    "none": None,
    "d": "2024-02-28",
    "dt": "2024-02-28T10:30:00",
}


def ev(text: str, env: dict[str, Any] | None = None) -> Any:
    return evaluate(parse_expr(text), ENV if env is None else env)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 + 2 * 3", 7),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("7 / 2", 3.5),
        ("-n + 1", -4),
        ("f * 2", 5.0),
        ('s + " world"', "Hello world"),
        ("[1] + [2]", [1, 2]),
        ('"ab" * 2', "abab"),
        ("n == 5 and n != 4", True),
        ("n < 6 and n <= 5 and n > 4 and n >= 5", True),
        ('"k1" in m', True),
        ('"zz" not in m', True),
        ('"ell" in s', True),
        ("2 in [1, 2]", True),
        ("not (n == 5)", False),
        ("false or n == 5", True),
        ("false and none.x", False),
        ("true or none.x", True),
        ('"yes" if n > 3 else "no"', "yes"),
        ("xs[0].id", "a"),
        ("xs[-1].id", "c"),
        ('m["k2"].n', 2),
        ("s[0]", "H"),
        ("xs[0].missing", None),
        ('[x.id for x in xs where status == "open"]', ["a", "c"]),
        ("[x.id for x in xs if x.price > 1]", ["a", "c"]),
        ("[a * b for a, b in zip([1, 2], [3, 4])]", [3, 8]),
        ("len(m where n > 1)", 1),
        ("[it * 2 for it in [1, 2]]", [2, 4]),
        ("[1, 2, 3] where it > 1", [2, 3]),
        ('{id: s, "n": n + 1}', {"id": "Hello", "n": 6}),
        ('f"{s}, n={n}, f={f}, {none}, {true}, {[1, 2]}"', "Hello, n=5, f=2.5, null, true, [1, 2]"),
        ('f"{{x}}"', "{x}"),
        # builtins
        ("len(xs)", 3),
        ("len(s)", 5),
        ("count(xs)", 3),
        ('count(xs, status == "open")', 2),
        ("sum([1, 2, 3])", 6),
        ("sum(xs, price)", 6),
        ("sum([])", 0),
        ("min([3, 1, 2])", 1),
        ("max(3, 9, 2)", 9),
        ("any(xs, price > 2)", True),
        ("all(xs, price > 2)", False),
        ("any([false, true])", True),
        ("all([])", True),
        ("abs(-3)", 3),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("round(3.7)", 4),
        ("round(2.567, ndigits=1)", 2.6),
        ("[x.id for x in sorted(xs, by=price)]", ["b", "c", "a"]),
        ('[x.id for x in sorted(xs, by="price", desc=true)]', ["a", "c", "b"]),
        ("sorted([3, null, 1])", [None, 1, 3]),
        ("reversed([1, 2])", [2, 1]),
        ("zip([1, 2], [3])", [[1, 3]]),
        ("first(xs where price > 1).id", "a"),
        ("first(xs where price > 100)", None),
        ("last([1, 2])", 2),
        ("lower(s)", "hello"),
        ("upper(s)", "HELLO"),
        ('strip("  a ")', "a"),
        ('replace("aXa", "X", "-")', "a-a"),
        ('format("{} has {} {{ok}}", s, n)', "Hello has 5 {ok}"),
        ("str(true)", "true"),
        ("str(3)", "3"),
        ('int("42")', 42),
        ("int(2.9)", 2),
        ('float("1.5")', 1.5),
        ("keys(m)", ["k1", "k2"]),
        ("[v.n for v in values(m)]", [1, 2]),
        ("unique([1, 2, 1, 3, 2])", [1, 2, 3]),
        ("unique([{a: 1}, {a: 1}])", [{"a": 1}]),
        ('contains(s, "ell")', True),
        ("contains([1], 2)", False),
        ('startswith(s, "He")', True),
        ('endswith(s, "lo")', True),
        ("date(d)", "2024-02-28"),
        ("datetime(dt)", "2024-02-28T10:30:00"),
        ("add_days(d, 2)", "2024-03-01"),
        ("add_days(dt, -1)", "2024-02-27T10:30:00"),
        ('days_between("2024-01-01", d)', 58),
        ('join(["a", "b"], ", ")', "a, b"),
        ('split("a,b", ",")', ["a", "b"]),
        ("range(3)", [0, 1, 2]),
        ("range(1, 3)", [1, 2]),
        ('get(m, "zz", 0)', 0),
        ('get(m, "k1").n', 1),
        ("get([1, 2], 5)", None),
        # a map iterates its values
        ("[v.id for v in m]", ["k1", "k2"]),
    ],
)
def test_evaluate(text: str, value: Any) -> None:
    result = ev(text)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("none.x", "cannot read field 'x' of null"),
        ("n.x", "cannot read field 'x' of int"),
        ('m["zz"]', "no entry 'zz' in the map"),
        ("xs[10]", "index 10 out of range"),
        ('xs["a"]', "index must be an int"),
        ("n / 0", "division by zero"),
        ("n // 0", "division by zero"),
        ("n % 0", "modulo by zero"),
        ("s + 1", "cannot add str and int"),
        ('n - "a"', "cannot apply '-'"),
        ('n < "a"', "cannot compare int and str"),
        ("1 in n", "'in' needs a list, map or str"),
        ("1 in s", "'in' a str needs a str"),
        ("-s", "cannot negate str"),
        ("missing_name", "unknown name 'missing_name'"),
        ("nofunc(1)", "unknown function 'nofunc'"),
        ("min([])", "min() of an empty list"),
        ('int("x")', "int() of 'x'"),
        ('date("2024-13-01")', "is not an ISO-8601"),
        ('add_days("nope", 1)', "not an ISO-8601"),
        ('format("{}")', "more '{}' than arguments"),
        ('sorted([1, "a"])', "cannot be compared"),
        ("len(n)", "len() of int"),
        ("xs where 1", ""),
        ("n where true", "'where' needs a list, a map or a str, got int"),
        ("[x for x in n]", "'for' needs a list, a map or a str"),
        ("[a for a, b in [1]]", "cannot unpack int into 2 names"),
        ("append(xs, 1)", "only be used as an effect statement"),
    ],
)
def test_runtime_errors(text: str, message: str) -> None:
    if text == "xs where 1":
        assert ev(text) == ENV["xs"]  # truthiness: the checker is what rejects a non-bool condition
        return
    with pytest.raises(EvalError) as info:
        ev(text)
    assert message in info.value.message
    assert info.value.pos is not None


def test_error_position() -> None:
    with pytest.raises(EvalError) as info:
        ev("n + xs[0].tags.zz")
    assert info.value.pos is not None and info.value.pos.col == 16


def test_step_limit_is_quick() -> None:
    big = {"xs": list(range(1000))}
    start = time.perf_counter()
    with pytest.raises(EvalLimitError):
        ev("[[y for y in xs] for x in xs]", big)
    with pytest.raises(EvalLimitError):
        evaluate(parse_expr("count(xs where it > 1)"), big, max_steps=500)
    assert time.perf_counter() - start < 1.0


def test_size_limits_are_quick() -> None:
    start = time.perf_counter()
    with pytest.raises(EvalLimitError):
        ev('"a" * 2000000')
    with pytest.raises(EvalLimitError):
        ev("range(2000000)")
    with pytest.raises(EvalLimitError):
        ev('join(range(600000), "xx")')
    with pytest.raises(EvalError, match="overflow"):
        ev("9223372036854775807 * 2")
    assert time.perf_counter() - start < 1.0


def test_shared_budget_env() -> None:
    env = make_env({"xs": list(range(100))}, max_steps=250)
    expr = parse_expr("count(xs where it > 1)")
    evaluate(expr, env)
    with pytest.raises(EvalLimitError):
        evaluate(expr, env)


def test_deterministic_and_cached() -> None:
    expr = parse_expr('sorted(xs, by=price)[0].id + f"{n}"')
    assert compile_expr(expr) is compile_expr(expr)
    assert {ev('sorted(xs, by=price)[0].id + f"{n}"') for _ in range(3)} == {"b5"}


def test_micro_benchmark_precondition(capsys: pytest.CaptureFixture[str]) -> None:
    state = {
        "work_orders": {f"wo{i}": {"id": f"wo{i}", "status": "assigned", "tech": "t1"} for i in range(50)},
        "techs": {"t1": {"id": "t1", "active": True}},
    }
    env = {**state, "order_id": "wo7", "tech_id": "t1"}
    pre1 = parse_expr("order_id in work_orders")
    pre2 = parse_expr('work_orders[order_id].status == "assigned" and techs[tech_id].active')
    for _ in range(100):
        evaluate(pre1, env)
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        evaluate(pre1, env)
        evaluate(pre2, env)
    per = (time.perf_counter() - start) / (2 * n) * 1e6
    with capsys.disabled():
        print(f"\n[micro] evaluate(precondition): {per:.2f} us per call (env of {len(env)} names)")


FUSED_ENVS: list[dict[str, Any]] = [
    {"a": {"b": {"c": 1}, "k": "b"}, "k": "b", "x": "s"},
    {"a": {"b": 3}, "k": "zz", "x": 1},
    {"a": {"b": None}, "k": 0, "x": None},
    {"a": {}, "k": ["b"], "x": 1.0},
    {"a": None, "k": "b", "x": True},
    {"a": [10, 20], "k": 1, "x": "t"},
    {"a": [10, 20], "k": 5, "x": "t"},
    {"a": "text", "k": 2, "x": "s"},
    {"a": 7, "k": "b"},
    {},
]


@pytest.mark.parametrize("text", ["a.b", "a.b.c", "a[k].c", "a.b[k]", "a.b == 3", "a.b.c.d"])
def test_fused_closures_agree_with_the_generic_ones(text: str) -> None:
    """``a.b`` and ``a.b.c`` are compiled into one closure each: the same values and errors (message and position)
    as the generic closures, reached here through an ``if``/``else`` around the name."""
    generic = text.replace("a.", "(a if true else a).", 1).replace("a[", "(a if true else a)[", 1)
    assert generic != text
    for env in FUSED_ENVS:
        outcomes: list[tuple[Any, ...]] = []
        for expr_text in (text, generic):
            try:
                outcomes.append(("value", evaluate(parse_expr(expr_text), env)))
            except EvalError as exc:  # the position: the same character of each text
                assert exc.pos is not None
                outcomes.append(("error", exc.message, exc.pos.line, expr_text[exc.pos.col - 1]))
        assert outcomes[0] == outcomes[1], (text, env)
