"""Static type checking of expressions and effect programs against :mod:`aqwen_spec.types`.

Problems are collected, never raised; codes are those of :data:`aqwen_spec.diagnostics.CODES` (AQ302-AQ307).
A value of type ``any`` checks nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from aqwen_spec.diagnostics import Pos, did_you_mean, named_like
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.episode import CLOCK_FUNCTIONS, DRAW_FUNCTIONS
from aqwen_spec.expr.formatting import spec_problem, strftime_problem
from aqwen_spec.expr.functions import (  # the runtime's own date validation
    FUNCTIONS,
    ArgError,
    FunctionError,
    _date,
    _datetime,
    elem_type,
    format_fields,
    join_types,
)
from aqwen_spec.expr.library import Library, calls_in, names_in
from aqwen_spec.expr.places import (
    Key,
    always_leaves,
    changed_by,
    needs_declared_type,
    place_key,
    show_place,
    writes,
)
from aqwen_spec.expr.sampling import SAMPLING_FUNCTIONS
from aqwen_spec.types import (
    ANY,
    BOOL,
    DATE,
    DATETIME,
    DURATION,
    FLOAT,
    INT,
    NOTHING,
    NULL,
    STR,
    CaseT,
    EnumT,
    ListT,
    MapT,
    OptionalT,
    Prim,
    RecordT,
    SetT,
    TupleT,
    Type,
    TypeSyntaxError,
    VariantT,
    case_type,
    is_assignable,
    is_comparable,
    is_numeric,
    is_stringlike,
    parse_type_text,
    unwrap_optional,
)

__all__ = [
    "Problem",
    "RecordLitT",
    "Scope",
    "check_expr",
    "check_program",
    "check_program_scope",
    "check_stored",
    "expected_bool",
    "narrowed",
]

_ELEM_UNSAFE = Prim("a field not every element has")
_MIXED = Prim("mixed")
"""The entries of a record literal whose fields have different types, read as a map: no one type fits them."""
"""The type of an element-field name that may be missing from an element (then the name would read an outer one)."""


@dataclass(frozen=True)
class RecordLitT(MapT):
    """The type of a record literal: a map whose entries are known, field by field. It fits a record type only
    where the literal itself is written (there its fields are checked against the record's)."""

    fields: tuple[tuple[str, Type], ...] = ()

    def render(self) -> str:
        return "{" + ", ".join(f"{k}: {t.render()}" for k, t in self.fields) + "}"


@dataclass(frozen=True)
class Problem:
    """One problem found in an expression; ``pos`` is within the expression text."""

    code: str
    message: str
    pos: Pos
    hint: str | None = None
    warning: bool = False


class Scope:
    """Names visible to an expression and their types; nested scopes come from :meth:`child`.

    Names defined with ``assignable=True`` (``let`` locals) may be rebound; parameters and state fields
    may not,
    though their fields and entries may be assigned in effects.
    """

    def __init__(
        self,
        names: Mapping[str, Type] | None = None,
        *,
        assignable: bool = False,
        parent: Scope | None = None,
        open_fields: bool = False,
        sampling: bool = False,
        types: Mapping[str, Type] | None = None,
        strict: bool | None = None,
        library: Library | None = None,
    ) -> None:
        self._types: dict[str, Type] = dict(names or {})
        self._readonly: set[str] = set()
        self.library: Library | None = library if library is not None else (parent.library if parent else None)
        """The domain's functions and constants."""
        self.returns: Type | None = parent.returns if parent is not None else None
        """In the statement body of a domain function: the type its ``return`` values must fit (the body is pure:
        every outer name is read-only there)."""
        self._assignable: set[str] = set(self._types) if assignable else set()
        self._facts: dict[Key, Type | None] = {}
        self.parent = parent
        self.types: Mapping[str, Type] = types if types is not None else (parent.types if parent else {})
        """Named types, for locals declared with a type (``let x: Node? = null``)."""
        self.strict: bool = strict if strict is not None else (parent.strict if parent else True)
        """Whether reading through a value that may be null, or a field of another case, is an error (AQ313,
        AQ315). Tools are strict; workflow and verifier expressions, run on every gold path at compile time, not."""
        self.open_fields = open_fields
        """Whether unknown names may be fields of an element of unknown type (they read as ``any``)."""
        self.sampling: bool = sampling or (parent is not None and parent.sampling)
        """Whether sampling functions (sample, choice, randint, ...) may be called: slots and generation rules."""
        self.clock: bool = parent.clock if parent is not None else False
        """Whether the episode has a clock here (``today()``, ``now()``; else AQ320)."""
        self.drawing: bool = parent.drawing if parent is not None else False
        """Whether the episode's generator may be drawn from (``rng_randint``, ...; a tool's effects; else AQ322)."""
        self.element: tuple[str, str] | None = None
        """For the scope of a predicate's element fields: (function or 'where', the source as written)."""
        self.state_fields: set[str] = set()
        """The top-level state fields defined in this scope itself: effects may reassign them by name
        (``ticket_counter += 1``), as ``state.ticket_counter += 1`` does."""

    @classmethod
    def for_generation(cls, state: RecordT, extra: Mapping[str, Type] | None = None) -> Scope:
        """A read-only scope for record generation: the state's fields, ``state`` itself and ``extra``."""
        scope = cls(state.fields, sampling=True, strict=False)
        scope.define("state", state)
        for name, t in (extra or {}).items():
            scope.define(name, t)
        return scope

    def define_constant(self, name: str, type_: Type) -> None:
        """Add a read-only name: a constant, or a local that may share a constant's data."""
        self.define(name, type_)
        self._readonly.add(name)

    def is_readonly(self, name: str) -> bool:
        """Whether ``name`` is a constant (or a local sharing a constant's data): nothing may be written into it."""
        s = self._owner(name)
        return s is not None and name in s._readonly

    def mark_readonly(self, name: str) -> None:
        s = self._owner(name)
        if s is not None:
            s._readonly.add(name)

    def define(self, name: str, type_: Type, *, assignable: bool = False) -> None:
        """Add (or replace) a name in this scope (what was known of an outer name of that spelling is dropped)."""
        self._types[name] = type_
        self._readonly.discard(name)
        if assignable:
            self._assignable.add(name)
        else:
            self._assignable.discard(name)
        if self.parent is not None or self._facts:
            self.forget(lambda k: k[0] == name or f"[${name}]" in k)

    # narrowing: what checks (x != null, p.method == "card") tell about a place, until it may have changed

    def fact(self, key: Key) -> Type | None:
        """The narrowed type of a place, or ``None``."""
        for s in self._chain():
            if key in s._facts:
                return s._facts[key]
        return None

    def narrow(self, key: Key, type_: Type) -> None:
        self._facts[key] = type_

    def forget(self, pred: Callable[[Key], bool]) -> None:
        """Drop what is known of the places ``pred`` selects (they may have changed)."""
        for s in self._chain():
            for key, t in s._facts.items():
                if t is not None and pred(key):
                    self._facts[key] = None

    def child(self, *, open_fields: bool = False) -> Scope:
        """A nested scope: names defined in it shadow this one's and vanish with it."""
        return Scope(parent=self, open_fields=open_fields, sampling=self.sampling, strict=self.strict)

    def locals(self) -> dict[str, Type]:
        """The ``let`` locals defined in this scope itself."""
        return {n: t for n, t in self._types.items() if n in self._assignable}

    def _chain(self) -> Iterator[Scope]:
        s: Scope | None = self
        while s is not None:
            yield s
            s = s.parent

    def _owner(self, name: str) -> Scope | None:
        """The innermost scope that defines ``name``, or ``None``."""
        for s in self._chain():
            if name in s._types:
                return s
        return None

    def lookup(self, name: str) -> Type | None:
        """The type of a visible name, or ``None``."""
        for s in self._chain():
            if name in s._types:
                return s._types[name]
        return None

    def is_assignable(self, name: str) -> bool:
        """Whether ``name`` is a local that may be rebound."""
        s = self._owner(name)
        return s is not None and name in s._assignable

    def is_state_field(self, name: str) -> bool:
        """Whether ``name`` names a top-level state field here (not a local, parameter or element field)."""
        s = self._owner(name)
        return s is not None and name in s.state_fields

    def has_open_fields(self) -> bool:
        """Whether some enclosing filter iterates elements of unknown type."""
        return any(s.open_fields for s in self._chain())

    def names(self) -> list[str]:
        """Every visible name."""
        seen: dict[str, None] = {}
        for s in self._chain():
            seen.update(dict.fromkeys(s._types))
        return list(seen)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.lookup(name) is not None


def _rebind_hint(name: str, t: Type) -> str:
    """How to change what a parameter or state field holds: through its fields or entries if it has any, else
    with a local copy."""
    u = unwrap_optional(t)
    if isinstance(u, (RecordT, VariantT)):
        return f"only names made with 'let' can be reassigned; assign its fields instead ({name}.field = ...)"
    if isinstance(u, (MapT, ListT)):
        return f"only names made with 'let' can be reassigned; assign its entries instead ({name}[key] = ...)"
    if u == ANY:
        return (
            "only names made with 'let' can be reassigned; assign fields or entries instead "
            f"({name}.field = ... or {name}[key] = ...)"
        )
    return f"only names made with 'let' can be reassigned: keep the new value in a local (let new_{name} = ...)"


def _name_hint(name: str, scope: Scope) -> str | None:
    """Did-you-mean for an unknown name: a parameter or a record's field it abbreviates (``crew`` -> ``crew_id``,
    ``job.crew_id``) before a collection spelled like it (``crews``)."""
    names = scope.names()
    fields = [f"{n}.{f}" for n in names for f in _fields_of(unwrap_optional(scope.lookup(n) or ANY)) or ()]
    return named_like(name, [*names, *fields]) or did_you_mean(name, names)


def _source_text(e: A.Expr) -> str:
    """How a predicate's source reads in a hint: ``users``, ``state.users``, else ``xs``."""
    if isinstance(e, A.Name):
        return e.id
    if isinstance(e, A.Field):
        base = _source_text(e.obj)
        return "xs" if base == "xs" else f"{base}.{e.name}"
    return "xs"


def _is_bool(t: Type) -> bool:
    return unwrap_optional(t) in (BOOL, ANY)


def _is_datelike(t: Type) -> bool:
    return t in (DATE, DATETIME) or is_stringlike(t)


def _fields_of(t: Type) -> dict[str, Type] | None:
    if isinstance(t, RecordT):
        return t.fields
    if isinstance(t, RecordLitT):
        return dict(t.fields)
    if isinstance(t, VariantT):
        out: dict[str, Type] = {t.tag: EnumT(tuple(t.cases))}
        for case in t.cases.values():
            for name in case.fields:
                ft = t.field_type(name)
                if ft is not None:
                    out[name] = ft
        return out
    return None


def _case_only(t: VariantT, name: str) -> list[str]:
    """The cases that have field ``name``, when not all of them do (else ``[]``)."""
    having = [c for c, r in t.cases.items() if name in r.fields]
    return having if len(having) < len(t.cases) else []


def _breaks(body: tuple[A.Stmt, ...]) -> bool:
    """Whether a ``break`` in ``body`` (not in a nested loop) can leave the loop around it."""
    for s in body:
        if isinstance(s, A.Break):
            return True
        if isinstance(s, A.If) and any(_breaks(b) for b in [*(b for _, b in s.branches), s.orelse or ()]):
            return True
    return False


def _a(word: str) -> str:
    """``word`` with its indefinite article: a str, an int."""
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _nullable(t: Type) -> bool:
    return isinstance(t, OptionalT) or t == NULL


class _Checker:
    def __init__(self, strict: bool = True) -> None:
        self.problems: list[Problem] = []
        self.strict = strict

    def report(self, code: str, message: str, pos: Pos, hint: str | None = None) -> None:
        self.problems.append(Problem(code, message, pos, hint))

    # ------------------------------------------------------------------------------------------- expressions

    def expr(self, e: A.Expr, scope: Scope) -> Type:
        method = getattr(self, "e_" + type(e).__name__.lower())
        return method(e, scope)

    def e_lit(self, e: A.Lit, scope: Scope) -> Type:
        v = e.value
        if v is None:
            return NULL
        if isinstance(v, bool):
            return BOOL
        if isinstance(v, int):
            return INT
        if isinstance(v, float):
            return FLOAT
        return STR

    def e_name(self, e: A.Name, scope: Scope) -> Type:
        t = scope.lookup(e.id)
        if t is not None:
            if t == _ELEM_UNSAFE and self.strict:
                self.report(
                    "AQ313",
                    f"'{e.id}' is a field that some elements lack, and there '{e.id}' would name the outer "
                    f"'{e.id}' (or the element would be null)",
                    e.pos,
                    f"write it.{e.id}, after checking it (it != null, or its tag)",
                )
                return ANY
            self.shadowing(e, scope)
            return scope.fact((e.id,)) or (ANY if t == _ELEM_UNSAFE else t)
        if scope.has_open_fields():
            return ANY
        self.report("AQ302", f"unknown name '{e.id}'", e.pos, _name_hint(e.id, scope))
        return ANY

    def shadowing(self, e: A.Name, scope: Scope) -> None:
        """Warn (AQ505) when a bare name in a predicate is the element's field and hides an outer name."""
        if e.id == "it":
            return
        chain = list(scope._chain())
        found = next(i for i, s in enumerate(chain) if e.id in s._types)
        owner = chain[found]
        if owner.element is None or not any(e.id in s._types for s in chain[found + 1 :]):
            return
        func, source = owner.element
        var = source.rsplit(".", 1)[-1][:1].lower() if source[:1].isalpha() else "x"
        var = "x" if not var.isalpha() or var == e.id or var in scope else var
        written = f"{source} where {var}: ..." if func == "where" else f"{func}({var} in {source}: ...)"
        self.problems.append(
            Problem(
                "AQ505",
                f"'{e.id}' here is a field of each element, not the outer '{e.id}' it hides",
                e.pos,
                f"name the element to tell them apart: write {written} "
                f"and use {var}.{e.id} for the field, {e.id} for the outer value",
                warning=True,
            )
        )

    def e_field(self, e: A.Field, scope: Scope) -> Type:
        t = self.field_type(self.expr(e.obj, scope), e.name, e.name_pos, e.obj)
        key = place_key(e)
        return (scope.fact(key) if key else None) or t

    def maybe_null(self, t: Type, e: A.Expr | None, pos: Pos, doing: str) -> None:
        """AQ313 when a value that may be null is used where null fails at run time."""
        if _nullable(t) and self.strict:
            what = f"'{show_place(e)}'" if e is not None and place_key(e) else "this value"
            self.report(
                "AQ313",
                f"{what} may be null ({t.render()}), and {doing} fails when it is",
                pos,
                f"check it first: {show_place(e)} != null (in an 'if', an 'and' or a precondition)"
                if e is not None and place_key(e)
                else "name it (let x = ...) and check x != null first, or test it in a condition",
            )

    def field_type(self, base: Type, name: str, pos: Pos, obj: A.Expr | None = None) -> Type:
        self.maybe_null(base, obj, pos, f"reading its field '{name}'")
        t = unwrap_optional(base)
        if t in (ANY, NULL):
            return ANY
        if t == NOTHING:
            return NOTHING
        if isinstance(t, VariantT) and _case_only(t, name) and self.strict:
            cases = _case_only(t, name)
            self.report(
                "AQ315",
                f"'{name}' is a field of {t.name} only in case {' or '.join(repr(c) for c in cases)}",
                pos,
                f'check the tag first: if {show_place(obj) if obj is not None and place_key(obj) else "x"}.{t.tag} == '
                f'"{cases[0]}" {{ ... }}',
            )
            return t.field_type(name) or ANY
        if isinstance(t, CaseT) and t.variant is not None and name not in t.fields:
            owners = [c for c, r in t.variant.cases.items() if name in r.fields]
            if owners:
                self.report(
                    "AQ315",
                    f"this {t.variant.name} is of case '{t.case}', which has no field '{name}' (case "
                    f"{' or '.join(repr(c) for c in owners)} has)",
                    pos,
                    f"fields of case '{t.case}': {', '.join(t.fields)}",
                )
                return ANY
        fields = _fields_of(t)
        if fields is not None:
            if name in fields:
                return fields[name]
            self.report(
                "AQ303",
                f"{t.render()} has no field '{name}'",
                pos,
                did_you_mean(name, fields) or f"fields: {', '.join(fields) or '(none)'}",
            )
            return ANY
        if isinstance(t, MapT):
            if t.value == ANY:
                return ANY
            self.report(
                "AQ303", f"a {t.render()} has no fields", pos, f'read entries with [key]: m["{name}"]'
            )
            return ANY
        self.report("AQ303", f"a value of type {t.render()} has no field '{name}'", pos)
        return ANY

    def e_index(self, e: A.Index, scope: Scope) -> Type:
        t = self.index_type(e, scope)
        key = place_key(e)
        return (scope.fact(key) if key else None) or t

    def index_type(self, e: A.Index, scope: Scope) -> Type:
        bt = self.expr(e.obj, scope)
        self.maybe_null(bt, e.obj, e.pos, "indexing it")
        base = unwrap_optional(bt)
        key = self.expr(e.index, scope)
        k = unwrap_optional(key)
        if base == ANY:
            return ANY
        if base == NOTHING:
            return NOTHING
        self.maybe_null(key, e.index, e.index.pos, "using it as an index or key")
        if isinstance(base, RecordLitT) and isinstance(e.index, A.Lit) and isinstance(e.index.value, str):
            return self.field_type(base, e.index.value, e.index.pos)
        if isinstance(base, ListT) or base == STR:
            if k not in (INT, ANY, NOTHING):
                self.report(
                    "AQ304", f"a {base.render()} index must be an int, not {key.render()}", e.index.pos
                )
            return base.item if isinstance(base, ListT) else STR
        if isinstance(base, MapT):
            if base.key == INT:
                if k not in (INT, ANY, NOTHING):
                    self.report("AQ304", f"the keys of a {base.render()} are int, not {key.render()}", e.index.pos,
                                "convert it: int(...)" if is_stringlike(k) else None)
            elif not (is_stringlike(k) or k in (DATE, DATETIME)):
                self.report("AQ304", f"map keys are str, not {key.render()}", e.index.pos,
                            "convert it: str(...), or declare the map with int keys: map[int, T]"
                            if k == INT else None)
            return base.value
        if isinstance(base, TupleT):
            if k not in (INT, ANY, NOTHING):
                self.report("AQ304", f"a {base.render()} index must be an int, not {key.render()}", e.index.pos)
            at = e.index.value if isinstance(e.index, A.Lit) and type(e.index.value) is int else None
            if at is not None and -len(base.items) <= at < len(base.items):
                return base.items[at]
            return join_types(list(base.items))
        if isinstance(base, SetT):
            self.report("AQ304", f"a {base.render()} has no positions or keys", e.pos,
                        "test membership with 'x in s', or iterate it (it is in sorted order)")
            return base.item
        if (
            isinstance(base, (RecordT, VariantT))
            and isinstance(e.index, A.Lit)
            and isinstance(e.index.value, str)
        ):
            return self.field_type(base, e.index.value, e.index.pos)
        self.report("AQ304", f"cannot index a value of type {base.render()}", e.pos)
        return ANY

    def e_slice(self, e: A.Slice, scope: Scope) -> Type:
        bt = self.expr(e.obj, scope)
        self.maybe_null(bt, e.obj, e.pos, "slicing it")
        for part in (e.start, e.stop, e.step):
            if part is None:
                continue
            pt = unwrap_optional(self.expr(part, scope))  # null is an absent bound, as in Python
            if pt not in (INT, ANY, NOTHING, NULL):
                self.report("AQ304", f"slice bounds must be ints, not {pt.render()}", part.pos)
        if isinstance(e.step, A.Lit) and e.step.value == 0 and type(e.step.value) is int:
            self.report("AQ304", "a slice step cannot be zero", e.step.pos, "step 1 takes every element, -1 reverses")
        base = unwrap_optional(bt)
        if base in (ANY, NOTHING) or isinstance(base, ListT):
            return base
        if is_stringlike(base):
            return STR
        self.report("AQ304", f"cannot slice a value of type {bt.render()}", e.pos, "slices take a str or a list")
        return ANY

    def e_call(self, e: A.Call, scope: Scope) -> Type:
        return self.call(e, scope, statement=False)

    def call(self, e: A.Call, scope: Scope, *, statement: bool) -> Type:
        b = FUNCTIONS.get(e.func) or (SAMPLING_FUNCTIONS.get(e.func) if scope.sampling else None)
        if b is None and e.func in CLOCK_FUNCTIONS:
            b = CLOCK_FUNCTIONS[e.func]
            if not scope.clock:
                self.report("AQ320", f"{e.func}() reads the episode's clock, but none is set here", e.pos,
                            "set one on the domain (or the workflow): clock: {today: 2024-05-31, now: "
                            '"2024-05-31T09:00:00"}')
        if b is None and e.func in DRAW_FUNCTIONS:
            b = DRAW_FUNCTIONS[e.func]
            if not scope.drawing:
                hint = "slots and generation rules draw with randint, choice, ... " if scope.sampling else None
                self.report("AQ322", f"{e.func}() draws from the episode's generator: only a tool's effects may",
                            e.pos, hint and hint + f"(not {e.func})")
        if b is None and scope.library is not None and e.func in scope.library.functions:
            return self.user_call(e, scope)
        if b is None:
            for a in e.args:
                self.expr(a, scope)
            for _, v in e.kwargs:
                self.expr(v, scope)
            if e.func in SAMPLING_FUNCTIONS:
                msg = f"{e.func}() draws at random: it is allowed only in slots and generation rules"
                self.report("AQ305", msg, e.pos)
            else:
                known = [*FUNCTIONS, *(SAMPLING_FUNCTIONS if scope.sampling else ()),
                         *(scope.library.functions if scope.library is not None else ())]
                self.report("AQ305", f"unknown function '{e.func}'", e.pos, did_you_mean(e.func, known))
            return ANY
        if b.statement and not statement:
            self.report(
                "AQ306", f"{e.func}() changes state and can only be used as a statement in an effect", e.pos
            )
        n = len(e.args)
        ok = True
        if n < b.min_args or (b.max_args is not None and n > b.max_args):
            want = (
                f"{b.min_args}"
                if b.min_args == b.max_args
                else f"at least {b.min_args}"
                if b.max_args is None
                else f"{b.min_args} to {b.max_args}"
            )
            self.report(
                "AQ306", f"{e.func}() takes {want} arguments, got {n}", e.pos, f"usage: {b.signature}"
            )
            ok = False
        for k, v in e.kwargs:
            if k not in b.kwargs:
                hint = did_you_mean(k, b.kwargs) or f"usage: {b.signature}"
                self.report("AQ306", f"{e.func}() has no argument '{k}'", v.pos, hint)
                ok = False
        arg_types: list[Type] = []
        first = self.expr(e.args[0], scope) if e.args else ANY
        item = elem_type(first) or ANY
        for i, a in enumerate(e.args):
            if i == 0:
                arg_types.append(first)
            elif i in b.elem_args:
                arg_types.append(self.elem_expr(a, item, scope, (e.func, _source_text(e.args[0]))))
            else:
                arg_types.append(self.expr(a, scope))
        kw_types: dict[str, Type] = {}
        for k, v in e.kwargs:
            kw_types[k] = self.elem_expr(v, item, scope) if k in b.elem_kwargs else self.expr(v, scope)
        for i, (a, at) in enumerate(zip(e.args, arg_types, strict=True)):
            if i in b.elem_args and e.func != "sum":
                continue  # a condition per element: null counts as false
            if not (
                e.func in ("str", "try_int", "try_float", "try_date", "try_datetime")
                or (e.func == "format" and i > 0)
                or (e.func == "get" and i == 2)
            ):
                self.maybe_null(at, a, a.pos, f"passing it to {e.func}()")
        if e.func in ("sum", "min", "max") and len(e.args) == 1 and _nullable(item):
            self.maybe_null(item, None, e.args[0].pos, f"{e.func}() of a list that may hold nulls")
        if not ok:
            return ANY
        try:
            result = b.rule(arg_types, kw_types)
        except ArgError as err:
            self.report("AQ306", f"{e.func}(): {err}", e.pos, f"usage: {b.signature}")
            return ANY
        if e.func == "format" and isinstance(e.args[0], A.Lit) and isinstance(e.args[0].value, str):
            self.format_args(e, arg_types)
        if e.func == "format_date" and isinstance(e.args[1], A.Lit) and isinstance(e.args[1].value, str):
            problem = strftime_problem(e.args[1].value)
            if problem is not None:
                hint = 'e.g. "%d %b %Y", "%Y-%m-%d %H:%M"'
                self.report("AQ325", f"format_date(): {problem}", e.args[1].pos, hint)
        if e.func == "add_days" and unwrap_optional(arg_types[0]) not in (DATE, DATETIME, ANY):
            text = e.args[0]  # a date or a datetime, as the literal shows; else either
            if isinstance(text, A.Lit) and isinstance(text.value, str):
                return DATETIME if "T" in text.value or " " in text.value.strip() else DATE
            return STR
        return result

    def format_args(self, e: A.Call, arg_types: list[Type]) -> None:
        """A literal ``format`` text: as many values as placeholders, each spec fitting its value."""
        text = e.args[0]
        assert isinstance(text, A.Lit) and isinstance(text.value, str)
        fields = format_fields(text.value)
        if len(fields) != len(e.args) - 1:
            self.report(
                "AQ306",
                f"format() has {len(fields)} placeholder{'s' * (len(fields) != 1)} and {len(e.args) - 1} "
                f"value{'s' * (len(e.args) != 2)}",
                e.pos,
                "give one value per '{}' or '{:spec}' (write '{{' and '}}' for braces)",
            )
            return
        for (at, spec), value, t in zip(fields, e.args[1:], arg_types[1:], strict=True):
            if spec is not None:  # the spec's column, exact for a literal without escapes before it
                self.spec(spec, t, value, Pos(text.pos.line, text.pos.col + 1 + at + 2))

    def spec(self, spec: str, t: Type, value: A.Expr, pos: Pos) -> None:
        """AQ325 where a format spec does not parse, or does not fit the value's type."""
        self.maybe_null(t, value, value.pos, "formatting it with a spec")
        u = unwrap_optional(t)
        kinds: dict[Type, str] = {
            INT: "int", FLOAT: "float", STR: "str", DATE: "date", DATETIME: "date", ANY: "any", NOTHING: "any"
        }
        kind = "str" if isinstance(u, EnumT) else kinds.get(u)
        examples = {
            "int": "{n:05d}, {n:,}, {n:>6}",
            "float": "{x:.2f}, {x:,.1f}, {x:.1%}",
            "str": "{s:>10}, {s:<8}, {s:^12}",
            "date": "{d:%d %b %Y}, {d:%Y-%m-%d %H:%M}",
            "any": "{x:.2f}, {s:>10}",
        }
        if kind is None:
            shown: dict[Type, str] = {BOOL: "str(b) or an 'if'", DURATION: "total_hours(d) or total_minutes(d)"}
            what = shown.get(u)
            self.report(
                "AQ325",
                f"{_a(u.render())} takes no format spec",
                pos,
                f"format a number or a str made from it: {what}" if what else "format its fields one by one",
            )
            return
        problem = spec_problem(spec, kind)
        if problem is None and kind == "date" and ("%" not in spec or spec_problem(spec, "str") is None):
            problem = "a date's format spec is a strftime format with % directives"
        if problem is not None:
            self.report(
                "AQ325",
                f"format spec '{spec}' does not fit {_a(u.render())}: {problem}",
                pos,
                f"e.g. {examples[kind]}",
            )
    def user_call(self, e: A.Call, scope: Scope) -> Type:
        """A call of a domain function: arguments by position or by name, each stored into its parameter's type."""
        assert scope.library is not None
        f = scope.library.functions[e.func]
        usage = f"usage: {f.signature()}"
        names = list(f.params)
        given: dict[str, A.Expr] = {}
        ok = True
        if len(e.args) > len(names):
            self.report("AQ306", f"{e.func}() takes {len(names)} arguments, got {len(e.args)}", e.pos, usage)
            ok = False
        for name, a in zip(names, e.args, strict=False):
            given[name] = a
        for k, v in e.kwargs:
            if k not in f.params:
                self.report("AQ306", f"{e.func}() has no parameter '{k}'", v.pos, did_you_mean(k, names) or usage)
                ok = False
            elif k in given:
                self.report("AQ306", f"{e.func}() gets '{k}' twice", v.pos, usage)
                ok = False
            else:
                given[k] = v
        for a in e.args[len(names):]:
            self.expr(a, scope)
        missing = [n for n in names if n not in given]
        if missing and ok:
            self.report("AQ306", f"{e.func}() is missing {', '.join(repr(m) for m in missing)}", e.pos, usage)
        for name, a in given.items():
            if name in f.params:
                self.store(a, self.expr(a, scope), f.params[name], f"parameter '{name}' of {e.func}()", scope)
        return f.returns

    def shares_constant(self, e: A.Expr, t: Type, scope: Scope) -> bool:
        """Whether the value of ``e`` may be (part of) a constant's data: then nothing may be written into it."""
        lib = scope.library
        if lib is None or not (lib.constants or lib.functions or scope.returns is not None):
            return False
        if not _container(t):
            return False
        if isinstance(e, (A.Comp, A.ListLit, A.Where)) and not _container(elem_type(unwrap_optional(t)) or ANY):
            return False  # a new list of plain values shares nothing
        if any(scope.is_readonly(n) for n in names_in(e)):
            return True
        if scope.returns is not None:  # in a function: any function's value may be part of the state
            return bool(calls_in(e) & set(lib.functions))
        return bool(calls_in(e) & lib.sharing())

    def elem_scope(self, item: Type, scope: Scope, element: tuple[str, str] | None = None) -> Scope:
        t = unwrap_optional(item)
        fields = _fields_of(t)
        inner = scope.child(
            open_fields=fields is None and (t == ANY or (isinstance(t, MapT) and t.value == ANY))
        )
        for name, ft in (fields or {}).items():
            # an element that lacks the field (a null element, another case, an optional field left out) reads
            # the outer name of that spelling at run time: such a name is an error where one exists
            absent = isinstance(ft, OptionalT) or (isinstance(t, VariantT) and bool(_case_only(t, name)))
            unsafe = _nullable(item) or (absent and name in scope)
            inner.define(name, _ELEM_UNSAFE if unsafe else ft)
        inner.define("it", item)
        inner.element = element
        return inner

    def elem_expr(
        self, e: A.Expr, item: Type, scope: Scope, element: tuple[str, str] | None = None
    ) -> Type:
        if isinstance(e, A.Lit) and isinstance(e.value, str):
            e = A.Name(e.value, e.pos)  # by="price" names a field
        if isinstance(e, A.Each):  # count(o in xs: ...): the element is 'o', its fields are not bare names
            inner = scope.child()
            inner.define(e.name, item)
            return self.expr(e.body, inner)
        return self.expr(e, self.elem_scope(item, scope, element))

    def e_each(self, e: A.Each, scope: Scope) -> Type:
        self.report(
            "AQ306",
            f"'{e.name} in ...: ...' names the element only in count, sum, any and all",
            e.pos,
            "elsewhere, loop with [x for x in xs if ...]",
        )
        inner = scope.child()
        inner.define(e.name, ANY)
        self.expr(e.body, inner)
        return ANY

    def e_unary(self, e: A.Unary, scope: Scope) -> Type:
        t = self.expr(e.operand, scope)
        self.maybe_null(t, e.operand, e.pos, "negating it")
        if not (is_numeric(unwrap_optional(t)) or unwrap_optional(t) == DURATION):
            self.report("AQ304", f"cannot negate a value of type {t.render()}", e.pos)
            return ANY
        return unwrap_optional(t)

    def e_binary(self, e: A.Binary, scope: Scope) -> Type:
        lt, rt = self.expr(e.left, scope), self.expr(e.right, scope)
        self.maybe_null(lt, e.left, e.pos, f"'{e.op}'")
        self.maybe_null(rt, e.right, e.pos, f"'{e.op}'")
        a, b = unwrap_optional(lt), unwrap_optional(rt)
        op = e.op
        if DURATION in (a, b) or a in (DATE, DATETIME) or b in (DATE, DATETIME):
            return self.timed(e, op, a, b, lt, rt)
        if is_numeric(a) and is_numeric(b):
            if ANY in (a, b):
                return ANY
            if op == "/":
                return FLOAT
            return INT if a in (INT, NOTHING) and b in (INT, NOTHING) else FLOAT
        if isinstance(a, SetT) or isinstance(b, SetT):
            fn = {"+": "union", "-": "difference"}.get(op)
            self.report("AQ304", f"cannot apply '{op}' to {lt.render()} and {rt.render()}", e.pos,
                        f"sets combine with {fn}(a, b); add(s, x) and discard(s, x) change one"
                        if fn else "sets combine with union, intersection and difference")
            return ANY
        if op == "+":
            if is_stringlike(a) and is_stringlike(b):
                return STR
            if isinstance(a, ListT) and isinstance(b, ListT):
                return ListT(self.join([a.item, b.item], e, "the two lists hold"))
            if ANY in (a, b) and (isinstance(a, ListT) or isinstance(b, ListT)):
                return a if isinstance(a, ListT) else b
            hint = 'build text with f"..." or str(x)' if STR in (a, b) else None
            self.report("AQ304", f"cannot add {lt.render()} and {rt.render()}", e.pos, hint)
            return ANY
        if op == "*" and (is_stringlike(a) or isinstance(a, ListT)) and b in (INT, ANY):
            return STR if is_stringlike(a) else a
        if ANY in (a, b) and (is_numeric(a) or is_numeric(b)):
            return ANY
        self.report("AQ304", f"cannot apply '{op}' to {lt.render()} and {rt.render()}", e.pos)
        return ANY

    def timed(self, e: A.Binary, op: str, a: Type, b: Type, lt: Type, rt: Type) -> Type:
        """Arithmetic of durations, dates and datetimes, as Python's timedelta, date and datetime allow it."""
        moments = (DATE, DATETIME)
        number = (INT, FLOAT, NOTHING)
        result: Type | None = None
        if ANY in (a, b):
            result = ANY
        elif op == "+" and a == b == DURATION:
            result = DURATION
        elif op == "+" and ((a in moments and b == DURATION) or (a == DURATION and b in moments)):
            result = a if a in moments else b
        elif op == "-" and b == DURATION and a in (DURATION, *moments):
            result = a
        elif (
            (op == "-" and a == b and a in moments)  # the time between two dates or two datetimes
            or (op == "*" and DURATION in (a, b) and (a in number or b in number))
            or (op == "/" and a == DURATION and b in number)
        ):
            result = DURATION
        elif op == "/" and a == b == DURATION:
            result = FLOAT
        if result is not None:
            return result
        hint = None
        if op == "-" and {a, b} == {DATE, DATETIME}:
            hint = "convert the date: datetime(d) is its midnight"
        elif DURATION in (a, b) and (is_numeric(a) or is_numeric(b)):
            hint = "make the number a duration: hours(2), days(n)"
        elif op in ("+", "-") and (a in moments or b in moments):
            hint = "add a duration: d + days(3), t + hours(2); the difference of two dates is a duration"
        self.report("AQ304", f"cannot apply '{op}' to {lt.render()} and {rt.render()}", e.pos, hint)
        return ANY

    def enum_literal(self, t: Type, e: A.Expr) -> None:
        t = unwrap_optional(t)
        if (
            isinstance(t, EnumT)
            and isinstance(e, A.Lit)
            and isinstance(e.value, str)
            and e.value not in t.values
        ):
            hint = did_you_mean(e.value, t.values) or f"allowed values: {', '.join(t.values)}"
            self.report(
                "AQ304",
                f"'{e.value}' is not a value of {t.render()} (allowed: {', '.join(t.values)})",
                e.pos,
                hint,
            )

    def date_literal(self, t: Type, e: A.Expr) -> None:
        """Report a str literal used as a date that is not ISO-8601."""
        if not (isinstance(e, A.Lit) and isinstance(e.value, str) and unwrap_optional(t) in (DATE, DATETIME)):
            return
        fn = _date if unwrap_optional(t) == DATE else _datetime
        try:
            fn(e.value)
        except FunctionError:
            kind = unwrap_optional(t).render()
            example = "2024-05-31" if kind == "date" else "2024-05-31T09:00:00"
            self.report("AQ304", f"'{e.value}' is not an ISO-8601 {kind}", e.pos, f"write it like {example}")

    def e_compare(self, e: A.Compare, scope: Scope) -> Type:
        lt, rt = self.expr(e.left, scope), self.expr(e.right, scope)
        a, b = unwrap_optional(lt), unwrap_optional(rt)
        op = e.op
        if op in ("==", "!="):
            if not (is_comparable(lt, rt) or (_is_datelike(a) and _is_datelike(b))):
                self.report("AQ304", f"comparing {lt.render()} with {rt.render()} is never true", e.pos)
            self.enum_literal(lt, e.right)
            self.enum_literal(rt, e.left)
            self.date_literal(lt, e.right)
            self.date_literal(rt, e.left)
        elif op in ("<", "<=", ">", ">="):
            self.maybe_null(lt, e.left, e.pos, f"ordering it with '{op}'")
            self.maybe_null(rt, e.right, e.pos, f"ordering it with '{op}'")
            if not (
                ANY in (a, b)
                or (is_numeric(a) and is_numeric(b))
                or (_is_datelike(a) and _is_datelike(b))
                or a == b == DURATION
            ):
                hint = "compare with a duration: hours(12), days(n)" if DURATION in (a, b) else None
                self.report("AQ304", f"cannot order {lt.render()} and {rt.render()} with '{op}'", e.pos, hint)
        else:
            self.maybe_null(rt, e.right, e.pos, f"'{op}' in it")
            if is_stringlike(b) and b not in (ANY, NOTHING):
                self.maybe_null(lt, e.left, e.pos, f"'{op}' a str")
            if b == ANY:
                pass
            elif isinstance(b, ListT):
                if not is_comparable(lt, b.item):
                    self.report("AQ304", f"a {lt.render()} is never in a {rt.render()}", e.pos)
                self.enum_literal(b.item, e.left)
                if isinstance(e.right, A.ListLit):
                    for item in e.right.items:
                        self.enum_literal(lt, item)
            elif isinstance(b, SetT):
                if not is_comparable(lt, b.item):
                    self.report("AQ304", f"a {lt.render()} is never in a {rt.render()}", e.pos)
                self.enum_literal(b.item, e.left)
            elif isinstance(b, MapT) and b.key == INT:
                if a not in (INT, ANY, NOTHING):
                    self.report("AQ304", f"the keys of a {rt.render()} are int; '{op}' of a {lt.render()} is never "
                                "true", e.pos)
            elif isinstance(b, MapT):
                if not (is_stringlike(a) or a in (DATE, DATETIME)):
                    self.report("AQ304", f"map keys are str; '{op}' of a {lt.render()} is never true", e.pos)
            elif is_stringlike(b):
                if not is_stringlike(a):
                    self.report("AQ304", f"only a str can be in a str, not a {lt.render()}", e.pos)
            else:
                self.report(
                    "AQ304", f"'{op}' needs a list, map or str on the right, not {rt.render()}", e.pos
                )
        return BOOL

    def need_bool(self, t: Type, e: A.Expr, what: str) -> None:
        if not _is_bool(t):
            self.report(
                "AQ304", f"{what} must be a bool, not {t.render()}", e.pos, "compare it, e.g. x != null"
            )

    def e_boolop(self, e: A.BoolOp, scope: Scope) -> Type:
        lt = self.expr(e.left, scope)
        self.need_bool(lt, e.left, f"an operand of '{e.op}'")
        rt = self.expr(e.right, self.with_facts(scope, self.facts(e.left, scope, e.op == "and")))
        self.need_bool(rt, e.right, f"an operand of '{e.op}'")
        if ANY in (lt, rt):
            return ANY
        return OptionalT(BOOL) if _nullable(lt) or _nullable(rt) else BOOL  # null and x is null

    def e_not(self, e: A.Not, scope: Scope) -> Type:
        self.need_bool(self.expr(e.operand, scope), e.operand, "the operand of 'not'")
        return BOOL

    def e_cond(self, e: A.Cond, scope: Scope) -> Type:
        self.need_bool(self.expr(e.cond, scope), e.cond, "the condition of 'if'")
        then = self.expr(e.then, self.with_facts(scope, self.facts(e.cond, scope, True)))
        orelse = self.expr(e.orelse, self.with_facts(scope, self.facts(e.cond, scope, False)))
        return self.join([then, orelse], e, "the two values of 'if ... else' are")

    def join(self, types: list[Type], e: A.Expr, what: str) -> Type:
        """The type holding all ``types``; AQ304 when they do not mix (their values could be either)."""
        t = _join(types)
        if t == ANY and ANY not in types:
            self.report("AQ304", f"{what} of different types: {', '.join(x.render() for x in types)}", e.pos)
        return t

    def iter_item(self, e: A.Expr, t: Type, what: str) -> Type:
        self.maybe_null(t, e, e.pos, f"iterating over it with {what}")
        item = elem_type(t)
        if item is None:
            self.report("AQ304", f"{what} needs a list, a map or a str, not {t.render()}", e.pos)
            return ANY
        return item

    def e_where(self, e: A.Where, scope: Scope) -> Type:
        item = self.iter_item(e.source, self.expr(e.source, scope), "'where'")
        if isinstance(e.pred, A.Each):
            self.need_bool(self.elem_expr(e.pred, item, scope), e.pred.body, "a 'where' condition")
        else:
            inner = self.elem_scope(item, scope, ("where", _source_text(e.source)))
            self.need_bool(self.expr(e.pred, inner), e.pred, "a 'where' condition")
        return ListT(item)

    def bind_names(self, names: tuple[str, ...], item: Type, scope: Scope, pos: Pos) -> None:
        if len(names) == 1:
            scope.define(names[0], item)
            return
        pair = unwrap_optional(item)
        if isinstance(pair, TupleT) and not _nullable(item):  # for k, v in items(m): each its own type
            if len(pair.items) != len(names):
                self.report("AQ304", f"cannot unpack a {pair.render()} into {len(names)} names", pos)
            for name, t in zip(names, [*pair.items, *[ANY] * len(names)], strict=False):
                scope.define(name, t)
            return
        inner = elem_type(item) if isinstance(unwrap_optional(item), ListT) or item == ANY else None
        if inner is None:
            self.report("AQ304", f"cannot unpack a {item.render()} into {len(names)} names", pos)
            inner = ANY
        for name in names:
            scope.define(name, inner)

    def e_comp(self, e: A.Comp, scope: Scope) -> Type:
        item = self.iter_item(e.iter, self.expr(e.iter, scope), "'for'")
        inner = scope.child()
        self.bind_names(e.names, item, inner, e.pos)
        if e.cond is not None:
            self.need_bool(self.expr(e.cond, inner), e.cond, "the 'if' of a comprehension")
            inner = self.with_facts(inner, self.facts(e.cond, inner, True))
        return ListT(self.expr(e.elem, inner))

    def e_mapcomp(self, e: A.MapComp, scope: Scope) -> Type:
        item = self.iter_item(e.iter, self.expr(e.iter, scope), "'for'")
        inner = scope.child()
        self.bind_names(e.names, item, inner, e.pos)
        if e.cond is not None:
            self.need_bool(self.expr(e.cond, inner), e.cond, "the 'if' of a comprehension")
            inner = self.with_facts(inner, self.facts(e.cond, inner, True))
        return MapT(self.expr(e.value, inner), self.map_key(e.key, self.expr(e.key, inner)))

    def map_key(self, e: A.Expr, t: Type) -> Type:
        """The key type of a map built with keys of type ``t``: int for ints, else str (AQ304 for others)."""
        self.maybe_null(t, e, e.pos, "using it as a map key")
        k = unwrap_optional(t)
        if k == INT:
            return INT
        if not (is_stringlike(k) or k in (DATE, DATETIME, ANY)):
            self.report("AQ304", f"a map's keys are str or int, not {t.render()}", e.pos,
                        "convert it: str(...)")
        return STR

    def e_listlit(self, e: A.ListLit, scope: Scope) -> Type:
        if not e.items:
            return ListT(NOTHING)
        return ListT(self.join([self.expr(x, scope) for x in e.items], e, "the items of a list are"))

    def e_recordlit(self, e: A.RecordLit, scope: Scope) -> Type:
        fields = tuple((k, self.expr(v, scope)) for k, v in e.entries)
        return RecordLitT(_entries_type([t for _, t in fields]), fields=fields)

    def e_fstring(self, e: A.FString, scope: Scope) -> Type:
        for p in e.parts:
            if not isinstance(p, str):
                self.expr(p, scope)
        return STR

    def e_formatted(self, e: A.Formatted, scope: Scope) -> Type:
        self.spec(e.spec, self.expr(e.value, scope), e.value, e.spec_pos)
        return STR

    # -------------------------------------------------------------------------------------------- statements

    # ------------------------------------------------------------------------------------------- narrowing

    def facts(self, e: A.Expr, scope: Scope, truth: bool) -> list[tuple[Key, Type]]:
        """What ``e`` being ``truth`` tells about places: ``x != null`` (x is not null), ``p.kind == "card"``."""
        if isinstance(e, A.Not):
            return self.facts(e.operand, scope, not truth)
        if isinstance(e, A.BoolOp):
            if (e.op == "and") != truth:
                return []
            left = self.facts(e.left, scope, truth)
            return left + self.facts(e.right, self.with_facts(scope, left), truth)
        if not (isinstance(e, A.Compare) and e.op in ("==", "!=")):
            return []
        equal = (e.op == "==") == truth
        for a, b in ((e.left, e.right), (e.right, e.left)):
            key = place_key(a)
            if key is None or not isinstance(b, A.Lit):
                continue
            if b.value is None:
                t = self._peek_in(a, scope)
                return [(key, t.inner)] if not equal and isinstance(t, OptionalT) else []
            if isinstance(b.value, str) and isinstance(a, A.Field) and place_key(a.obj) is not None:
                base = unwrap_optional(self._peek_in(a.obj, scope))
                if isinstance(base, VariantT) and a.name == base.tag and b.value in base.cases:
                    others = [c for c in base.cases if c != b.value]
                    case = b.value if equal else others[0] if len(others) == 1 else None
                    return [(place_key(a.obj) or (), case_type(base, case))] if case is not None else []
        return []

    def with_facts(self, scope: Scope, facts: list[tuple[Key, Type]]) -> Scope:
        if not facts:
            return scope
        inner = scope.child()
        for key, t in facts:
            inner.narrow(key, t)
        return inner

    def narrow_stored(self, scope: Scope, key: Key | None, e: A.Expr, vt: Type, dt: Type) -> None:
        """After storing ``e`` at a place: its case (a record literal with its tag), or that it is not null."""
        if key is None:
            return
        d = unwrap_optional(dt)
        if isinstance(d, VariantT) and isinstance(e, A.RecordLit):
            tag = dict(e.entries).get(d.tag)
            if isinstance(tag, A.Lit) and isinstance(tag.value, str) and tag.value in d.cases:
                scope.narrow(key, case_type(d, tag.value))
            return
        if isinstance(vt, CaseT) and vt.variant is d:
            scope.narrow(key, vt)
        elif isinstance(dt, OptionalT) and not _nullable(vt) and vt not in (ANY, NOTHING):
            scope.narrow(key, d)

    # -------------------------------------------------------------------------------------------- statements

    def store(self, e: A.Expr, vt: Type, dt: Type, what: str, scope: Scope) -> None:
        """Check that the value of ``e`` (of type ``vt``) may be stored where ``dt`` is expected."""
        if dt == ANY:
            return
        if isinstance(e, A.Cond):
            for part, truth in ((e.then, True), (e.orelse, False)):
                inner = self.with_facts(scope, self.facts(e.cond, scope, truth))
                self.store(part, self._peek_in(part, inner), dt, what, inner)
            return
        self.enum_literal(dt, e)
        d = unwrap_optional(dt)
        if isinstance(e, A.Call) and e.func == "set" and len(e.args) == 1 and isinstance(e.args[0], A.ListLit) \
                and isinstance(d, SetT):  # set(["a", "b"]) where enum values are expected: each item, as written
            for item in e.args[0].items:
                self.store(item, self._peek_in(item, scope), d.item, "a set whose items are", scope)
            return
        if d in (DATE, DATETIME) and is_stringlike(unwrap_optional(vt)) and vt != ANY:
            if isinstance(e, A.Lit) and isinstance(e.value, str):
                self.date_literal(d, e)
            elif unwrap_optional(vt) != NOTHING and self.strict:
                self.report(
                    "AQ304",
                    f"a {vt.render()} is not always an ISO-8601 {d.render()}, and {what} is a {dt.render()}",
                    e.pos,
                    f"convert it: {d.render()}(...) checks it when the effect runs",
                )
            if _nullable(vt) and not isinstance(dt, OptionalT):
                self.maybe_null(vt, e, e.pos, f"storing it in {what}")
            return
        if isinstance(e, A.RecordLit) and isinstance(d, (RecordT, VariantT)):
            self.record_literal(e, d, scope)
            return
        if isinstance(e, A.RecordLit) and isinstance(d, MapT):
            if d.key == INT and e.entries:
                self.report("AQ304", f"a record literal's keys are text, and {what} is a {d.render()}", e.pos,
                            "build it with a map comprehension ({k: v for ...}) or set entries one by one (m[3] = v)")
                return
            for key, value in e.entries:
                self.store(value, self._peek_in(value, scope), d.value, f"entry '{key}'", scope)
            return
        if isinstance(e, A.ListLit) and isinstance(d, ListT):
            for item in e.items:
                self.store(item, self._peek_in(item, scope), d.item, what, scope)
            return
        if isinstance(e, A.MapComp) and isinstance(d, MapT):  # each entry, as the comprehension makes it
            inner = scope.child()
            self.bind_names(e.names, elem_type(self._peek_in(e.iter, scope)) or ANY, inner, e.pos)
            if e.cond is not None:
                inner = self.with_facts(inner, self.facts(e.cond, inner, True))
            kt = self.map_key(e.key, self._peek_in(e.key, inner))
            if kt != d.key:
                self.report("AQ304", f"the keys made here are {kt.render()}, and {what} is a {d.render()}", e.key.pos,
                            "convert them: int(...)" if d.key == INT else "convert them: str(...)")
            self.store(e.value, self._peek_in(e.value, inner), d.value, what, inner)
            return
        if isinstance(e, A.Comp) and isinstance(d, ListT):  # each element, as the comprehension makes it
            inner = scope.child()
            self.bind_names(e.names, elem_type(self._peek_in(e.iter, scope)) or ANY, inner, e.pos)
            if e.cond is not None:
                inner = self.with_facts(inner, self.facts(e.cond, inner, True))
            self.store(e.elem, self._peek_in(e.elem, inner), d.item, what, inner)
            return
        if _nullable(vt) and not isinstance(dt, OptionalT) and dt != NULL:
            self.maybe_null(vt, e, e.pos, f"storing it in {what} (a {dt.render()})")
            return
        if _str_into_enum(vt, d) and not isinstance(e, A.Lit) and self.strict:
            self.report(
                "AQ304",
                f"a str may be any text, and {what} is a {d.render()}",
                e.pos,
                "give the parameter the enum's type, or store a literal value",
            )
            return
        if not is_assignable(vt, dt) or _unchecked_record(vt, dt):
            hint = None
            if _unchecked_record(vt, dt):
                hint = "write the record literal where it is stored, or give the local a type: let r: T = {...}"
            elif isinstance(d, SetT) and isinstance(unwrap_optional(vt), ListT):
                hint = "make a set of it: set(...) sorts it and drops repeats"
            elif isinstance(d, ListT) and isinstance(unwrap_optional(vt), SetT):
                hint = "make a list of it: sorted(...)"
            self.report(
                "AQ304", f"cannot store a {vt.render()} in {what} of type {dt.render()}", e.pos, hint
            )

    def record_literal(self, e: A.RecordLit, d: RecordT | VariantT, scope: Scope) -> None:
        record: RecordT | None
        if isinstance(d, VariantT):
            tag = dict(e.entries).get(d.tag)
            if not (isinstance(tag, A.Lit) and isinstance(tag.value, str)):
                self.report(
                    "AQ315",
                    f"a record of {d.name} needs its tag '{d.tag}' written as a case name",
                    (tag or e).pos,
                    f"cases: {', '.join(d.cases)}",
                )
                return
            record = d.cases.get(tag.value)
            if record is None:
                self.report(
                    "AQ304",
                    f"'{tag.value}' is not a case of {d.name}",
                    tag.pos,
                    did_you_mean(tag.value, d.cases) or f"cases: {', '.join(d.cases)}",
                )
                return
            allowed = {**record.fields, d.tag: STR}
        else:
            record = d
            allowed = dict(record.fields)
        given = dict(e.entries)
        for key, value in e.entries:
            if key not in allowed:
                self.report(
                    "AQ303",
                    f"{record.name} has no field '{key}'",
                    value.pos,
                    did_you_mean(key, allowed) or f"fields: {', '.join(allowed)}",
                )
            elif key in record.fields:
                self.store(value, self._peek_in(value, scope), record.fields[key], f"field '{key}'", scope)
        missing = [
            name for name, ft in record.fields.items() if name not in given and not isinstance(ft, OptionalT)
        ]
        if missing:
            defaulted = [m for m in missing if m in record.defaults]
            self.report(
                "AQ304",
                f"{record.name} record is missing {', '.join(repr(m) for m in missing)}",
                e.pos,
                f"effects do not fill in defaults: give {', '.join(defaulted)} too" if defaulted else None,
            )

    def place(self, target: A.Expr, scope: Scope, *, rebind: bool) -> Type:
        """Check an assignment target and return its declared type (what may be stored there)."""
        if isinstance(target, A.Name):
            constant = scope.library is not None and target.id in scope.library.constants and \
                scope.is_readonly(target.id)
            if constant or not rebind:
                self.readonly(target, scope)
            t = scope.lookup(target.id) or self.expr(target, scope)
            if rebind and scope.is_state_field(target.id):
                return t  # a top-level state field: written into the state, as state.<name> = ... would
            if rebind and not constant and target.id in scope and not scope.is_assignable(target.id):
                self.report("AQ307", f"'{target.id}' cannot be reassigned", target.pos, _rebind_hint(target.id, t))
            return t
        if isinstance(target, (A.Field, A.Index)):
            root: A.Expr = target
            while isinstance(root, (A.Field, A.Index)):
                root = root.obj
            if not isinstance(root, A.Name):
                self.report("AQ307", "can only assign into a name, its fields and its entries", target.pos)
            else:
                self.readonly(root, scope)
            if isinstance(target, A.Index):
                return self.index_type(target, scope)
            base = self.expr(target.obj, scope)
            b = unwrap_optional(base)
            if isinstance(b, (VariantT, CaseT)) and target.name == (b.tag if isinstance(b, VariantT) else
                                                                   b.variant.tag if b.variant else ""):
                self.report(
                    "AQ315",
                    f"the tag '{target.name}' of this {b.name} cannot be changed: the record would keep the other "
                    "case's fields",
                    target.name_pos,
                    "store a whole new record of the other case instead",
                )
            return self.field_type(base, target.name, target.name_pos, target.obj)
        self.report("AQ307", "invalid assignment target", target.pos, "assign to a name, a field or an entry")
        self.expr(target, scope)
        return ANY

    def readonly(self, root: A.Name, scope: Scope) -> None:
        """AQ341 when a write goes into a constant (or into a local that may share a constant's data)."""
        if not scope.is_readonly(root.id):
            return
        lib = scope.library
        if scope.returns is not None and not (lib is not None and root.id in lib.constants):
            self.report("AQ343", f"a function changes nothing, and '{root.id}' is not a local of its own (it is, or "
                        "may share the data of, a parameter, the state or a constant)", root.pos,
                        "build the value in a local (let acc: list[T] = [] ... append(acc, x)) and return it")
            return
        what = "a constant" if lib is not None and root.id in lib.constants else \
            "a local that may share a constant's data"
        self.report("AQ341", f"'{root.id}' is {what}: constants are read-only", root.pos,
                    "build a new value instead (a record or list literal, a comprehension), or keep the data in the "
                    "state")

    def block(self, body: tuple[A.Stmt, ...], scope: Scope) -> None:
        for s in body:
            getattr(self, "s_" + type(s).__name__.lower())(s, scope)

    def s_let(self, s: A.Let, scope: Scope) -> None:
        if s.name in scope and not scope.is_assignable(s.name):
            self.report(
                "AQ307",
                f"'let {s.name}' would hide the parameter or state field '{s.name}'",
                s.pos,
                "choose another name",
            )
        existing = scope.lookup(s.name) if scope.is_assignable(s.name) else None
        declared: Type | None = None
        if s.declared is not None:
            try:
                declared = parse_type_text(s.declared, dict(scope.types))
            except TypeSyntaxError as err:
                self.report("AQ201", f"'let {s.name}': {err}", s.pos, err.hint)
                declared = ANY
        t = self.expr(s.value, scope)
        if existing is not None:  # effects share one set of names: a let again assigns the same local
            if declared is not None and declared != existing:
                self.report("AQ304", f"'{s.name}' is already a local of type {existing.render()}", s.pos)
            self.store(s.value, t, existing, f"'{s.name}'", scope)
            if self.shares_constant(s.value, existing, scope):
                scope.mark_readonly(s.name)
            scope.forget(changed_by(A.Name(s.name)))
            self.narrow_stored(scope, (s.name,), s.value, t, existing)
            return
        if declared is not None:
            self.store(s.value, t, declared, f"'{s.name}'", scope)
        elif needs_declared_type(s.value):
            example = "list[TYPE] = []" if isinstance(s.value, A.ListLit) else "TYPE? = null"
            self.report(
                "AQ314",
                f"'{s.name}' needs a type: {'null' if _nullable(t) else 'an empty list'} does not say what it "
                "will hold",
                s.pos,
                f"declare it: let {s.name}: {example}",
            )
            declared = ANY if _nullable(t) else ListT(ANY)
        typ = declared if declared is not None else _widen(t)
        scope.define(s.name, typ, assignable=True)
        if self.shares_constant(s.value, typ, scope):
            scope.mark_readonly(s.name)
        self.narrow_stored(scope, (s.name,), s.value, t, typ)

    def s_assign(self, s: A.Assign, scope: Scope) -> None:
        dt = self.place(s.target, scope, rebind=True)
        vt = self.expr(s.value, scope)
        field = isinstance(s.target, A.Name) and scope.is_state_field(s.target.id)
        self.store(s.value, vt, dt, f"the state field '{show_place(s.target)}'" if field else "a target", scope)
        if isinstance(s.target, A.Name) and self.shares_constant(s.value, dt, scope):
            scope.mark_readonly(s.target.id)
        self.forget_written(s.target, scope)
        self.narrow_stored(scope, place_key(s.target), s.value, vt, dt)

    def s_augassign(self, s: A.AugAssign, scope: Scope) -> None:
        dt = self.place(s.target, scope, rebind=True)
        t = self.e_binary(A.Binary(s.op, s.target, s.value, s.pos), scope)
        if isinstance(unwrap_optional(dt), ListT) and s.op == "+":  # the added items, as append would store them
            self.store(s.value, self._peek_in(s.value, scope), unwrap_optional(dt), "a target", scope)
        elif not is_assignable(t, dt):
            self.report("AQ304", f"'{s.op}=' gives a {t.render()}, the target is a {dt.render()}", s.pos)
        self.forget_written(s.target, scope)

    def forget_written(self, target: A.Expr, scope: Scope) -> None:
        """Drop what is known of the places a write into ``target`` may change; a state field written by name is
        also ``state.<name>``."""
        scope.forget(changed_by(target))
        if isinstance(target, A.Name) and scope.is_state_field(target.id):
            scope.forget(changed_by(A.Field(A.Name("state"), target.id)))

    def s_if(self, s: A.If, scope: Scope) -> None:
        prior: list[tuple[Key, Type]] = []  # the earlier conditions were false
        going_on: list[tuple[list[tuple[Key, Type]], tuple[A.Stmt, ...]]] = []  # branches that do not fail
        for cond, body in s.branches:
            here = self.with_facts(scope, prior)
            self.need_bool(self.expr(cond, here), cond, "the condition of 'if'")
            taken = prior + self.facts(cond, here, True)
            self.block(body, self.with_facts(scope, taken).child())
            if not always_leaves(body):
                going_on.append((taken, body))
            prior = prior + self.facts(cond, here, False)
        if s.orelse is not None:
            self.block(s.orelse, self.with_facts(scope, prior).child())
        if not always_leaves(s.orelse or ()) or s.orelse is None:
            going_on.append((prior, s.orelse or ()))
        for body in [*(b for _, b in s.branches), s.orelse or ()]:
            for target in writes(body):
                self.forget_written(target, scope)
        if len(going_on) == 1:  # the other branches fail: after the if, its conditions hold
            facts, body = going_on[0]
            for key, t in facts:
                scope.narrow(key, t)
            for target in writes(body):
                self.forget_written(target, scope)

    def s_for(self, s: A.For, scope: Scope) -> None:
        item = self.iter_item(s.iter, self.expr(s.iter, scope), "'for'")
        for name in s.names:
            if name in scope:
                self.report(
                    "AQ307",
                    f"the loop name '{name}' is already a name here: the loop would overwrite it",
                    s.pos,
                    "choose another loop name",
                )
        for target in writes(s.body):  # from the second pass on, what the body wrote is not known
            self.forget_written(target, scope)
        inner = scope.child()
        self.bind_names(s.names, item, inner, s.pos)
        if self.shares_constant(s.iter, ListT(item), scope):
            for name in s.names:
                inner.mark_readonly(name)
        self.block(s.body, inner)

    def s_while(self, s: A.While, scope: Scope) -> None:
        for target in writes(s.body):  # the condition runs again after each pass: nothing written is known
            scope.forget(changed_by(target))
        self.need_bool(self.expr(s.cond, scope), s.cond, "the condition of 'while'")
        self.block(s.body, self.with_facts(scope, self.facts(s.cond, scope, True)).child())
        if not _breaks(s.body):  # the loop ends only when its condition, just read, is false
            for key, t in self.facts(s.cond, scope, False):
                scope.narrow(key, t)

    def s_break(self, s: A.Break, scope: Scope) -> None:
        pass  # the parser allows it only inside a loop; what the loop wrote is forgotten by the loop

    def s_continue(self, s: A.Continue, scope: Scope) -> None:
        pass

    def s_callstmt(self, s: A.CallStmt, scope: Scope) -> None:
        call = s.call
        self.call(call, scope, statement=True)
        if len(call.args) != 2:
            return
        target, value = call.args
        if not isinstance(target, (A.Name, A.Field, A.Index)):
            self.report("AQ307", f"{call.func}() needs a list held in a name, field or entry", target.pos)
            return
        root: A.Expr = target
        while isinstance(root, (A.Field, A.Index)):
            root = root.obj
        if isinstance(root, A.Name):
            self.readonly(root, scope)
        scope.forget(changed_by(A.Index(target, A.Lit(0))))
        lt = unwrap_optional(self._peek_in(target, Scope(parent=scope, open_fields=True)))
        if isinstance(lt, SetT) and call.func in ("add", "discard"):
            vt = self._peek_in(value, scope)
            if call.func == "add":
                self.store(value, vt, lt.item, "a set whose items are", scope)
            else:
                self.maybe_null(vt, value, value.pos, "discarding it from a set")
                if not is_comparable(vt, lt.item):
                    self.report("AQ304", f"a {vt.render()} is never in a {lt.render()}", value.pos)
            return
        if not isinstance(lt, ListT):
            return  # reported by the function's type rule
        if call.func == "append":
            self.store(value, self._peek_in(value, scope), lt.item, "a list whose items are", scope)
        elif call.func == "extend":
            vt = self._peek_in(value, scope)
            self.store(value, vt, lt, "a list", scope)
        else:
            vt = self._peek_in(value, scope)
            if not is_comparable(vt, lt.item):
                self.report("AQ304", f"a {vt.render()} is never in a {lt.render()}", value.pos)

    def _peek_in(self, e: A.Expr, scope: Scope) -> Type:
        saved = self.problems
        self.problems = []
        try:
            return self.expr(e, scope)
        finally:
            self.problems = saved

    def s_delete(self, s: A.Delete, scope: Scope) -> None:
        self.place(s.target, scope, rebind=False)
        base = unwrap_optional(self._peek_in(s.target.obj, scope))
        if not (isinstance(base, MapT) or base == ANY):
            self.report("AQ304", f"'delete' removes map entries, not entries of a {base.render()}", s.pos)
        scope.forget(changed_by(s.target))

    def s_fail(self, s: A.Fail, scope: Scope) -> None:
        if scope.returns is not None:
            self.report("AQ343", "a function cannot fail: it has a value wherever it is called (a precondition, a "
                        "check)", s.pos, "return a value that says what went wrong (null, or a record with an error)")
        self.expr(s.message, scope)

    def s_return(self, s: A.Return, scope: Scope) -> None:
        t = self.expr(s.value, scope)
        if scope.returns is None:
            self.report("AQ342", "'return' gives the value of a domain function; effects end on their own", s.pos,
                        "write the value under the tool's 'returns:', or stop with 'fail \"...\"'")
            return
        self.store(s.value, t, scope.returns, "the value returned", scope)


def _container(t: Type) -> bool:
    """Whether a value of type ``t`` may hold data that another value shares (a record, list or map)."""
    u = unwrap_optional(t)
    return isinstance(u, (RecordT, VariantT, CaseT, ListT, MapT)) or u == ANY


def _join(types: list[Type]) -> Type:
    """:func:`join_types`, with record literals (in lists too) joined field by field rather than as maps."""
    values = [unwrap_optional(t) for t in types if t not in (NULL, NOTHING)]
    if len(values) < 2:
        return join_types(types)
    if all(isinstance(v, RecordLitT) for v in values):
        joined: Type = _merge_records(values)  # type: ignore[arg-type]
    elif all(isinstance(v, ListT) for v in values) and any(isinstance(v.item, RecordLitT) for v in values):  # type: ignore[attr-defined]
        joined = ListT(_join([v.item for v in values]))  # type: ignore[attr-defined]
    else:
        return join_types(types)
    return OptionalT(joined) if any(_nullable(t) for t in types) else joined


def _merge_records(records: list[RecordLitT]) -> RecordLitT:
    """Record literals that may each be the value: a field some lack is optional, a shared one joins its types."""
    names = list(dict.fromkeys(n for r in records for n, _ in r.fields))
    fields: list[tuple[str, Type]] = []
    for name in names:
        found = [dict(r.fields).get(name) for r in records]
        t = _join([f for f in found if f is not None])
        fields.append((name, OptionalT(t) if None in found and not _nullable(t) and t != ANY else t))
    return RecordLitT(_entries_type([t for _, t in fields]), fields=tuple(fields))


def _entries_type(types: list[Type]) -> Type:
    """What a record literal's entries are, read as a map (``r[key]``, ``values(r)``, ``for v in r``)."""
    if not types:
        return NOTHING
    t = join_types(types)
    return _MIXED if t == ANY and ANY not in types else t


def _widen(t: Type) -> Type:
    """The declared type behind a narrowed one: what a local inferred from it may hold later."""
    if isinstance(t, CaseT) and t.variant is not None:
        return t.variant
    if isinstance(t, OptionalT) and isinstance(t.inner, CaseT) and t.inner.variant is not None:
        return OptionalT(t.inner.variant)
    return t


def _str_into_enum(vt: Type, dt: Type) -> bool:
    """Whether text of any kind would reach an enum (in a list or map too): only literals are checked."""
    vt, dt = unwrap_optional(vt), unwrap_optional(dt)
    if isinstance(dt, EnumT):
        return vt == STR
    if isinstance(vt, (ListT, SetT)) and isinstance(dt, (ListT, SetT)):
        return _str_into_enum(vt.item, dt.item)
    if isinstance(vt, MapT) and isinstance(dt, MapT):
        return _str_into_enum(vt.value, dt.value)
    return False


def _unchecked_record(vt: Type, dt: Type) -> bool:
    """Whether a record literal's type would reach a record or variant without its fields being checked."""
    vt, dt = unwrap_optional(vt), unwrap_optional(dt)
    if isinstance(vt, RecordLitT):
        return isinstance(dt, (RecordT, VariantT)) or (isinstance(dt, MapT) and _unchecked_record(vt.value, dt.value))
    if isinstance(vt, ListT) and isinstance(dt, ListT):
        return _unchecked_record(vt.item, dt.item)
    if isinstance(vt, MapT) and isinstance(dt, MapT):
        return _unchecked_record(vt.value, dt.value)
    return False


def check_expr(expr: A.Expr, scope: Scope) -> tuple[Type, list[Problem]]:
    """The type of ``expr`` in ``scope`` and the problems found (type ``any`` where it cannot be known)."""
    c = _Checker(scope.strict)
    t = c.expr(expr, scope)
    return t, _dedupe(c.problems)


def define_binding(scope: Scope, name: str, expr: A.Expr, type_: Type) -> None:
    """Define a tool's ``let:`` binding of ``expr`` in ``scope``: read-only when its value may share a constant's
    data (``let: {rates: C}``, ``{pick: "C if x else D"}``), as an effect's ``let`` would be."""
    scope.define(name, type_)
    if _Checker(scope.strict).shares_constant(expr, type_, scope):
        scope.mark_readonly(name)


def expected_bool(expr: A.Expr, scope: Scope, what: str = "a condition") -> list[Problem]:
    """Problems of ``expr`` used as a condition: it must be a bool (AQ304 otherwise)."""
    c = _Checker(scope.strict)
    t = c.expr(expr, scope)
    c.need_bool(t, expr, what)
    return _dedupe(c.problems)


def check_stored(expr: A.Expr, scope: Scope, target: Type, what: str) -> list[Problem]:
    """Problems of storing the value of ``expr`` where a ``target`` is expected (record literals field by field)."""
    c = _Checker(scope.strict)
    c.store(expr, c.expr(expr, scope), target, what, scope)
    return _dedupe(c.problems)


def narrowed(scope: Scope, condition: A.Expr) -> Scope:
    """``scope`` where ``condition`` holds (a precondition, for the ones after it, the effects and returns)."""
    c = _Checker(scope.strict)
    return c.with_facts(scope, c.facts(condition, scope, True))


def check_program(program: A.Program, scope: Scope) -> list[Problem]:
    """Problems of an effect program; ``scope`` holds parameters and state fields (read-only as names)."""
    return check_program_scope(program, scope)[0]


def check_program_scope(program: A.Program, scope: Scope) -> tuple[list[Problem], Scope]:
    """Problems of an effect program, and the scope after it: its top-level ``let`` locals and what is known
    of places when it ends (for the tool's ``returns``)."""
    c = _Checker(scope.strict)
    after = scope.child()
    c.block(program.body, after)
    return _dedupe(c.problems), after


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
