"""Checking what an episode fixes: a domain's or a workflow's ``clock:``, and whether a tool draws at random."""

from __future__ import annotations

import dataclasses
from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.documents.base import Clock
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.episode import DRAW_FUNCTIONS
from aqwen_spec.types import DATE, DATETIME
from aqwen_spec.values import check_value


def checked_clock(checker: DocChecker, clock: Clock | None) -> dict[str, str] | None:
    """The clock as ``{today, now}`` (only the keys given); a value that is not an ISO date or datetime is AQ321."""
    if clock is None:
        return None
    out: dict[str, str] = {}
    for key, t, example in (("today", DATE, "2024-05-31"), ("now", DATETIME, '"2024-05-31T09:00:00"')):
        value = getattr(clock, key)
        if value is None:
            continue
        if check_value(value, t):
            checker.report("AQ321", f"clock {key} '{value}' is not an ISO {t.render()}", ("clock", key),
                           f"write it as {example}")
            continue
        out[key] = value
    if clock.today is None and clock.now is None:
        checker.report("AQ321", "a clock sets today, now or both", ("clock",), "clock: {today: 2024-05-31}")
    if not out:
        return None
    if "today" in out and "now" in out and not out["now"].startswith(out["today"]):
        checker.report("AQ321", f"clock today {out['today']} is not the date of now {out['now']}", ("clock", "now"))
    return out


def draws(node: Any) -> bool:
    """Whether an expression or program (IR) calls a function that draws from the episode's generator."""
    if isinstance(node, A.Call) and node.func in DRAW_FUNCTIONS:
        return True
    if isinstance(node, (list, tuple)):
        return any(draws(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return any(draws(getattr(node, f.name)) for f in dataclasses.fields(node))
    return False
