"""Typed locals, null narrowing and variant narrowing in tool effects: what the checker accepts and rejects."""

from __future__ import annotations

import pytest

from aqwen_spec.expr import Scope, check_expr, check_program, parse_expr, parse_program
from aqwen_spec.expr.checker import check_program_scope, narrowed
from aqwen_spec.types import BOOL, FLOAT, INT, STR, EnumT, MapT, OptionalT, RecordT, Type, VariantT

User = RecordT("User", {"id": STR, "n": INT, "manager": OptionalT(STR), "score": OptionalT(FLOAT)})
Node = RecordT("Node", {"id": STR, "val": INT})
Node.fields["kids"] = OptionalT(MapT(Node))
File = RecordT("file", {"type": EnumT(("file",)), "content": STR})
Directory = RecordT("directory", {"type": EnumT(("directory",)), "contents": MapT(STR)})
Entry = VariantT("Entry", "type", {"file": File, "directory": Directory})
NAMED: dict[str, Type] = {"User": User, "Node": Node, "Entry": Entry}


def scope() -> Scope:
    s = Scope(types=NAMED)
    for name, t in {"users": MapT(User), "tree": OptionalT(Node), "entries": MapT(Entry), "k": STR,
                    "flag": OptionalT(BOOL)}.items():
        s.define(name, t)
    return s


def codes(program: str) -> list[str]:
    return [p.code for p in check_program(parse_program(program), scope())]


@pytest.mark.parametrize(
    "program",
    [
        "let v: User? = null\nv = users[k]\nusers[k].n = v.n",  # narrowed by storing a value
        'if users[k].manager != null { users[k].id = users[k].manager + "!" }',
        'if users[k].manager is not null and len(users[k].manager) > 2 { users[k].n = 1 }',
        'if users[k].manager == null { fail "no manager" }\nusers[k].id = lower(users[k].manager)',
        'let m = users[k].manager\nif m is null or len(m) == 0 { fail "none" }\nusers[k].id = m',
        "users[k].n = round(users[k].score) if users[k].score != null else 0",
        "if tree != null and tree.kids != null { for c in tree.kids { c.val += tree.val } }",
        'if tree != null { if tree.kids != null and k in tree.kids { tree.kids[k].val = 1 } }',
        'entries[k] = {type: "directory", contents: {}}\nentries[k].contents["a"] = "x"',
        'if entries[k].type == "file" { entries[k].content = "x" }',
        'let e = entries[k]\nif e.type == "directory" { e.contents = {} } else { e.content = "y" }',
        "let ids: list[str] = []\nappend(ids, k)\nusers[k].id = ids[0]",
        'let p: Entry = {type: "file", content: "a"}\nentries[k] = p',
        "users[k].n = count(users, manager != null and len(manager) > 1)",
    ],
)
def test_accepted(program: str) -> None:
    assert codes(program) == []


@pytest.mark.parametrize(
    ("program", "code"),
    [
        ("let v = null", "AQ314"),
        ("let xs = []", "AQ314"),
        ("users[k].id = users[k].manager", "AQ313"),  # a str? where a str must be
        ("users[k].n = len(users[k].manager)", "AQ313"),
        ("users[k].n = users[k].score + 1", "AQ313"),
        ("if tree != null { users[k].n = tree.kids[k].val }", "AQ313"),  # map[Node]? not narrowed
        ("if users[k].manager != null { users[k].manager = null\nusers[k].id = users[k].manager }", "AQ313"),
        ('let u = users[k]\nif u.manager != null { users[k].manager = null\nu.id = u.manager }', "AQ313"),
        ("let v: User? = null\nv = users[k]\nusers[k].n = v.no_such_field", "AQ303"),
        ("let x = 1\nx = \"a\"", "AQ304"),
        ("let x = 1\nif flag == true { let x = \"a\" }", "AQ304"),  # effects share one set of names
        ("for users in [1] { }", "AQ307"),
        ('entries[k] = {type: "directory", contents: {}}\nentries[k].content = "x"', "AQ315"),
        ('entries[k].content = "x"', "AQ315"),  # not narrowed
        ('if entries[k].type == "file" { entries[k].type = "directory" }', "AQ315"),
        ("entries[k] = {type: k, content: \"x\"}", "AQ315"),  # a tag that is not a case name
        ('users[k] = {id: "a", n: 1}\nusers[k].n = {a: 1, b: "x"}.b', "AQ304"),
        ('users[k].n = 1 if flag == true else "x"', "AQ304"),
        ("users[k].id = users[k].id if true else 2", "AQ304"),
    ],
)
def test_rejected(program: str, code: str) -> None:
    assert code in codes(program), codes(program)


def test_a_precondition_narrows_what_follows() -> None:
    s = scope()
    when = parse_expr("users[k].manager != null")
    assert check_expr(parse_expr("len(users[k].manager)"), s)[1]
    after = narrowed(s, when)
    assert check_expr(parse_expr("len(users[k].manager)"), after)[1] == []


def test_returns_sees_the_effects_locals_and_what_they_left_known() -> None:
    problems, after = check_program_scope(
        parse_program('let id = f"U-{len(users)}"\nusers[id] = {id: id, n: 0, manager: "m"}'), scope()
    )
    assert problems == []
    t, problems = check_expr(parse_expr("users[id]"), after)
    assert problems == [] and t is User
    assert check_expr(parse_expr("id"), after)[0] == STR


def test_workflow_scopes_are_lenient_about_null() -> None:
    lenient = Scope({"users": MapT(User), "k": STR}, strict=False)
    assert check_expr(parse_expr("len(users[k].manager)"), lenient)[1] == []


def test_declared_locals_and_is_null_parse_and_round_trip() -> None:
    from aqwen_spec.expr import ast
    from aqwen_spec.expr.serialize import from_json, to_json

    program = parse_program("let v: map[Node]? = null\nif v is not null and tree is null { v = null }")
    let = program.body[0]
    assert isinstance(let, ast.Let) and let.declared == "map[Node]?"
    cond = program.body[1].branches[0][0]  # type: ignore[union-attr]
    assert (cond.left.op, cond.right.op) == ("!=", "==")
    assert from_json(to_json(program)) == program
    assert codes("let v: map[Node]? = null\nif v is not null { users[k].n = len(v) }") == []
    assert codes("let v: Nod? = null") == ["AQ201"]
