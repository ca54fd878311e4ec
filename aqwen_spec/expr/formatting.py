"""Format specs (``{x:.2f}``, ``format("{:>8}", s)``) and ``strftime`` formats, with Python's own results.

A format spec is applied by Python's :func:`format` itself, so ``{x:.2f}``, ``{n:05d}``, ``{s:>10}``, ``{x:,}`` and
``{p:.1%}`` give exactly what Python gives. Dates and datetimes are ISO-8601 strings in the language; a spec on one
(``{d:%d %b %Y}``) is a ``strftime`` format, as Python's ``format(date, spec)`` does, in the C locale whatever the
process's locale is. Everything here raises :class:`ValueError` with a message fit for a spec's author.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

__all__ = ["format_value", "spec_problem", "strftime", "strftime_problem"]

MAX_WIDTH = 1_000_000
"""Largest width or precision a spec may ask for (the language's longest string)."""

_SPEC = re.compile(r"^(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[a-zA-Z%]?$", re.S)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# What a value of each kind is tried with when a spec is checked statically.
_SAMPLES: dict[str, tuple[Any, ...]] = {"int": (0,), "float": (0.0,), "str": ("",)}


def _bounded(spec: str) -> None:
    m = _SPEC.match(spec)
    if m is None:
        return  # Python reports it
    for part in ("width", "precision"):
        text = m.group(part)
        if text and (len(text) > 7 or int(text) > MAX_WIDTH):
            raise ValueError(f"the {part} in format spec '{spec}' is larger than {MAX_WIDTH:,}")


def spec_problem(spec: str, kind: str) -> str | None:
    """Why ``spec`` cannot format a value of ``kind`` (``int``, ``float``, ``str``, ``date``, ``any``), or ``None``.

    ``any`` accepts a spec that fits an int, a float or a str.
    """
    if kind in ("date", "datetime"):
        return strftime_problem(spec)
    try:
        _bounded(spec)
    except ValueError as e:
        return str(e)
    kinds = ("int", "float", "str") if kind == "any" else (kind,)
    first: str | None = None
    for k in kinds:
        try:
            for sample in _SAMPLES[k]:
                format(sample, spec)
            return None
        except ValueError as e:
            first = first or str(e)
    return first


def format_value(value: Any, spec: str) -> str:
    """``format(value, spec)`` as Python gives it; a date or datetime text takes a ``strftime`` format."""
    _bounded(spec)
    t = type(value)
    if t is int or t is float:
        try:
            return format(value, spec)
        except OverflowError:  # format code 'c' of an int that is no character
            raise ValueError(f"{value} is not a character code (0 to 1114111) for format code 'c'") from None
        except ValueError:
            if t is int:  # an int stored where a float is declared formats as the float it stands for
                return format(float(value), spec)
            raise
    if t is str:
        try:
            return format(value, spec)
        except ValueError:
            if "%" in spec and _parsed(value) is not None:
                return strftime(value, spec)
            raise
    raise ValueError(f"a format spec ('{spec}') needs a number, a str, a date or a datetime, not {_kind(value)}")


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "bool"
    names: dict[type, str] = {list: "list", dict: "record"}
    return names.get(type(v), type(v).__name__)


def _parsed(text: str) -> _dt.datetime | _dt.date | None:
    try:
        if _DATE_RE.match(text):
            return _dt.date.fromisoformat(text)
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        return None


# strftime, locale C: the names are fixed here; numeric directives come from Python's own strftime.
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_NUMERIC = frozenset("dmyYHIMSfzZjUWwGuV")
_NAMED = frozenset("aAbBpcxX")
DIRECTIVES = _NUMERIC | _NAMED | {"%"}
"""The ``strftime`` directives a format may use (those of Python's documentation that C89 and ISO 8601 define)."""


def strftime_problem(fmt: str) -> str | None:
    """Why ``fmt`` is not a ``strftime`` format the language runs, or ``None``."""
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            if i + 1 >= len(fmt):
                return "a strftime format cannot end with a lone '%' (write '%%' for a percent sign)"
            if fmt[i + 1] not in DIRECTIVES:
                known = " ".join("%" + d for d in sorted(DIRECTIVES))
                return f"unknown strftime directive '%{fmt[i + 1]}' (known: {known})"
            i += 2
        else:
            i += 1
    return None


def strftime(value: Any, fmt: Any) -> str:
    """A date or datetime text formatted as Python's ``strftime`` formats it in the C locale."""
    if not isinstance(fmt, str):
        raise ValueError(f"a strftime format must be a str, not {_kind(fmt)}")
    if not isinstance(value, str) or (d := _parsed(value)) is None:
        shown = repr(value[:40]) if isinstance(value, str) else _kind(value)
        raise ValueError(f"{shown} is not an ISO-8601 date or datetime")
    problem = strftime_problem(fmt)
    if problem is not None:
        raise ValueError(problem)
    if len(fmt) > MAX_WIDTH // 32:
        raise ValueError("strftime format too long")
    out: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        out.append(_directive(d, fmt[i + 1]))
        i += 2
    return "".join(out)


def _directive(d: _dt.date, code: str) -> str:
    if code == "%":
        return "%"
    if code in _NUMERIC:
        return d.strftime("%" + code)
    weekday, month = d.weekday(), d.month - 1
    hour = d.hour if isinstance(d, _dt.datetime) else 0
    if code == "a":
        return _DAYS[weekday][:3]
    if code == "A":
        return _DAYS[weekday]
    if code == "b":
        return _MONTHS[month][:3]
    if code == "B":
        return _MONTHS[month]
    if code == "p":
        return "AM" if hour < 12 else "PM"
    if code == "x":
        return d.strftime("%m/%d/%y")
    if code == "X":
        return d.strftime("%H:%M:%S")
    # "c": the C locale's date and time, "Tue Aug  6 21:30:00 1988"
    return f"{_DAYS[weekday][:3]} {_MONTHS[month][:3]} {d.day:2d} {d.strftime('%H:%M:%S')} {d.strftime('%Y')}"
