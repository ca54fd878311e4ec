"""The type system of specs: state schemas, tool parameters and expression types share it.

A type is written in YAML either as a string (``str``, ``int?``, ``list[Machine]``, ``map[WorkOrder]``) or as a
mapping (``{enum: [low, high]}``, ``{list: Machine}``, ``{map: int}``, ``{optional: date}``, ``{variant: ...}``).
Named record and variant types are declared once in a domain's ``types:`` and referred to by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PRIMITIVES = ("str", "int", "float", "bool", "date", "datetime", "duration")


class Type:
    """Base of all types. Subclasses are small immutable dataclasses, except named types (see RecordT)."""

    def render(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True, eq=True)
class Prim(Type):
    """A primitive: str, int, float, bool, date, datetime; ``any`` (unknown, checks nothing) and ``null``."""

    name: str

    def render(self) -> str:
        return self.name


@dataclass(frozen=True, eq=True)
class EnumT(Type):
    """A string restricted to fixed values."""

    values: tuple[str, ...]

    def render(self) -> str:
        return "enum[" + ", ".join(self.values) + "]"


@dataclass(frozen=True, eq=True)
class ListT(Type):
    item: Type

    def render(self) -> str:
        return f"list[{self.item.render()}]"


@dataclass(frozen=True, eq=True)
class MapT(Type):
    """A map from keys to values (JSON objects keyed by id, e.g. ``work_orders``). Keys are ``str``, or ``int``
    for ``map[int, T]``: such a map is a JSON object with integer-like keys (``{"1": ...}``) in a state file or a
    bundle, and has int keys while tools run (``m[3]``)."""

    value: Type
    key: Type = Prim("str")  # or Prim("int"); the STR and INT constants are defined below

    def render(self) -> str:
        if self.key == INT:
            return f"map[int, {self.value.render()}]"
        return f"map[{self.value.render()}]"


@dataclass(frozen=True, eq=True)
class SetT(Type):
    """A set of scalars (str, int, float, bool, date, datetime or an enum), stored as a JSON list kept sorted,
    without repeats: one set has one form, so equal sets are equal lists and iterate in the same order."""

    item: Type

    def render(self) -> str:
        return f"set[{self.item.render()}]"


@dataclass(frozen=True, eq=True)
class TupleT(Type):
    """A list of fixed length with a type per position: the ``[key, value]`` pairs of ``items(m)``. Expressions
    make them; specs do not declare them."""

    items: tuple[Type, ...]

    def render(self) -> str:
        return "tuple[" + ", ".join(t.render() for t in self.items) + "]"


@dataclass(frozen=True, eq=True)
class OptionalT(Type):
    inner: Type

    def render(self) -> str:
        return f"{self.inner.render()}?"


@dataclass(eq=False)
class RecordT(Type):
    """A named record with typed fields. Compared by identity: names are unique in a domain."""

    name: str
    fields: dict[str, Type] = field(default_factory=dict)
    defaults: dict[str, object] = field(default_factory=dict)

    def render(self) -> str:
        return self.name


@dataclass(eq=False)
class VariantT(Type):
    """A tagged union of records: the ``tag`` field of a value names its case.

    Example: a payment method that is either ``gift_card`` (with a balance) or ``credit_card`` (with a brand).
    """

    name: str
    tag: str
    cases: dict[str, RecordT] = field(default_factory=dict)

    def render(self) -> str:
        return self.name

    def field_type(self, name: str) -> Type | None:
        """The type of a field present in some case; ``None`` if no case has it.

        Fields that only some cases have are optional when read through the variant.
        """
        if name == self.tag:
            return EnumT(tuple(self.cases))
        found = [case.fields[name] for case in self.cases.values() if name in case.fields]
        if not found:
            return None
        first = found[0]
        if len(found) < len(self.cases):
            return first if isinstance(first, OptionalT) else OptionalT(first)
        return first


@dataclass(eq=False)
class CaseT(RecordT):
    """One case of a variant, as the checker sees a value whose tag has been checked (``p.method == "card"``):
    the tag, with that one value, and the case's fields. A value of it fits the variant."""

    variant: VariantT | None = None
    case: str = ""

    def render(self) -> str:
        return f"{self.name} ({self.variant.tag if self.variant else 'tag'} {self.case!r})"


