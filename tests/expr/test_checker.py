"""Static checking: one or more tests per problem code, scopes, and clean checks of valid expressions."""

from __future__ import annotations

import pytest

from aqwen_spec.expr import Scope, check_expr, check_program, expected_bool, parse_expr, parse_program
from aqwen_spec.types import (
    ANY,
    BOOL,
    DATE,
    FLOAT,
    INT,
    STR,
    EnumT,
    ListT,
    MapT,
    OptionalT,
    RecordT,
    Type,
    VariantT,
)

Machine = RecordT("Machine", {"id": STR, "status": EnumT(("idle", "busy")), "load": FLOAT})
WorkOrder = RecordT(
    "WorkOrder",
    {
        "id": STR,
        "status": EnumT(("open", "assigned", "done")),
        "priority": INT,
        "machine_id": STR,
        "due": DATE,
        "note": OptionalT(STR),
        "tags": ListT(STR),
    },
)
Card = RecordT("Card", {"id": STR, "kind": STR, "balance": FLOAT})
Cash = RecordT("Cash", {"id": STR, "kind": STR})
Method = VariantT("Method", "kind", {"card": Card, "cash": Cash})


def scope() -> Scope:
    return Scope(
        {
            "work_orders": MapT(WorkOrder),
            "machines": MapT(Machine),
            "methods": MapT(Method),
            "order_id": STR,
            "qty": INT,
            "blob": ANY,
        }
    )


def check(text: str) -> tuple[Type, list[tuple[str, str]]]:
    t, problems = check_expr(parse_expr(text), scope())
    return t, [(p.code, p.message) for p in problems]


@pytest.mark.parametrize(
    ("text", "type_"),
    [
        ("order_id in work_orders", BOOL),
        ('work_orders where status == "assigned"', ListT(WorkOrder)),
        ('count(work_orders where status == "open" and priority > 2)', INT),
        ("work_orders[order_id].priority + 1", INT),
        ("work_orders[order_id].priority / 2", FLOAT),
        ("qty * 1.5", FLOAT),
        ('f"{order_id}: {qty}"', STR),
        ("first(work_orders where priority > 1)", OptionalT(WorkOrder)),
        ("first(work_orders where priority > 1)", OptionalT(WorkOrder)),
        ("sorted(work_orders, by=priority, desc=true)", ListT(WorkOrder)),
        ("[w.id for w in work_orders if w.priority > 1]", ListT(STR)),
        ("sum(work_orders, priority)", INT),
        ("max([1, 2.5])", FLOAT),
        ("round(machines[order_id].load, 2)", FLOAT),
        ("round(machines[order_id].load)", INT),
        ("keys(work_orders)", ListT(STR)),
        ("add_days(work_orders[order_id].due, 3)", DATE),
        ('days_between(work_orders[order_id].due, "2024-01-01")', INT),
        ('methods[order_id].balance if methods[order_id].kind == "card" else null', OptionalT(FLOAT)),
        ('methods[order_id].kind == "card"', BOOL),
        ("blob.anything[3].more", ANY),
        ("blob where x > 1", ListT(ANY)),
        ("work_orders[order_id].note", OptionalT(STR)),
        ("work_orders[order_id].note != null and len(work_orders[order_id].note) > 0", BOOL),
        ('"a" if qty > 1 else null', OptionalT(STR)),
        ("work_orders where it.priority > priority", ListT(WorkOrder)),
        ('any(work_orders, "urgent" in tags)', BOOL),
    ],
)
def test_valid_expressions(text: str, type_: Type) -> None:
    t, problems = check(text)
    assert problems == []
    assert t == type_


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("order_idd in work_orders", "AQ302", "unknown name 'order_idd'"),
        ("work_orders[order_id].prio", "AQ303", "WorkOrder has no field 'prio'"),
        ("qty.x", "AQ303", "has no field 'x'"),
        ("work_orders.x", "AQ303", "has no fields"),
        ("order_id == 3", "AQ304", "comparing str with int"),
        ('qty > "a"', "AQ304", "cannot order int and str"),
        ("qty and true", "AQ304", "an operand of 'and' must be a bool"),
        ("not qty", "AQ304", "the operand of 'not' must be a bool"),
        ("order_id + 1", "AQ304", "cannot add str and int"),
        ('order_id - "a"', "AQ304", "cannot apply '-'"),
        (
            'work_orders where status == "opne"',
            "AQ304",
            "'opne' is not a value of enum[open, assigned, done]",
        ),
        ('work_orders[order_id].status in ["open", "closed"]', "AQ304", "'closed' is not a value"),
        ("work_orders where priority", "AQ304", "a 'where' condition must be a bool"),
        ("qty where true", "AQ304", "'where' needs a list, a map or a str"),
        ("work_orders[3]", "AQ304", "map keys are str"),
        ("1 in qty", "AQ304", "'in' needs a list, map or str"),
        ("-order_id", "AQ304", "cannot negate"),
        ("lenn(work_orders)", "AQ305", "unknown function 'lenn'"),
        ("len()", "AQ306", "len() takes 1 arguments, got 0"),
        ("round(qty, 1, 2)", "AQ306", "takes 1 to 2 arguments"),
        ("sorted(work_orders, key=priority)", "AQ306", "sorted() has no argument 'key'"),
        ("len(qty)", "AQ306", "expected a str, list or map"),
        ("sum(work_orders, id)", "AQ306", "expected numbers"),
        ("append(work_orders, 1)", "AQ306", "only be used as a statement"),
        ("sorted(work_orders, by=priorty)", "AQ302", "unknown name 'priorty'"),
    ],
)
def test_problems(text: str, code: str, fragment: str) -> None:
    _, problems = check(text)
    assert any(c == code and fragment in m for c, m in problems), problems


