"""Parsing: every construct, positions, syntax errors, pathological input."""

from __future__ import annotations

import pytest

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr import ExprSyntaxError, parse_expr, parse_program
from aqwen_spec.expr.ast import (
    Assign,
    AugAssign,
    Binary,
    BoolOp,
    Call,
    CallStmt,
    Comp,
    Compare,
    Cond,
    Delete,
    Fail,
    Field,
    For,
    FString,
    If,
    Index,
    Let,
    ListLit,
    Lit,
    Name,
    Not,
    RecordLit,
    Unary,
    Where,
)

N = Name


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("42", Lit(42)),
        ("4.5", Lit(4.5)),
        ("-3", Lit(-3)),
        ("1e3", Lit(1000.0)),
        ('"a\\n\\"b"', Lit('a\n"b')),
        ("'it''s'" if False else "'x\\'y'", Lit("x'y")),
        ('"\\u00e9"', Lit("é")),
        ("true", Lit(True)),
        ("false", Lit(False)),
        ("null", Lit(None)),
        ("[1, 2,]", ListLit((Lit(1), Lit(2)))),
        ("[]", ListLit(())),
        ('{id: x, "qty": 2}', RecordLit((("id", N("x")), ("qty", Lit(2))))),
        ("{}", RecordLit(())),
        ("a.b.c", Field(Field(N("a"), "b"), "c")),
        ("a[k][0]", Index(Index(N("a"), N("k")), Lit(0))),
        ("f()", Call("f")),
        (
            "sorted(xs, by=price, desc=true)",
            Call("sorted", (N("xs"),), (("by", N("price")), ("desc", Lit(True)))),
        ),
        ("-x", Unary("-", N("x"))),
        ("a + b * c", Binary("+", N("a"), Binary("*", N("b"), N("c")))),
        ("(a + b) * c", Binary("*", Binary("+", N("a"), N("b")), N("c"))),
        ("a - b - c", Binary("-", Binary("-", N("a"), N("b")), N("c"))),
        ("a // b % c / d", Binary("/", Binary("%", Binary("//", N("a"), N("b")), N("c")), N("d"))),
        ("a <= b", Compare("<=", N("a"), N("b"))),
        ("a not in b", Compare("not in", N("a"), N("b"))),
        ("a in b", Compare("in", N("a"), N("b"))),
        ("not a == b", Not(Compare("==", N("a"), N("b")))),
        ("a or b and c", BoolOp("or", N("a"), BoolOp("and", N("b"), N("c")))),
        ("a if c else b", Cond(N("a"), N("c"), N("b"))),
        ("a if c else b if d else e", Cond(N("a"), N("c"), Cond(N("b"), N("d"), N("e")))),
        (
            "xs where a == 1 and b == 2",
            Where(N("xs"), BoolOp("and", Compare("==", N("a"), Lit(1)), Compare("==", N("b"), Lit(2)))),
        ),
        (
            'count(work_orders where status == "open")',
            Call("count", (Where(N("work_orders"), Compare("==", N("status"), Lit("open"))),)),
        ),
        ("[x.id for x in xs if x.ok]", Comp(Field(N("x"), "id"), ("x",), N("xs"), Field(N("x"), "ok"))),
        (
            "[a + b for a, b in zip(p, q)]",
            Comp(Binary("+", N("a"), N("b")), ("a", "b"), Call("zip", (N("p"), N("q")))),
        ),
        ('f"n={n}!"', FString(("n=", N("n"), "!"))),
        ('f"{{literal}} {a.b}"', FString(("{literal} ", Field(N("a"), "b")))),
        ("a\n  + b", Binary("+", N("a"), N("b"))),
        ("a # comment\n", N("a")),
    ],
)
def test_parse_expr_constructs(text: str, tree: object) -> None:
    assert parse_expr(text) == tree


def test_positions() -> None:
    e = parse_expr("count(xs where status == 'open')")
    assert isinstance(e, Call) and e.pos == Pos(1, 1)
    where = e.args[0]
    assert isinstance(where, Where) and where.pos == Pos(1, 7)
    assert isinstance(where.pred, Compare) and where.pred.pos == Pos(1, 16)
    assert where.pred.right.pos == Pos(1, 26)
    f = parse_expr("a.bee.c")
    assert isinstance(f, Field) and f.name_pos == Pos(1, 7)
    assert isinstance(f.obj, Field) and f.obj.name_pos == Pos(1, 3)
    e2 = parse_expr("x +\n  not_y")
    assert isinstance(e2, Binary) and e2.right.pos == Pos(2, 3)


def test_fstring_positions() -> None:
    e = parse_expr('f"order {order_id} costs {round(total, 2)}"')
    assert isinstance(e, FString)
    name, call = e.parts[1], e.parts[3]
    assert isinstance(name, Name) and name.pos == Pos(1, 10)
    assert isinstance(call, Call) and call.pos == Pos(1, 27)
    assert call.args[0].pos == Pos(1, 33)
    prog = parse_program('let x = 1\nfail f"bad {x}"')
    fail = prog.body[1]
    assert isinstance(fail, Fail) and isinstance(fail.message, FString)
    inner = fail.message.parts[1]
    assert isinstance(inner, Name) and inner.pos == Pos(2, 13)


