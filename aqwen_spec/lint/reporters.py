"""Reporters print collected diagnostics; they never check anything themselves."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from aqwen_spec.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from aqwen_spec.source import SourceFile

_RED, _YELLOW, _CYAN, _BOLD, _DIM, _RESET = "\033[31m", "\033[33m", "\033[36m", "\033[1m", "\033[2m", "\033[0m"


def _expand_tabs_col(line: str, col: int) -> int:
    return len(line[: col - 1].expandtabs(4)) + 1


def format_text(diag: Diagnostic, source: SourceFile | None, color: bool = False) -> str:
    """``path:line:col: error[AQxxx] message``, the source line with a caret, and a hint."""

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    level = diag.severity.value
    level_text = paint(_BOLD + (_RED if diag.severity is Severity.ERROR else _YELLOW), f"{level}[{diag.code}]")
    out = [f"{paint(_BOLD, diag.location())}: {level_text} {diag.message}"]
    line = source.line(diag.pos.line) if source else None
    if line is not None and line.strip():
        number = str(diag.pos.line)
        gutter = " " * len(number)
        shown = line.expandtabs(4)
        if len(shown) > 200:
            shown = shown[:200] + " ..."
        caret_col = min(_expand_tabs_col(line, diag.pos.col), len(shown) + 1)
        out.append(paint(_DIM, f" {number} | ") + shown)
        out.append(paint(_DIM, f" {gutter} | ") + " " * (caret_col - 1) + paint(_CYAN, "^"))
    if diag.hint:
        out.append(f"   = hint: {diag.hint}")
    return "\n".join(out)


def report_text(
    diags: Sequence[Diagnostic], sources: Mapping[str, SourceFile], out: TextIO, color: bool, n_files: int
) -> None:
    for diag in diags:
        out.write(format_text(diag, sources.get(diag.path), color) + "\n")
    errors = sum(d.severity is Severity.ERROR for d in diags)
    warnings = len(diags) - errors
    summary = f"{n_files} file{'s' * (n_files != 1)} checked: {errors} error{'s' * (errors != 1)}, "
    summary += f"{warnings} warning{'s' * (warnings != 1)}"
    out.write(summary + "\n")


def report_json(diags: Sequence[Diagnostic], out: TextIO, n_files: int) -> None:
    errors = sum(d.severity is Severity.ERROR for d in diags)
    payload = {
        "files_checked": n_files,
        "errors": errors,
        "warnings": len(diags) - errors,
        "diagnostics": [d.to_json() for d in diags],
    }
    out.write(json.dumps(payload, indent=2) + "\n")


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def report_github(diags: Sequence[Diagnostic], out: TextIO) -> None:
    """GitHub Actions workflow commands: each diagnostic becomes an annotation on the pull request."""
    for d in diags:
        level = "error" if d.severity is Severity.ERROR else "warning"
        message = d.message + (f" ({d.hint})" if d.hint else "")
        props = f"file={_gh_escape(d.path, True)},line={d.pos.line},col={d.pos.col},title={d.code}"
        out.write(f"::{level} {props}::{_gh_escape(message)}\n")


def wants_color(stream: TextIO) -> bool:
    import os

    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty() and sys.platform != "win32"
