"""Jinja2 templates in a sandbox: checked at lint time (syntax, names used), rendered at run time.

Templates never reach Python internals (ImmutableSandboxedEnvironment) and undefined names are errors, not blanks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from aqwen_spec.diagnostics import Pos


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    return env


@dataclass(frozen=True)
class TemplateProblem:
    code: str  # AQ308 syntax, AQ309 unknown name
    message: str
    pos: Pos  # relative to the template text
    hint: str | None = None


# names every template may use without declaring them (Jinja's own globals)
_JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "loop"})


def check_template(text: str, known: set[str] | frozenset[str]) -> list[TemplateProblem]:
    """Syntax errors and names the template uses that are not in ``known``."""
    env = environment()
    try:
        ast = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return [TemplateProblem("AQ308", f"template syntax error: {exc.message}", Pos(exc.lineno or 1, 1))]
    problems = []
    for name in sorted(meta.find_undeclared_variables(ast) - set(known) - _JINJA_GLOBALS):
        from aqwen_spec.diagnostics import did_you_mean

        line, col = _find_name(text, name)
        hint = did_you_mean(name, known) or ("available: " + ", ".join(sorted(known)) if known else None)
        problems.append(TemplateProblem("AQ309", f"template uses unknown name '{name}'", Pos(line, col), hint))
    return problems


def _find_name(text: str, name: str) -> tuple[int, int]:
    import re

    for number, line in enumerate(text.splitlines() or [""], start=1):
        m = re.search(r"(?<![\w.])" + re.escape(name) + r"\b", line)
        if m and ("{{" in line or "{%" in line):
            return number, m.start() + 1
    return 1, 1


@lru_cache(maxsize=4096)
def _compiled(text: str) -> jinja2.Template:
    return environment().from_string(text)


def render(text: str, context: dict[str, Any]) -> str:
    """Render a template; raises ``jinja2.TemplateError`` (e.g. an undefined name) for the caller to report."""
    if "{" not in text:
        return text
    return _compiled(text).render(context)
