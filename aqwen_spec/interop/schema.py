"""JSON Schema (and BFCL's dialect of it) to spec types.

Each mapping gives the type as it is written in YAML (``str``, ``list[int]``, ``{enum: [...]}``), the
:class:`~aqwen_spec.types.Type` it means (to check defaults with), and notes for the person completing the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aqwen_spec.types import (
    ANY,
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
    Type,
)
from aqwen_spec.values import check_value

TypeForm = str | dict[str, Any]

KEYWORDS = frozenset({"and", "break", "continue", "delete", "elif", "else", "fail", "false", "for", "if", "in", "let",
                      "not", "null", "or", "true", "where", "while"})
"""Words of the expression language: a parameter so named could not be used in an expression."""

_TYPE_NAMES = {
    "string": "str", "str": "str", "text": "str", "char": "str",
    "integer": "int", "int": "int", "long": "int",
    "number": "float", "float": "float", "double": "float",
    "boolean": "bool", "bool": "bool",
    "array": "list", "list": "list", "tuple": "list", "set": "list",
    "object": "object", "dict": "object", "map": "object", "hashmap": "object",
    "any": "any", "null": "null",
}
_PRIMS: dict[str, tuple[str, Type]] = {"str": ("str", STR), "int": ("int", INT), "float": ("float", FLOAT),
                                        "bool": ("bool", BOOL), "any": ("any", ANY)}
MAX_DEPTH = 8


def sanitize_name(raw: str, reserved: frozenset[str] = KEYWORDS) -> str:
    """An identifier (letters, digits, ``_``; at most 64 characters) made from ``raw``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw.strip())
    name = re.sub(r"__+", "_", name).strip("_") or "unnamed"
    if name[0].isdigit():
        name = f"n_{name}"
    if name in reserved:
        name = f"{name}_"
    return name[:64]


def pascal(name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9]+|_", name)
    return "".join(p[:1].upper() + p[1:] for p in parts if p) or "Record"


@dataclass
class Mapped:
    form: TypeForm
    type: Type
    notes: list[str] = field(default_factory=list)
    optional: bool = False
    """The schema allows null (``nullable``, a ``null`` type, ``anyOf`` with null): ``form``/``type`` include it."""


