"""The names each kind of expression may use, as checker scopes.

- tool preconditions, effects and returns: the state's fields and the tool's parameters;
- record generation rules: the state's fields, ``i`` and the sampling functions;
- workflow slots and tree expressions: the state's fields, the slots, and results bound with ``as:``;
- verifier checks: the final state's fields, the slots, ``branch`` (the last branch taken), ``path`` (all of them)
  and ``initial`` (the initial state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aqwen_spec.types import STR, ListT, RecordT, Type

if TYPE_CHECKING:
    from aqwen_spec.expr import Scope
    from aqwen_spec.expr.library import Library


def state_scope(
    state: RecordT, extra: dict[str, Type] | None = None, *, sampling: bool = False, strict: bool = False,
    library: Library | None = None,
) -> Scope:
    """``strict``: reading through a value that may be null is an error (tools); workflows and verifiers are run on
    every gold path at compile time instead. ``library``: the domain's functions, and its constants as read-only
    names (state fields and ``extra`` names come after them, as the evaluator reads them)."""
    from aqwen_spec.expr import Scope

    scope = Scope(sampling=sampling, strict=strict, library=library)
    for name, t in (library.constant_types.items() if library is not None else ()):
        scope.define_constant(name, t)
    for name, t in state.fields.items():
        scope.define(name, t, assignable=False)
    scope.define("state", state, assignable=False)
    scope.state_fields = set(state.fields)
    for name, t in (extra or {}).items():
        scope.define(name, t, assignable=False)
        scope.state_fields.discard(name)
    return scope


def verifier_scope(state: RecordT, slots: dict[str, Type], library: Library | None = None) -> Scope:
    return state_scope(state, {**slots, "branch": STR, "path": ListT(STR), "initial": state}, library=library)
