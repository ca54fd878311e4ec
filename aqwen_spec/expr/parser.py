"""Parsing expressions and effect programs into the IR of :mod:`aqwen_spec.expr.ast`.

The LALR parser is built once, lazily, from ``grammar.lark``; the IR is built by a transformer that runs
inside the parser (no intermediate parse tree, no recursion), and every lark error becomes an
:class:`ExprSyntaxError`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.errors import ExprSyntaxError

__all__ = ["GENERATOR_FUNCTIONS", "MAX_NESTING", "MAX_TEXT", "ExprSyntaxError", "parse_expr", "parse_program"]

MAX_TEXT = 20_000
"""Longest text accepted by :func:`parse_expr` and :func:`parse_program`."""
MAX_NESTING = 64
"""Deepest nesting of brackets and blocks accepted."""
GENERATOR_FUNCTIONS = frozenset(
    {"all", "any", "sum", "min", "max", "count", "sorted", "list", "unique", "join", "first", "last", "reversed"}
)
"""Functions whose first argument may be a comprehension written without brackets, as in Python."""
MAX_TREE_DEPTH = 200
"""Deepest IR tree accepted (operator chains count): bounds recursion in the checker and evaluator."""

_OPEN = {"LPAR": "(", "LSQB": "[", "LBRACE": "{", "BLOCK_OPEN": "{"}
_CLOSE_OF = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}
# Tokens after which a '{' at statement level opens a block (an expression just ended) rather than a record.
_EXPR_END = frozenset(
    {"NAME", "NUMBER", "STRING", "FSTRING", "RPAR", "RSQB", "RBRACE", "TRUE", "FALSE", "NULL"}
)

# How tokens are named in messages when their text is not enough.
_DESCRIBE = {
    "$END": "end of text",
    "_SEP": "end of statement",
    "NL": "end of line",
    "BLOCK_OPEN": "'{'",
    "BLOCK_CLOSE": "'}'",
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "FSTRING": "an f-string",
    "AUGOP": "'+=' or '-='",
}
_EXPR_START = frozenset(
    {"NAME", "NUMBER", "STRING", "FSTRING", "TRUE", "FALSE", "NULL", "LPAR", "LSQB", "LBRACE", "MINUS", "NOT"}
)
_OPERATOR_LIKE = frozenset(
    {
        "AND",
        "OR",
        "NOT",
        "WHERE",
        "IN",
        "IF",
        "ELSE",
        "ELIF",
        "EQ",
        "NE",
        "LT",
        "LE",
        "GT",
        "GE",
        "PLUS",
        "MINUS",
        "STAR",
        "SLASH",
        "DSLASH",
        "PERCENT",
        "EQUAL",
        "AUGOP",
        "COMMA",
        "COLON",
        "LPAR",
        "LSQB",
        "LBRACE",
        "FAIL",
        "RETURN",
        "LET",
        "FOR",
        "WHILE",
        "DELETE",
    }
)


def _pos(item: Any) -> Pos:
    if isinstance(item, Token):
        return Pos(item.line or 1, item.column or 1)
    return item.pos


@dataclass
class _LexState:
    """Per-parse state shared by the postlexer and the error reporter."""

    mode: str
    last: Token | None = None
    before_last: Token | None = None
    opened: list[Token] = field(default_factory=list)


class _PostLexer:
    """Drops newlines inside brackets, turns newlines and ';' into _SEP, tells block braces from records."""

    always_accept = ("NL", "SEMI")

    def __init__(self) -> None:
        self.local = threading.local()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        # Read the per-parse state now: an f-string parsed inside a callback pushes its own state later on.
        state: _LexState = self.local.stack[-1]
        return self._run(stream, state)

    def _run(self, stream: Iterator[Token], st: _LexState) -> Iterator[Token]:
        program = st.mode == "program"
        opened = st.opened
        pending: Token | None = None
        for tok in stream:
            t = tok.type
            if t == "NL" or t == "SEMI":
                at_stmt_level = not opened or opened[-1].type == "BLOCK_OPEN"
                if not program or not at_stmt_level:
                    if t == "NL":
                        continue
                    yield tok  # a ';' inside brackets or in an expression: let the parser report it
                    continue
                if pending is None and st.last is not None and st.last.type != "BLOCK_OPEN":
                    pending = Token.new_borrow_pos("_SEP", tok.value, tok)
                continue
            if t == "LBRACE":
                at_stmt_level = not opened or opened[-1].type == "BLOCK_OPEN"
                last = st.last.type if st.last is not None else None
                before = st.before_last.type if st.before_last is not None else None
                if (
                    program
                    and at_stmt_level
                    and (last in _EXPR_END or (last == "ELSE" and before == "BLOCK_CLOSE"))
                ):
                    tok = Token.new_borrow_pos("BLOCK_OPEN", tok.value, tok)
                opened.append(tok)
                if len(opened) > MAX_NESTING:
                    raise ExprSyntaxError(f"nested more than {MAX_NESTING} levels deep", _pos(tok))
            elif t == "LPAR" or t == "LSQB":
                opened.append(tok)
                if len(opened) > MAX_NESTING:
                    raise ExprSyntaxError(f"nested more than {MAX_NESTING} levels deep", _pos(tok))
            elif t in _CLOSE_OF:
                if not opened:
                    raise ExprSyntaxError(
                        f"unmatched '{tok.value}'", _pos(tok), "remove it or add the opening bracket"
                    )
                top = opened[-1]
                want = "LBRACE" if top.type == "BLOCK_OPEN" else top.type
                if want != _CLOSE_OF[t]:
                    closer = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}[want]
                    raise ExprSyntaxError(
                        f"'{tok.value}' does not close '{_OPEN[top.type]}' opened at line {top.line}, "
                        f"col {top.column}",
                        _pos(tok),
                        f"expected '{closer}'",
                    )
                opened.pop()
                if top.type == "BLOCK_OPEN":
                    tok = Token.new_borrow_pos("BLOCK_CLOSE", tok.value, tok)
                    pending = None
            if pending is not None:
                if not (
                    t == "ELIF" or (t == "ELSE" and st.last is not None and st.last.type == "BLOCK_CLOSE")
                ):
                    st.before_last, st.last = st.last, pending
                    yield pending
                pending = None
            st.before_last, st.last = st.last, tok
            yield tok
        if opened:
            top = opened[-1]
            raise ExprSyntaxError(
                f"unclosed '{_OPEN[top.type]}'", _pos(top), f"add the matching '{_closer(top.type)}'"
            )


def _closer(open_type: str) -> str:
    return {"LPAR": ")", "LSQB": "]"}.get(open_type, "}")


_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "0": "\0",
    "{": "\\{",
    "}": "\\}",
}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


def _unescape(body: str, tok: Token, offset: int) -> str:
    """Resolve backslash escapes; ``offset`` is the column of ``body``'s first character in the token."""
    if "\\" not in body:
        return body

    def repl(m: re.Match[str]) -> str:
        code = m.group(1)
        if code[0] == "u" and len(code) == 5:
            return chr(int(code[1:], 16))
        if code in _ESCAPES and code not in "{}":
            return _ESCAPES[code]
        raise ExprSyntaxError(
            f"unknown escape '\\{code}' in a string",
            Pos(tok.line or 1, (tok.column or 1) + offset + m.start()),
            "write '\\\\' for a backslash",
        )

    return _ESCAPE_RE.sub(repl, body)


