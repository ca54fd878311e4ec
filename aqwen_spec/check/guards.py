"""Lookups the agent's arguments can make fail: ``m[k]`` with ``k`` a parameter, before ``k in m`` was checked.

A tool's preconditions and ``returns`` run on whatever the agent passes. ``work_orders[order_id].status`` with an
``order_id`` the state does not hold is a run-time error, which the runtime treats as a defect of the environment
(``spec_error``), not as a refusal of the call: the agent is told the environment failed, where it should have been
told its id is unknown. A precondition ``order_id in work_orders`` before it (or ``order_id in work_orders and ...``
in the same condition) turns the agent's mistake into the precondition's message. AQ506 warns at each lookup that
no earlier check guards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aqwen_spec.expr import ast as A

Guard = tuple[str, str]  # (parameter, state map field)


def guards_of(expr: Any) -> set[Guard]:
    """The ``param in map`` facts that hold whenever ``expr`` is true (through ``and``)."""
    if isinstance(expr, A.BoolOp) and expr.op == "and":
        return guards_of(expr.left) | guards_of(expr.right)
    if isinstance(expr, A.Compare) and expr.op == "in" and isinstance(expr.left, A.Name) \
            and isinstance(expr.right, A.Name):
        return {(expr.left.id, expr.right.id)}
    return set()


def unguarded(expr: Any, params: set[str], maps: set[str], guarded: set[Guard]) -> Iterator[A.Index]:
    """Each ``map[param]`` read in ``expr`` that ``guarded`` (and short-circuits inside ``expr``) do not cover."""
    if isinstance(expr, A.BoolOp):
        yield from unguarded(expr.left, params, maps, guarded)
        right = guarded | guards_of(expr.left) if expr.op == "and" else guarded | _negated_guards(expr.left)
        yield from unguarded(expr.right, params, maps, right)
        return
    if isinstance(expr, A.Cond):
        yield from unguarded(expr.cond, params, maps, guarded)
        yield from unguarded(expr.then, params, maps, guarded | guards_of(expr.cond))
        yield from unguarded(expr.orelse, params, maps, guarded | _negated_guards(expr.cond))
        return
    if isinstance(expr, A.Index) and isinstance(expr.obj, A.Name) and isinstance(expr.index, A.Name) \
            and expr.obj.id in maps and expr.index.id in params and (expr.index.id, expr.obj.id) not in guarded:
        yield expr
    if isinstance(expr, (A.Where, A.Each, A.Comp, A.MapComp)):
        return  # element scopes rebind names: their lookups are not the agent's arguments
    for name in getattr(expr, "__dataclass_fields__", ()):
        if name.endswith("pos"):
            continue
        value = getattr(expr, name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, tuple):  # keyword arguments: (name, expr)
                item = item[-1]
            if hasattr(item, "__dataclass_fields__") and not isinstance(item, A.Lit):
                yield from unguarded(item, params, maps, guarded)


def _negated_guards(expr: Any) -> set[Guard]:
    """Facts that hold when ``expr`` is false: ``param not in map`` being false means it is in."""
    if isinstance(expr, A.Compare) and expr.op == "not in" and isinstance(expr.left, A.Name) \
            and isinstance(expr.right, A.Name):
        return {(expr.left.id, expr.right.id)}
    if isinstance(expr, A.BoolOp) and expr.op == "or":
        return _negated_guards(expr.left) | _negated_guards(expr.right)
    if isinstance(expr, A.Not):
        return guards_of(expr.operand)
    return set()


def lookup_key(lookup: A.Index) -> Guard:
    """(parameter, map) of a lookup that :func:`unguarded` yielded."""
    assert isinstance(lookup.index, A.Name) and isinstance(lookup.obj, A.Name)
    return lookup.index.id, lookup.obj.id
