"""Jinja2 templates in a sandbox: checked at lint time (syntax, names used), rendered at run time.

Templates never reach Python internals (ImmutableSandboxedEnvironment) and undefined names are errors, not blanks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aqwen_spec.diagnostics import Pos

if TYPE_CHECKING:  # jinja2 is imported only when a template needs it (lint of plain templates never does)
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from aqwen_spec.types import Type


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

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


# Jinja's delimiters: the leftmost one found starts a tag, as in Jinja's own lexer
_TAG_START = re.compile(r"\{[{%#]")
# ``{{ name }}``, ``{{ a.b }}``, ``{{ a[b].c }}``: the only tags the fast path reads; anything else goes to Jinja
_SIMPLE_TAG = re.compile(r"\{\{\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[[A-Za-z_]\w*\])*)\s*\}\}", re.ASCII)
_SUBSCRIPT = re.compile(r"\[([A-Za-z_]\w*)\]")
# words Jinja reads as literals, operators or special names: templates using them go through Jinja
_JINJA_WORDS = frozenset(
    {"true", "false", "none", "True", "False", "None", "self", "and", "or", "not", "in", "is", "if", "else"}
)


def _simple_names(text: str) -> set[str] | None:
    """The names a template uses, when every tag in it is a plain ``{{ a.b[c] }}``; ``None`` otherwise.

    For such templates this is exactly what Jinja's parser and ``meta.find_undeclared_variables`` give (a test
    compares them), without importing Jinja: linting a spec tree of plain templates stays fast.
    """
    names: set[str] = set()
    pos = 0
    while True:
        start = _TAG_START.search(text, pos)
        if start is None:
            return names
        m = _SIMPLE_TAG.match(text, start.start())
        if m is None:
            return None
        used = [m.group(1), *_SUBSCRIPT.findall(m.group(2))]
        words = [m.group(1), *re.findall(r"[A-Za-z_]\w*", m.group(2), re.ASCII)]
        if any(w in _JINJA_WORDS for w in words):
            return None
        names.update(used)
        pos = m.end()


def names_used(text: str) -> set[str]:
    """The names a template reads from its context (Jinja's own globals left out). Raises
    ``jinja2.TemplateSyntaxError`` for a template that does not parse."""
    used = _simple_names(text)
    return (used if used is not None else _jinja_names(text)) - _JINJA_GLOBALS


def _jinja_names(text: str) -> set[str]:
    from jinja2 import meta

    return set(meta.find_undeclared_variables(environment().parse(text)))


def check_template(
    text: str, known: set[str] | frozenset[str], types: Mapping[str, Type] | None = None
) -> list[TemplateProblem]:
    """Syntax errors and names the template uses that are not in ``known`` (``types``, where given, lets the hint
    name a field of a known record: ``wo.machine_id`` for ``machine``)."""
    used = _simple_names(text)
    if used is None:
        import jinja2

        try:
            used = _jinja_names(text)
        except jinja2.TemplateSyntaxError as exc:
            return [TemplateProblem("AQ308", f"template syntax error: {exc.message}", Pos(exc.lineno or 1, 1))]
    problems = []
    for name in sorted(used - set(known) - _JINJA_GLOBALS):
        from aqwen_spec.diagnostics import did_you_mean

        line, col = _find_name(text, name)
        hint = (
            _closer_field(name, known, types or {})
            or did_you_mean(name, known)
            or ("available: " + ", ".join(sorted(known)) if known else None)
        )
        problems.append(TemplateProblem("AQ309", f"template uses unknown name '{name}'", Pos(line, col), hint))
    return problems


def _closer_field(name: str, known: Iterable[str], types: Mapping[str, Type]) -> str | None:
    """A known name or a field of a known record that fits ``name`` better than a collection spelled like it: a
    template rarely shows a whole collection."""
    from aqwen_spec.diagnostics import named_like
    from aqwen_spec.types import RecordT, unwrap_optional

    options = list(known)
    for owner, t in types.items():
        record = unwrap_optional(t)
        if isinstance(record, RecordT):
            options += [f"{owner}.{f}" for f in record.fields]
    return named_like(name, options)


def _find_name(text: str, name: str) -> tuple[int, int]:
    word = re.compile(r"(?<![\w.])" + re.escape(name) + r"\b")
    # look inside {{ ... }} and {% ... %} only: the same word in the plain text around them is not the name
    for number, line in enumerate(text.splitlines() or [""], start=1):
        for tag in re.finditer(r"\{[{%].*?(?:[}%]\}|$)", line):
            m = word.search(line, tag.start(), tag.end())
            if m:
                return number, m.start() + 1
    return 1, 1


@lru_cache(maxsize=4096)
def _compiled(text: str) -> jinja2.Template:
    return environment().from_string(text)


# ``{{ name }}`` alone: a plain name, which Jinja renders as ``str(value)``
_PLAIN_TAG = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}", re.ASCII)


@lru_cache(maxsize=4096)
def _plain_parts(text: str) -> tuple[tuple[str, str], ...] | None:
    """``(text before, name)`` pairs of a template whose only tags are plain ``{{ name }}`` (the last pair's name
    empty); ``None`` for any other template, which Jinja renders. What Jinja itself does to such a template is done
    here too: one trailing newline dropped; templates with ``\r`` (line endings Jinja rewrites) go to Jinja."""
    if "\r" in text or "{%" in text or "{#" in text:
        return None
    if text.endswith("\n"):
        text = text[:-1]
    parts: list[tuple[str, str]] = []
    pos = 0
    starts = set()
    for m in _PLAIN_TAG.finditer(text):
        name = m.group(1)
        if name in _JINJA_WORDS or name in _JINJA_GLOBALS:
            return None
        parts.append((text[pos:m.start()], name))
        starts.add(m.start())
        pos = m.end()
    parts.append((text[pos:], ""))
    # Jinja's lexer starts a tag at the leftmost "{{": every one must be where a plain tag starts
    if any(i not in starts for i in range(len(text) - 1) if text.startswith("{{", i)):
        return None
    return tuple(parts)


def render(text: str, context: dict[str, Any]) -> str:
    """Render a template; raises ``jinja2.TemplateError`` (e.g. an undefined name) for the caller to report.

    Templates made of plain ``{{ name }}`` tags (most error messages) are filled in without Jinja, with what Jinja
    gives them (``str`` of each value; ``tests/test_templates_fast.py`` compares the two)."""
    if "{" not in text:
        return text
    parts = _plain_parts(text)
    if parts is not None and all(name in context for _, name in parts[:-1]):
        return "".join(before + (str(context[name]) if name else "") for before, name in parts)
    return _compiled(text).render(context)
