"""One frame, many evaluations (aqwen_spec.semantics.frame): the same values and errors as evaluate(expr, env)."""

from __future__ import annotations

from typing import Any

import pytest

from aqwen_spec.expr import DEFAULT_MAX_STEPS, EvalError, EvalLimitError, evaluate, parse_expr
from aqwen_spec.expr.evaluator import StateEnv
from aqwen_spec.semantics.frame import Frame

STATE: dict[str, Any] = {"orders": {"A": {"id": "A", "qty": 2}, "B": {"id": "B", "qty": 5}}, "xs": list(range(10))}


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except EvalError as exc:
        return (type(exc).__name__, exc.message)


@pytest.mark.parametrize("text", [
    "orders[o.id].qty + n", "len(xs where it > n)", "orders['C'].qty", "o.qty / 0", "state.xs[3]",
    "sum(x for x in xs)", "unknown_name",
])
def test_frame_evaluates_as_evaluate(text: str) -> None:
    env = StateEnv(STATE, {"o": {"id": "A"}, "n": 3})  # no budget in it, as gold runs and verifiers pass theirs
    frame = Frame(env)
    expr = parse_expr(text)
    assert _outcome(lambda: frame.evaluate(expr)) == _outcome(lambda: evaluate(expr, env))
    plain = {**STATE, "o": {"id": "A"}, "n": 3}
    assert _outcome(lambda: Frame(plain).evaluate(expr)) == _outcome(lambda: evaluate(expr, plain))


def test_each_evaluation_gets_a_fresh_budget() -> None:
    """Steps spent by one evaluation are not charged to the next, as evaluate() gives each call its own budget."""
    many = {"xs": list(range(DEFAULT_MAX_STEPS // 2 + 1))}
    frame = Frame(many)
    expr = parse_expr("len(xs where it >= 0)")
    assert [frame.evaluate(expr) for _ in range(3)] == [len(many["xs"])] * 3
    with pytest.raises(EvalLimitError):
        Frame({"xs": list(range(DEFAULT_MAX_STEPS + 1))}).evaluate(expr)


def test_bindings_and_own() -> None:
    env = {"a": 1}
    frame = Frame(env)
    frame.set("b", 2)
    assert frame.evaluate(parse_expr("a + b")) == 3
    assert env == {"a": 1}  # the caller's env is copied, not written
    owned: dict[str, Any] = {"a": 1}
    Frame(owned, own=True).set("b", 2)
    assert owned["b"] == 2