def case_type(variant: VariantT, case: str) -> CaseT:
    """The narrowed type of ``variant`` values of case ``case``."""
    record = variant.cases[case]
    fields: dict[str, Type] = {variant.tag: EnumT((case,)), **record.fields}
    return CaseT(variant.name, fields, dict(record.defaults), variant, case)


STR = Prim("str")
INT = Prim("int")
FLOAT = Prim("float")
BOOL = Prim("bool")
DATE = Prim("date")
DATETIME = Prim("datetime")
DURATION = Prim("duration")
"""A length of time; its values are a number of seconds (an int when whole, else a float), in state and JSON."""
ANY = Prim("any")
NULL = Prim("null")
NOTHING = Prim("nothing")
"""The element type of an empty list literal: no value has it, so it fits anywhere."""

_BY_NAME: dict[str, Type] = {t.render(): t for t in (STR, INT, FLOAT, BOOL, DATE, DATETIME, DURATION, ANY)}


class TypeSyntaxError(ValueError):
    """A type written wrongly; ``hint`` suggests a fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


_GENERIC = re.compile(r"^(list|map|optional|set)\[(.*)\]$")
_KEYED = re.compile(r"^(int|str)\s*,\s*(.*)$")


def parse_type_text(text: str, named: dict[str, Type]) -> Type:
    """Parse the string form of a type (``int``, ``str?``, ``list[Machine]``, ``map[list[str]]``)."""
    text = text.strip()
    if not text:
        raise TypeSyntaxError("empty type")
    if text.endswith("?"):
        return OptionalT(parse_type_text(text[:-1], named))
    m = _GENERIC.match(text)
    if m:
        kind, arg = m.group(1), m.group(2)
        keyed = _KEYED.match(arg) if kind == "map" else None
        if keyed is None and "," in arg and _top_level_comma(arg):
            raise TypeSyntaxError(f"'{text}': only a map has two types, and its keys are str or int",
                                  hint="write map[T] (str keys) or map[int, T]")
        inner = parse_type_text(keyed.group(2) if keyed else arg, named)
        if kind == "set":
            return set_type(inner)
        if kind == "map":
            return MapT(inner, INT) if keyed and keyed.group(1) == "int" else MapT(inner)
        return ListT(inner) if kind == "list" else OptionalT(inner)
    if text in _BY_NAME:
        return _BY_NAME[text]
    if text in named:
        return named[text]
    raise TypeSyntaxError(f"unknown type '{text}'", hint=_did_you_mean(text, [*_BY_NAME, *named]))


def _top_level_comma(text: str) -> bool:
    depth = 0
    for c in text:
        depth += c == "["
        depth -= c == "]"
        if c == "," and depth == 0:
            return True
    return False


SET_ITEMS = "str, int, float, bool, date, datetime or an enum"


def set_type(item: Type) -> SetT:
    """``set[item]``; raises :class:`TypeSyntaxError` unless the items are scalars that sort (see :class:`SetT`)."""
    if not is_set_item(item):
        raise TypeSyntaxError(f"a set holds {SET_ITEMS} values, not {item.render()}",
                              hint="use a list, or a map keyed by id, for other values")
    return SetT(item)


def is_set_item(t: Type) -> bool:
    """Whether values of ``t`` may be a set's items: scalars of one kind, never null, so that they sort."""
    return t in (STR, INT, FLOAT, BOOL, DATE, DATETIME) or isinstance(t, EnumT)


def _did_you_mean(word: str, options: list[str]) -> str | None:
    from aqwen_spec.diagnostics import did_you_mean

    return did_you_mean(word, options)


def unwrap_optional(t: Type) -> Type:
    return t.inner if isinstance(t, OptionalT) else t


def is_numeric(t: Type) -> bool:
    return t in (INT, FLOAT, ANY, NOTHING)


def is_stringlike(t: Type) -> bool:
    return t in (STR, ANY, NOTHING) or isinstance(t, EnumT)


