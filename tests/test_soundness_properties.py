"""Differential property test of the checker against the evaluator: what lints clean runs clean.

Each example draws a random state schema (records, a tagged variant, a recursive type, optional and list fields), a
random tool over it (parameters, preconditions, an effect program and a return value, written as text from the
grammar by a type-directed generator that also writes ill-typed code on purpose) and a random state that fits the
schema. Whenever the checker accepts the tool, calling it through :class:`ToolRunner` must

- fail only with a declared ``fail`` or with one of the documented run-time errors (a missing key or index, a
  division by zero, a limit, text that is not a number or a date, ...; ``DOCUMENTED`` below),
- leave a state that fits the schema (:func:`aqwen_spec.values.check_value`), and
- return a value of the type the checker gave ``returns``.

A share of the examples also has a domain library: constants of random types and values, and a function with typed
parameters, a declared return type and a random body (which may call itself), checked as the domain check does;
the tool's code then reads the constants (and tries to write into them) and calls the function.

Hypothesis runs derandomized with a fixed number of examples, so the run is the same on every machine; the
generator's coverage of the grammar is asserted against the IR node classes of :mod:`aqwen_spec.expr.ast`.
"""

from __future__ import annotations

import random
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aqwen_spec.check.library import statement_body_problems
from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr import ExprSyntaxError, ast, parse_expr, parse_program, rollback
from aqwen_spec.expr.checker import (
    RecordLitT,
    Scope,
    check_expr,
    check_program_scope,
    check_stored,
    define_binding,
    narrowed,
)
from aqwen_spec.expr.library import FunctionDef, Library
from aqwen_spec.resolved import Origin, ParamIR, PreconditionIR, ResolvedTool
from aqwen_spec.semantics import ToolOutcome, ToolRunner, copy_state
from aqwen_spec.semantics.toolcode import step_of
from aqwen_spec.semantics.tools import _KIT
from aqwen_spec.types import (
    BOOL,
    DATE,
    DATETIME,
    FLOAT,
    INT,
    STR,
    EnumT,
    ListT,
    MapT,
    OptionalT,
    RecordT,
    SetT,
    Type,
    VariantT,
    is_assignable,
    unwrap_optional,
)
from aqwen_spec.values import check_value, from_json

EXAMPLES = 10_000
PROFILE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=list(HealthCheck),
)

DOCUMENTED = re.compile(
    "|".join(
        [
            r"^no entry .* in the map$",  # a missing map key
            r"^no entry .* to delete$",
            r"^index -?\d+ out of range",  # a list index past the end
            r"^(division|modulo) by zero$",
            r"too many steps|too large|^integer overflow$",  # the limits
            r"^(min|max)\(\) of an empty list$",
            r"^remove\(\): .* is not in the list$",
            r"^(int|float)\(\) of '.*'$",  # text that is not a number
            r"^date\(\): .* is not a date like|is not an ISO-8601 date",
            r"^add_days\(\): date out of range$",
            r"^date out of range$|duration out of range",  # date + days(n) past year 9999
            r"^slice step cannot be zero$",
            r"nest more than \d+ deep|nest too deeply",  # calls of domain functions
        ]
    )
)

KEYS = ["k0", "k1", "k2"]
INT_KEYS = [0, 1, 2]
HAS_EACH = hasattr(ast, "Each")  # a grammar that names the element (count(o in xs: ...), xs where o: ...)
E3 = EnumT(("a", "b", "c"))
PRIMS: list[Type] = [INT, FLOAT, STR, BOOL, DATE, DATETIME, E3]
SEEN: set[type] = set()
COUNTS = {"examples": 0, "accepted": 0, "called": 0, "ok": 0, "failed": 0, "documented": 0, "state_by_name": 0,
          "generated": 0, "bindings": 0, "sets": 0, "int_keys": 0, "map_comps": 0, "group_by": 0, "functions": 0,
          "function_ok": 0}


# ------------------------------------------------------------------------------------------------- schemas and data


def make_schema(rng: random.Random) -> tuple[RecordT, dict[str, Type]]:
    def field_type() -> Type:
        t = rng.choice(PRIMS)
        r = rng.random()
        return OptionalT(t) if r < 0.3 else ListT(t) if r < 0.45 else SetT(t) if r < 0.5 else t

    item = RecordT("Item", {"id": STR})
    for name in rng.sample(["n", "x", "s", "b", "d", "e", "tags", "note"], rng.randint(2, 4)):
        item.fields[name] = field_type()
    box = RecordT("Box", {"id": STR, "item": OptionalT(item), "items": ListT(item), "count": INT})
    card = RecordT("card", {"kind": EnumT(("card",)), "brand": STR, "n": INT})  # a case has its tag, as loaded
    cash = RecordT("cash", {"kind": EnumT(("cash",)), "x": FLOAT})
    pay = VariantT("Pay", "kind", {"card": card, "cash": cash})
    node = RecordT("Node", {"id": STR, "val": INT})
    node.fields["kids"] = OptionalT(MapT(node))
    pool: dict[str, Type] = {
        "label": STR, "ratio": OptionalT(FLOAT), "flag": OptionalT(BOOL), "day": DATE, "mode": E3,
        "items": MapT(item), "boxes": MapT(box), "pays": MapT(pay), "tree": OptionalT(node),
        "tags": ListT(STR), "nums": ListT(INT), "spare": OptionalT(item),
        "seen": SetT(STR), "ids": SetT(INT), "slots": MapT(OptionalT(STR), INT), "bins": MapT(item, INT),
    }
    fields: dict[str, Type] = {"counter": INT}
    for name in rng.sample(sorted(pool), rng.randint(3, 7)):
        fields[name] = pool[name]
    named: dict[str, Type] = {"Item": item, "Box": box, "Pay": pay, "Node": node}
    return RecordT("State", fields), named


