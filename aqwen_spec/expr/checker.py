"""Static type checking of expressions and effect programs against :mod:`aqwen_spec.types`.

Problems are collected, never raised; codes are those of :data:`aqwen_spec.diagnostics.CODES` (AQ302-AQ307).
A value of type ``any`` checks nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from aqwen_spec.diagnostics import Pos, did_you_mean, named_like
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.functions import (  # the runtime's own date validation
    FUNCTIONS,
    ArgError,
    FunctionError,
    _date,
    _datetime,
    elem_type,
    join_types,
)
from aqwen_spec.expr.sampling import SAMPLING_FUNCTIONS
from aqwen_spec.types import (
    ANY,
    BOOL,
    DATE,
    DATETIME,
    FLOAT,
    INT,
    NULL,
    STR,
    EnumT,
    ListT,
    MapT,
    OptionalT,
    RecordT,
    Type,
    VariantT,
    is_assignable,
    is_comparable,
    is_numeric,
    is_stringlike,
    unwrap_optional,
)

__all__ = ["Problem", "Scope", "check_expr", "check_program", "expected_bool"]


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
    ) -> None:
        self._types: dict[str, Type] = dict(names or {})
        self._assignable: set[str] = set(self._types) if assignable else set()
        self.parent = parent
        self.open_fields = open_fields
        """Whether unknown names may be fields of an element of unknown type (they read as ``any``)."""
        self.sampling: bool = sampling or (parent is not None and parent.sampling)
        """Whether sampling functions (sample, choice, randint, ...) may be called: slots and generation rules."""
        self.element: tuple[str, str] | None = None
        """For the scope of a predicate's element fields: (function or 'where', the source as written)."""

    @classmethod
    def for_generation(cls, state: RecordT, extra: Mapping[str, Type] | None = None) -> Scope:
        """A read-only scope for record generation: the state's fields, ``state`` itself and ``extra``."""
        scope = cls(state.fields, sampling=True)
        scope.define("state", state)
        for name, t in (extra or {}).items():
            scope.define(name, t)
        return scope

    def define(self, name: str, type_: Type, *, assignable: bool = False) -> None:
        """Add (or replace) a name in this scope."""
        self._types[name] = type_
        if assignable:
            self._assignable.add(name)
        else:
            self._assignable.discard(name)

    def child(self, *, open_fields: bool = False) -> Scope:
        """A nested scope: names defined in it shadow this one's and vanish with it."""
        return Scope(parent=self, open_fields=open_fields, sampling=self.sampling)

    def _chain(self) -> Iterator[Scope]:
        s: Scope | None = self
        while s is not None:
            yield s
            s = s.parent

    def lookup(self, name: str) -> Type | None:
        """The type of a visible name, or ``None``."""
        for s in self._chain():
            if name in s._types:
                return s._types[name]
        return None

    def is_assignable(self, name: str) -> bool:
        """Whether ``name`` is a local that may be rebound."""
        for s in self._chain():
            if name in s._types:
                return name in s._assignable
        return False

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
    if isinstance(t, VariantT):
        out: dict[str, Type] = {t.tag: EnumT(tuple(t.cases))}
        for case in t.cases.values():
            for name in case.fields:
                ft = t.field_type(name)
                if ft is not None:
                    out[name] = ft
        return out
    return None


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

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
            self.shadowing(e, scope)
            return t
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
        base = self.expr(e.obj, scope)
        return self.field_type(base, e.name, e.name_pos)

    def field_type(self, base: Type, name: str, pos: Pos) -> Type:
        t = unwrap_optional(base)
        if t in (ANY, NULL):
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
        base = unwrap_optional(self.expr(e.obj, scope))
        key = self.expr(e.index, scope)
        k = unwrap_optional(key)
        if base == ANY:
            return ANY
        if isinstance(base, ListT) or base == STR:
            if k not in (INT, ANY):
                self.report(
                    "AQ304", f"a {base.render()} index must be an int, not {key.render()}", e.index.pos
                )
            return base.item if isinstance(base, ListT) else STR
        if isinstance(base, MapT):
            if not (is_stringlike(k) or k in (DATE, DATETIME)):
                self.report("AQ304", f"map keys are str, not {key.render()}", e.index.pos)
            return base.value
        if (
            isinstance(base, (RecordT, VariantT))
            and isinstance(e.index, A.Lit)
            and isinstance(e.index.value, str)
        ):
            return self.field_type(base, e.index.value, e.index.pos)
        self.report("AQ304", f"cannot index a value of type {base.render()}", e.pos)
        return ANY

    def e_call(self, e: A.Call, scope: Scope) -> Type:
        return self.call(e, scope, statement=False)

    def call(self, e: A.Call, scope: Scope, *, statement: bool) -> Type:
        b = FUNCTIONS.get(e.func) or (SAMPLING_FUNCTIONS.get(e.func) if scope.sampling else None)
        if b is None:
            for a in e.args:
                self.expr(a, scope)
            for _, v in e.kwargs:
                self.expr(v, scope)
            if e.func in SAMPLING_FUNCTIONS:
                msg = f"{e.func}() draws at random: it is allowed only in slots and generation rules"
                self.report("AQ305", msg, e.pos)
            else:
                known = [*FUNCTIONS, *(SAMPLING_FUNCTIONS if scope.sampling else ())]
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
        if not ok:
            return ANY
        try:
            return b.rule(arg_types, kw_types)
        except ArgError as err:
            self.report("AQ306", f"{e.func}(): {err}", e.pos, f"usage: {b.signature}")
            return ANY

    def elem_scope(self, item: Type, scope: Scope, element: tuple[str, str] | None = None) -> Scope:
        t = unwrap_optional(item)
        fields = _fields_of(t)
        inner = scope.child(
            open_fields=fields is None and (t == ANY or (isinstance(t, MapT) and t.value == ANY))
        )
        for name, ft in (fields or {}).items():
            inner.define(name, ft)
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
        if not is_numeric(unwrap_optional(t)):
            self.report("AQ304", f"cannot negate a value of type {t.render()}", e.pos)
            return ANY
        return unwrap_optional(t)

    def e_binary(self, e: A.Binary, scope: Scope) -> Type:
        lt, rt = self.expr(e.left, scope), self.expr(e.right, scope)
        a, b = unwrap_optional(lt), unwrap_optional(rt)
        op = e.op
        if is_numeric(a) and is_numeric(b):
            if ANY in (a, b):
                return ANY
            if op == "/":
                return FLOAT
            return INT if a == INT and b == INT else FLOAT
        if op == "+":
            if is_stringlike(a) and is_stringlike(b):
                return STR
            if isinstance(a, ListT) and isinstance(b, ListT):
                return ListT(join_types([a.item, b.item]))
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
            if not (
                ANY in (a, b) or (is_numeric(a) and is_numeric(b)) or (_is_datelike(a) and _is_datelike(b))
            ):
                self.report("AQ304", f"cannot order {lt.render()} and {rt.render()} with '{op}'", e.pos)
        else:
            if b == ANY:
                pass
            elif isinstance(b, ListT):
                if not is_comparable(lt, b.item):
                    self.report("AQ304", f"a {lt.render()} is never in a {rt.render()}", e.pos)
                self.enum_literal(b.item, e.left)
                if isinstance(e.right, A.ListLit):
                    for item in e.right.items:
                        self.enum_literal(lt, item)
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
        for side in (e.left, e.right):
            self.need_bool(self.expr(side, scope), side, f"an operand of '{e.op}'")
        return BOOL

    def e_not(self, e: A.Not, scope: Scope) -> Type:
        self.need_bool(self.expr(e.operand, scope), e.operand, "the operand of 'not'")
        return BOOL

    def e_cond(self, e: A.Cond, scope: Scope) -> Type:
        self.need_bool(self.expr(e.cond, scope), e.cond, "the condition of 'if'")
        return join_types([self.expr(e.then, scope), self.expr(e.orelse, scope)])

    def iter_item(self, e: A.Expr, t: Type, what: str) -> Type:
        item = elem_type(t)
        if item is None:
            self.report("AQ304", f"{what} needs a list or a map, not {t.render()}", e.pos)
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
        return ListT(self.expr(e.elem, inner))

    def e_listlit(self, e: A.ListLit, scope: Scope) -> Type:
        return ListT(join_types([self.expr(x, scope) for x in e.items])) if e.items else ListT(ANY)

    def e_recordlit(self, e: A.RecordLit, scope: Scope) -> Type:
        for _, v in e.entries:
            self.expr(v, scope)
        return MapT(ANY)

    def e_fstring(self, e: A.FString, scope: Scope) -> Type:
        for p in e.parts:
            if not isinstance(p, str):
                self.expr(p, scope)
        return STR

    # -------------------------------------------------------------------------------------------- statements

    def store(self, e: A.Expr, vt: Type, dt: Type, what: str, scope: Scope) -> None:
        """Check that the value of ``e`` (of type ``vt``) may be stored where ``dt`` is expected."""
        self.enum_literal(dt, e)
        d = unwrap_optional(dt)
        if d in (DATE, DATETIME) and is_stringlike(unwrap_optional(vt)):
            if isinstance(e, A.Lit) and isinstance(e.value, str):
                self.date_literal(d, e)
            return  # dates are ISO strings at runtime
        if isinstance(e, A.RecordLit) and isinstance(d, (RecordT, VariantT)):
            self.record_literal(e, d, scope)
            return
        if isinstance(e, A.ListLit) and isinstance(d, ListT):
            for item in e.items:
                self.store(item, self._peek_in(item, scope), d.item, what, scope)
            return
        if not is_assignable(vt, dt):
            self.report("AQ304", f"cannot store a {vt.render()} in {what} of type {dt.render()}", e.pos)

    def record_literal(self, e: A.RecordLit, d: RecordT | VariantT, scope: Scope) -> None:
        record: RecordT | None
        if isinstance(d, VariantT):
            tag = dict(e.entries).get(d.tag)
            if not (isinstance(tag, A.Lit) and isinstance(tag.value, str)):
                return  # the case is only known at runtime
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
            name
            for name, ft in record.fields.items()
            if name not in given and not isinstance(ft, OptionalT) and name not in record.defaults
        ]
        if missing:
            self.report(
                "AQ304", f"{record.name} record is missing {', '.join(repr(m) for m in missing)}", e.pos
            )

    def place(self, target: A.Expr, scope: Scope, *, rebind: bool) -> Type:
        """Check an assignment target and return its type."""
        if isinstance(target, A.Name):
            t = self.expr(target, scope)
            if rebind and target.id in scope and not scope.is_assignable(target.id):
                self.report("AQ307", f"'{target.id}' cannot be reassigned", target.pos, _rebind_hint(target.id, t))
            return t
        if isinstance(target, (A.Field, A.Index)):
            root: A.Expr = target
            while isinstance(root, (A.Field, A.Index)):
                root = root.obj
            if not isinstance(root, A.Name):
                self.report("AQ307", "can only assign into a name, its fields and its entries", target.pos)
            return self.expr(target, scope)
        self.report("AQ307", "invalid assignment target", target.pos, "assign to a name, a field or an entry")
        self.expr(target, scope)
        return ANY

    def block(self, body: tuple[A.Stmt, ...], scope: Scope) -> None:
        for s in body:
            getattr(self, "s_" + type(s).__name__.lower())(s, scope)

    def s_let(self, s: A.Let, scope: Scope) -> None:
        t = self.expr(s.value, scope)
        if s.name in scope and not scope.is_assignable(s.name):
            self.report(
                "AQ307",
                f"'let {s.name}' would hide the parameter or state field '{s.name}'",
                s.pos,
                "choose another name",
            )
        scope.define(s.name, ANY if t == NULL else t, assignable=True)

    def s_assign(self, s: A.Assign, scope: Scope) -> None:
        dt = self.place(s.target, scope, rebind=True)
        vt = self.expr(s.value, scope)
        self.store(s.value, vt, dt, "a target", scope)

    def s_augassign(self, s: A.AugAssign, scope: Scope) -> None:
        self.place(s.target, scope, rebind=True)
        t = self.e_binary(A.Binary(s.op, s.target, s.value, s.pos), scope)
        dt = self.expr(s.target, Scope(parent=scope))
        if not is_assignable(t, dt):
            self.report("AQ304", f"'{s.op}=' gives a {t.render()}, the target is a {dt.render()}", s.pos)

    def s_if(self, s: A.If, scope: Scope) -> None:
        for cond, body in s.branches:
            self.need_bool(self.expr(cond, scope), cond, "the condition of 'if'")
            self.block(body, scope.child())
        if s.orelse is not None:
            self.block(s.orelse, scope.child())

    def s_for(self, s: A.For, scope: Scope) -> None:
        item = self.iter_item(s.iter, self.expr(s.iter, scope), "'for'")
        inner = scope.child()
        self.bind_names(s.names, item, inner, s.pos)
        self.block(s.body, inner)

    def s_callstmt(self, s: A.CallStmt, scope: Scope) -> None:
        call = s.call
        self.call(call, scope, statement=True)
        if len(call.args) != 2:
            return
        target, value = call.args
        if not isinstance(target, (A.Name, A.Field, A.Index)):
            self.report("AQ307", f"{call.func}() needs a list held in a name, field or entry", target.pos)
            return
        lt = unwrap_optional(self.expr(target, Scope(parent=scope, open_fields=True)))
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

    def s_fail(self, s: A.Fail, scope: Scope) -> None:
        self.expr(s.message, scope)


def check_expr(expr: A.Expr, scope: Scope) -> tuple[Type, list[Problem]]:
    """The type of ``expr`` in ``scope`` and the problems found (type ``any`` where it cannot be known)."""
    c = _Checker()
    t = c.expr(expr, scope)
    return t, _dedupe(c.problems)


def expected_bool(expr: A.Expr, scope: Scope, what: str = "a condition") -> list[Problem]:
    """Problems of ``expr`` used as a condition: it must be a bool (AQ304 otherwise)."""
    c = _Checker()
    t = c.expr(expr, scope)
    c.need_bool(t, expr, what)
    return _dedupe(c.problems)


def check_program(program: A.Program, scope: Scope) -> list[Problem]:
    """Problems of an effect program; ``scope`` holds parameters and state fields (read-only as names)."""
    c = _Checker()
    c.block(program.body, scope.child())
    return _dedupe(c.problems)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
