"""Plain templates are rendered without Jinja: the text must be Jinja's, character for character, or Jinja's error."""

from __future__ import annotations

import itertools
from typing import Any

import jinja2
import pytest

from aqwen_spec.templates import _compiled, _plain_parts, render

CONTEXT: dict[str, Any] = {
    "wo": {"id": "WO-7", "priority": "critical", "qty": 3, "cost": 2.5, "items": "not the method", "none": None,
           "ok": True, "tags": ["a", "b"], "nested": {"id": "N-1", 2: "two"}},
    "key": "id",
    "two": 2,
    "flag": False,
    "name": "Ana",
    "persona": {"opening": "Hi.", "voice": ""},
    "text": "plain",
    "items": {"keys": 1},
    "_hidden": {"x": 1},
}

TEMPLATES = [
    "{{ wo.id }}",
    "Work order {{ wo.id }} is {{ wo.priority }}; {{ wo.qty }} x {{ wo.cost }}, {{ wo.none }} {{ wo.ok }}",
    "{{ persona.opening }} Please put {{ name }} on {{ wo.id }}.",
    "{{ wo.tags }} {{ wo.nested }} {{ wo }}",
    "{{ wo[key] }} {{ wo.nested[two] }} {{ wo.nested.id }}",
    "{{wo.id}}{{name}}",
    "{{\n  wo.id\n}} and a newline at the end\n",
    "two newlines at the end {{ name }}\n\n",
    "{{ wo.items }}",  # a dict method of that name: Jinja's attribute rule
    "{{ wo.keys }}",
    "{{ items.keys }}",
    "{{ wo['id'] }}",  # not a plain tag
    "{{ text.upper }}",  # not a dict
    "{{ wo.missing }}",  # undefined: Jinja's error
    "{{ nothing }}",
    "{{ wo[name] }}",  # a missing key
    "{{ wo.nested[flag] }}",
    "{{ range }}",
    "{{ _hidden.x }}",
    "{{ wo._x }}",
    "{{ a }}}",
    "}} {",
    "line\r\nbreak {{ name }}",
    "{{ name | upper }}",
    "{% if flag %}x{% endif %}{{ name }}",
]


def _jinja(text: str, context: dict[str, Any]) -> str:
    try:
        return _compiled(text).render(context)
    except jinja2.TemplateError as exc:
        return f"error {type(exc).__name__}: {exc}"


def _ours(text: str, context: dict[str, Any]) -> str:
    try:
        return render(text, context)
    except jinja2.TemplateError as exc:
        return f"error {type(exc).__name__}: {exc}"


@pytest.mark.parametrize("text", TEMPLATES)
def test_plain_render_is_jinjas(text: str) -> None:
    assert _ours(text, CONTEXT) == _jinja(text, CONTEXT)


def test_plain_templates_skip_jinja() -> None:
    assert _plain_parts("{{ persona.opening }} Work order {{ wo.id }} is fixed.") is not None
    assert _plain_parts("{{ wo[key].x }}") is not None
    assert _plain_parts("{{ name | upper }}") is None
    assert _plain_parts("a\rb {{ x }}") is None


def test_plain_render_over_combinations() -> None:
    """Every pair of the plain tags below, with text around them, over every root value."""
    tags = ["{{ wo.id }}", "{{ wo[key] }}", "{{ wo.nested[two] }}", "{{ x.y }}", "{{ x }}", "{{ x[key] }}",
            "{{ x.get }}"]
    values: list[Any] = [None, 1, 1.0, -0.0, "s", True, [1, {"y": 2}], {"y": "Y", "id": 3}, {"get": "g"}, {}]
    for a, b in itertools.product(tags, repeat=2):
        text = f"{a} and {b}."
        for x in values:
            context = {**CONTEXT, "x": x}
            assert _ours(text, context) == _jinja(text, context), (text, x)