def make_value(t: Type, rng: random.Random, depth: int = 0) -> Any:
    if isinstance(t, OptionalT):
        return None if rng.random() < 0.35 or depth > 3 else make_value(t.inner, rng, depth)
    if t == INT:
        return rng.choice([0, 1, 2, 3, -1, 7, 10])
    if t == FLOAT:
        return rng.choice([0.0, 0.5, 1.5, -2.0, 3.0])
    if t == STR:
        return rng.choice(["", "k0", "k1", "x", "12", "2024-05-01"])
    if t == BOOL:
        return rng.random() < 0.5
    if t == DATE:
        return rng.choice(["2024-05-01", "2024-02-29", "2023-12-31"])
    if t == DATETIME:
        return rng.choice(["2024-05-01T09:30:00", "2024-02-29T00:00:00"])
    if isinstance(t, EnumT):
        return rng.choice(t.values)
    if isinstance(t, ListT):
        return [make_value(t.item, rng, depth + 1) for _ in range(rng.randint(0, 3 if depth < 2 else 0))]
    if isinstance(t, SetT):
        return sorted({make_value(t.item, rng, depth + 1) for _ in range(rng.randint(0, 3))})
    if isinstance(t, MapT):
        keys = INT_KEYS if t.key == INT else KEYS
        return {k: make_value(t.value, rng, depth + 1) for k in rng.sample(keys, rng.randint(0, 3 if depth < 2 else 0))}
    if isinstance(t, VariantT):
        case = rng.choice(sorted(t.cases))
        return make_value(t.cases[case], rng, depth)
    if isinstance(t, RecordT):
        return {name: make_value(ft, rng, depth + 1) for name, ft in t.fields.items()}
    raise AssertionError(t)


# ------------------------------------------------------------------------------------------------------ programs


def _lit(t: Type, rng: random.Random) -> str:
    t = unwrap_optional(t)
    if t == INT:
        return str(rng.choice([0, 1, 2, 3, 5, 10]))
    if t == FLOAT:
        return rng.choice(["0.5", "1.5", "2.0", "0.0"])
    if t == STR:
        return rng.choice(['"k0"', '"k1"', '"x"', '"12"', '""'])
    if t == BOOL:
        return rng.choice(["true", "false"])
    if t == DATE:
        return rng.choice(['"2024-05-01"', 'date("2024-01-31")'])
    if t == DATETIME:
        return rng.choice(['"2024-05-01T08:00:00"', 'datetime("2024-01-31T23:59:00")'])
    if isinstance(t, EnumT):
        return f'"{rng.choice(t.values)}"'
    return "null"


