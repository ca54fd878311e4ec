"""Runtime values against declared types: conformance checks and coercion of CSV text.

Values are plain JSON data: dicts for records, variants and maps; ISO-8601 strings for dates.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
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
    SetT,
    TupleT,
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
                if t.key == INT and (type(k) is not int):
                    out.append(ValueProblem((*path, k), f"a map[int, ...] has int keys, not {k!r:.40}"))
                    continue
                _check(item, t.value, (*path, k), out, limit)
            return
    elif isinstance(t, TupleT):
        if not isinstance(value, list) or len(value) != len(t.items):
            ok = False
        else:
            for i, (item, it) in enumerate(zip(value, t.items, strict=True)):
                _check(item, it, (*path, i), out, limit)
            return
    elif isinstance(t, SetT):
        if not isinstance(value, list):
            ok = False
        else:
            for i, item in enumerate(value):
                _check(item, t.item, (*path, i), out, limit)
            if not out and not _strictly_sorted(value):
                out.append(ValueProblem(path, SET_ORDER))
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


SET_ORDER = "a set is a list kept sorted, without repeats"
"""The problem of a set value out of order: data as written may be, :func:`from_json` sorts it."""


def _strictly_sorted(items: list[Any]) -> bool:
    try:
        return all(a < b for a, b in itertools.pairwise(items))
    except TypeError:
        return False


def set_of(items: Any) -> list[Any]:
    """The stored form of a set of ``items``: sorted, without repeats (see :class:`aqwen_spec.types.SetT`)."""
    out: list[Any] = []
    for x in sorted(items):
        if not out or out[-1] != x:
            out.append(x)
    return out


_CONVERTS: dict[int, tuple[Type, bool]] = {}


def has_json_form(t: Type) -> bool:
    """Whether values of ``t`` read from JSON need :func:`from_json`: they hold a set or an int-keyed map."""
    hit = _CONVERTS.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    result = _has_json_form(t, set())
    if len(_CONVERTS) > 10_000:
        _CONVERTS.clear()
    _CONVERTS[id(t)] = (t, result)
    return result


def _has_json_form(t: Type, seen: set[int]) -> bool:
    if isinstance(t, SetT) or (isinstance(t, MapT) and t.key == INT):
        return True
    if isinstance(t, OptionalT):
        return _has_json_form(t.inner, seen)
    if isinstance(t, ListT):
        return _has_json_form(t.item, seen)
    if isinstance(t, MapT):
        return _has_json_form(t.value, seen)
    if isinstance(t, (RecordT, VariantT)):
        if id(t) in seen:
            return False
        seen.add(id(t))
        parts = t.fields.values() if isinstance(t, RecordT) else t.cases.values()
        return any(_has_json_form(x, seen) for x in parts)
    return False


_INT_TEXT = re.compile(r"^-?[0-9]+$")


def from_json(value: Any, t: Type, *, sort_sets: bool = True) -> Any:
    """``value`` as read from JSON (a state file, a bundle, a task, a call's arguments) in the form tools work on:
    an int-keyed map's keys (``"3"``) as ints, a set sorted without repeats. What does not fit ``t`` is left as it
    is, for :func:`check_value` to report. Returns ``value`` itself when nothing needed converting."""
    if not has_json_form(t):
        return value
    return _from_json(value, t, sort_sets)


def _from_json(value: Any, t: Type, sort_sets: bool = True) -> Any:
    if value is None:
        return None
    if isinstance(t, OptionalT):
        return _from_json(value, t.inner, sort_sets)
    if isinstance(t, SetT) and isinstance(value, list) and sort_sets:
        try:
            return set_of(value)
        except TypeError:
            return value
    if isinstance(t, MapT) and isinstance(value, dict):
        int_keys = t.key == INT
        convert = has_json_form(t.value)
        out = {}
        for k, v in value.items():
            if int_keys and isinstance(k, str) and _INT_TEXT.match(k):
                k = int(k)
            out[k] = _from_json(v, t.value, sort_sets) if convert else v
        return out
    if isinstance(t, ListT) and isinstance(value, list):
        return [_from_json(v, t.item, sort_sets) for v in value] if has_json_form(t.item) else value
    if isinstance(t, RecordT) and isinstance(value, dict):
        return {k: _from_json(v, t.fields[k], sort_sets) if k in t.fields and has_json_form(t.fields[k]) else v
                for k, v in value.items()}
    if isinstance(t, VariantT) and isinstance(value, dict) and value.get(t.tag) in t.cases:
        return _from_json(value, t.cases[value[t.tag]], sort_sets)
    return value


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
    if isinstance(t, (ListT, MapT, RecordT, VariantT, SetT)):
        import json

        return from_json(json.loads(text), t)
    return text
