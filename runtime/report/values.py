"""Values read from a run folder, taken leniently (it is untrusted JSON) and written as numbers for the page."""

from __future__ import annotations

import math
from typing import Any


def as_num(value: Any) -> float | None:
    """A finite number (``True``/``False`` count as 1/0), else ``None``."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def as_obj(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value if it is a JSON array, else an empty list."""
    return value if isinstance(value, list) else []


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def dec(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def general(value: float) -> str:
    """Whole numbers without a point, others to 4 significant digits."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"