def test_hints_and_positions() -> None:
    _, problems = check_expr(parse_expr("work_orders[order_id].stauts"), scope())
    assert problems[0].hint == "did you mean 'status'?"
    assert (problems[0].pos.line, problems[0].pos.col) == (1, 23)
    _, problems = check_expr(parse_expr("cont(work_orders)"), scope())
    assert problems[0].hint == "did you mean 'count'?"
    _, problems = check_expr(parse_expr('work_orders where status == "asigned"'), scope())
    assert problems[0].hint == "did you mean 'assigned'?"


def test_expected_bool() -> None:
    assert expected_bool(parse_expr("qty > 1"), scope()) == []
    problems = expected_bool(parse_expr("qty + 1"), scope())
    assert [p.code for p in problems] == ["AQ304"]


def test_scope_api() -> None:
    s = Scope({"a": INT})
    c = s.child()
    c.define("b", STR, assignable=True)
    assert c.lookup("a") == INT and c.lookup("b") == STR and s.lookup("b") is None
    assert c.is_assignable("b") and not c.is_assignable("a")
    assert "a" in c and "zz" not in c
    assert set(c.names()) == {"a", "b"}


def pcheck(text: str) -> list[tuple[str, str]]:
    return [(p.code, p.message) for p in check_program(parse_program(text), scope())]


def test_program_clean() -> None:
    text = """
    let w = work_orders[order_id]
    let n = 0
    n += 1
    w.status = "assigned"
    w.tags = ["a", "b"]
    append(w.tags, "c")
    for m in machines where status == "idle" { m.load = m.load + 1 }
    if w.due < "2024-06-01" and w.due != "2024-01-01" { w.due = add_days(w.due, 7) }
    work_orders["new"] = {
      id: "new", status: "open", priority: 1, machine_id: "m", due: "2024-01-01", tags: []
    }
    delete work_orders["old"]
    if n > 1 { fail f"too many: {n}" }
    """
    assert pcheck(text) == []


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ('order_id = "x"', "AQ307", "'order_id' cannot be reassigned"),
        ("work_orders = {}", "AQ307", "'work_orders' cannot be reassigned"),
        ("let qty = 1", "AQ307", "would hide the parameter"),
        ("for w in work_orders { w = 1 }", "AQ307", "'w' cannot be reassigned"),
        ("append(sorted(work_orders), 1)", "AQ307", "append() needs a list held in"),
        ('work_orders[order_id].status = "closed"', "AQ304", "'closed' is not a value"),
        ('work_orders[order_id].priority = "high"', "AQ304", "cannot store a str"),
        ("work_orders[order_id].prio = 1", "AQ303", "has no field 'prio'"),
        ("append(work_orders[order_id].tags, 1)", "AQ304", "cannot store a int"),
        (
            'work_orders["x"] = {id: "x", status: "open"}',
            "AQ304",
            "missing 'priority', 'machine_id', 'due', 'tags'",
        ),
        ('work_orders["x"] = {id: "x", stat: "open"}', "AQ303", "WorkOrder has no field 'stat'"),
        ('methods["x"] = {id: "x", kind: "cheque"}', "AQ304", "'cheque' is not a case of Method"),
        ('methods["x"] = {id: "x", kind: "card"}', "AQ304", "Card record is missing 'balance'"),
        ('delete machines[order_id].load["x"]', "AQ304", "'delete' removes map entries"),
        ("if qty { }", "AQ304", "the condition of 'if' must be a bool"),
        ("let x = 1\nif true { let y = 2 }\nx = y", "AQ302", "unknown name 'y'"),
        ('work_orders[order_id].due = "31/12/2024"', "AQ304", "'31/12/2024' is not an ISO-8601 date"),
        ("for a, b in qty { }", "AQ304", "'for' needs a list, a map or a str"),
        ('let s = "a"\ns += 1', "AQ304", "cannot add str and int"),
    ],
)
def test_program_problems(text: str, code: str, fragment: str) -> None:
    problems = pcheck(text)
    assert any(c == code and fragment in m for c, m in problems), problems


def test_generation_scope() -> None:
    state = RecordT("State", {"work_orders": MapT(WorkOrder)})
    s = Scope.for_generation(state, {"i": INT})
    _, problems = check_expr(parse_expr('f"wo{i}" if len(state.work_orders) > i else "none"'), s)
    assert problems == []
