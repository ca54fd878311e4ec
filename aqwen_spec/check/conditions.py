"""Static analysis of branch conditions: conditions that contradict themselves or can never be reached.

Conditions are reduced to conjunctions of atoms (``x == lit``, ``x != lit``, ``x``, ``not x``) where that is exact;
anything else is left alone, so these checks only ever warn about what is certainly true.
"""

from __future__ import annotations

from typing import Any

Atom = tuple[str, str, Any]  # (path, op, value): op is "==" or "!="; bare booleans become == True/False


def _path(node: Any) -> str | None:
    from aqwen_spec.expr.ast import Field, Index, Lit, Name

    if isinstance(node, Name):
        return node.id
    if isinstance(node, Field):
        base = _path(node.obj)
        return f"{base}.{node.name}" if base else None
    if isinstance(node, Index) and isinstance(node.index, Lit):
        base = _path(node.obj)
        return f"{base}[{node.index.value!r}]" if base else None
    return None


def atoms(expr: Any) -> list[Atom] | None:
    """The condition as a conjunction of atoms, or None when it is not exactly one."""
    from aqwen_spec.expr.ast import BoolOp, Compare, Lit, Not

    if isinstance(expr, BoolOp) and expr.op == "and":
        left, right = atoms(expr.left), atoms(expr.right)
        return None if left is None or right is None else left + right
    if isinstance(expr, Not):
        path = _path(expr.operand)
        return [(path, "==", False)] if path else None
    if isinstance(expr, Compare) and expr.op in ("==", "!="):
        for a, b in ((expr.left, expr.right), (expr.right, expr.left)):
            path = _path(a)
            if path and isinstance(b, Lit):
                return [(path, expr.op, b.value)]
        return None
    path = _path(expr)
    return [(path, "==", True)] if path else None


def contradicts(conj: list[Atom]) -> bool:
    """Whether a conjunction can never hold."""
    equal: dict[str, Any] = {}
    for path, op, value in conj:
        if op == "==":
            if path in equal and equal[path] != value:
                return True
            equal[path] = value
    return any(op == "!=" and equal.get(path, object()) == value for path, op, value in conj)


def implies(stronger: list[Atom], weaker: list[Atom]) -> bool:
    """Whether ``stronger`` implies ``weaker`` (every atom of the weaker is one of the stronger)."""
    return all(atom in stronger for atom in weaker)
