"""Places an expression names (``users[uid].manager``), for narrowing: their keys, what a write may change, and
what a block of statements writes."""

from __future__ import annotations

from collections.abc import Callable

from aqwen_spec.expr import ast as A

__all__ = [
    "Key",
    "always_fails",
    "always_leaves",
    "changed_by",
    "needs_declared_type",
    "place_key",
    "show_place",
    "writes",
]

Key = tuple[str, ...]
"""A place whose type a check narrows: a name, then ``.field``, ``[#literal]`` or ``[$name]`` steps."""


def place_key(e: A.Expr) -> Key | None:
    """The place an expression names, for narrowing (``None``: not a place)."""
    if isinstance(e, A.Name):
        return (e.id,)
    if isinstance(e, (A.Field, A.Index)):
        base = place_key(e.obj)
        if base is None:
            return None
        if isinstance(e, A.Field):
            return (*base, "." + e.name)
        if isinstance(e.index, A.Lit) and isinstance(e.index.value, (str, int)):
            return (*base, f"[#{e.index.value!r}]")
        if isinstance(e.index, A.Name):
            return (*base, f"[${e.index.id}]")
    return None


def changed_by(target: A.Expr) -> Callable[[Key], bool]:
    """The places whose narrowing a write into ``target`` may undo (through any alias of the written record)."""
    if isinstance(target, A.Name):
        name = target.id
        return lambda k: k[0] == name or f"[${name}]" in k
    if isinstance(target, A.Field):
        step = "." + target.name
        field = target.name
        return lambda k: step in k or k[0] == field or k[0] == "state"
    return lambda k: any(c.startswith("[") for c in k) or k[0] == "state"


def writes(body: tuple[A.Stmt, ...]) -> list[A.Expr]:
    """Every target a block may write (for loops and branches: what the places known before may no longer be)."""
    out: list[A.Expr] = []
    for s in body:
        if isinstance(s, (A.Assign, A.AugAssign)):
            out.append(s.target)
        elif isinstance(s, A.Let):
            out.append(A.Name(s.name))
        elif isinstance(s, A.Delete):
            out.append(s.target)
        elif isinstance(s, A.CallStmt) and s.call.args:
            out.append(A.Index(s.call.args[0], A.Lit(0)))
        elif isinstance(s, A.If):
            for _, b in s.branches:
                out += writes(b)
            out += writes(s.orelse or ())
        elif isinstance(s, A.For):
            out += [A.Name(n) for n in s.names] + writes(s.body)
        elif isinstance(s, A.While):
            out += writes(s.body)
    return out


def always_fails(body: tuple[A.Stmt, ...]) -> bool:
    """Whether a block always stops the effect with ``fail`` (or, in a function's body, with ``return``)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (A.Fail, A.Return)):
        return True
    if isinstance(last, A.If) and last.orelse is not None:
        return all(always_fails(b) for _, b in last.branches) and always_fails(last.orelse)
    return False


def always_leaves(body: tuple[A.Stmt, ...]) -> bool:
    """Whether a block never runs on past its end: it always ends in ``fail``, ``break``, ``continue`` or ``return``."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (A.Fail, A.Break, A.Continue, A.Return)):
        return True
    if isinstance(last, A.If) and last.orelse is not None:
        return all(always_leaves(b) for _, b in last.branches) and always_leaves(last.orelse)
    return False


def needs_declared_type(e: A.Expr) -> bool:
    """A value whose type says too little for a local to be checked later (``null``, ``[]``)."""
    if isinstance(e, A.Lit):
        return e.value is None
    if isinstance(e, A.ListLit):
        return not e.items or all(needs_declared_type(x) for x in e.items)
    if isinstance(e, A.Cond):
        return needs_declared_type(e.then) and needs_declared_type(e.orelse)
    return False


def show_place(e: A.Expr | None) -> str:
    """A place as written (``users[uid].manager``), for messages."""
    key = place_key(e) if e is not None else None
    if key is None:
        return "x"
    out = key[0]
    for step in key[1:]:
        out += step if step.startswith(".") else "[" + step[2:-1] + "]"
    return out