def _fstring_parts(tok: Token) -> tuple[str | A.Expr, ...]:
    """Split an f-string token into text and parsed expression parts, keeping positions exact."""
    text = str(tok.value)
    body = text[2:-1]
    line, col0 = tok.line or 1, (tok.column or 1) + 2  # column of body[0]
    parts: list[str | A.Expr] = []
    buf: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            buf.append(_unescape(body[i : i + 2], tok, 2 + i))
            i += 2
        elif c == "{" and body.startswith("{{", i):
            buf.append("{")
            i += 2
        elif c == "}" and body.startswith("}}", i):
            buf.append("}")
            i += 2
        elif c == "}":
            raise ExprSyntaxError(
                "single '}' in an f-string", Pos(line, col0 + i), "write '}}' for a literal '}'"
            )
        elif c == "{":
            end = _matching_brace(body, i)
            if end < 0:
                raise ExprSyntaxError(
                    "unclosed '{' in an f-string", Pos(line, col0 + i), "add the matching '}'"
                )
            inner = body[i + 1 : end]
            colon = _spec_colon(inner)
            spec = None if colon < 0 else inner[colon + 1 :]
            if colon >= 0:
                inner = inner[:colon]
            conversion = re.search(r"![rsa]\s*$", inner)
            if conversion is not None:
                raise ExprSyntaxError(
                    f"f-string conversions ('{conversion.group().strip()}') are not supported",
                    Pos(line, col0 + i + 1 + conversion.start()),
                    "write {x} (text as str(x) gives it) or {x:spec}",
                )
            if not inner.strip():
                raise ExprSyntaxError(
                    "empty '{}' in an f-string", Pos(line, col0 + i), "write an expression inside"
                )
            if buf:
                parts.append("".join(buf))
                buf = []
            # Padding makes the inner parser report positions in the outer text.
            padded = "\n" * (line - 1) + " " * (col0 + i) + inner
            value: A.Expr = _parse(padded, "expr")  # type: ignore[assignment]
            if spec is not None:
                spec_pos = Pos(line, col0 + i + 1 + colon + 1)
                if "{" in spec or "}" in spec:
                    raise ExprSyntaxError(
                        "a format spec cannot hold '{' or '}'", spec_pos, "write the width or precision as a number"
                    )
                value = A.Formatted(value, _unescape(spec, tok, 2 + i + 1 + colon + 1), value.pos, spec_pos)
            parts.append(value)
            i = end + 1
        else:
            buf.append(c)
            i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts)


