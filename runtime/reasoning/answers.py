"""A model's final answer, extracted and checked against the computed one: exact, numeric, set or list.

The answer is the last ``Answer: ...`` line (``Final answer:``, markdown bold and ``=`` accepted) or the last
``\\boxed{...}``, whichever comes later in the text; ``<think>`` blocks are ignored. Output without an answer, or
with one that cannot be read as what the check needs, is *malformed*: counted, never an exception.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["correct", "wrong", "no_answer", "unparseable"]

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_ANSWER_LINE = re.compile(
    r"^[ \t>#*_-]*(?:the[ \t]+)?(?:final[ \t]+)?answer[ \t*_]*(?:is[ \t*_]*[:=]?|[:=])[ \t*_]*"
    r"(?P<value>.*?)[ \t*_]*$",
    re.IGNORECASE | re.MULTILINE,
)
_BOXED = re.compile(r"\\boxed\s*\{")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FRACTION = re.compile(r"^([+-]?\d+)\s*/\s*(\d+)$")
_LATEX_FRACTION = re.compile(r"^([+-]?)\\[dt]?frac\s*\{?\s*(\d+)\s*\}?\s*\{?\s*(\d+)\s*\}?$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")
_SPECIAL = re.compile(r"<\|[^|>]*\|>")
_EXACT_TOLERANCE = 1e-9
"""How far a number in an exact, list or set answer may be from the computed one (float rounding only)."""


@dataclass(frozen=True)
class Checked:
    """The verdict on one model output."""

    status: Status
    extracted: str | None = None

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    @property
    def malformed(self) -> bool:
        return self.status in ("no_answer", "unparseable")


def _boxed(text: str) -> list[tuple[int, str]]:
    out = []
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append((m.start(), text[m.end():i - 1]))
    return out


def extract_answer(text: str) -> str | None:
    """The final answer written in ``text``, or None when there is none."""
    if not isinstance(text, str):
        return None
    text = _SPECIAL.sub("", _THINK.sub("", text))
    found = [(m.start(), m.group("value")) for m in _ANSWER_LINE.finditer(text)] + _boxed(text)
    found = [(pos, value.strip()) for pos, value in found if value.strip()]
    if not found:
        return None
    return max(found, key=lambda pv: pv[0])[1]


def _unwrap(text: str) -> str:
    s = text.strip()
    for _ in range(3):
        s = re.sub(r"^\\boxed\s*\{(.*)\}$", r"\1", s).strip()
        s = re.sub(r"^\\text\s*\{(.*)\}$", r"\1", s).strip()
        if len(s) >= 2 and s[0] == s[-1] and s[0] in "$`\"'":
            s = s[1:-1].strip()
    return s.rstrip(".").strip()


def _plain_number_text(text: str) -> str:
    """``text`` unwrapped, without thousands separators, a leading currency sign or a trailing percent sign."""
    s = _THOUSANDS.sub("", _unwrap(text)).replace("\u2212", "-")
    return re.sub(r"^[$\u20ac\u00a3]\s*", "", s).rstrip("%").strip()


def parse_number(text: str) -> float | None:
    """A number written in an answer: ``42``, ``-3.5``, ``1,250``, ``12.5%``, ``$40``, ``3/4``, ``84 hours``."""
    s = _plain_number_text(text)
    m = _LATEX_FRACTION.match(s)
    if m:
        s = f"{m.group(1)}{m.group(2)}/{m.group(3)}"
    m = _FRACTION.match(s)
    if m:
        return int(m.group(1)) / int(m.group(2)) if int(m.group(2)) else None
    if _NUMBER.fullmatch(s):
        value = float(s)
        return value if math.isfinite(value) else None
    numbers = _NUMBER.findall(s)
    if len(numbers) == 1:
        value = float(numbers[0])
        return value if math.isfinite(value) else None
    return None


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", _unwrap(text)).casefold()


def parse_items(text: str) -> list[str] | None:
    """The elements of a list or set answer: JSON (``[1, 2]``), or separated by commas, semicolons or 'and'."""
    s = _unwrap(text)
    if s.startswith("[") and s.endswith("]"):
        try:
            value = json.loads(s)
        except ValueError:
            value = None
        if isinstance(value, list):
            return [v if isinstance(v, str) else json.dumps(v) for v in value]
    s = s.strip("[]{}() ")
    if not s:
        return []
    parts = re.split(r"\s*[,;]\s*(?:and\s+)?|\s+and\s+", s)
    items = [p.strip().strip("\"'`") for p in parts]
    return [i for i in items if i] or None


def _same_item(given: str, expected: Any, tolerance: float) -> bool:
    if isinstance(expected, bool):
        return normalize(given) in (("true", "yes") if expected else ("false", "no"))
    if isinstance(expected, (int, float)):
        value = parse_number(given)
        return value is not None and abs(value - float(expected)) <= tolerance
    if isinstance(expected, str):
        return normalize(given) == normalize(expected)
    if expected is None:
        return normalize(given) in ("null", "none")
    try:
        return bool(json.loads(given) == expected)
    except ValueError:
        return False


def _same_list(items: list[str], expected: list[Any]) -> bool:
    return len(items) == len(expected) and all(_same_item(g, e, _EXACT_TOLERANCE)
                                               for g, e in zip(items, expected, strict=True))


def _strict_number(text: str) -> float | None:
    """A number only when the whole item is one (so ids like 'M-101' stay text)."""
    s = _plain_number_text(text)
    return parse_number(s) if _NUMBER.fullmatch(s) or _FRACTION.match(s) else None


def _key(item: str) -> str:
    value = _strict_number(item)
    return repr(value) if value is not None else normalize(item)


def check_answer(text: str, expected: Any, check: str = "exact", tolerance: float | None = None) -> Checked:
    """Compare the answer in ``text`` with ``expected`` by ``check`` (exact, numeric, set, list)."""
    given = extract_answer(text)
    if given is None:
        return Checked("no_answer")
    if check == "numeric":
        value = parse_number(given)
        if value is None or not isinstance(expected, (int, float)):
            return Checked("unparseable", given)
        ok = abs(value - float(expected)) <= (tolerance if tolerance is not None else 1e-6) + 1e-12
        return Checked("correct" if ok else "wrong", given)
    if check in ("list", "set"):
        items = parse_items(given)
        if items is None or not isinstance(expected, list):
            return Checked("unparseable", given)
        if check == "list":
            ok = _same_list(items, expected)
        else:
            want = sorted(_key(e if isinstance(e, str) else json.dumps(e)) for e in expected)
            ok = sorted(_key(g) for g in items) == want
        return Checked("correct" if ok else "wrong", given)
    if isinstance(expected, list):
        items = parse_items(given)
        if items is None:
            return Checked("unparseable", given)
        return Checked("correct" if _same_list(items, expected) else "wrong", given)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and parse_number(given) is None:
        return Checked("unparseable", given)
    return Checked("correct" if _same_item(given, expected, _EXACT_TOLERANCE) else "wrong", given)