class Gen:
    """Writes expressions and statements as text, mostly of the wanted type, sometimes (on purpose) not."""

    def __init__(self, rng: random.Random, names: dict[str, Type]) -> None:
        self.rng = rng
        self.names = dict(names)
        self.nonnull: set[str] = set()
        self._places: dict[Any, list[tuple[str, Type]]] = {}
        self.in_fstring = False
        self.cases: dict[str, str] = {}
        self.loops = 0  # how many loops the statement being written is in (for break and continue)
        self.functions: list[tuple[str, list[Type], Type]] = []
        """Domain functions it may call: name, parameter types, return type."""

    def fstring(self, _: str) -> str:
        """An f-string of two expressions (none of them an f-string: the quotes would clash)."""
        self.in_fstring = True
        try:
            if self.chance(0.5):  # with format specs, each fitting its value's type
                spec = self.rng.choice([":05d", ":,", ":>4", ":x"])
                fspec = self.rng.choice([":.2f", ":,.1f", ":.1%", ":e", ":>8"])
                return (f"f'{{{self.expr(INT, 1)}{spec}}}-{{{self.expr(STR, 1)}:>6}}-{{{self.expr(FLOAT, 1)}{fspec}}}"
                        f"-{{{self.expr(DATE, 1)}:%d %b %Y}}'")
            return f"f'{{{self.expr(INT, 1)}}}-{{{self.expr(STR, 1)}}}'"
        finally:
            self.in_fstring = False

    def slice(self, t: Type, d: int) -> str:
        """``x[a:b:c]`` with some bounds left out, negative ones and (rarely) a step of 0."""
        bounds = [self.rng.choice(["", "", "1", "-1", "2", "-3", "10"]) for _ in range(2)]
        step = self.rng.choice(["", "", ":2", ":-1", ":-2", f":{self.expr(INT, 0)}"])
        return f"{self.expr(t, d)}[{bounds[0]}:{bounds[1]}{step}]"

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # places: a name, then fields, keys and indexes, as far as the types go
    def places(self) -> list[tuple[str, Type]]:
        key = (tuple(self.names), tuple(sorted(self.nonnull)), tuple(sorted(self.cases.items())))
        found = self._places.get(key)
        if found is None:
            found = self._places[key] = self._walk(2)
        return found

    def _walk(self, depth: int) -> list[tuple[str, Type]]:
        out: list[tuple[str, Type]] = []
        frontier = list(self.names.items())
        for _ in range(depth + 1):
            out += frontier
            nxt: list[tuple[str, Type]] = []
            for text, t in frontier:
                base = t
                if isinstance(t, OptionalT):
                    if text not in self.nonnull and not self.chance(0.1):
                        continue
                    base = t.inner
                if isinstance(base, RecordT):
                    nxt += [(f"{text}.{f}", ft) for f, ft in base.fields.items()]
                elif isinstance(base, VariantT):
                    nxt.append((f"{text}.{base.tag}", EnumT(tuple(base.cases))))
                    case = self.cases.get(text) or (self.rng.choice(sorted(base.cases)) if self.chance(0.1) else None)
                    if case is not None:  # a case's own fields: where the tag was checked (or, rarely, not)
                        nxt += [(f"{text}.{f}", ft) for f, ft in base.cases[case].fields.items() if f != base.tag]
                elif isinstance(base, MapT) and base.key == INT:
                    key = self.rng.choice([str(self.rng.choice(INT_KEYS)), *(["q"] if "q" in self.names else [])])
                    nxt.append((f"{text}[{key}]", base.value))
                elif isinstance(base, MapT):
                    key = self.rng.choice([f'"{self.rng.choice(KEYS)}"', *(["k"] if "k" in self.names else [])])
                    nxt.append((f"{text}[{key}]", base.value))
                elif isinstance(base, ListT):
                    nxt.append((f"{text}[{self.rng.choice(['0', '-1', '1'])}]", base.item))
            frontier = nxt
        return out

    def of_type(self, t: Type) -> list[str]:
        return [p for p, pt in self.places() if is_assignable(pt, t) and (pt == t or self.chance(0.5))]

    def expr(self, t: Type, depth: int = 1) -> str:
        rng = self.rng
        if self.chance(0.04):
            t = rng.choice([*PRIMS, ListT(INT), OptionalT(INT)])  # the wrong type, on purpose
        calls = [f for f in self.functions if is_assignable(f[2], t)]
        if calls and depth > 0 and self.chance(0.3):
            fname, ptypes, _ = rng.choice(calls)
            return f"{fname}({', '.join(self.expr(p, depth - 1) for p in ptypes)})"
        if depth <= 0 or self.chance(0.45):
            found = self.of_type(t)
            if found and self.chance(0.7):
                return rng.choice(found)
            return self.minimal(t)
        return self.compound(t, depth - 1)

    def minimal(self, t: Type) -> str:
        if isinstance(t, OptionalT):
            return "null" if self.chance(0.5) else self.minimal(t.inner)
        if isinstance(t, (ListT, SetT)):
            return "[]"
        if isinstance(t, MapT):
            return "{}"
        if isinstance(t, VariantT):
            case = self.rng.choice(sorted(t.cases))
            rest = "".join(f", {f}: {self.minimal(ft)}" for f, ft in t.cases[case].fields.items() if f != t.tag)
            return f'{{{t.tag}: "{case}"{rest}}}'
        if isinstance(t, RecordT):
            return "{" + ", ".join(f"{f}: {self.minimal(ft)}" for f, ft in t.fields.items()) + "}"
        return _lit(t, self.rng)

    def compound(self, t: Type, d: int) -> str:
        """One expression of type ``t`` (roughly), of a form chosen first and then written: options stay lazy."""
        rng = self.rng
        base = unwrap_optional(t)
        e = self.expr
        options: list[Any] = []
        if isinstance(t, OptionalT) and base in (INT, FLOAT, DATE, DATETIME):
            soft = {INT: "try_int", FLOAT: "try_float", DATE: "try_date", DATETIME: "try_datetime"}[base]
            options.append(lambda: f"{soft}({e(OptionalT(STR), d)})")
        if isinstance(t, OptionalT):
            options += [lambda: "null", lambda: f"first([{e(base, d)}])", lambda: f'get({{k0: {e(base, d)}}}, "k1")',
                        lambda: f"last([{e(base, d)}, {e(t, d)}])"]
        if base == INT:
            op = rng.choice(["+", "-", "*", "//", "%"])
            options += [lambda: f"({e(INT, d)} {op} {e(INT, d)})", lambda: f"-{e(INT, d)}",
                        lambda: f"len({e(ListT(INT), d)})", lambda: f"count({e(ListT(STR), d)})",
                        lambda: f"sum({e(ListT(INT), d)})", lambda: f"abs({e(INT, d)})",
                        lambda: f"round({e(FLOAT, d)})", lambda: f"int({e(STR, d)})", lambda: f"max({e(INT, d)}, 1)",
                        lambda: f"days_between({e(DATE, d)}, {e(DATE, d)})", lambda: f"min({e(ListT(INT), d)})",
                        lambda: f"len({e(SetT(STR), d)})", lambda: f"sum({e(SetT(INT), d)})",
                        lambda: f"len({e(MapT(ListT(INT), INT), d)})"]
            records = self.records()
            if records:
                text, rec = rng.choice(records)
                f = rng.choice(sorted(rec.fields))
                keyed = [n for n, ft in rec.fields.items() if ft in (STR, INT, E3, DATE)] or [f]
                g = rng.choice(keyed)  # (a key that may be null, or a list, is rejected)
                options += [lambda: f"len(group_by({text}, by={g}))",
                            lambda: f"sum([len(x) for x in values(group_by(o in {text}: o.{g}))])"]
                num = [n for n, ft in rec.fields.items() if ft in (INT, FLOAT)]
                options += [lambda: f"count({text}, {f} != null)", lambda: f"count({text}, it.{f} == {e(STR, d)})"]
                if HAS_EACH:
                    options.append(lambda: f"count(o in {text}: o.{f} != null and o.{f} == o.{f})")
                if num:
                    options.append(lambda: f"round(sum({text}, {rng.choice(num)}))")
        if base == FLOAT:
            options += [lambda: f"total_hours({e(DATETIME, d)} - {e(DATETIME, d)})",
                        lambda: f"total_days({e(DATE, d)} - {e(DATE, d)})",
                        lambda: f"((({e(DATETIME, d)} - {e(DATETIME, d)}) * {e(INT, d)}) / hours(1))",
                        lambda: f"total_minutes(sum([minutes({e(INT, d)}), abs({e(DATE, d)} - {e(DATE, d)})]))"]
            options += [lambda: f"({e(FLOAT, d)} / {e(INT, d)})", lambda: f"float({e(INT, d)})",
                        lambda: f"round({e(FLOAT, d)}, 1)", lambda: f"({e(FLOAT, d)} + {e(INT, d)})"]
        if base == STR:
            if not self.in_fstring:
                options.append(lambda: self.fstring(f"{{{e(INT, d)}}}-{{{e(STR, d)}}}"))
            options += [lambda: self.slice(STR, d), lambda: f'format("{{:.2f}}|{{:>3}}", {e(FLOAT, d)}, {e(STR, d)})',
                        lambda: f'format_date({e(DATETIME, d)}, "%a %d %B %Y %H:%M")']
            options += [lambda: f"str({e(FLOAT, d)})",
                        lambda: f"lower({e(STR, d)})", lambda: f"({e(STR, d)} + {e(STR, d)})",
                        lambda: f'join({e(ListT(STR), d)}, ",")', lambda: f"{e(STR, d)}[0]", lambda: e(E3, d),
                        lambda: f"upper(strip({e(STR, d)}))", lambda: f'replace({e(STR, d)}, "k", "K")',
                        lambda: f'format("{{}}/{{}}", {e(INT, d)}, {e(OptionalT(STR), d)})']
        if base == BOOL:
            other = rng.choice(PRIMS)
            cmp = rng.choice(["<", "<=", ">", ">="])
            options += [lambda: f"({e(other, d)} {rng.choice(['==', '!='])} {e(other, d)})",
                        lambda: f"({e(INT, d)} {cmp} {e(INT, d)})",
                        lambda: f"({e(STR, d)} in {e(ListT(STR), d)})",
                        lambda: f"({e(STR, d)} not in {e(MapT(INT), d)})",
                        lambda: f"({e(BOOL, d)} and {e(BOOL, d)})", lambda: f"({e(BOOL, d)} or {e(BOOL, d)})",
                        lambda: f"(not {e(BOOL, d)})", lambda: f"any({e(ListT(BOOL), d)})",
                        lambda: f'startswith({e(STR, d)}, "k")', self.null_check, self.null_check, self.tag_check,
                        lambda: f'endswith({e(STR, d)}, "1")', lambda: f"contains({e(ListT(INT), d)}, {e(INT, d)})",
                        lambda: f"all({e(ListT(BOOL), d)})",
                        lambda: f"({e(DATETIME, d)} - {e(DATETIME, d)} > hours({e(INT, d)}))",
                        lambda: f"(days({e(INT, d)}) <= {e(DATE, d)} - {e(DATE, d)})",
                        lambda: f'all(c in "0123456789" for c in {e(STR, d)})',
                        lambda: f'any(int(c) > 1 for c in {e(STR, d)} if c in "0123456789")',
                        lambda: f"({e(STR, d)} in {e(SetT(STR), d)})",
                        lambda: f"({e(INT, d)} not in {e(MapT(STR, INT), d)})"]
        if base == DATE:
            options += [lambda: f"add_days({e(DATE, d)}, {e(INT, d)})", lambda: f"date({e(STR, d)})",
                        lambda: f"({e(DATE, d)} + days({e(INT, d)}))", lambda: f"({e(DATE, d)} - hours({e(FLOAT, d)}))"]
        if base == DATETIME:
            options += [lambda: f"({e(DATETIME, d)} - hours({e(FLOAT, d)}))",
                        lambda: f"(minutes({e(INT, d)}) + {e(DATETIME, d)})"]
            options += [lambda: f"add_days({e(DATETIME, d)}, {e(INT, d)})", lambda: f"datetime({e(STR, d)})",
                        lambda: f"max({e(DATETIME, d)}, {e(DATE, d)})"]
        if isinstance(base, EnumT):
            options += [lambda: _lit(base, rng)]
        if isinstance(base, ListT):
            item = base.item
            options += [lambda: f"[{', '.join(e(item, d) for _ in range(rng.randint(0, 2)))}]",
                        lambda: f"sorted({e(base, d)})", lambda: f"({e(base, d)} + {e(base, d)})",
                        lambda: f"reversed(unique({e(base, d)}))", lambda: f"values({{k0: {e(item, d)}}})",
                        lambda: self.slice(base, d)]
            if isinstance(item, RecordT):
                for text, rec in self.records():
                    if rec is item:
                        f = rng.choice(sorted(rec.fields))
                        options.append(lambda text=text, f=f: f"sorted({text}, by={f}, desc=true)")
            src = self.iterable()
            if src is not None:
                text, it = src
                options += [lambda: f"[{self.elem_of(item, 'v', it, d)} for v in {text} if {e(BOOL, d)}]",
                            lambda: f"[{self.elem_of(item, 'v', it, d)} for v in {text}]"]
                if is_assignable(it, item) and isinstance(unwrap_optional(it), RecordT):
                    f = rng.choice(sorted(unwrap_optional(it).fields))  # type: ignore[attr-defined]
                    options.append(lambda: f"({text} where {f} != null)")
                    if HAS_EACH:
                        options.append(lambda: f"({text} where o: o.{f} != null)")
            if item == STR:
                options += [lambda: f"keys({e(MapT(INT), d)})", lambda: f'split({e(STR, d)}, ",")',
                            lambda: f"list({e(STR, d)})", lambda: f'[c for c in {e(STR, d)} if c != "k"]']
            if item == INT:
                options += [lambda: f"keys({e(MapT(STR, INT), d)})", lambda: f"sorted({e(SetT(INT), d)})",
                            lambda: f"range({e(INT, d)})",
                            lambda: f"[x + 1 for x, y in zip({e(base, d)}, {e(base, d)})]"]
        if isinstance(base, SetT):
            item = base.item
            options += [lambda: f"set([{', '.join(e(item, d) for _ in range(rng.randint(0, 3)))}])",
                        lambda: f"set({e(ListT(item), d)})",
                        lambda: f"{rng.choice(['union', 'intersection', 'difference'])}({e(base, d)}, {e(base, d)})"]
        if isinstance(base, MapT):
            options += [lambda: "{}", lambda: f"{{k0: {e(base.value, d)}, k1: {e(base.value, d)}}}"]
            src = self.iterable()
            if src is not None:  # a map comprehension over a list, a set or a map's values
                text, it = src
                key_t = base.key

                def comp(text: str = text, it: Type = it) -> str:
                    key = self.elem_with(key_t, {"v": it}, d)
                    value = self.elem_with(base.value, {"v": it}, d)
                    cond = f" if {self.elem_with(BOOL, {'v': it}, d)}" if self.chance(0.5) else ""
                    return f"{{{key}: {value} for v in {text}{cond}}}"

                options.append(comp)
            maps = [(p, pt) for p, pt in self.places() if isinstance(pt, MapT)]
            if maps:  # over a map's pairs
                mp, mt = rng.choice(maps)
                assert isinstance(mt, MapT)
                pair = {"kk": mt.key, "vv": mt.value}
                options.append(lambda: f"{{{self.elem_with(base.key, pair, d)}: {self.elem_with(base.value, pair, d)} "
                                       f"for kk, vv in items({mp})}}")
            if isinstance(base.value, ListT) and isinstance(base.value.item, RecordT):
                for text, rec in self.records():
                    keyed = [f for f, ft in rec.fields.items() if ft == base.key or (base.key == STR and ft == E3)]
                    if rec is base.value.item and keyed:
                        f = rng.choice(keyed)
                        options.append(lambda text=text, f=f: f"group_by({text}, by={f})")
                        options.append(lambda text=text, f=f: f"group_by(o in {text}: o.{f})")
        if isinstance(base, VariantT):
            case = rng.choice(sorted(base.cases))
            options.append(lambda: f'{{{base.tag}: "{case}", ' + ", ".join(
                f"{f}: {e(ft, d)}" for f, ft in base.cases[case].fields.items() if f != base.tag and self.chance(0.95))
                + "}")
        elif isinstance(base, RecordT):
            options.append(lambda: "{" + ", ".join(
                f"{f}: {e(ft, d)}" for f, ft in base.fields.items() if self.chance(0.95)) + "}")
        for fname, ptypes, rt in self.functions:
            if is_assignable(rt, t):
                options.append(lambda fname=fname, ptypes=ptypes: f"{fname}({', '.join(e(p, d) for p in ptypes)})")
        options.append(lambda: f"({e(t, d)} if {e(BOOL, d)} else {e(t, d)})")
        guards = [p for p, pt in self.places() if isinstance(pt, OptionalT) and is_assignable(pt.inner, t)]
        if guards:
            p = rng.choice(guards)
            options.append(lambda: f"({p} if {p} != null else {e(t, d)})")
        return str(rng.choice(options)())

    def elem_with(self, want: Type, names: dict[str, Type], d: int) -> str:
        saved = dict(self.names)
        self.names.update(names)
        try:
            return self.expr(want, d)
        finally:
            self.names = saved

    def elem_of(self, want: Type, var: str, item: Type, d: int) -> str:
        saved = dict(self.names)
        self.names[var] = item
        try:
            return self.expr(want, d)
        finally:
            self.names = saved

    def records(self) -> list[tuple[str, RecordT]]:
        """Places holding a list or map of records, with the record type."""
        out = []
        for p, pt in self.places():
            item = pt.item if isinstance(pt, ListT) else pt.value if isinstance(pt, MapT) else None
            if isinstance(item, RecordT):
                out.append((p, item))
        return out

    def iterable(self) -> tuple[str, Type] | None:
        found = [(p, pt) for p, pt in self.places() if isinstance(pt, (ListT, MapT, SetT))]
        if not found:
            return None
        text, t = self.rng.choice(found)
        return text, t.item if isinstance(t, (ListT, SetT)) else t.value  # type: ignore[union-attr]

    def null_check(self) -> str:
        found = [p for p, pt in self.places() if isinstance(pt, OptionalT)]
        if not found:
            return "true"
        p = self.rng.choice(found)
        return self.rng.choice([f"({p} != null)", f"({p} is not null)", f"({p} == null)", f"({p} is null)"])

    def tag_check(self) -> str:
        found = [(p, pt) for p, pt in self.places() if isinstance(pt, VariantT)]
        if not found:
            return "false"
        p, pt = self.rng.choice(found)
        assert isinstance(pt, VariantT)
        return f'({p}.{pt.tag} {self.rng.choice(["==", "!="])} "{self.rng.choice(sorted(pt.cases))}")'

    # statements
    def block(self, n: int, depth: int) -> list[str]:
        return [self.stmt(depth) for _ in range(n)]

    def stmt(self, depth: int) -> str:
        rng = self.rng
        kind = rng.choice(["let", "let", "assign", "assign", "assign", "aug", "if", "if", "for", "call", "delete",
                           "fail", "guard", "while", *(["exit"] * 2 * (self.loops > 0))])
        if depth <= 0 and kind in ("if", "for", "guard", "while"):
            kind = "assign"
        if kind == "exit":  # leave the loop, or its pass, when a condition holds (or always)
            word = rng.choice(["break", "continue"])
            return f"if ({self.expr(BOOL)}) {{ {word} }}" if self.chance(0.7) else word
        optional = [(p, pt) for p, pt in self.places() if isinstance(pt, OptionalT) and p not in self.nonnull]
        if kind == "while" and optional and self.chance(0.3):  # until a place is set: then it is known set
            p, pt = rng.choice(optional)
            self.loops += 1
            try:
                text = f"while {p} == null {{\n{self.body(depth)}\n{p} = {self.expr(unwrap_optional(pt))}\n}}"
            finally:
                self.loops -= 1
            self.nonnull.add(p)
            return text
        if kind == "while":  # bounded by a counter, and by the step budget in any case
            counter = f"w{len([n for n in self.names if n.startswith('w')])}"
            self.names[counter] = INT
            head = f"let {counter} = 0\nwhile {counter} < {rng.choice([0, 1, 3])} and {self.expr(BOOL)} {{"
            self.loops += 1
            try:
                return f"{head}\n{counter} += 1\n{self.body(depth)}\n}}"
            finally:
                self.loops -= 1
        if kind == "let":
            name = f"l{len([n for n in self.names if n.startswith('l')])}"
            t = rng.choice([*PRIMS, OptionalT(rng.choice(PRIMS)), ListT(INT), rng.choice([*self.names.values()])])
            declared = (self.chance(0.5) or isinstance(t, (OptionalT, ListT))) and "enum" not in t.render()
            text = f"let {name}: {t.render()} = {self.expr(t)}" if declared else f"let {name} = {self.expr(t)}"
            self.names[name] = t
            return text
        if kind == "assign":
            p, pt = rng.choice(self.places())
            return f"{p} = {self.expr(pt)}"
        if kind == "aug":
            found = [(p, pt) for p, pt in self.places() if unwrap_optional(pt) in (INT, FLOAT, STR)
                     or isinstance(pt, ListT)]
            if not found:
                return "counter += 1"
            p, pt = rng.choice(found)
            return f"{p} {rng.choice(['+=', '-='])} {self.expr(unwrap_optional(pt))}"
        if kind == "if":
            cond = self.expr(BOOL)
            out = f"if ({cond}) {{\n{self.body(depth)}\n}}"
            if self.chance(0.4):
                out += f" elif ({self.expr(BOOL)}) {{\n{self.body(depth)}\n}}"
            if self.chance(0.5):
                out += f" else {{\n{self.body(depth)}\n}}"
            return out
        variants = [(p, pt) for p, pt in self.places() if isinstance(pt, VariantT)]
        if kind == "guard" and variants and self.chance(0.4):  # narrowing by the tag: act on one case's fields
            p, pt = rng.choice(variants)
            assert isinstance(pt, VariantT)
            case = rng.choice(sorted(pt.cases))
            saved = dict(self.cases)
            self.cases[p] = case
            try:
                return f'if {p}.{pt.tag} == "{case}" {{\n{self.body(depth)}\n}}'
            finally:
                self.cases = saved
        if kind == "guard":  # narrowing: act on an optional place once it is known to be set
            found = [p for p, pt in self.places() if isinstance(pt, OptionalT)]
            if not found:
                return "counter += 1"
            p = rng.choice(found)
            if self.chance(0.5):
                self.nonnull.add(p)
                try:
                    return f"if {p} != null {{\n{self.body(depth)}\n}}"
                finally:
                    self.nonnull.discard(p)
            text = f'if {p} == null {{ fail "unset" }}'
            self.nonnull.add(p)
            return text
        if kind == "for":
            src = self.iterable()
            if src is None:
                return "counter += 1"
            text, item = src
            var = f"v{depth}"
            saved = dict(self.names)
            self.names[var] = item
            self.loops += 1
            try:
                return f"for {var} in {text} {{\n{self.body(depth)}\n}}"
            finally:
                self.names = saved
                self.loops -= 1
        sets = [(p, pt) for p, pt in self.places() if isinstance(pt, SetT)]
        if kind == "call" and sets and self.chance(0.4):
            p, pt = rng.choice(sets)
            assert isinstance(pt, SetT)
            return f"{rng.choice(['add', 'discard'])}({p}, {self.expr(pt.item)})"
        if kind == "call":
            found = [(p, pt) for p, pt in self.places() if isinstance(pt, ListT)]
            if not found:
                return "counter -= 1"
            p, pt = rng.choice(found)
            assert isinstance(pt, ListT)
            fn = rng.choice(["append", "append", "extend", "remove"])
            arg = self.expr(pt if fn == "extend" else pt.item)
            return f"{fn}({p}, {arg})"
        if kind == "delete":
            found = [(p, pt) for p, pt in self.places() if isinstance(pt, MapT)]
            if not found:
                return "counter += 2"
            p, pt = rng.choice(found)
            assert isinstance(pt, MapT)
            key = rng.choice(INT_KEYS) if pt.key == INT else f'"{rng.choice(KEYS)}"'
            return f"delete {p}[{key}]"
        self.in_fstring = True
        try:
            return f"if ({self.expr(BOOL)}) {{ fail f'stop {{{self.expr(INT)}}}' }}"
        finally:
            self.in_fstring = False

    def body(self, depth: int) -> str:
        saved = dict(self.names)
        try:
            return "\n".join(self.block(1 if self.chance(0.7) else 2, depth - 1))
        finally:
            self.names = saved