@dataclass
class RecordDecl:
    """A record type made from an object schema: what to write under the domain's ``types:``."""

    name: str
    fields: dict[str, Any]
    type: RecordT
    comments: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Mapper:
    """Maps schemas to types. With ``records``, objects with properties become named record types (declared in
    :attr:`records`); without, they are ``any`` and the record a person may declare is still collected."""

    records_as_types: bool = False
    records: dict[str, RecordDecl] = field(default_factory=dict)

    def map(self, schema: Any, hint: str, depth: int = 0) -> Mapped:
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return Mapped("any", ANY, [] if isinstance(schema, dict) or schema in (None, True) else
                          [f"schema {schema!r} is not an object"])
        if "$ref" in schema:
            return Mapped("any", ANY, [f"refers to {schema['$ref']}: resolve it by hand"])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return self._union(schema, schema[key], hint, depth)
        if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            return self.map({**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}, hint, depth)
        raw = schema.get("type")
        nullable = schema.get("nullable") is True
        if isinstance(raw, list):
            kinds = [str(t) for t in raw if t != "null"]
            nullable = nullable or len(kinds) < len(raw)
            if len(kinds) != 1:
                return self._optional(Mapped("any", ANY, [f"one of the types {', '.join(kinds)}"]), nullable)
            raw = kinds[0]
        kind = _TYPE_NAMES.get(str(raw).lower()) if raw is not None else None
        if kind is None and raw is not None:
            return self._optional(Mapped("any", ANY, [f"unknown type '{raw}'"]), nullable)
        if kind is None:
            kind = "object" if "properties" in schema else "list" if "items" in schema else \
                "str" if "enum" in schema and all(isinstance(v, str) for v in schema["enum"] if v is not None) \
                else "any"
        enum = schema.get("enum")
        if "const" in schema and enum is None:
            enum = [schema["const"]]
        if isinstance(enum, list) and enum:
            mapped = self._enum(kind, enum)
            if mapped is not None:
                return self._optional(mapped, nullable or None in enum)
        if kind == "str":
            fmt = schema.get("format")
            if fmt == "date":
                return self._optional(Mapped("date", DATE), nullable)
            if fmt == "date-time":
                return self._optional(Mapped("datetime", DATETIME), nullable)
            return self._optional(Mapped("str", STR), nullable)
        if kind in _PRIMS:
            form, t = _PRIMS[kind]
            return self._optional(Mapped(form, t), nullable)
        if kind == "null":
            return Mapped("any", ANY, ["always null"])
        if kind == "list":
            items = schema.get("items")
            if isinstance(items, list):
                return self._optional(Mapped("list[any]", ListT(ANY), ["a tuple: its items have different types"]),
                                      nullable)
            inner = self.map(items, f"{hint}Item", depth + 1) if isinstance(items, dict) else Mapped("any", ANY)
            return self._optional(Mapped(_wrap("list", inner.form), ListT(inner.type), inner.notes), nullable)
        return self._optional(self._object(schema, hint, depth), nullable)

    def _enum(self, kind: str, values: list[Any]) -> Mapped | None:
        present = [v for v in values if v is not None]
        if kind in ("str", "any") and present and all(isinstance(v, str) for v in present):
            unique = list(dict.fromkeys(present))
            return Mapped({"enum": unique}, EnumT(tuple(unique)))
        if kind in _PRIMS and present:
            form, t = _PRIMS[kind]
            listed = ", ".join(str(v) for v in present[:12])
            return Mapped(form, t, [f"one of {listed}: add a precondition to enforce it"])
        return None

    def _union(self, schema: dict[str, Any], options: list[Any], hint: str, depth: int) -> Mapped:
        rest = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        nullable = len(rest) < len(options) or schema.get("nullable") is True
        if len(rest) == 1:
            base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", "nullable")}
            inner = rest[0] if isinstance(rest[0], dict) else {}
            return self._optional(self.map({**base, **inner}, hint, depth + 1), nullable)
        return self._optional(Mapped("any", ANY, [f"one of {len(rest)} alternative schemas"]), nullable)

    @staticmethod
    def _optional(m: Mapped, nullable: bool | None) -> Mapped:
        if not nullable or m.optional or m.type == ANY:
            return m
        return Mapped(_wrap("optional", m.form), OptionalT(m.type), m.notes, optional=True)

    def _object(self, schema: dict[str, Any], hint: str, depth: int) -> Mapped:
        props = schema.get("properties")
        if isinstance(props, dict) and props:
            decl = self._record(props, schema.get("required"), hint, depth)
            if self.records_as_types:
                return Mapped(decl.name, decl.type)
            return Mapped("any", ANY, [f"an object: the record type {decl.name} (commented at the top) describes it; "
                                       "declare it in the domain's types: and use it here"])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            inner = self.map(extra, f"{hint}Value", depth + 1)
            return Mapped(_wrap("map", inner.form), MapT(inner.type), inner.notes)
        return Mapped("any", ANY, ["an object with no declared properties"])

    def _record(self, props: dict[str, Any], required: Any, hint: str, depth: int) -> RecordDecl:
        name = sanitize_name(pascal(hint), frozenset())[:60]
        base, n = name, 2
        while name in self.records:
            name, n = f"{base}{n}", n + 1
        record = RecordT(name)
        decl = RecordDecl(name, {}, record)
        self.records[name] = decl
        needed = set(required) if isinstance(required, list) else set()
        for raw, sub in props.items():
            fname = sanitize_name(str(raw))
            notes = [f"original name '{raw}'"] if fname != raw else []
            mapped = self.map(sub, f"{name}{pascal(fname)}", depth + 1)
            notes += mapped.notes
            form, ftype = mapped.form, mapped.type
            description = description_of(sub)
            default, has_default = default_of(sub, ftype, notes)
            if raw not in needed and not has_default and not isinstance(ftype, OptionalT) and ftype != ANY:
                form, ftype = _wrap("optional", form), OptionalT(ftype)
            spec: Any = form
            if description or has_default:
                spec = {"type": form}
                if description:
                    spec["description"] = description
                if has_default:
                    spec["default"] = default
                    record.defaults[fname] = default
            decl.fields[fname] = spec
            record.fields[fname] = ftype
            if notes:
                decl.comments[fname] = notes
        return decl


def _wrap(kind: str, inner: TypeForm) -> TypeForm:
    if isinstance(inner, str):
        if kind == "optional":
            return inner if inner.endswith("?") else f"{inner}?"
        return f"{kind}[{inner}]"
    return {kind: inner}


def description_of(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    text = schema.get("description") or schema.get("title") or ""
    return " ".join(str(text).split())


def default_of(schema: Any, t: Type, notes: list[str]) -> tuple[Any, bool]:
    """The schema's default when it fits the type; otherwise a note and no default."""
    if not isinstance(schema, dict) or "default" not in schema:
        return None, False
    value = schema["default"]
    if value is None:
        return None, False
    problems = check_value(value, t)
    if problems:
        notes.append(f"the source's default {value!r:.60} does not fit {t.render()} ({problems[0].message}); left out")
        return None, False
    return value, True

