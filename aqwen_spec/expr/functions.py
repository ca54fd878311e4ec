"""The builtin function library: for each function its implementation and its type rule.

Implementations take plain JSON-like values and raise :class:`FunctionError` (or ordinary Python errors,
which the evaluator turns into :class:`~aqwen_spec.expr.errors.EvalError`). Arguments listed in
``elem_args`` /
``elem_kwargs`` are expressions over the fields of each element of the first argument (``count(xs, status ==
"open")``, ``sorted(xs, by=price)``); they reach the implementation as one-argument callables.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import GeneratorType
from typing import Any

from aqwen_spec.expr.formatting import format_value
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
    SET_ITEMS,
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
    is_assignable,
    is_numeric,
    is_set_item,
    is_stringlike,
    unwrap_optional,
)

__all__ = [
    "FUNCTIONS",
    "MAX_SIZE",
    "ArgError",
    "Builtin",
    "FunctionError",
    "elem_type",
    "join_types",
    "to_str",
]

MAX_SIZE = 1_000_000
"""Longest string or list a builtin (or an operator) may build."""


class FunctionError(Exception):
    """A builtin was given values it cannot work with (empty list to ``min``, bad date, ...)."""


class ArgError(Exception):
    """Raised by a type rule: the arguments do not fit the function."""


TypeRule = Callable[[list[Type], dict[str, Type]], Type]


@dataclass(frozen=True)
class Builtin:
    """One builtin function."""

    name: str
    impl: Callable[..., Any]
    rule: TypeRule
    min_args: int
    max_args: int | None
    signature: str
    kwargs: tuple[str, ...] = ()
    elem_args: tuple[int, ...] = ()
    elem_kwargs: tuple[str, ...] = ()
    collection: bool = False
    """Whether a call costs one step per element of its first argument."""
    statement: bool = False
    """Whether it changes its first argument and so may only be used as an effect statement."""


# ---------------------------------------------------------------------------------------------- type helpers


def elem_type(t: Type) -> Type | None:
    """The type of the elements iterated from ``t`` (a map iterates its values, a str its characters); ``None`` if
    not iterable."""
    t = unwrap_optional(t)
    if isinstance(t, (ListT, SetT)):
        return t.item
    if t == STR or isinstance(t, EnumT):
        return STR
    if isinstance(t, TupleT):
        return join_types(list(t.items))
    if isinstance(t, MapT):
        return t.value
    if t == ANY:
        return ANY
    return None


def join_types(types: list[Type]) -> Type:
    """The narrowest type that holds values of all ``types`` (``any`` when they do not mix)."""
    non_null = [t for t in types if t not in (NULL, NOTHING)]
    nullable = NULL in types
    if not non_null:
        return NULL if nullable else NOTHING if types else ANY
    first = non_null[0]
    result: Type | None = first
    for t in non_null[1:]:
        if result is None:
            break
        a, b = unwrap_optional(t), unwrap_optional(result)
        if STR in (a, b) and (isinstance(a, EnumT) or isinstance(b, EnumT)):  # a str is not always an enum value
            result = OptionalT(STR) if OptionalT in (type(t), type(result)) else STR
            continue
        if is_assignable(t, result):
            continue
        if is_assignable(result, t):
            result = t
        elif is_numeric(t) and is_numeric(result):
            result = FLOAT
        elif is_stringlike(t) and is_stringlike(result):
            result = STR
        else:
            result = None
    if result is None:
        return ANY
    if nullable and not isinstance(result, OptionalT) and result != ANY:
        return OptionalT(result)
    return result


def _iterable(t: Type, what: str = "a list") -> Type:
    item = elem_type(t)
    if item is None:
        raise ArgError(f"expected {what}, got {t.render()}")
    return item


def _want(t: Type, ok: Callable[[Type], bool], what: str) -> None:
    if not ok(unwrap_optional(t)):
        raise ArgError(f"expected {what}, got {t.render()}")


def _is_str(t: Type) -> bool:
    return is_stringlike(t) or t in (DATE, DATETIME)


def _is_int(t: Type) -> bool:
    return t in (INT, ANY)


def _is_bool(t: Type) -> bool:
    return t in (BOOL, ANY)


def _is_date(t: Type) -> bool:
    return t in (DATE, DATETIME, STR, ANY)


def _is_sized(t: Type) -> bool:
    return isinstance(t, (ListT, MapT, SetT, TupleT)) or _is_str(t)


def _number_result(t: Type) -> Type:
    t = unwrap_optional(t)
    return INT if t == INT else FLOAT if t == FLOAT else ANY if t == ANY else FLOAT


# ------------------------------------------------------------------------------------------- value helpers


def to_str(v: Any) -> str:
    """How a value reads in f-strings, ``format`` and ``str``: ``true``, ``null``, JSON for containers."""
    if isinstance(v, str):
        return v
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "), default=str)


def _items(xs: Any) -> list[Any]:
    if isinstance(xs, list):
        return xs
    if isinstance(xs, dict):
        return list(xs.values())
    if isinstance(xs, (tuple, str)):
        return list(xs)
    raise FunctionError(f"expected a list, got {_kind(xs)}")


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, dict):
        return "record"
    return {int: "int", float: "float", str: "str", list: "list"}.get(type(v), type(v).__name__)


def _check_size(v: Any) -> Any:
    if isinstance(v, (str, list)) and len(v) > MAX_SIZE:
        from aqwen_spec.expr.errors import EvalLimitError

        raise EvalLimitError(f"result too large ({len(v)} elements or characters, at most {MAX_SIZE})")
    return v


# ------------------------------------------------------------------------------------------ implementations


def _len(x: Any) -> int:
    if isinstance(x, (str, list, dict)):
        return len(x)
    raise FunctionError(f"len() of {_kind(x)}")


def _count(xs: Any, pred: Callable[[Any], Any] | None = None) -> int:
    items = _items(xs)
    if pred is None:
        return len(items)
    return sum(1 for x in items if pred(x))


def _sum(xs: Any, by: Callable[[Any], Any] | None = None) -> Any:
    items = _items(xs)
    total: Any = 0
    for x in items:
        v = by(x) if by is not None else x
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise FunctionError(f"sum() of a non-number ({_kind(v)})")
        total += v
    return total


def _minmax(pick: Callable[..., Any], name: str) -> Callable[..., Any]:
    def impl(*args: Any) -> Any:
        items = _items(args[0]) if len(args) == 1 else list(args)
        if not items:
            raise FunctionError(f"{name}() of an empty list")
        return pick(items)

    return impl


def _any(xs: Any, pred: Callable[[Any], Any] | None = None) -> bool:
    items = xs if isinstance(xs, GeneratorType) else _items(xs)  # any(x for x in xs) stops where Python's does
    return any((pred(x) if pred is not None else x) for x in items)


def _all(xs: Any, pred: Callable[[Any], Any] | None = None) -> bool:
    items = xs if isinstance(xs, GeneratorType) else _items(xs)
    return all((pred(x) if pred is not None else x) for x in items)


def _abs(x: Any) -> Any:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise FunctionError(f"abs() of {_kind(x)}")
    return abs(x)


def _round(x: Any, ndigits: Any = None) -> Any:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise FunctionError(f"round() of {_kind(x)}")
    if ndigits is None:
        return round(x)
    return float(round(x, int(ndigits)))


def _sort_key(v: Any) -> Any:
    # Nulls sort first instead of failing; other mixed types still fail with a clear message.
    return (0, 0) if v is None else (1, v)


def _sorted(xs: Any, by: Callable[[Any], Any] | None = None, desc: Any = False) -> list[Any]:
    items = _items(xs)
    key = (lambda x: _sort_key(by(x))) if by is not None else _sort_key
    try:
        return sorted(items, key=key, reverse=bool(desc))
    except TypeError:
        raise FunctionError("sorted() of values that cannot be compared (mixed types?)") from None


def _reversed(xs: Any) -> list[Any]:
    return list(reversed(_items(xs)))


def _zip(*lists: Any) -> list[list[Any]]:
    return [list(t) for t in zip(*(_items(x) for x in lists), strict=False)]


def _first(xs: Any) -> Any:
    items = _items(xs)
    return items[0] if items else None


def _last(xs: Any) -> Any:
    items = _items(xs)
    return items[-1] if items else None


def _s(x: Any, fn: str) -> str:
    if not isinstance(x, str):
        raise FunctionError(f"{fn}() of {_kind(x)}, expected a str")
    return x


def format_fields(text: str) -> list[tuple[int, str | None]]:
    """Where each ``{}`` or ``{:spec}`` placeholder of a ``format`` text starts, and its spec (``None`` for
    ``{}``), in order."""
    out: list[tuple[int, str | None]] = []
    i = 0
    while i < len(text):
        if text.startswith(("{{", "}}"), i):
            i += 2
        elif text.startswith("{}", i):
            out.append((i, None))
            i += 2
        elif text.startswith("{:", i) and (end := text.find("}", i)) > 0 and "{" not in text[i + 1 : end]:
            out.append((i, text[i + 2 : end]))
            i = end + 1
        else:
            i += 1
    return out


def _format(fmt: Any, *args: Any) -> str:
    # Only '{}' and '{:spec}' placeholders (and '{{' '}}'): str.format would let specs reach object attributes.
    text = _s(fmt, "format")
    out: list[str] = []
    it = iter(args)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "{" and text.startswith("{{", i):
            out.append("{")
            i += 2
        elif c == "}" and text.startswith("}}", i):
            out.append("}")
            i += 2
        elif c == "{" and (text.startswith("{}", i) or text.startswith("{:", i)):
            end = text.find("}", i)
            spec = None if text.startswith("{}", i) else text[i + 2 : end]
            if spec is not None and (end < 0 or "{" in spec):
                out.append(c)  # not a placeholder: kept as written, as before
                i += 1
                continue
            try:
                value = next(it)
            except StopIteration:
                raise FunctionError("format() has more '{}' than arguments") from None
            if spec is None:
                out.append(to_str(value))
                i += 2
            else:
                try:
                    out.append(format_value(value, spec))
                except ValueError as e:
                    raise FunctionError(f"format(): {e}") from None
                i = end + 1
        else:
            out.append(c)
            i += 1
    if next(it, _MISSING) is not _MISSING:
        raise FunctionError("format() has more arguments than '{}'")
    return _check_size("".join(out))


_MISSING = object()


def _int(x: Any) -> int:
    if isinstance(x, bool):
        raise FunctionError("int() of a bool")
    try:
        if isinstance(x, str):
            return int(x.strip())
        if isinstance(x, float) and not math.isfinite(x):
            raise FunctionError("int() of a non-finite number")
        return int(x)
    except (TypeError, ValueError):
        raise FunctionError(f"int() of {to_str(x)[:40]!r}") from None


def _float(x: Any) -> float:
    if isinstance(x, bool):
        raise FunctionError("float() of a bool")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise FunctionError(f"float() of {to_str(x)[:40]!r}") from None


def _keys(m: Any) -> list[str]:
    if not isinstance(m, dict):
        raise FunctionError(f"keys() of {_kind(m)}")
    return list(m)


def _values(m: Any) -> list[Any]:
    if not isinstance(m, dict):
        raise FunctionError(f"values() of {_kind(m)}")
    return list(m.values())


def _unique(xs: Any) -> list[Any]:
    out: list[Any] = []
    seen: set[Any] = set()
    for x in _items(xs):
        if isinstance(x, (dict, list)):
            if x not in out:
                out.append(x)
        elif (type(x), x) not in seen:
            seen.add((type(x), x))
            out.append(x)
    return out


def _contains(container: Any, x: Any) -> bool:
    if isinstance(container, (str, list, dict)):
        if isinstance(container, str) and not isinstance(x, str):
            raise FunctionError("contains() of a str needs a str")
        return x in container
    raise FunctionError(f"contains() of {_kind(container)}")


def _startswith(s: Any, p: Any) -> bool:
    return _s(s, "startswith").startswith(_s(p, "startswith"))


def _endswith(s: Any, p: Any) -> bool:
    return _s(s, "endswith").endswith(_s(p, "endswith"))


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_date(s: Any, fn: str) -> _dt.datetime:
    if not isinstance(s, str):
        raise FunctionError(f"{fn}() needs an ISO date string, got {_kind(s)}")
    try:
        if _DATE_RE.match(s):
            return _dt.datetime.combine(_dt.date.fromisoformat(s), _dt.time())
        return _dt.datetime.fromisoformat(s)
    except ValueError:
        raise FunctionError(f"{fn}(): {s[:40]!r} is not an ISO-8601 date or datetime") from None


def _date(s: Any) -> str:
    if not isinstance(s, str) or not _DATE_RE.match(s):
        raise FunctionError(f"date(): {to_str(s)[:40]!r} is not a date like 2024-05-31")
    _parse_date(s, "date")
    return s


def _datetime(s: Any) -> str:
    _parse_date(s, "datetime")
    return s + "T00:00:00" if _DATE_RE.match(s) else s  # a datetime always shows its time


def _add_days(d: Any, n: Any) -> str:
    if isinstance(n, bool) or not isinstance(n, int):
        raise FunctionError("add_days() needs an int number of days")
    value = _parse_date(d, "add_days")
    try:
        moved = value + _dt.timedelta(days=n)
    except OverflowError:
        raise FunctionError("add_days(): date out of range") from None
    return moved.date().isoformat() if _DATE_RE.match(d) else moved.isoformat()


def _days_between(a: Any, b: Any) -> int:
    start, end = _parse_date(a, "days_between"), _parse_date(b, "days_between")
    if (start.tzinfo is None) != (end.tzinfo is None):
        raise FunctionError("days_between() of a datetime with a time zone and one without")
    return (end - start).days


def _join(xs: Any, sep: Any = "") -> str:
    parts = [to_str(x) for x in _items(xs)]
    return _check_size(_s(sep, "join").join(parts))


def _split(s: Any, sep: Any = None) -> list[str]:
    text = _s(s, "split")
    if sep is None:
        return text.split()
    if _s(sep, "split") == "":
        raise FunctionError("split() with an empty separator")
    return text.split(sep)


def _replace(s: Any, old: Any, new: Any) -> str:
    text, o, w = _s(s, "replace"), _s(old, "replace"), _s(new, "replace")
    if o and len(w) > len(o) and len(text) + text.count(o) * (len(w) - len(o)) > MAX_SIZE:
        _check_size(" " * (MAX_SIZE + 1))
    return _check_size(text.replace(o, w))


def _range(a: Any, b: Any = None) -> list[int]:
    for v in (a, b):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise FunctionError("range() needs ints")
    start, stop = (0, a) if b is None else (a, b)
    if stop - start > MAX_SIZE:
        _check_size(" " * (MAX_SIZE + 1))
    return list(range(start, stop))


def _get(m: Any, key: Any, default: Any = None) -> Any:
    if isinstance(m, dict):
        return m.get(key, default)
    if isinstance(m, list):
        if isinstance(key, bool) or not isinstance(key, int):
            raise FunctionError("get() of a list needs an int index")
        return m[key] if -len(m) <= key < len(m) else default
    raise FunctionError(f"get() of {_kind(m)}")


def _lower(s: Any) -> str:
    return _s(s, "lower").lower()


def _upper(s: Any) -> str:
    return _s(s, "upper").upper()


def _stripper(name: str) -> Callable[..., str]:
    def strip(s: Any, chars: Any = None) -> str:
        text = _s(s, name)
        return getattr(text, name)(None if chars is None else _s(chars, name))

    return strip


def _splitlines(s: Any) -> list[str]:
    return _s(s, "splitlines").splitlines()


def _byte_len(s: Any) -> int:
    return len(_s(s, "byte_len").encode("utf-8"))


def _mutating(name: str) -> Callable[..., Any]:
    def impl(*_args: Any) -> Any:
        raise FunctionError(f"{name}() changes state and may only be used as an effect statement")

    return impl


# ---------------------------------------------------------------------------------------------- type rules


def _r_len(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: _is_sized(t) or t == ANY, "a str, list or map")
    return INT


def _r_count(a: list[Type], k: dict[str, Type]) -> Type:
    _iterable(a[0])
    if len(a) > 1:
        _want(a[1], _is_bool, "a condition (bool)")
    return INT


def _r_sum(a: list[Type], k: dict[str, Type]) -> Type:
    item = _iterable(a[0])
    t = a[1] if len(a) > 1 else item
    if unwrap_optional(t) == DURATION:  # a total time: sum(r.end - r.start for r in outages)
        return DURATION
    _want(t, is_numeric, "numbers")
    return _number_result(t)


def _r_minmax(a: list[Type], k: dict[str, Type]) -> Type:
    items = [_iterable(a[0])] if len(a) == 1 else a
    result = join_types(items)
    if result == ANY and ANY not in items:
        raise ArgError(f"values of different types cannot be compared: {', '.join(t.render() for t in items)}")
    base = unwrap_optional(result)
    if not (is_numeric(base) or _is_str(base) or base == DURATION):
        raise ArgError(f"expected numbers, strings, dates or durations, got {result.render()}")
    return result


def _r_anyall(a: list[Type], k: dict[str, Type]) -> Type:
    item = _iterable(a[0])
    _want(a[1] if len(a) > 1 else item, _is_bool, "bools (or a condition)")
    return BOOL


def _r_abs(a: list[Type], k: dict[str, Type]) -> Type:
    if unwrap_optional(a[0]) == DURATION:
        return DURATION
    _want(a[0], is_numeric, "a number")
    return _number_result(a[0])


def _r_round(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], is_numeric, "a number")
    nd = a[1] if len(a) > 1 else k.get("ndigits")
    if nd is None:
        return INT
    _want(nd, _is_int, "an int number of digits")
    return FLOAT


def _r_sorted(a: list[Type], k: dict[str, Type]) -> Type:
    item = _iterable(a[0])
    if "desc" in k:
        _want(k["desc"], _is_bool, "desc=true or desc=false")
    return ListT(item)


def _r_list_same(a: list[Type], k: dict[str, Type]) -> Type:
    return ListT(_iterable(a[0]))


def _r_zip(a: list[Type], k: dict[str, Type]) -> Type:
    return ListT(ListT(join_types([_iterable(t) for t in a])))


def _r_first(a: list[Type], k: dict[str, Type]) -> Type:
    item = _iterable(a[0])
    return item if isinstance(item, OptionalT) or item == ANY else OptionalT(item)


def _r_str_to_str(a: list[Type], k: dict[str, Type]) -> Type:
    for t in a:
        _want(t, _is_str, "a str")
    return STR


def _r_byte_len(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], _is_str, "a str")
    return INT


def _r_format(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], _is_str, "a format string")
    return STR


def _r_str(a: list[Type], k: dict[str, Type]) -> Type:
    return STR


def _r_int(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: is_numeric(t) or _is_str(t), "a number or a str")
    return INT


def _r_float(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: is_numeric(t) or _is_str(t), "a number or a str")
    return FLOAT


def _map_value(t: Type) -> Type:
    t = unwrap_optional(t)
    if isinstance(t, MapT):
        return t.value
    if t == ANY or isinstance(t, (RecordT, VariantT)):
        return ANY
    raise ArgError(f"expected a map, got {t.render()}")


def _r_keys(a: list[Type], k: dict[str, Type]) -> Type:
    _map_value(a[0])
    return ListT(map_key(a[0]))


def map_key(t: Type) -> Type:
    """The key type of a map type (``str`` unless ``map[int, T]``)."""
    t = unwrap_optional(t)
    return t.key if isinstance(t, MapT) else STR


def _r_values(a: list[Type], k: dict[str, Type]) -> Type:
    return ListT(_map_value(a[0]))


def _r_contains(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: _is_sized(t) or t == ANY, "a str, list or map")
    if len(a) > 1 and unwrap_optional(a[0]) != ANY and _is_str(unwrap_optional(a[0])):
        _want(a[1], _is_str, "a str to look for in a str")
    return BOOL


def _r_str_pred(a: list[Type], k: dict[str, Type]) -> Type:
    for t in a:
        _want(t, _is_str, "a str")
    return BOOL


def _r_date(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], _is_date, "an ISO date string")
    return DATE


def _r_datetime(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], _is_date, "an ISO datetime string")
    return DATETIME


def _r_add_days(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], _is_date, "a date")
    _want(a[1], _is_int, "an int number of days")
    return DATETIME if unwrap_optional(a[0]) == DATETIME else DATE


def _r_days_between(a: list[Type], k: dict[str, Type]) -> Type:
    for t in a:
        _want(t, _is_date, "a date")
    return INT


def _r_join(a: list[Type], k: dict[str, Type]) -> Type:
    _iterable(a[0])
    if len(a) > 1:
        _want(a[1], _is_str, "a str separator")
    return STR


def _r_split(a: list[Type], k: dict[str, Type]) -> Type:
    for t in a:
        _want(t, _is_str, "a str")
    return ListT(STR)


def _r_range(a: list[Type], k: dict[str, Type]) -> Type:
    for t in a:
        _want(t, _is_int, "an int")
    return ListT(INT)


def _r_get(a: list[Type], k: dict[str, Type]) -> Type:
    base = unwrap_optional(a[0])
    if isinstance(base, ListT):
        _want(a[1], _is_int, "an int index")
        value = base.item
    else:
        value = _map_value(base)
        if map_key(base) == INT:
            _want(a[1], _is_int, "an int key")
        else:
            _want(a[1], _is_str, "a str key")
    if len(a) > 2:
        return join_types([value, a[2]])
    return value if isinstance(value, OptionalT) or value == ANY else OptionalT(value)


def _r_append(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: isinstance(t, ListT) or t == ANY, "a list to append to")
    return NULL


def _r_extend(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: isinstance(t, ListT) or t == ANY, "a list to extend")
    _iterable(a[1])
    return NULL


def _set_item(t: Type) -> Type:
    item = unwrap_optional(t)
    if not (is_set_item(item) or item in (ANY, NOTHING)) or isinstance(t, OptionalT):
        raise ArgError(f"a set holds {SET_ITEMS} values, not {t.render()}")
    return item


def _r_set(a: list[Type], k: dict[str, Type]) -> Type:
    return SetT(_set_item(_iterable(a[0])))


def _r_setop(a: list[Type], k: dict[str, Type]) -> Type:
    items = [_iterable(t) for t in a]
    joined = join_types(items)
    if joined == ANY and ANY not in items:
        raise ArgError(f"the sets hold different types: {', '.join(t.render() for t in items)}")
    return SetT(_set_item(joined))


def _r_difference(a: list[Type], k: dict[str, Type]) -> Type:
    _r_setop(a, k)
    return SetT(_set_item(_iterable(a[0])))


def _r_add(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: isinstance(t, SetT) or t == ANY, "a set")
    return NULL


def _r_items(a: list[Type], k: dict[str, Type]) -> Type:
    return ListT(TupleT((map_key(a[0]), _map_value(a[0]))))


def _items_of(m: Any) -> list[list[Any]]:
    if not isinstance(m, dict):
        raise FunctionError(f"items() of {_kind(m)}")
    return [[k, v] for k, v in m.items()]


def _r_group_by(a: list[Type], k: dict[str, Type]) -> Type:
    item = _iterable(a[0])
    given = [t for t in (a[1] if len(a) > 1 else None, k.get("by")) if t is not None]
    if len(given) != 1:
        raise ArgError("give the key once: group_by(xs, by=field) or group_by(x in xs: key)")
    key = given[0]
    if isinstance(key, OptionalT) or key == NULL:
        raise ArgError(f"the key may be null ({key.render()}), and a map key cannot be")
    if key == INT:
        return MapT(ListT(item), INT)
    if _is_str(key) or key in (ANY, NOTHING):
        return MapT(ListT(item))
    raise ArgError(f"a map's keys are str or int, not {key.render()}")


def _group_by(xs: Any, key: Callable[[Any], Any] | None = None, by: Callable[[Any], Any] | None = None) -> Any:
    fn = key or by
    if fn is None:
        raise FunctionError("group_by() needs a key")
    out: dict[Any, list[Any]] = {}
    for x in _items(xs):
        k = fn(x)
        if type(k) is not str and type(k) is not int:
            raise FunctionError(f"group_by(): a key must be a str or an int, got {_kind(k)}")
        group = out.get(k)
        if group is None:
            out[k] = [x]
        else:
            group.append(x)
    return out


def _set(xs: Any) -> list[Any]:
    from aqwen_spec.values import set_of

    try:
        return set_of(_items(xs))
    except TypeError:
        raise FunctionError("set() of values that cannot be compared (mixed types?)") from None


def _union(a: Any, b: Any) -> list[Any]:
    return _set(_items(a) + _items(b))


def _intersection(a: Any, b: Any) -> list[Any]:
    other = _set(b)
    return [x for x in _set(a) if _sorted_has(other, x)]


def _difference(a: Any, b: Any) -> list[Any]:
    other = _set(b)
    return [x for x in _set(a) if not _sorted_has(other, x)]


def _sorted_has(items: list[Any], x: Any) -> bool:
    import bisect

    i = bisect.bisect_left(items, x)
    return i < len(items) and items[i] == x


_F: list[Builtin] = [
    Builtin("len", _len, _r_len, 1, 1, "len(x)"),
    Builtin("count", _count, _r_count, 1, 2, "count(xs, condition?)", elem_args=(1,), collection=True),
    Builtin("sum", _sum, _r_sum, 1, 2, "sum(xs, value?)", elem_args=(1,), collection=True),
    Builtin("min", _minmax(min, "min"), _r_minmax, 1, None, "min(xs) or min(a, b, ...)", collection=True),
    Builtin("max", _minmax(max, "max"), _r_minmax, 1, None, "max(xs) or max(a, b, ...)", collection=True),
    Builtin("any", _any, _r_anyall, 1, 2, "any(xs, condition?)", elem_args=(1,), collection=True),
    Builtin("all", _all, _r_anyall, 1, 2, "all(xs, condition?)", elem_args=(1,), collection=True),
    Builtin("abs", _abs, _r_abs, 1, 1, "abs(x)"),
    Builtin("round", _round, _r_round, 1, 2, "round(x, ndigits?)", kwargs=("ndigits",)),
    Builtin(
        "sorted",
        _sorted,
        _r_sorted,
        1,
        1,
        "sorted(xs, by=field, desc=false)",
        kwargs=("by", "desc"),
        elem_kwargs=("by",),
        collection=True,
    ),
    Builtin("reversed", _reversed, _r_list_same, 1, 1, "reversed(xs)", collection=True),
    Builtin("unique", _unique, _r_list_same, 1, 1, "unique(xs)", collection=True),
    Builtin("zip", _zip, _r_zip, 1, None, "zip(xs, ys, ...)", collection=True),
    Builtin("first", _first, _r_first, 1, 1, "first(xs)"),
    Builtin("last", _last, _r_first, 1, 1, "last(xs)"),
    Builtin("lower", _lower, _r_str_to_str, 1, 1, "lower(s)"),
    Builtin("upper", _upper, _r_str_to_str, 1, 1, "upper(s)"),
    Builtin("strip", _stripper("strip"), _r_str_to_str, 1, 2, "strip(s, chars?)"),
    Builtin("lstrip", _stripper("lstrip"), _r_str_to_str, 1, 2, "lstrip(s, chars?)"),
    Builtin("rstrip", _stripper("rstrip"), _r_str_to_str, 1, 2, "rstrip(s, chars?)"),
    Builtin("splitlines", _splitlines, _r_split, 1, 1, "splitlines(s)"),
    Builtin("byte_len", _byte_len, _r_byte_len, 1, 1, "byte_len(s)"),
    Builtin("replace", _replace, _r_str_to_str, 3, 3, "replace(s, old, new)"),
    Builtin("format", _format, _r_format, 1, None, 'format("{} costs {:.2f}", a, b)'),
    Builtin("str", to_str, _r_str, 1, 1, "str(x)"),
    Builtin("int", _int, _r_int, 1, 1, "int(x)"),
    Builtin("float", _float, _r_float, 1, 1, "float(x)"),
    Builtin("keys", _keys, _r_keys, 1, 1, "keys(m)", collection=True),
    Builtin("values", _values, _r_values, 1, 1, "values(m)", collection=True),
    Builtin("contains", _contains, _r_contains, 2, 2, "contains(container, x)", collection=True),
    Builtin("startswith", _startswith, _r_str_pred, 2, 2, "startswith(s, prefix)"),
    Builtin("endswith", _endswith, _r_str_pred, 2, 2, "endswith(s, suffix)"),
    Builtin("date", _date, _r_date, 1, 1, "date(s)"),
    Builtin("datetime", _datetime, _r_datetime, 1, 1, "datetime(s)"),
    Builtin("add_days", _add_days, _r_add_days, 2, 2, "add_days(d, n)"),
    Builtin("days_between", _days_between, _r_days_between, 2, 2, "days_between(a, b)"),
    Builtin("join", _join, _r_join, 1, 2, "join(xs, sep?)", collection=True),
    Builtin("split", _split, _r_split, 1, 2, "split(s, sep?)"),
    Builtin("range", _range, _r_range, 1, 2, "range(n) or range(a, b)"),
    Builtin("get", _get, _r_get, 2, 3, "get(m, key, default?)"),
    Builtin("append", _mutating("append"), _r_append, 2, 2, "append(list, value)", statement=True),
    Builtin("extend", _mutating("extend"), _r_extend, 2, 2, "extend(list, values)", statement=True),
    Builtin("remove", _mutating("remove"), _r_append, 2, 2, "remove(list, value)", statement=True),
    Builtin("items", _items_of, _r_items, 1, 1, "items(m)", collection=True),
    Builtin(
        "group_by",
        _group_by,
        _r_group_by,
        1,
        2,
        "group_by(xs, by=field)",
        kwargs=("by",),
        elem_args=(1,),
        elem_kwargs=("by",),
        collection=True,
    ),
    Builtin("set", _set, _r_set, 1, 1, "set(xs)", collection=True),
    Builtin("union", _union, _r_setop, 2, 2, "union(a, b)", collection=True),
    Builtin("intersection", _intersection, _r_setop, 2, 2, "intersection(a, b)", collection=True),
    Builtin("difference", _difference, _r_difference, 2, 2, "difference(a, b)", collection=True),
    Builtin("add", _mutating("add"), _r_add, 2, 2, "add(set, value)", statement=True),
    Builtin("discard", _mutating("discard"), _r_add, 2, 2, "discard(set, value)", statement=True),
]

from aqwen_spec.expr.convertfunctions import CONVERT_FUNCTIONS  # noqa: E402  (built from this module's Builtin)
from aqwen_spec.expr.mathfunctions import MATH_FUNCTIONS  # noqa: E402
from aqwen_spec.expr.timefunctions import TIME_FUNCTIONS  # noqa: E402

FUNCTIONS: Mapping[str, Builtin] = {f.name: f for f in [*_F, *MATH_FUNCTIONS, *TIME_FUNCTIONS, *CONVERT_FUNCTIONS]}
"""Every builtin by name."""

# Silence "unused" for names kept for type rules used by other modules.
_ = (EnumT,)