# -------------------------------------------------------------------------------------------------------- the test


def _nodes(node: Any) -> None:
    if isinstance(node, tuple):
        for x in node:
            _nodes(x)
        return
    if type(node) in (*ast.EXPR_TYPES, *ast.STMT_TYPES, ast.Program):
        SEEN.add(type(node))
        for name in node.__dataclass_fields__:
            _nodes(getattr(node, name))


def _statements(body: tuple[Any, ...]) -> list[Any]:
    out = list(body)
    for x in body:
        if isinstance(x, ast.If):
            for _, b in x.branches:
                out += _statements(b)
            out += _statements(x.orelse or ())
        elif isinstance(x, ast.For):
            out += _statements(x.body)
    return out


def checkable(t: Type) -> Type:
    """The type a value is checked against: a record literal's type as the record it is (field by field)."""
    if isinstance(t, RecordLitT):
        return RecordT("literal", {k: checkable(ft) for k, ft in t.fields})
    if isinstance(t, OptionalT):
        return OptionalT(checkable(t.inner))
    if isinstance(t, ListT):
        return ListT(checkable(t.item))
    if isinstance(t, MapT):
        return MapT(checkable(t.value), t.key)
    return t


def library_scope(state_t: RecordT, named: dict[str, Type], library: Library | None) -> Scope:
    """The names a domain's expressions see, as ``check.scopes.state_scope`` defines them: constants, then the
    state's fields and ``state``."""
    scope = Scope(strict=True, types=named, library=library)
    for name, t in (library.constant_types.items() if library is not None else ()):
        scope.define_constant(name, t)
    for name, t in state_t.fields.items():
        scope.define(name, t)
    scope.define("state", state_t)
    return scope


