"""The docs cannot rot: their examples are linted, parsed and compared with the code.

Conventions for code blocks in ``docs/*.md``:

- a ```` ```yaml ```` block whose first line that is not a comment starts with ``kind:`` is a spec file. All of a
  page's spec blocks are written to one spec tree (next to a copy of ``specs/plant_maintenance``, so examples may
  refer to it) and linted together: no errors allowed (warnings, such as unused definitions, are fine);
- a ```` ```yaml ```` block starting with ``# expect: AQxxx`` is a deliberately broken spec: linted on its own (with
  ``specs/plant_maintenance``), it must give that code;
- every other ```` ```yaml ```` block must at least be valid YAML;
- a block whose info string has ``file=PATH`` (```` ```csv file=data/bikes.csv ````) is written to ``PATH`` in the
  page's spec tree, for data files the specs name;
- a ```` ```yaml excerpt=PATH ```` block is part of a file shown elsewhere: not linted on its own;
- in an ```` ```expr ```` block every line is an expression; an ```` ```effects ```` block is one effect program.

Running the pages' commands, comparing what they show with what the commands print, and the ``<!-- not run: REASON
-->`` markers are in ``tests/test_docs_blocks.py``. Relative links between the pages must resolve, anchors included.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from aqwen_spec.check import check_paths
from aqwen_spec.diagnostics import CODES, Severity
from aqwen_spec.expr import FUNCTIONS, SAMPLING_FUNCTIONS, parse_expr, parse_program
from aqwen_spec.expr.episode import CLOCK_FUNCTIONS, DRAW_FUNCTIONS
from aqwen_spec.tactics import TACTICS
from aqwen_spec.templates import _JINJA_GLOBALS, _simple_names, environment

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
EXAMPLE = ROOT / "specs" / "plant_maintenance"

FENCE = re.compile(r"^```([\w-]*)([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
"""A fenced block of a docs page: language, info string, body (tests/test_docs_blocks.py parses pages with it too)."""


def blocks(page: Path) -> list[tuple[str, dict[str, str], str, int]]:
    """(language, info attributes, body, line) of every fenced block of a page."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        attrs = dict(re.findall(r"(\w+)=(\S+)", m.group(2)))
        out.append((m.group(1), attrs, m.group(3), text.count("\n", 0, m.start()) + 1))
    return out


def _is_spec(body: str) -> bool:
    lines = [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return bool(lines) and lines[0].startswith("kind:")


def _expected(body: str) -> str | None:
    m = re.match(r"#\s*expect:\s*(AQ\d{3})", body)
    return m.group(1) if m else None


def _lint(tree: Path) -> tuple[list[str], list[str]]:
    """(the errors as text, every diagnostic code)."""
    result = check_paths([tree])
    return [
        f"{d.path}:{d.pos.line}:{d.pos.col}: {d.code} {d.message}"
        for d in result.diagnostics.sorted()
        if d.severity is Severity.ERROR
    ], [d.code for d in result.diagnostics]


def _tree(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    shutil.copytree(EXAMPLE, specs / EXAMPLE.name)
    return specs


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_spec_examples_lint_clean(page: Path, tmp_path: Path) -> None:
    specs = _tree(tmp_path)
    folder = specs / f"docs_{page.stem}"
    folder.mkdir()
    n = 0
    for lang, attrs, body, line in blocks(page):
        if "file" in attrs:
            target = folder / attrs["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        elif lang == "yaml" and _is_spec(body) and _expected(body) is None and "excerpt" not in attrs:
            (folder / f"block_{line:04d}.yaml").write_text(body, encoding="utf-8")
            n += 1
    if n == 0:
        pytest.skip("no spec examples on this page")
    errors, _ = _lint(specs)
    header = f"{page.name}: spec examples do not lint clean (block_NNNN = line of the block):\n"
    assert errors == [], header + "\n".join(errors)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_broken_examples_give_their_code(page: Path, tmp_path: Path) -> None:
    cases = [(b, ln) for lang, _, b, ln in blocks(page) if lang == "yaml" and _expected(b)]
    if not cases:
        pytest.skip("no broken examples on this page")
    for body, line in cases:
        specs = _tree(tmp_path / f"case_{line}")
        (specs / "example.yaml").write_text(body, encoding="utf-8")
        _, codes = _lint(specs)
        assert _expected(body) in codes, f"{page.name}:{line}: expected {_expected(body)}, got {codes}"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_yaml_blocks_are_yaml(page: Path) -> None:
    for lang, _, body, line in blocks(page):
        if lang == "yaml":
            try:
                list(yaml.safe_load_all(body))
            except yaml.YAMLError as exc:  # pragma: no cover - the message is the point
                pytest.fail(f"{page.name}:{line}: not valid YAML: {exc}")


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_expression_blocks_parse(page: Path) -> None:
    for lang, _, body, _line in blocks(page):
        if lang == "expr":
            for text in body.splitlines():
                if text.strip() and not text.lstrip().startswith("#"):
                    parse_expr(text)  # raises ExprSyntaxError with the position
        elif lang == "effects":
            parse_program(body)


def test_function_table_is_exact() -> None:
    """The table of builtins lists every function, with the signature the checker prints in hints."""
    text = (ROOT / "docs" / "spec-language.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", text, re.MULTILINE))
    builtins = {**FUNCTIONS, **SAMPLING_FUNCTIONS, **CLOCK_FUNCTIONS, **DRAW_FUNCTIONS}
    documented = {name: sig for name, sig in rows.items() if name in builtins}
    assert set(documented) == set(builtins)
    assert documented == {name: b.signature for name, b in builtins.items()}


def test_tactic_table_is_exact() -> None:
    text = (ROOT / "docs" / "spec-language.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (yes|no) \| (.+?) \|$", text, re.MULTILINE)
    assert {name: (adv == "yes", desc) for name, adv, desc in rows} == {
        t.name: (t.adversarial, t.description) for t in TACTICS.values()
    }


def test_every_code_is_documented() -> None:
    text = (ROOT / "docs" / "linting.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(AQ\d{3})` \| ([^|]+?) \|", text, re.MULTILINE))
    assert set(rows) == set(CODES)
    assert rows == CODES


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        "{{ a }}",
        "x {{a}} y {{ b.c }} z",
        "{{ a[b].c }}",
        "{{\n  wo.id\n}}",
        "{{ a }}}",
        "}} {",
        "{{ range }}",
        "{{ loop }}",
    ],
)
def test_template_fast_path_agrees_with_jinja(text: str) -> None:
    """Plain ``{{ a.b[c] }}`` templates are read without Jinja; the names must be the ones Jinja finds."""
    from jinja2 import meta

    names = _simple_names(text)
    assert names is not None
    assert names - _JINJA_GLOBALS == meta.find_undeclared_variables(environment().parse(text)) - _JINJA_GLOBALS


@pytest.mark.parametrize(
    "text", ["{{ a | upper }}", "{% if a %}x{% endif %}", "{# c #}", "{{ true }}", "{{ self }}", "{{{ a }}", "{{- a }}"]
)
def test_template_fast_path_leaves_the_rest_to_jinja(text: str) -> None:
    assert _simple_names(text) is None


_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lowercase, punctuation dropped, spaces as hyphens, -1 on a repeat."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for m in _HEADING.finditer(text):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("page", [*DOCS, ROOT / "README.md"], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for m in _LINK.finditer(text):
        target = m.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        line = text.count("\n", 0, m.start()) + 1
        if not file.exists():
            broken.append(f"{page.name}:{line}: {target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{page.name}:{line}: {target}: no heading with that anchor in {file.name}")
    assert not broken, "\n".join(broken)
