"""A domain's library: its functions and named constants, defined once and visible to every expression of the domain.

The checker reads the signatures and the constants' types; the evaluator reads the bodies and the values. A library
travels with an env under a reserved key (see :mod:`aqwen_spec.expr.evaluator`), never inside the state: constants
are not copied per episode, not compared by final-state checks and not in the SQL view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr import ast as A
from aqwen_spec.types import ANY, Type

__all__ = ["MAX_CALL_DEPTH", "FunctionDef", "Library", "calls_in", "names_in"]

MAX_CALL_DEPTH = 100
"""How deeply calls of domain functions may nest (recursion included) before evaluation stops with an error."""


@dataclass
class FunctionDef:
    """``name(params) -> returns = body``: a pure function of its parameters and the state it reads."""

    name: str
    params: dict[str, Type]
    body: A.Expr | A.Program
    """An expression, or statements that end in ``return`` (a statement body)."""
    returns: Type = ANY
    declared: bool = False
    """Whether ``returns`` was written (else it is the body's inferred type)."""
    pos: Pos = field(default_factory=lambda: Pos(1, 1))

    def signature(self) -> str:
        params = ", ".join(f"{n}: {t.render()}" for n, t in self.params.items())
        return f"{self.name}({params}) -> {self.returns.render()}"


@dataclass
class Library:
    """A domain's functions (by name) and constants (values and types by name)."""

    functions: dict[str, FunctionDef] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    constant_types: dict[str, Type] = field(default_factory=dict)
    readonly: frozenset[int] = frozenset()
    """The ids of the lists and dicts inside the constants' values: the evaluator refuses to write into them."""
    _sharing: set[str] | None = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.functions or self.constants)

    def sharing(self) -> set[str]:
        """The functions whose value may share a constant's data: their bodies read a constant, or call such a
        function (what the checker keeps writes out of)."""
        if self._sharing is None:
            found = {n for n, f in self.functions.items() if names_in(f.body) & set(self.constants)}
            grew = True
            while grew:
                grew = False
                for n, f in self.functions.items():
                    if n not in found and calls_in(f.body) & found:
                        found.add(n)
                        grew = True
            self._sharing = found
        return self._sharing

    def freeze(self) -> None:
        """Record the containers of the constants' values (call once the values are final)."""
        ids: set[int] = set()
        stack = list(self.constants.values())
        while stack:
            v = stack.pop()
            if isinstance(v, dict):
                ids.add(id(v))
                stack.extend(v.values())
            elif isinstance(v, list):
                ids.add(id(v))
                stack.extend(v)
        self.readonly = frozenset(ids)


def _walk(node: Any) -> Any:
    if isinstance(node, tuple):
        for item in node:
            yield from _walk(item)
    elif hasattr(node, "__dataclass_fields__"):
        yield node
        for name in node.__dataclass_fields__:
            if name not in ("pos", "name_pos"):
                yield from _walk(getattr(node, name))


def calls_in(node: Any) -> set[str]:
    """The names of the functions ``node`` calls."""
    return {n.func for n in _walk(node) if isinstance(n, A.Call)}


def names_in(node: Any) -> set[str]:
    """The bare names ``node`` reads."""
    return {n.id for n in _walk(node) if isinstance(n, A.Name)}
