"""Templates of plain ``{{ name }}`` tags are filled in without Jinja: the text must be Jinja's, byte for byte."""

from __future__ import annotations

import random
from typing import Any

from aqwen_spec.templates import _compiled, render

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