def make_library(rng: random.Random, state_t: RecordT, named: dict[str, Type]) -> Library:
    """Constants, and a function whose body the checker accepts (else none): what a domain may declare."""
    library = Library()
    kinds: list[Type] = [INT, STR, ListT(INT), MapT(INT), *named.values(), MapT(rng.choice(list(named.values())))]
    for i in range(rng.randint(1, 2)):
        t = rng.choice(kinds)
        library.constants[f"C{i}"] = make_value(t, rng)
        library.constant_types[f"C{i}"] = t
    library.freeze()
    params = {f"a{i}": rng.choice([*PRIMS, ListT(INT), *named.values()]) for i in range(rng.randint(1, 2))}
    returns = rng.choice([*PRIMS, ListT(INT), OptionalT(STR), *named.values()])
    gen = Gen(rng, {**state_t.fields, **library.constant_types, **params})
    gen.functions = [("f0", list(params.values()), returns)]  # it may call itself
    statements = rng.random() < 0.4  # a statement body: locals, ifs and loops, then return
    text = "\n".join([*gen.block(rng.randint(1, 2), 1), f"return {gen.expr(returns, 2)}"]) if statements \
        else gen.expr(returns, 2)
    try:
        body: Any = parse_program(text) if statements else parse_expr(text)
    except ExprSyntaxError as exc:
        raise AssertionError(f"the generator wrote a syntax error: {exc}\n{text}") from None
    _nodes(body)
    library.functions["f0"] = f = FunctionDef("f0", params, body, returns, True)
    scope = library_scope(state_t, named, library)
    for name, t in params.items():
        scope.define(name, t)
    if statements:
        rejected = bool(statement_body_problems(f, scope))
    else:
        rejected = bool(check_expr(body, scope)[1] or check_stored(body, scope, returns, "the value"))
    if rejected:
        del library.functions["f0"]
    else:
        COUNTS["functions"] += 1
    return library