def is_assignable(src: Type, dst: Type) -> bool:
    """Whether a value of type ``src`` may be stored where ``dst`` is expected."""
    if src in (ANY, dst, NOTHING) or dst == ANY or src is dst:
        return True
    if isinstance(src, CaseT) and src.variant is not None and is_assignable(src.variant, dst):
        return True
    if isinstance(dst, OptionalT):
        return src == NULL or is_assignable(unwrap_optional(src), dst.inner)
    if isinstance(src, OptionalT):
        return False
    if dst == FLOAT and src == INT:
        return True
    if dst == STR and isinstance(src, EnumT):
        return True
    if isinstance(dst, EnumT) and isinstance(src, EnumT):
        return set(src.values) <= set(dst.values)
    if isinstance(dst, EnumT) and src == STR:
        return True  # literal values are checked against the enum where they are known
    if isinstance(dst, ListT) and isinstance(src, ListT):
        return is_assignable(src.item, dst.item)
    if isinstance(dst, MapT) and isinstance(src, MapT):
        return (src.key == dst.key or src.value == NOTHING) and is_assignable(src.value, dst.value)  # {} fits both
    if isinstance(src, TupleT) and isinstance(dst, TupleT):
        return len(src.items) == len(dst.items) and all(
            is_assignable(a, b) for a, b in zip(src.items, dst.items, strict=True))
    if isinstance(src, TupleT) and isinstance(dst, ListT):
        return all(is_assignable(a, dst.item) for a in src.items)
    if isinstance(dst, SetT) and isinstance(src, SetT):
        return is_assignable(src.item, dst.item)
    if isinstance(dst, SetT) and isinstance(src, ListT):
        return src.item == NOTHING  # [] is the empty set; any other list must go through set(...)
    if isinstance(dst, VariantT) and isinstance(src, RecordT):
        return any(case is src for case in dst.cases.values())
    # a record literal (a map of any) fits a record or variant: its fields are checked where it is written
    return isinstance(dst, (RecordT, VariantT)) and isinstance(src, MapT) and src.value == ANY


def is_comparable(a: Type, b: Type) -> bool:
    """Whether ``a == b`` can ever be true (used to flag comparisons of a str with an int, and the like)."""
    a, b = unwrap_optional(a), unwrap_optional(b)
    if ANY in (a, b) or NULL in (a, b) or NOTHING in (a, b):
        return True
    if is_numeric(a) and is_numeric(b):
        return True
    if is_stringlike(a) and is_stringlike(b):
        return True
    if isinstance(a, (SetT, ListT)) and isinstance(b, (SetT, ListT)):  # a set is stored as a (sorted) list
        return is_comparable(a.item, b.item)
    return is_assignable(a, b) or is_assignable(b, a)


def json_schema(t: Type) -> dict[str, Any]:
    """The JSON Schema of a type, as tools export their parameters to the model."""
    if isinstance(t, Prim):
        return {
            "str": {"type": "string"},
            "int": {"type": "integer"},
            "float": {"type": "number"},
            "bool": {"type": "boolean"},
            "date": {"type": "string", "format": "date"},
            "datetime": {"type": "string", "format": "date-time"},
            "duration": {"type": "number", "description": "a duration in seconds"},
            "null": {"type": "null"},
        }.get(t.name, {})
    if isinstance(t, EnumT):
        return {"type": "string", "enum": list(t.values)}
    if isinstance(t, ListT):
        return {"type": "array", "items": json_schema(t.item)}
    if isinstance(t, SetT):
        return {"type": "array", "items": json_schema(t.item), "uniqueItems": True}
    if isinstance(t, TupleT):
        return {"type": "array", "prefixItems": [json_schema(x) for x in t.items], "items": False}
    if isinstance(t, MapT):
        if t.key == INT:
            return {"type": "object", "propertyNames": {"pattern": "^-?[0-9]+$"},
                    "additionalProperties": json_schema(t.value)}
        return {"type": "object", "additionalProperties": json_schema(t.value)}
    if isinstance(t, OptionalT):
        inner = json_schema(t.inner)
        if isinstance(inner.get("type"), str):
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if isinstance(t, RecordT):
        return {
            "type": "object",
            "properties": {k: json_schema(v) for k, v in t.fields.items()},
            "required": [k for k, v in t.fields.items() if not isinstance(v, OptionalT) and k not in t.defaults],
            "additionalProperties": False,
        }
    if isinstance(t, VariantT):
        return {"oneOf": [json_schema(case) for case in t.cases.values()]}
    raise TypeError(f"no JSON Schema for {t!r}")
