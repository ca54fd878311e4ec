"""Predicates that name their element (``count(u in users: u.email == email)``, ``users where u: ...``), and the
AQ505 warning for a bare field name that hides an outer name."""

from __future__ import annotations

from typing import Any

import pytest

from aqwen_spec.expr import ExprSyntaxError, Scope, check_expr, evaluate, parse_expr
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.serialize import from_json, to_json
from aqwen_spec.types import INT, STR, ListT, MapT, RecordT

USER = RecordT("User", {"id": STR, "email": STR, "n": INT})
USERS: dict[str, Any] = {
    "u1": {"id": "u1", "email": "Ann@x.org", "n": 2},
    "u2": {"id": "u2", "email": "bob@x.org", "n": 5},
    "u3": {"id": "u3", "email": "ann@x.org", "n": 1},
}
ENV: dict[str, Any] = {"users": USERS, "email": "ANN@X.ORG", "n": 3}


def scope() -> Scope:
    return Scope({"users": MapT(USER), "email": STR, "n": INT})


def problems(text: str) -> list[tuple[str, str, bool]]:
    return [(p.code, p.message, p.warning) for p in check_expr(parse_expr(text), scope())[1]]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("count(u in users: lower(u.email) == lower(email))", 2),
        ("any(u in users: u.n > n)", True),
        ("all(u in users: u.n > n)", False),
        ("sum(u in users: u.n * 2)", 16),
        ("[u.id for u in (users where u: u.n < n)]", ["u1", "u3"]),
        # the element's name hides an outer name only inside the predicate
        ("count(n in users: n.n > 1) + n", 5),
        # nested predicates, each with its own name, reach both elements and the outer names
        ("count(u in users: any(v in users: v.n == u.n + 3 and v.id != email))", 1),
    ],
)
def test_named_element_evaluates(text: str, value: Any) -> None:
    assert evaluate(parse_expr(text), ENV) == value
    assert problems(text) == []


def test_bare_field_still_reads_the_element_but_warns() -> None:
    text = "count(users, lower(email) == lower(email))"
    assert evaluate(parse_expr(text), ENV) == 3  # always true: the parameter is hidden
    found = problems(text)
    assert found and all(code == "AQ505" and warning for code, _, warning in found)
    assert found[0][1] == "'email' here is a field of each element, not the outer 'email' it hides"
    _, [first, *_] = check_expr(parse_expr(text), scope())
    assert first.hint == (
        "name the element to tell them apart: write count(u in users: ...) "
        "and use u.email for the field, email for the outer value"
    )
    assert [c for c, _, _ in problems("users where n > 1")] == ["AQ505"]
    assert problems("count(users, it.n > 1)") == []  # 'it' is the element by design, never a warning


def test_types_of_named_predicates() -> None:
    t, found = check_expr(parse_expr("users where u: u.n > 1"), scope())
    assert t == ListT(USER) and found == []
    assert [c for c, _, _ in problems("count(u in users: u.nope == 1)")] == ["AQ303"]
    assert [c for c, _, _ in problems("count(u in users: email == 1)")] == ["AQ304"]
    assert [c for c, _, _ in problems("users where u: u.n")] == ["AQ304"]  # not a bool
    # the fields are not bare names once the element has a name
    assert [c for c, _, _ in problems("count(u in users: n > 1)")] == []
    assert [c for c, _, _ in problems("count(u in users: email2 == email)")] == ["AQ302"]


def test_named_element_only_where_a_predicate_is_expected() -> None:
    found = problems("len(u in users: 1)")
    assert ("AQ306", "'u in ...: ...' names the element only in count, sum, any and all", False) in found


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("count(users: 1)", "a ':' in the arguments of a call names the element of a list"),
        ("count(1, u in users: u.n)", "'u in ...: ...' must be the first argument"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(ExprSyntaxError) as exc:
        parse_expr(text)
    assert exc.value.message == message
    assert exc.value.hint


def test_round_trip_through_a_bundle() -> None:
    expr = parse_expr("count(u in users: u.n > n) + len(users where v: v.n > 1)")
    back = from_json(to_json(expr))
    assert back == expr
    assert isinstance(back.left.args[1], A.Each)
    assert evaluate(back, ENV) == 1 + 2


def test_named_element_in_an_effect_loop() -> None:
    from aqwen_spec.expr import execute, parse_program

    state: dict[str, Any] = {"users": {k: dict(v) for k, v in USERS.items()}}
    program = parse_program('for u in users where v: v.n < n { u.email = "x" }\n'
                            'let k = count(v in users: v.email == "x")')
    execute(program, {"users": state["users"], "n": 3}, state)
    assert [u["email"] for u in state["users"].values()] == ["x", "bob@x.org", "x"]