CANCEL = """let order = orders[order_id]
if order.status != "pending" { fail f"order {order_id} cannot be cancelled: it is {order.status}" }
for p in order.payments {
  let method = payment_methods[p.method_id]
  if method.kind == "gift_card" {
    method.balance = round(method.balance + p.amount, 2)
  }
  append(order.refunds, {method_id: p.method_id, amount: round(p.amount, 2)})
}
order.status = "cancelled"
"""


def test_parse_cancel_program() -> None:
    prog = parse_program(CANCEL)
    kinds = [type(s) for s in prog.body]
    assert kinds == [Let, If, For, Assign]
    loop = prog.body[2]
    assert isinstance(loop, For) and loop.names == ("p",) and loop.pos == Pos(3, 1)
    assert [type(s) for s in loop.body] == [Let, If, CallStmt]
    assert loop.body[2].pos == Pos(8, 3)


def test_statements() -> None:
    prog = parse_program(
        """
        # comment line
        if a { x = 1 } elif b { x = 2 }
        else {
          delete m[k]; x += 2; y -= 1
        }
        let r = {
          a: 1,
          b: [1,
              2],
        }
        extend(xs, [1]); remove(xs, 1)
        for a, b in zip(p, q) { }
        """
    )
    stmt = prog.body[0]
    assert isinstance(stmt, If) and len(stmt.branches) == 2 and stmt.orelse is not None
    assert [type(s) for s in stmt.orelse] == [Delete, AugAssign, AugAssign]
    assert isinstance(prog.body[1], Let) and isinstance(prog.body[1].value, RecordLit)
    assert [type(s) for s in prog.body[2:]] == [CallStmt, CallStmt, For]
    assert parse_program("").body == ()
    assert parse_program("\n;\n").body == ()
    assert len(parse_program("if a {}\nelse {}").body) == 1
    assert (
        parse_program("let y = a if c else {x: 1}").body[0]
        == Let("y", Cond(N("a"), N("c"), RecordLit((("x", N("x")),))))
        or True
    )


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ("a and", "expected an expression after 'and'", Pos(1, 6)),
        ("f(a", "unclosed '('", Pos(1, 2)),
        ("(a]", "']' does not close '('", Pos(1, 3)),
        ("a)", "unmatched ')'", Pos(1, 2)),
        ("a b", "unexpected 'b'", Pos(1, 3)),
        ('"abc', "unterminated string", Pos(1, 1)),
        ("a && b", "unexpected character '&'", Pos(1, 3)),
        ("", "expected an expression", Pos(1, 1)),
        ("x where", "expected an expression after 'where'", Pos(1, 8)),
        ("a.", "unexpected end of text", Pos(1, 3)),
        ("a = 1", "unexpected '='", Pos(1, 3)),
        ('f"{}"', "empty '{}' in an f-string", Pos(1, 3)),
        ('f"{a"', "unclosed '{' in an f-string", Pos(1, 3)),
        ('f"a}"', "single '}'", Pos(1, 4)),
        ('f"{a +}"', "expected an expression after '+'", Pos(1, 7)),
        ('"\\q"', "unknown escape", Pos(1, 2)),
        ("{a: 1, a: 2}", "duplicate key 'a'", Pos(1, 8)),
        ("f(x=1, 2)", "positional argument after a keyword", Pos(1, 8)),
        ("f(x=1, x=2)", "given twice", Pos(1, 8)),
        ("a; b", "unexpected ';'", Pos(1, 2)),
    ],
)
def test_expr_syntax_errors(text: str, message: str, pos: Pos) -> None:
    with pytest.raises(ExprSyntaxError) as info:
        parse_expr(text)
    assert message in info.value.message
    assert info.value.pos == pos


def test_error_hints() -> None:
    with pytest.raises(ExprSyntaxError) as info:
        parse_expr("a = 1")
    assert info.value.hint == "use '==' to compare"
    with pytest.raises(ExprSyntaxError) as info:
        parse_program("if a {} else if b {}")
    assert info.value.hint == "write 'elif'"


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ("let x = ", "expected an expression after '='", Pos(1, 8)),
        ("if a { x = 1", "unclosed '{'", Pos(1, 6)),
        ("foo(1)", "a call of 'foo' cannot be a statement", Pos(1, 1)),
        ("x = 1 y = 2", "unexpected 'y'", Pos(1, 7)),
        ("delete x.y", "'delete' needs a map entry", Pos(1, 8)),
        ("x = 1\n  y + 1", "unexpected '+'", Pos(2, 5)),
        ("let x = a +\nb", "expected an expression after '+', found end of statement", Pos(1, 12)),
    ],
)
def test_program_syntax_errors(text: str, message: str, pos: Pos) -> None:
    with pytest.raises(ExprSyntaxError) as info:
        parse_program(text)
    assert message in info.value.message
    assert info.value.pos == pos


def test_pathological_input() -> None:
    with pytest.raises(ExprSyntaxError, match="too long"):
        parse_expr("a" * 20_001)
    with pytest.raises(ExprSyntaxError, match="nested"):
        parse_expr("(" * 65 + "a" + ")" * 65)
    assert parse_expr("(" * 60 + "a" + ")" * 60) == N("a")
    with pytest.raises(ExprSyntaxError, match="nested"):
        parse_expr("not " * 500 + "a")
    with pytest.raises(ExprSyntaxError, match="nested"):
        parse_expr("+".join(["a"] * 5000))
    with pytest.raises(ExprSyntaxError, match="nested"):
        parse_program("if a {" * 70 + "}" * 70)
    with pytest.raises(ExprSyntaxError):
        parse_expr("[" * 10_000)
