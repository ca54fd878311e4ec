"""Runtime values against declared types: conformance checks and coercion of CSV text.

Values are plain JSON data: dicts for records, variants and maps; ISO-8601 strings for dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from aqwen_spec.types import (
    ANY,
    BOOL,
    DATE,
    DATETIME,
    DURATION,
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
)

ValuePath = tuple[str | int, ...]


@dataclass(frozen=True)
class ValueProblem:
    path: ValuePath  # inside the value
    message: str


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
        return True
    except ValueError:
        return False


def _is_datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
        return True
    except ValueError:
        return False


def check_value(value: Any, t: Type, path: ValuePath = (), limit: int = 20) -> list[ValueProblem]:
    """Every way ``value`` fails to be a ``t`` (at most ``limit`` problems)."""
    problems: list[ValueProblem] = []
    _check(value, t, path, problems, limit)
    return problems


def _check(value: Any, t: Type, path: ValuePath, out: list[ValueProblem], limit: int) -> None:
    if len(out) >= limit or t == ANY:
        return
    if isinstance(t, OptionalT):
        if value is not None:
            _check(value, t.inner, path, out, limit)
        return
    if value is None:
        if t != NULL:
            out.append(ValueProblem(path, f"expected {t.render()}, found null"))
        return
    if t == STR:
        ok = isinstance(value, str)
    elif t == INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t in (FLOAT, DURATION):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif t == BOOL:
        ok = isinstance(value, bool)
    elif t == DATE:
        ok = isinstance(value, str) and _is_date(value)
    elif t == DATETIME:
        ok = isinstance(value, str) and _is_datetime(value)
    elif t == NULL:
        ok = value is None
    elif isinstance(t, EnumT):
        if isinstance(value, str) and value not in t.values:
            out.append(ValueProblem(path, f"'{value}' is not one of {', '.join(t.values)}"))
            return
        ok = isinstance(value, str)
    elif isinstance(t, ListT):
        if not isinstance(value, list):
            ok = False
        else:
            for i, item in enumerate(value):
                _check(item, t.item, (*path, i), out, limit)
            return
    elif isinstance(t, MapT):
        if not isinstance(value, dict):
            ok = False
        else:
            for k, item in value.items():
                _check(item, t.value, (*path, k), out, limit)
            return
    elif isinstance(t, RecordT):
        if not isinstance(value, dict):
            ok = False
        else:
            for name, ftype in t.fields.items():
                if name in value:
                    _check(value[name], ftype, (*path, name), out, limit)
                elif not isinstance(ftype, OptionalT) and name not in t.defaults:
                    out.append(ValueProblem(path, f"{t.name} is missing field '{name}'"))
            for name in value:
                if name not in t.fields:
                    out.append(ValueProblem((*path, name), f"{t.name} has no field '{name}'"))
            return
    elif isinstance(t, VariantT):
        if not isinstance(value, dict):
            ok = False
        else:
            case = value.get(t.tag)
            if case not in t.cases:
                out.append(ValueProblem(path, f"{t.name} needs '{t.tag}' set to one of {', '.join(t.cases)}"))
                return
            _check(value, t.cases[case], path, out, limit)
            return
    else:
        ok = True
    if not ok:
        out.append(ValueProblem(path, f"expected {t.render()}, found {type(value).__name__} {value!r:.40}"))


def with_defaults(value: dict[str, Any], t: RecordT) -> dict[str, Any]:
    """A record with its declared defaults (and null for optional fields) filled in."""
    out = dict(value)
    for name, ftype in t.fields.items():
        if name not in out:
            if name in t.defaults:
                out[name] = t.defaults[name]
            elif isinstance(ftype, OptionalT):
                out[name] = None
    return out


def coerce_text(text: str, t: Type) -> Any:
    """A CSV cell as a value of ``t`` (raises ValueError when it cannot be one)."""
    if isinstance(t, OptionalT):
        return None if text == "" else coerce_text(text, t.inner)
    if t == INT:
        return int(text)
    if t == FLOAT:
        return float(text)
    if t == DURATION:  # seconds
        seconds = float(text)
        return int(seconds) if seconds.is_integer() else seconds
    if t == BOOL:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        raise ValueError(f"'{text}' is not true or false")
    if isinstance(t, (ListT, MapT, RecordT, VariantT)):
        import json

        return json.loads(text)
    return text
