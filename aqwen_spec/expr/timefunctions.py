"""Durations and date arithmetic: ``days(3)``, ``total_hours(d)``, ``date + days(3)``, ``restored - started``.

A ``duration`` is a number of seconds (an int when whole, else a float with microseconds at most), in state and JSON
alike; dates and datetimes stay ISO-8601 strings. Arithmetic follows Python's ``datetime`` module: ``datetime -
datetime`` is a ``timedelta``, ``date + timedelta`` adds its whole days only (``timedelta.days``), so a port of a
Python tool computes the same values.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from typing import Any

from aqwen_spec.expr.formatting import strftime, strftime_problem
from aqwen_spec.expr.functions import ArgError, Builtin, FunctionError, _date, _datetime, _want
from aqwen_spec.types import ANY, DATE, DATETIME, DURATION, FLOAT, STR, OptionalT, Type, is_numeric, is_stringlike

__all__ = ["TIME_FUNCTIONS", "date_add", "date_sub", "strftime_problem"]

_US = _dt.timedelta(microseconds=1)


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "record"}.get(type(v), type(v).__name__)


def _number(x: Any, fn: str) -> int | float:
    if type(x) is not int and type(x) is not float:
        raise FunctionError(f"{fn}() needs a number, got {_kind(x)}")
    if not math.isfinite(x):
        raise FunctionError(f"{fn}() of a number that is not finite")
    return x


def to_delta(seconds: Any, fn: str = "duration") -> _dt.timedelta:
    """The ``timedelta`` a duration value stands for."""
    try:
        return _dt.timedelta(seconds=_number(seconds, fn))
    except OverflowError:
        raise FunctionError(f"{fn}(): duration out of range (at most 999999999 days)") from None


def from_delta(d: _dt.timedelta) -> int | float:
    """A ``timedelta`` as a duration value: whole seconds as an int, else a float."""
    us = d // _US
    return us // 1_000_000 if us % 1_000_000 == 0 else us / 1_000_000


def _builder(name: str, unit: str) -> Callable[[Any], int | float]:
    def build(n: Any) -> int | float:
        try:
            return from_delta(_dt.timedelta(**{unit: _number(n, name)}))
        except OverflowError:
            raise FunctionError(f"{name}(): duration out of range (at most 999999999 days)") from None

    build.__name__ = f"_{name}"
    return build


def _reader(name: str, unit_us: int) -> Callable[[Any], float]:
    def read(d: Any) -> float:
        return (to_delta(d, name) // _US) / unit_us  # Python's timedelta / timedelta(hours=1), correctly rounded

    read.__name__ = f"_{name}"
    return read


def _moment(text: Any, what: str) -> _dt.date:
    """A date (for a text like 2024-05-31) or a datetime (with a time) from its ISO text."""
    if not isinstance(text, str):
        raise FunctionError(f"{what} needs a date or datetime, got {_kind(text)}")
    try:
        return _dt.date.fromisoformat(text)  # any date form Python reads, as the state's values are checked
    except ValueError:
        pass
    try:
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        raise FunctionError(f"{text[:40]!r} is not an ISO-8601 date or datetime") from None


def _iso(d: _dt.date) -> str:
    return d.isoformat()


def date_add(moment: Any, seconds: Any, sign: int = 1) -> str:
    """``date + duration`` (whole days only, as Python's ``date + timedelta``) or ``datetime + duration``."""
    d = _moment(moment, "'+'" if sign > 0 else "'-'")
    delta = to_delta(seconds)
    try:
        if type(d) is _dt.date:  # Python's date + td adds td.days, date - td subtracts td.days
            return _iso(d + _dt.timedelta(days=delta.days * sign))
        return _iso(d + delta if sign > 0 else d - delta)
    except OverflowError:
        raise FunctionError("date out of range") from None


def date_sub(a: Any, b: Any) -> int | float:
    """``a - b`` of two dates or two datetimes, as a duration (a date counts as its midnight next to a datetime)."""
    x, y = _moment(a, "'-'"), _moment(b, "'-'")
    if type(x) is not type(y):
        x, y = _as_datetime(x), _as_datetime(y)
    try:
        return from_delta(x - y)
    except TypeError:
        raise FunctionError("cannot subtract a datetime with a time zone and one without") from None


def _as_datetime(d: _dt.date) -> _dt.datetime:
    return d if isinstance(d, _dt.datetime) else _dt.datetime.combine(d, _dt.time())


def _format_date(d: Any, fmt: Any) -> str:
    try:
        return strftime(d, fmt)
    except ValueError as e:
        raise FunctionError(f"format_date(): {e}") from None


def _try(convert: Callable[[Any], str]) -> Callable[[Any], str | None]:
    def attempt(s: Any) -> str | None:
        if not isinstance(s, str):
            return None
        try:
            return convert(s)
        except FunctionError:
            return None

    return attempt


# type rules


def _r_builder(a: list[Type], k: dict[str, Type]) -> Type:
    if a[0] == DURATION:
        raise ArgError("this builds a duration from a number; read a duration with total_days(d), total_hours(d), ...")
    _want(a[0], is_numeric, "a number")
    return DURATION


def _r_reader(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: t in (DURATION, ANY), "a duration")
    return FLOAT


def _r_format_date(a: list[Type], k: dict[str, Type]) -> Type:
    _want(a[0], lambda t: t in (DATE, DATETIME, ANY), "a date or datetime")
    _want(a[1], is_stringlike, "a strftime format (str)")
    return STR


def _r_try(result: Type) -> Callable[[list[Type], dict[str, Type]], Type]:
    def rule(a: list[Type], k: dict[str, Type]) -> Type:
        _want(a[0], is_stringlike, "a str")
        return OptionalT(result)

    return rule


_DAY_US = 86_400_000_000
TIME_FUNCTIONS: list[Builtin] = [
    Builtin("days", _builder("days", "days"), _r_builder, 1, 1, "days(n)"),
    Builtin("hours", _builder("hours", "hours"), _r_builder, 1, 1, "hours(n)"),
    Builtin("minutes", _builder("minutes", "minutes"), _r_builder, 1, 1, "minutes(n)"),
    Builtin("seconds", _builder("seconds", "seconds"), _r_builder, 1, 1, "seconds(n)"),
    Builtin("total_days", _reader("total_days", _DAY_US), _r_reader, 1, 1, "total_days(d)"),
    Builtin("total_hours", _reader("total_hours", 3_600_000_000), _r_reader, 1, 1, "total_hours(d)"),
    Builtin("total_minutes", _reader("total_minutes", 60_000_000), _r_reader, 1, 1, "total_minutes(d)"),
    Builtin("total_seconds", _reader("total_seconds", 1_000_000), _r_reader, 1, 1, "total_seconds(d)"),
    Builtin("format_date", _format_date, _r_format_date, 2, 2, "format_date(d, fmt)"),
    Builtin("try_date", _try(_date), _r_try(DATE), 1, 1, "try_date(s)"),
    Builtin("try_datetime", _try(_datetime), _r_try(DATETIME), 1, 1, "try_datetime(s)"),
]