def call_directly(library: Library, state: dict[str, Any], rng: random.Random, seed: int) -> None:
    """An accepted function, called on random arguments: a value of its declared type or a documented error, and
    nothing changed (it is pure)."""
    from aqwen_spec.expr import EvalError, evaluate
    from aqwen_spec.expr.evaluator import state_env

    f = library.functions["f0"]
    args = {f"x_{p}": make_value(t, rng) for p, t in f.params.items()}
    before, constants = copy_state(state), copy_state(library.constants)
    where = f"\nseed {seed}\n{f.signature()} = {f.body}\nargs: {args}\nstate: {before}\nconstants: {constants}"
    try:
        value = evaluate(parse_expr(f"f0({', '.join(args)})"), state_env(state, args, library=library))
        wrong = check_value(value, checkable(f.returns))
        assert not wrong, f"f0 gave {value!r}, not a {f.returns.render()}: {wrong}{where}"
        COUNTS["function_ok"] += 1
    except EvalError as exc:
        assert DOCUMENTED.search(exc.message), f"undocumented: {exc.message}{where}"
    assert state == before, f"a function changed the state{where}"
    assert library.constants == constants, f"a function changed a constant{where}"


def one_example(seed: int) -> None:
    rng = random.Random(seed)
    state_t, named = make_schema(rng)
    params: dict[str, Type] = {}
    for name, t in (("k", STR), ("q", INT), ("opt", OptionalT(STR)), ("flagp", BOOL), ("picks", SetT(INT))):
        if rng.random() < 0.5:
            params[name] = t
    library = make_library(rng, state_t, named) if rng.random() < 0.4 else None
    constants = library.constant_types if library is not None else {}
    gen = Gen(rng, {**state_t.fields, **constants, **params,
                    **({"state": state_t} if rng.random() < 0.3 else {})})
    if library is not None:
        gen.functions = [(n, list(f.params.values()), f.returns) for n, f in library.functions.items()]
    COUNTS["examples"] += 1

    scope = library_scope(state_t, named, library)
    scope.state_fields = set(state_t.fields)  # effects may write them by name (counter += 1)
    for name, t in params.items():
        scope.define(name, t)
    bindings = []
    for i in range(rng.choice([0, 0, 1, 2])):  # a tool's let: bindings, before the preconditions
        wanted = rng.choice([*PRIMS, OptionalT(rng.choice(PRIMS)), ListT(INT), *named.values()])
        text = gen.expr(wanted)
        try:
            bexpr = parse_expr(text)
        except ExprSyntaxError as exc:
            raise AssertionError(f"the generator wrote a syntax error: {exc}\n{text}") from None
        btype, problems = check_expr(bexpr, scope)
        if problems:
            return
        define_binding(scope, f"b{i}", bexpr, btype)  # as the tool checker does
        gen.names[f"b{i}"] = wanted  # what the generator meant (the checker's type may be a literal's)
        bindings.append((f"b{i}", bexpr))
    requires_text = [gen.expr(BOOL) for _ in range(rng.randint(0, 2))]
    program_text = "\n".join(gen.block(rng.randint(1, 3), 2))
    returns_type = rng.choice([*PRIMS, ListT(INT), OptionalT(STR), *named.values(), *state_t.fields.values()])
    if gen.functions and rng.random() < 0.5:
        returns_type = gen.functions[0][2]
    returns_text = gen.expr(returns_type)
    try:
        requires = [parse_expr(t) for t in requires_text]
        program = parse_program(program_text)
        returns = parse_expr(returns_text)
    except ExprSyntaxError as exc:
        raise AssertionError(f"the generator wrote a syntax error: {exc}\n{requires_text}\n{program_text}\n"
                             f"{returns_text}") from None
    if len(SEEN) < len(ast.EXPR_TYPES) + len(ast.STMT_TYPES) + 1:
        for node in (*requires, program, returns, *(b for _, b in bindings)):
            _nodes(node)
    for when in requires:
        if check_expr(when, scope)[1]:
            return
        scope = narrowed(scope, when)
    problems, after = check_program_scope(program, scope)
    if problems:
        return
    rtype, problems = check_expr(returns, after)
    if problems:
        return
    COUNTS["accepted"] += 1
    COUNTS["bindings"] += bool(bindings)
    text = program_text + returns_text
    COUNTS["sets"] += any(f in text for f in ("add(", "discard(", "set(", "union(", "intersection(", "difference("))
    COUNTS["int_keys"] += bool(re.search(r"(slots|bins)\[", text))
    COUNTS["map_comps"] += bool(re.search(r"\{[^{}]*\bfor (v|kk, vv) in ", text))
    COUNTS["group_by"] += "group_by(" in text
    COUNTS["state_by_name"] += any(isinstance(x, (ast.Assign, ast.AugAssign)) and isinstance(x.target, ast.Name)
                                   and x.target.id in state_t.fields for x in _statements(program.body))

    tool = ResolvedTool(
        "t", "d", "", "write", {n: ParamIR(n, t, True, None, "") for n, t in params.items()},
        [PreconditionIR(w, "refused", Origin("x", Pos(1, 1))) for w in requires], program, returns, rtype,
        "declarative", None, None, Origin("x", Pos(1, 1)), bindings=tuple(bindings), library=library,
    )
    for _ in range(2):
        state = make_value(state_t, rng)
        assert not check_value(state, state_t), f"the test's own state generator: {check_value(state, state_t)}"
        if library is not None and "f0" in library.functions:
            call_directly(library, state, rng, seed)
        before = copy_state(state)
        constants_before = copy_state(library.constants) if library is not None else None
        args = {n: make_value(t, rng) for n, t in params.items()}
        if "picks" in args:  # as the agent sends it: any order
            args["picks"] = list(reversed(args["picks"]))
        reference_state, reference_args = copy_state(state), copy_state(args)
        journal: list[Any] = []
        outcome = ToolRunner({"t": tool}, state, journal).call("t", args)
        COUNTS["called"] += 1
        where = f"\nseed {seed}\nlet: {[b for b, _ in bindings]}\nrequires: {requires_text}\n" \
                f"effects:\n{program_text}\nreturns: {returns_text}\nargs: {args}\nstate: {before}"
        same_as_closures(tool, outcome, state, journal, reference_state, reference_args, before, where)
        if library is not None:
            where += f"\nconstants: {library.constants}\nfunctions: " + "; ".join(
                f"{f.signature()} = {f.body}" for f in library.functions.values())
            assert library.constants == constants_before, f"a call changed a constant{where}"
        if outcome.ok:
            COUNTS["ok"] += 1
            shown = checkable(rtype)  # the model sees JSON: an int-keyed map's keys as text
            wrong = check_value(from_json(outcome.value, shown), shown)
            assert not wrong, f"returns gave {outcome.value!r}, not a {rtype.render()}: {wrong}{where}"
        else:
            COUNTS["failed"] += 1
            if outcome.error_kind == "spec_error":
                assert outcome.defect is not None
                assert DOCUMENTED.search(outcome.defect.message), f"undocumented: {outcome.error}{where}"
                COUNTS["documented"] += 1
            else:
                assert outcome.error_kind in ("precondition", "effect"), f"{outcome.error}{where}"
            assert state == before, f"a failed call changed the state{where}"
        wrong = check_value(state, state_t)
        assert not wrong, f"the state no longer fits its schema: {wrong[:3]}{where}\nafter: {state}"


