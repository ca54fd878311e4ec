"""Inline SVG line charts (no script, no external resources), and the card that holds one."""

from __future__ import annotations

import math
from collections.abc import Iterable

from runtime.report.markup import e
from runtime.report.values import general, pct

COLORS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2")

Series = tuple[str, list[tuple[float, float]]]


def _nice_step(span: float, target: int = 5) -> float:
    if not span > 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * magnitude:
            return mult * magnitude
    return 10 * magnitude


def _ticks(low: float, high: float, target: int = 5, integer: bool = False) -> list[float]:
    step = _nice_step(high - low, target)
    if integer:
        step = max(1.0, math.ceil(step))
    if not math.isfinite(high - low) or (high - low) / step > 50:
        return [low, high]
    start = math.floor(low / step + 1e-9) * step
    ticks = []
    value = start
    while value <= high + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def line_chart(series: list[Series], *, x_label: str, y_label: str, percent: bool = False,
               x_names: list[str] | None = None, unit_range: bool = False, marks: Iterable[tuple[float, str]] = (),
               width: int = 560, height: int = 250) -> str:
    """An inline SVG line chart; ``x_names`` labels integer x positions (stages, rounds) instead of numbers;
    ``marks`` are labelled vertical lines (where each flywheel round starts)."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return '<p class="muted">No data.</p>'
    left, right, top, bottom = 56, 18, 14, 44
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs)
    if x_names is not None:
        x_lo, x_hi = -0.5, len(x_names) - 0.5
    elif x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if unit_range and min(ys) >= 0 and max(ys) <= 1:
        y_lo, y_hi = 0.0, 1.0
    else:
        y_lo, y_hi = min(0.0, min(ys)), max(0.0, max(ys))
        if y_hi == y_lo:
            y_hi = y_lo + 1
        step = _nice_step(y_hi - y_lo)
        y_lo, y_hi = math.floor(y_lo / step + 1e-9) * step, math.ceil(y_hi / step - 1e-9) * step
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    def y_text(y: float) -> str:
        return f"{100 * y:.0f}%" if percent else general(y)

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{e(y_label)} by {e(x_label)}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for y in _ticks(y_lo, y_hi):
        if y_lo - 1e-9 <= y <= y_hi + 1e-9:
            out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>')
            out.append(f'<text class="tick" x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{e(y_text(y))}</text>')
    if x_names is not None:
        every = max(1, math.ceil(len(x_names) / 8))
        for i, name in enumerate(x_names):
            if i % every == 0:
                label = name if len(name) <= 14 else name[:13] + "…"
                out.append(f'<text class="tick" x="{sx(i):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                           f'{e(label)}</text>')
    else:
        for x in _ticks(x_lo, x_hi, 6, integer=all(x == int(x) for x in xs)):
            if x_lo - 1e-9 <= x <= x_hi + 1e-9:
                out.append(f'<text class="tick" x="{sx(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                           f'{e(general(x))}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    out.append(f'<text class="label" x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
               f'{e(x_label)}</text>')
    out.append(f'<text class="label" transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{e(y_label)}</text>')
    for x, label in marks:
        if x_lo <= x <= x_hi:
            out.append(f'<line class="mark" x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{top + plot_h}"/>')
            near_end = sx(x) + 6 * len(label) > width - right
            out.append(f'<text class="mark-label" x="{sx(x) + (-3 if near_end else 3):.1f}" y="{top + 10}" '
                       f'text-anchor="{"end" if near_end else "start"}">{e(label)}</text>')
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        if len(pts) > 1:
            out.append(f'<polyline class="line" points="{coords}" stroke="{color}"/>')
        if len(pts) <= 60:
            for x, y in pts:
                where = x_names[int(x)] if x_names is not None and 0 <= int(x) < len(x_names) else general(x)
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.2" fill="{color}"><title>'
                           f'{e(name)} at {e(where)}: {e(pct(y) if percent else general(y))}</title></circle>')
    out.append("</svg>")
    legend = "".join(f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>{e(name)}</span>'
                     for i, (name, _) in enumerate(series))
    return "".join(out) + f'<div class="legend">{legend}</div>'


def figure(title: str, body: str) -> str:
    return f'<figure class="card chart-card"><figcaption>{e(title)}</figcaption>{body}</figure>'