_WHERE_NAMED = re.compile(r"\bwhere\s+[A-Za-z_][A-Za-z0-9_]*\s*$")


def _spec_colon(inner: str) -> int:
    """Where the format spec of ``{expr:spec}`` starts: the first ':' outside brackets and strings, as in Python
    (the ':' of ``xs where x: cond`` names the element instead); -1 when there is none."""
    for i, c, depth in outside_strings(inner):
        if c == ":" and depth == 0 and not _WHERE_NAMED.search(inner[:i]):
            return i
    return -1


def outside_strings(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """``(index, character, bracket depth after it)`` for each character of ``text`` from ``start`` that is not in a
    string literal (quote characters and escapes excluded): what scanning for a top-level comma or the bracket that
    closes another needs."""
    depth = 0
    quote: str | None = None
    i = start
    while i < len(text):
        c = text[i]
        if quote is not None:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        else:
            depth += (c in "([{") - (c in ")]}")
            yield i, c, depth
        i += 1


def _matching_brace(body: str, start: int) -> int:
    return next((i for i, c, depth in outside_strings(body, start) if c in ")]}" and depth == 0), -1)


def _nodes(children: list[Any]) -> list[Any]:
    return [c for c in children if c is not None and not isinstance(c, Token)]


@dataclass(frozen=True)
class _NamedElem:
    """``name in source: body`` as a call argument, before the call spreads it into ``source, Each(...)``."""

    source: A.Expr
    each: A.Each


class _Builder:
    """Callbacks run by the LALR parser on each reduction; each returns an IR node (or a helper value)."""

    # literals and names

    def name(self, c: list[Any]) -> A.Expr:
        return A.Name(str(c[0]), _pos(c[0]))

    def number(self, c: list[Any]) -> A.Expr:
        text = str(c[0])
        value: int | float = float(text) if ("." in text or "e" in text or "E" in text) else int(text)
        return A.Lit(value, _pos(c[0]))

    def string(self, c: list[Any]) -> A.Expr:
        tok = c[0]
        return A.Lit(_unescape(str(tok)[1:-1], tok, 1), _pos(tok))

    def fstring(self, c: list[Any]) -> A.Expr:
        return A.FString(_fstring_parts(c[0]), _pos(c[0]))

    def const(self, c: list[Any]) -> A.Expr:
        return A.Lit({"true": True, "false": False, "null": None}[str(c[0])], _pos(c[0]))

    def paren(self, c: list[Any]) -> A.Expr:
        return c[1]

    def list_lit(self, c: list[Any]) -> A.Expr:
        return A.ListLit(tuple(_nodes(c)), _pos(c[0]))

    def comp(self, c: list[Any]) -> A.Expr:
        # LSQB elem FOR names IN iter [IF cond] RSQB
        return A.Comp(c[1], c[3], c[5], c[7], _pos(c[0]))

    def record(self, c: list[Any]) -> A.Expr:
        entries = _nodes(c)
        seen: set[str] = set()
        for key, _value, key_tok in entries:
            if key in seen:
                raise ExprSyntaxError(f"duplicate key '{key}' in a record", _pos(key_tok))
            seen.add(key)
        return A.RecordLit(tuple((k, v) for k, v, _ in entries), _pos(c[0]))

    def entry(self, c: list[Any]) -> tuple[str, A.Expr, Any]:
        head = c[0]
        if isinstance(head, A.Name):
            return (head.id, c[2], head)
        if isinstance(head, A.Lit) and isinstance(head.value, str):
            return (head.value, c[2], head)
        raise ExprSyntaxError(
            "a record's keys are names or strings",
            head.pos,
            "for keys computed per element, write a map comprehension: {u.id: u for u in users}",
        )

    def map_comp(self, c: list[Any]) -> A.Expr:
        # LBRACE key COLON value FOR names IN iter [IF cond] RBRACE
        return A.MapComp(c[1], c[3], c[5], c[7], c[9], _pos(c[0]))

    def names(self, c: list[Any]) -> tuple[str, ...]:
        return tuple(str(t) for t in c if t.type == "NAME")

    # postfix and calls

    def field(self, c: list[Any]) -> A.Expr:
        return A.Field(c[0], str(c[2]), c[0].pos, _pos(c[2]))

    def index(self, c: list[Any]) -> A.Expr:
        return A.Index(c[0], c[2], c[0].pos)

    def call(self, c: list[Any]) -> A.Expr:
        return self._call(c[0], c[2])

    def call_gen(self, c: list[Any]) -> A.Expr:
        # NAME LPAR elem FOR names IN iter [IF cond] RPAR: Python's generator argument, all(c in d for c in s)
        name = str(c[0])
        if name not in GENERATOR_FUNCTIONS:
            raise ExprSyntaxError(
                f"{name}() does not take a comprehension without brackets",
                c[2].pos,
                f"write {name}([... for x in xs]) with brackets",
            )
        return A.Call(name, (A.Comp(c[2], c[4], c[6], c[8], c[2].pos, lazy=True),), (), _pos(c[0]))

    def slice(self, c: list[Any]) -> A.Expr:
        # postfix LSQB [start] COLON [stop] [COLON [step]] RSQB
        return A.Slice(c[0], c[2], c[4], c[6], c[0].pos)

    def _call(self, name: Token, arglist: list[Any] | None) -> A.Call:
        args: list[A.Expr] = []
        kwargs: list[tuple[str, A.Expr]] = []
        for a in arglist or ():
            if isinstance(a, _NamedElem):
                if args or kwargs:
                    raise ExprSyntaxError(
                        f"'{a.each.name} in ...: ...' must be the first argument",
                        a.each.pos,
                        f"write {name}({a.each.name} in xs: condition)",
                    )
                args += [a.source, a.each]
            elif isinstance(a, tuple):
                key, value, tok = a
                if any(k == key for k, _ in kwargs):
                    raise ExprSyntaxError(f"argument '{key}' given twice", _pos(tok))
                kwargs.append((key, value))
            elif kwargs:
                raise ExprSyntaxError(
                    "positional argument after a keyword argument", a.pos, "put positional arguments first"
                )
            else:
                args.append(a)
        return A.Call(str(name), tuple(args), tuple(kwargs), _pos(name))

    def arglist(self, c: list[Any]) -> list[Any]:
        return _nodes(c)

    def kwarg(self, c: list[Any]) -> tuple[str, A.Expr, Token]:
        return (str(c[0]), c[2], c[0])

    def named_elem(self, c: list[Any]) -> _NamedElem:
        head, body = c[0], c[2]
        if not (isinstance(head, A.Compare) and head.op == "in" and isinstance(head.left, A.Name)):
            raise ExprSyntaxError(
                "a ':' in the arguments of a call names the element of a list",
                _pos(c[1]),
                "write count(o in orders: o.total > 0); a record is written {key: value}",
            )
        return _NamedElem(head.right, A.Each(head.left.id, body, head.left.pos))

    # operators

    def neg(self, c: list[Any]) -> A.Expr:
        operand = c[1]
        if isinstance(operand, A.Lit) and type(operand.value) in (int, float):
            return A.Lit(-operand.value, _pos(c[0]))  # type: ignore[operator]
        return A.Unary("-", operand, _pos(c[0]))

    def binary(self, c: list[Any]) -> A.Expr:
        return A.Binary(str(c[1]), c[0], c[2], c[0].pos)

    def comp_op(self, c: list[Any]) -> str:
        if str(c[0]) == "is":  # `x is null`, `x is not null`: the same as == and !=
            return "!=" if len(c) == 2 else "=="
        return "not in" if len(c) == 2 else str(c[0])

    def compare(self, c: list[Any]) -> A.Expr:
        return A.Compare(c[1], c[0], c[2], c[0].pos)

    def bool_op(self, c: list[Any]) -> A.Expr:
        return A.BoolOp(str(c[1]), c[0], c[2], c[0].pos)

    def not_(self, c: list[Any]) -> A.Expr:
        return A.Not(c[1], _pos(c[0]))

    def where(self, c: list[Any]) -> A.Expr:
        return A.Where(c[0], c[2], c[0].pos)

    def where_named(self, c: list[Any]) -> A.Expr:
        # source WHERE NAME COLON pred
        return A.Where(c[0], A.Each(str(c[2]), c[4], _pos(c[2])), c[0].pos)

    def cond(self, c: list[Any]) -> A.Expr:
        return A.Cond(c[0], c[2], c[4], c[0].pos)

    # statements

    def program(self, c: list[Any]) -> A.Program:
        body = c[0] or ()
        return A.Program(tuple(body), body[0].pos if body else Pos(1, 1))

    def stmts(self, c: list[Any]) -> list[A.Stmt]:
        return _nodes(c)

    def block(self, c: list[Any]) -> tuple[A.Stmt, ...]:
        return tuple(c[1] or ())

    def let_stmt(self, c: list[Any]) -> A.Stmt:
        return A.Let(str(c[1]), c[-1], _pos(c[0]), c[3] if len(c) == 6 else None)

    def type_expr(self, c: list[Any]) -> str:
        """A declared type, as the text the type parser reads (``map[Node]?``)."""
        args = [x for x in c[1:-1] if isinstance(x, str) and not isinstance(x, Token)]  # the types inside [...]
        text = str(c[0]) + (f"[{', '.join(args)}]" if args else "")
        return text + ("?" if c[-1] is not None else "")

    def assign_stmt(self, c: list[Any]) -> A.Stmt:
        return A.Assign(c[0], c[2], c[0].pos)

    def aug_stmt(self, c: list[Any]) -> A.Stmt:
        return A.AugAssign(c[0], str(c[1])[0], c[2], c[0].pos)

    def call_stmt(self, c: list[Any]) -> A.Stmt:
        call = self._call(c[0], c[2])
        if call.func not in ("append", "extend", "remove", "add", "discard"):
            raise ExprSyntaxError(
                f"a call of '{call.func}' cannot be a statement",
                call.pos,
                "only append(...), extend(...), remove(...), add(...) and discard(...) may stand alone; "
                "use 'let x = ...' to keep a value",
            )
        return A.CallStmt(call, call.pos)

    def delete_stmt(self, c: list[Any]) -> A.Stmt:
        target = c[1]
        if not isinstance(target, A.Index):
            raise ExprSyntaxError("'delete' needs a map entry", target.pos, "write 'delete some_map[key]'")
        return A.Delete(target, _pos(c[0]))

    def fail_stmt(self, c: list[Any]) -> A.Stmt:
        return A.Fail(c[1], _pos(c[0]))

    def return_stmt(self, c: list[Any]) -> A.Stmt:
        return A.Return(c[1], _pos(c[0]))

    def if_stmt(self, c: list[Any]) -> A.Stmt:
        branches = [(c[1], c[2])]
        orelse: tuple[A.Stmt, ...] | None = None
        for item in c[3:]:
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "elif":
                branches.append(item[1])
            elif isinstance(item, tuple) and len(item) == 2 and item[0] == "else":
                orelse = item[1]
        return A.If(tuple(branches), orelse, _pos(c[0]))

    def elif_clause(self, c: list[Any]) -> tuple[str, tuple[A.Expr, tuple[A.Stmt, ...]]]:
        return ("elif", (c[1], c[2]))

    def else_clause(self, c: list[Any]) -> tuple[str, tuple[A.Stmt, ...]]:
        return ("else", c[1])

    def for_stmt(self, c: list[Any]) -> A.Stmt:
        return A.For(c[1], c[3], c[4], _pos(c[0]))

    def while_stmt(self, c: list[Any]) -> A.Stmt:
        return A.While(c[1], c[2], _pos(c[0]))

    def break_stmt(self, c: list[Any]) -> A.Stmt:
        return A.Break(_pos(c[0]))

    def continue_stmt(self, c: list[Any]) -> A.Stmt:
        return A.Continue(_pos(c[0]))

    def target_name(self, c: list[Any]) -> A.Expr:
        return A.Name(str(c[0]), _pos(c[0]))

    def target_field(self, c: list[Any]) -> A.Expr:
        return A.Field(c[0], str(c[2]), c[0].pos, _pos(c[2]))

    def target_index(self, c: list[Any]) -> A.Expr:
        return A.Index(c[0], c[2], c[0].pos)


_GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")
_PARSER: Lark | None = None
_POSTLEXER = _PostLexer()
_BUILD_LOCK = threading.Lock()


def _parser() -> Lark:
    global _PARSER
    if _PARSER is None:
        with _BUILD_LOCK:
            if _PARSER is None:
                _PARSER = Lark(
                    _GRAMMAR_PATH.read_text(encoding="utf-8"),
                    parser="lalr",
                    lexer="basic",
                    start=["start_expr", "program"],
                    transformer=_Builder(),
                    postlex=_POSTLEXER,
                    maybe_placeholders=True,
                    cache=_cache_file(),
                )
    return _PARSER


def _cache_file() -> str | bool:
    """Lark's parser cache in the user's own cache folder (a pickle in a shared temp dir could be planted).

    The name carries a hash of the grammar and the Lark and Python versions, so a stale cache is never read.
    """
    import hashlib
    import os
    import sys

    import lark

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aqwen-spec"
    key = hashlib.sha256(
        _GRAMMAR_PATH.read_bytes() + f"{lark.__version__}|{sys.version_info[:2]}".encode()
    ).hexdigest()[:16]
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return False  # no writable cache folder: build the parser each time (about 60 ms)
    return str(base / f"expr-parser-{key}.lark-cache")


def parse_expr(text: str) -> A.Expr:
    """Parse one expression; newlines are free inside it. Raises :class:`ExprSyntaxError`."""
    _check_size(text)
    result = _parse(text, "expr")
    _check_depth(result)
    return result  # type: ignore[return-value]


def parse_program(text: str) -> A.Program:
    """Parse an effect program: statements separated by newlines or ';', blocks in braces."""
    _check_size(text)
    result = _parse(text, "program")
    _check_depth(result)
    assert isinstance(result, A.Program)
    _check_loop_exits(result.body, False)
    return result


def _check_loop_exits(body: tuple[A.Stmt, ...], in_loop: bool) -> None:
    """``break`` and ``continue`` only inside a ``for`` or ``while`` (as in Python)."""
    for s in body:
        if isinstance(s, (A.Break, A.Continue)) and not in_loop:
            word = "break" if isinstance(s, A.Break) else "continue"
            raise ExprSyntaxError(f"'{word}' outside a loop", s.pos, "use it inside a 'for' or 'while' block")
        if isinstance(s, A.If):
            for _, b in s.branches:
                _check_loop_exits(b, in_loop)
            _check_loop_exits(s.orelse or (), in_loop)
        elif isinstance(s, (A.For, A.While)):
            _check_loop_exits(s.body, True)


def _check_size(text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ExprSyntaxError(f"text is too long ({len(text)} characters, at most {MAX_TEXT})", Pos(1, 1))


def _parse(text: str, mode: str) -> A.Node:
    parser = _parser()
    st = _LexState(mode)
    local = _POSTLEXER.local
    stack: list[_LexState] | None = getattr(local, "stack", None)
    if stack is None:
        stack = local.stack = []
    stack.append(st)
    try:
        if mode == "expr":
            if not text.strip():
                raise ExprSyntaxError("expected an expression, found nothing", Pos(1, 1))
            return parser.parse(text, start="start_expr")  # type: ignore[return-value]
        return parser.parse(text, start="program")  # type: ignore[return-value]
    except UnexpectedInput as e:
        raise _friendly(e, st, text) from None
    except LarkError as e:  # anything else lark raises: never let it escape
        raise ExprSyntaxError(f"invalid syntax: {e}", Pos(1, 1)) from None
    finally:
        stack.pop()


def _token_text(tok: Token) -> str:
    if tok.type in ("$END", "_SEP", "NL", "NAME", "NUMBER", "STRING", "FSTRING"):
        if tok.type in ("NAME", "NUMBER", "STRING", "FSTRING"):
            value = str(tok.value)
            return f"'{value if len(value) <= 30 else value[:27] + '...'}'"
        return _DESCRIBE[tok.type]
    return f"'{tok.value}'"


def _describe_expected(expected: set[str]) -> str | None:
    if not expected:
        return None
    if expected & _EXPR_START and len(expected & _EXPR_START) >= 4:
        rest = sorted(expected - _EXPR_START)
        things = ["an expression", *(_DESCRIBE.get(t) or _terminal_text(t) for t in rest)]
    else:
        things = sorted(_DESCRIBE.get(t) or _terminal_text(t) for t in expected)
    if len(things) > 6:
        things = [*things[:6], "..."]
    return "expected " + (things[0] if len(things) == 1 else "one of: " + ", ".join(things))


_TERMINAL_TEXT: dict[str, str] = {}


def _terminal_text(name: str) -> str:
    if not _TERMINAL_TEXT:
        for term in _parser().terminals:
            pattern = term.pattern
            if pattern.type == "str":
                _TERMINAL_TEXT[term.name] = f"'{pattern.value}'"
    return _TERMINAL_TEXT.get(name, name.lower())


def _friendly(e: UnexpectedInput, st: _LexState, text: str) -> ExprSyntaxError:
    if isinstance(e, UnexpectedCharacters):
        pos = Pos(e.line, e.column)
        ch = text[e.pos_in_stream] if e.pos_in_stream is not None and e.pos_in_stream < len(text) else "?"
        if ch in "\"'":
            return ExprSyntaxError("unterminated string", pos, f"close it with {ch} on the same line")
        hint = {
            "&": "write 'and'",
            "|": "write 'or'",
            "!": "write 'not' (or '!=' to compare)",
            "`": "write strings in quotes",
        }.get(ch)
        return ExprSyntaxError(f"unexpected character '{ch}'", pos, hint)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        expected = set(e.expected or ())
        last = st.last
        # The offending token is already the last one the postlexer saw; the one before it is the context.
        prev = st.before_last if (tok.type != "$END" and st.last is tok) else st.last
        if tok.type == "$END":
            pos = Pos(last.end_line or 1, last.end_column or 1) if last is not None else Pos(1, 1)
        else:
            pos = _pos(tok)
        hint = _describe_expected(expected)
        if tok.type == "EQUAL" and st.mode == "expr":
            hint = "use '==' to compare"
        wants_expr = bool(expected & _EXPR_START)
        if prev is not None and prev.type in _OPERATOR_LIKE and wants_expr:
            found = _token_text(tok)
            what = "an expression" if prev.type not in ("LET", "FOR") else "a name"
            if tok.type == "$END":
                return ExprSyntaxError(f"expected {what} after '{prev.value}'", pos, hint)
            return ExprSyntaxError(f"expected {what} after '{prev.value}', found {found}", pos, hint)
        if tok.type == "$END":
            return ExprSyntaxError("unexpected end of text", pos, hint)
        if (
            st.mode == "program"
            and prev is not None
            and prev.type == "RPAR"
            and tok.type in ("LSQB", "DOT", "EQUAL", "AUGOP")
            and "RPAR" not in expected
        ):
            # 'last(xs)["k"] = v': only append/extend/remove calls may start a statement, and no target is a call
            return ExprSyntaxError(
                "an assignment target cannot start with a call",
                pos,
                "name the value first, e.g. 'let item = last(xs)' then 'item[\"k\"] = v': 'let' names the stored "
                "value itself, so the change reaches the state",
            )
        if tok.type == "_SEP" and "BLOCK_OPEN" in expected:
            # only an if/elif/for header or an 'else' waits for a block: the line ended before its '{'
            return ExprSyntaxError(
                "unexpected end of statement, expected '{'",
                pos,
                "put '{' on the same line as 'else'"
                if prev is not None and prev.type == "ELSE"
                else "a condition may span lines only inside parentheses: 'if (a' then 'and b) {' on the next line; "
                "the '{' goes where the condition ends",
            )
        if tok.type == "IF" and prev is not None and prev.type == "ELSE":
            hint = "write 'elif'"
        elif tok.type in _EXPR_START and prev is not None and prev.type in _EXPR_END:
            hint = (
                "put statements on separate lines or separate them with ';'"
                if st.mode == "program" and tok.type == "NAME"
                else "is an operator or a ',' missing?"
            )
        return ExprSyntaxError(f"unexpected {_token_text(tok)}", pos, hint)
    return ExprSyntaxError(str(e), Pos(1, 1))


def _check_depth(root: A.Node) -> None:
    """Reject trees deeper than MAX_TREE_DEPTH, without recursion."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            pos = getattr(node, "pos", Pos(1, 1))
            raise ExprSyntaxError(
                f"expression is too deeply nested (more than {MAX_TREE_DEPTH} levels)",
                pos,
                "split it with 'let' or simplify it",
            )
        if isinstance(node, tuple):
            stack.extend((x, depth) for x in node)
            continue
        slots = getattr(node, "__slots__", None)
        if slots is None:
            continue
        for name in slots:
            if name in ("pos", "name_pos"):
                continue
            child = getattr(node, name)
            if isinstance(child, tuple) or hasattr(child, "__slots__"):
                stack.append((child, depth + 1))
