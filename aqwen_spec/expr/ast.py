"""The IR of the expression language: small frozen dataclasses built from the parse tree.

Every node carries ``pos``: the 1-based line and column of its first character within the parsed text. ``pos``
does not take part in equality, so tests can compare trees built by hand with parsed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from aqwen_spec.diagnostics import Pos

NOPOS = Pos(1, 1)


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal: str, int, float, bool or None."""

    value: str | int | float | bool | None
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Name:
    """A bare name: a parameter, a state field, a local, or a field of the element in a filter."""

    id: str
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Field:
    """``obj.name``; ``name_pos`` is where the field name is written."""

    obj: Expr
    name: str
    pos: Pos = field(default=NOPOS, compare=False)
    name_pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Index:
    """``obj[index]``: a list index or a map key."""

    obj: Expr
    index: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Slice:
    """``obj[start:stop:step]`` of a str or a list, with Python's semantics; absent bounds are ``None``."""

    obj: Expr
    start: Expr | None = None
    stop: Expr | None = None
    step: Expr | None = None
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """``func(args..., name=value...)``, a call of a builtin function."""

    func: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[tuple[str, Expr], ...] = ()
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    """``-operand``."""

    op: str
    operand: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic: ``+ - * / // %``."""

    op: str
    left: Expr
    right: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Compare:
    """``== != < <= > >= in`` and ``not in``."""

    op: str
    left: Expr
    right: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``and`` / ``or`` (short-circuit)."""

    op: str
    left: Expr
    right: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    """``not operand``."""

    operand: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Cond:
    """``then if cond else orelse``."""

    then: Expr
    cond: Expr
    orelse: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Where:
    """``source where pred``: the elements of a list (or values of a map) for which ``pred`` holds."""

    source: Expr
    pred: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Each:
    """``name: body``, an element-scoped argument that names its element: the condition of
    ``count(name in xs: body)`` (also ``sum``, ``any``, ``all``) or of ``xs where name: body``.

    ``body`` sees the element as ``name`` only; the element's fields are not bare names there, so they cannot
    hide a parameter or a state field of the same name.
    """

    name: str
    body: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Comp:
    """``[elem for names in iter if cond]``; several names unpack each element (``for a, b in zip(x, y)``)."""

    elem: Expr
    names: tuple[str, ...]
    iter: Expr
    cond: Expr | None = None
    pos: Pos = field(default=NOPOS, compare=False)
    lazy: bool = field(default=False, metadata={"omit_default": True})
    """Written without brackets as the argument of a call (``all(c in digits for c in s)``): ``any`` and ``all``
    stop at the first element that decides, as Python's generator expressions do."""


@dataclass(frozen=True, slots=True)
class MapComp:
    """``{key: value for names in iter if cond}``: a map built from a list (or a map's values, or
    ``items(m)``'s pairs); a key made twice keeps its first place and its last value."""

    key: Expr
    value: Expr
    names: tuple[str, ...]
    iter: Expr
    cond: Expr | None = None
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class ListLit:
    """``[a, b, ...]``."""

    items: tuple[Expr, ...] = ()
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class RecordLit:
    """``{key: value, "key": value}``."""

    entries: tuple[tuple[str, Expr], ...] = ()
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Formatted:
    """``{value:spec}`` in an f-string: ``value`` formatted by a Python format spec (``.2f``, ``>10``, ``,``),
    or, for a date or datetime, by a ``strftime`` format (``%d %b %Y``)."""

    value: Expr
    spec: str
    pos: Pos = field(default=NOPOS, compare=False)
    spec_pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class FString:
    """``f"text {expr} text"``: literal text parts and expression parts (``Formatted`` for ``{x:spec}``)."""

    parts: tuple[str | Expr, ...] = ()
    pos: Pos = field(default=NOPOS, compare=False)


Expr: TypeAlias = (
    Lit
    | Name
    | Field
    | Index
    | Slice
    | Call
    | Unary
    | Binary
    | Compare
    | BoolOp
    | Not
    | Cond
    | Where
    | Each
    | Comp
    | MapComp
    | ListLit
    | RecordLit
    | Formatted
    | FString
)
"""Any expression node."""

# statements


@dataclass(frozen=True, slots=True)
class Let:
    """``let name = value`` or ``let name: type = value`` (``declared`` is the type as written)."""

    name: str
    value: Expr
    pos: Pos = field(default=NOPOS, compare=False)
    declared: str | None = None


@dataclass(frozen=True, slots=True)
class Assign:
    """``target = value``; target is a Name, Field or Index."""

    target: Expr
    value: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class AugAssign:
    """``target += value`` / ``target -= value``."""

    target: Expr
    op: str
    value: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class If:
    """``if c { } elif c { } else { }``: ``branches`` holds (condition, body) pairs in order."""

    branches: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...] | None = None
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class For:
    """``for names in iter { body }`` (a map iterates its values)."""

    names: tuple[str, ...]
    iter: Expr
    body: tuple[Stmt, ...]
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class While:
    """``while cond { body }``: each pass costs a step of the evaluation's budget."""

    cond: Expr
    body: tuple[Stmt, ...]
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Break:
    """``break``: leave the innermost ``for`` or ``while``."""

    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Continue:
    """``continue``: go on with the next pass of the innermost ``for`` or ``while``."""

    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class CallStmt:
    """A mutating builtin used as a statement: ``append``, ``extend`` or ``remove``."""

    call: Call
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Delete:
    """``delete target[key]``: remove a map entry."""

    target: Index
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Fail:
    """``fail message``: abort the effect, rolling back every change."""

    message: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Return:
    """``return value``: the value of a domain function whose body is statements."""

    value: Expr
    pos: Pos = field(default=NOPOS, compare=False)


Stmt: TypeAlias = Let | Assign | AugAssign | If | For | While | Break | Continue | CallStmt | Delete | Fail | Return
"""Any statement node."""


@dataclass(frozen=True, slots=True)
class Program:
    """An effect: statements run in order, all-or-nothing."""

    body: tuple[Stmt, ...] = ()
    pos: Pos = field(default=NOPOS, compare=False)


Node: TypeAlias = Expr | Stmt | Program
"""Any IR node."""

EXPR_TYPES: tuple[type, ...] = (
    Lit,
    Name,
    Field,
    Index,
    Slice,
    Call,
    Unary,
    Binary,
    Compare,
    BoolOp,
    Not,
    Cond,
    Where,
    Each,
    Comp,
    MapComp,
    ListLit,
    RecordLit,
    Formatted,
    FString,
)
STMT_TYPES: tuple[type, ...] = (Let, Assign, AugAssign, If, For, While, Break, Continue, CallStmt, Delete, Fail,
                                Return)
