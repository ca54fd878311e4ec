"""HTML escaping and the table cells the sections share: everything read from a run is escaped on the way out."""

from __future__ import annotations

from html import escape
from typing import Any

from runtime.report.values import dec, pct


def e(value: Any) -> str:
    """Escaped text (for element content and double-quoted attribute values)."""
    return escape(str(value), quote=True)


def number(value: float | None, percent: bool) -> str:
    """A rate as a percentage, anything else to 3 decimals."""
    return pct(value) if percent else dec(value)


def change(before: float, after: float, percent: bool) -> tuple[str, str]:
    """The class of the change from ``before`` to ``after`` (up, down, flat) and its text."""
    d = after - before
    cls = "up" if d > 1e-12 else "down" if d < -1e-12 else "flat"
    return cls, f"{100 * d:+.1f} pts" if percent else f"{d:+.3f}"


def bar_cell(value: float | None, percent: bool) -> str:
    """A number with a small bar for its share of 1."""
    if value is None:
        return '<td class="num">—</td>'
    width = max(0.0, min(1.0, value)) * 100
    return (f'<td class="num"><span class="track"><span style="width:{width:.1f}%"></span></span>'
            f"<span>{number(value, percent)}</span></td>")


def delta_cell(before: float | None, after: float | None, percent: bool) -> str:
    """The change from ``before`` to ``after``, coloured by its sign."""
    if before is None or after is None:
        return '<td class="num">—</td>'
    cls, text = change(before, after, percent)
    return f'<td class="num delta {cls}">{text}</td>'
