"""Templates of plain ``{{ name }}`` tags are filled in without Jinja: the text must be Jinja's, byte for byte."""

from __future__ import annotations

import random
from typing import Any

from aqwen_spec.templates import _DICT_ATTRS, _MISSING, _compiled, render


def plain_render(parts: tuple[Any, ...], context: dict[str, Any]) -> str | None:
    """The reference the generated function is held to, written as a plain loop: the text Jinja would render, for
    lookups through dicts only; None where Jinja's own rules are needed (a name not in the context, a missing key, a
    field named like a dict method or starting with ``_``, anything that is not a dict)."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        name, steps = part
        value = context.get(name, _MISSING)
        for subscript, key in steps:
            if type(value) is not dict:
                return None
            if subscript:
                key = context.get(key, _MISSING)
                if type(key) is not str and type(key) is not int:
                    return None
            elif key in _DICT_ATTRS or key.startswith("_"):
                return None
            value = value.get(key, _MISSING)
        if value is _MISSING:
            return None
        out.append(str(value))
    return "".join(out)

VALUES: list[Any] = [None, True, False, 0, -7, 2.5, 1e-7, 10**30, "", "it's", "{{ x }}", "{% raw %}", "naïve ✓",
                     "a\nb", ["a", 1, None], {"k": [1, {"z": True}]}, (1, 2), 3.0]
PIECES = ["", " ", "no order ", "\n", "{", "}", " } ", "{ x }", "é", "\t", "{{ a }}", "{{b}}", "{{  c  }}",
          "{{ a.b }}", "{{ a|upper }}", "{% if a %}y{% endif %}", "{# c #}", "{{ none }}", "{{ range }}",
          "\r\n", "{{ a }}\n", "{{ missing }}"]


def _jinja(text: str, context: dict[str, Any]) -> str | None:
    try:
        return str(_compiled(text).render(context))
    except Exception:
        return None


def test_plain_templates_render_as_jinja_renders_them() -> None:
    rng = random.Random(7)
    checked = 0
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 5)))
        context = {name: rng.choice(VALUES) for name in ("a", "b", "c")}
        expected = _jinja(text, context) if "{" in text else text  # no tag at all: the text as it is, as always
        try:
            got: str | None = render(text, context)
        except Exception:
            got = None
        assert got == expected, (text, context)
        checked += 1
    assert checked == 3000


def test_a_trailing_newline_is_dropped_as_jinja_drops_it() -> None:
    assert render("no order {{ a }}\n", {"a": 7}) == "no order 7" == _jinja("no order {{ a }}\n", {"a": 7})
    assert render("{{ a }}\n\n", {"a": None}) == "None\n"


def test_the_generated_plain_function_does_what_the_plain_render_does() -> None:
    """``_plain_fn`` (a plain template unrolled into one function) gives :func:`plain_render`'s text, or its None where
    Jinja must decide: a missing name or key, a value that is no dict, a key that is no str or int, a field named
    like a dict method or starting with ``_``."""
    from aqwen_spec.templates import _plain_fn, _plain_parts

    texts = ["{{ a }}", "x {{ a.b }} y", "{{ a.b.c }}{{ b }}", "{{ a[k] }}", "{{ a[k].b }} and {{ a.items }}",
             "{{ a._hidden }}", "{{ a.b }}\n", "{{ a }}{{ a }}{{ b[k][k] }}", "plain {{ c }} text {{ b.b }}."]
    contexts: list[dict[str, Any]] = [
        {"a": 1, "b": "x", "c": None},
        {"a": {"b": {"c": 2.5}, "items": 3, "_hidden": 4, "x": "v"}, "b": {"b": True, "x": {"x": 1}}, "k": "x"},
        {"a": {"b": "y", 3: "three"}, "b": {3: {3: "deep"}}, "k": 3, "c": [1, 2]},
        {"a": {"b": 1}, "k": 2.0},
        {"b": 1},
        {"a": [1], "b": {}, "k": None},
    ]
    for text in texts:
        parts = _plain_parts(text)
        assert parts is not None, text
        fn = _plain_fn(text)
        assert fn is not None
        for context in contexts:
            assert fn(context) == plain_render(parts, context), (text, context)
    assert _plain_fn("{{ a | upper }}") is None