def same_as_closures(tool: ResolvedTool, outcome: ToolOutcome, state: dict[str, Any], journal: list[Any],
                     reference_state: dict[str, Any], args: dict[str, Any], before: dict[str, Any], where: str) -> None:
    """The tool's generated step function and the closure evaluator agree: the outcome (value, text, error and its
    kind, the defect), the state after it, and the state after rolling back the journal the call left."""
    COUNTS["generated"] += step_of(tool, _KIT) is not None
    runner = ToolRunner({"t": tool}, reference_state, [])
    runner.generated = False
    expected = runner.call("t", args)
    got = (outcome.ok, outcome.error, outcome.error_kind, outcome.precondition, outcome.render(),
           outcome.defect.describe() if outcome.defect else None, outcome.defect.pos if outcome.defect else None)
    want = (expected.ok, expected.error, expected.error_kind, expected.precondition, expected.render(),
            expected.defect.describe() if expected.defect else None, expected.defect.pos if expected.defect else None)
    assert got == want, f"generated code and closures disagree:\n{got}\n{want}{where}"
    if outcome.ok:
        assert outcome.value == expected.value, f"values differ: {outcome.value!r} {expected.value!r}{where}"
    assert state == reference_state, f"states differ after the call{where}"
    assert journal == runner.journal, f"journals differ{where}"
    after = copy_state(state)
    rollback(journal)
    assert state == before, f"rolling back the generated call's journal did not restore the state{where}"
    state.clear()
    state.update(after)


@PROFILE
@given(st.integers(min_value=0, max_value=2**40))
def _check_one(seed: int) -> None:
    one_example(seed)


def test_what_the_checker_accepts_runs_clean() -> None:
    _check_one()
    assert COUNTS["examples"] >= EXAMPLES
    assert COUNTS["accepted"] >= EXAMPLES // 5, COUNTS  # enough accepted programs to mean something
    assert COUNTS["ok"] >= EXAMPLES // 10, COUNTS
    assert all(COUNTS[k] >= EXAMPLES // 50 for k in ("state_by_name", "bindings", "sets", "int_keys")), COUNTS
    assert all(COUNTS[k] >= EXAMPLES // 200 for k in ("map_comps", "group_by")), str(COUNTS)
    assert COUNTS["functions"] >= EXAMPLES // 10, COUNTS  # domain functions whose bodies the checker accepted
    assert COUNTS["generated"] >= COUNTS["called"] * 3 // 4, COUNTS  # most tools ran as generated code
    every = {*ast.EXPR_TYPES, *ast.STMT_TYPES, ast.Program}
    assert every == SEEN, f"never generated: {sorted(c.__name__ for c in every - SEEN)}"
