"""Jinja2 templates in a sandbox: checked at lint time (syntax, names used), rendered at run time.

Templates never reach Python internals (ImmutableSandboxedEnvironment) and undefined names are errors, not blanks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
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


_Lookup = tuple[str, tuple[tuple[bool, str], ...]]
"""A plain tag: the name it starts from and its steps, ``(True, name)`` for ``[name]`` and ``(False, field)``."""
_DICT_ATTRS = frozenset(dir(dict))


@lru_cache(maxsize=4096)
def _plain_parts(text: str) -> tuple[str | _Lookup, ...] | None:
    """A template whose tags are all plain ``{{ a.b[c] }}`` as text pieces and lookups (None for any other): what
    :func:`render` computes without Jinja."""
    if "\r" in text or _simple_names(text) is None:
        return None
    if text.endswith("\n"):
        text = text[:-1]  # Jinja drops one trailing newline (keep_trailing_newline is off)
    parts: list[str | _Lookup] = []
    pos = 0
    while (start := _TAG_START.search(text, pos)) is not None:  # the scan of _simple_names
        m = _SIMPLE_TAG.match(text, start.start())
        assert m is not None  # _simple_names read every tag as a plain one
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        steps = re.findall(r"\.(\w+)|\[(\w+)\]", m.group(2))
        parts.append((m.group(1), tuple((not field, field or key) for field, key in steps)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


_MISSING: Any = object()


def render(text: str, context: dict[str, Any]) -> str:
    """Render a template; raises ``jinja2.TemplateError`` (e.g. an undefined name) for the caller to report.

    Templates of plain ``{{ a.b[c] }}`` tags over dicts are rendered without Jinja, to the same text (Jinja's
    sandboxed lookups: a dict's key when no dict attribute has the name, then ``str`` of the value)."""
    if "{" not in text:
        return text
    fn = _plain_fn(text)
    if fn is not None:
        out = fn(context)
        if out is not None:
            return out
    return _compiled(text).render(context)


@lru_cache(maxsize=4096)
def _plain_fn(text: str) -> Callable[[Mapping[str, Any]], str | None] | None:
    """``text``'s parts (:func:`_plain_parts`) rendered by one generated function of the context: the text Jinja
    would render, for lookups through dicts only; None where Jinja's own rules are needed (a name not in the
    context, a missing key, a field named like a dict method or starting with ``_``, anything that is not a dict).
    None too where the text is not plain.

    The source holds generated identifiers only: every text piece, name and key of the template is a constant of the
    function's namespace."""
    parts = _plain_parts(text)
    if parts is None:
        return None
    ns: dict[str, Any] = {"M": _MISSING}
    lines = ["def plain(c):", "    get = c.get"]
    pieces: list[str] = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            ns[f"T{i}"] = part
            pieces.append(f"T{i}")
            continue
        name, steps = part
        ns[f"N{i}"] = name
        lines.append(f"    v = get(N{i}, M)")
        for j, (subscript, key) in enumerate(steps):
            ns[f"N{i}_{j}"] = key
            lines.append("    if type(v) is not dict: return None")
            if subscript:
                lines.append(f"    k = get(N{i}_{j}, M)")
                lines.append("    if type(k) is not str and type(k) is not int: return None")
                lines.append("    v = v.get(k, M)")
            elif key in _DICT_ATTRS or key.startswith("_"):
                lines.append("    return None")
            else:
                lines.append(f"    v = v.get(N{i}_{j}, M)")
        lines.append("    if v is M: return None")
        lines.append(f"    s{i} = v if type(v) is str else str(v)")
        pieces.append(f"s{i}")
    lines.append(f"    return ''.join(({''.join(p + ', ' for p in pieces)}))")
    exec(compile("\n".join(lines), "<plain template>", "exec"), ns)  # generated identifiers only (see above)
    fn: Callable[[Mapping[str, Any]], str | None] = ns["plain"]
    return fn
