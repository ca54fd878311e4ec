"""Property tests: whatever is done to valid spec files, linting reports diagnostics and never raises.

The example tree is copied once; each example mutates one of its files (lines deleted, duplicated, swapped, random
characters inserted, values replaced, expressions mangled, the file cut short or given bytes that are not UTF-8) and
lints the tree. Every diagnostic must have a known code, a path, and a position inside (or just past) the file, and
every reporter must be able to print it. Hypothesis runs derandomized, so the examples are the same on every run.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aqwen_spec.diagnostics import CODES, Severity
from aqwen_spec.lint import lint_paths
from aqwen_spec.lint.reporters import report_github, report_json, report_text

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "specs" / "plant_maintenance"
SPEC_FILES = sorted(p.name for p in EXAMPLE.glob("*.yaml"))
ORIGINAL = {name: (EXAMPLE / name).read_bytes() for name in SPEC_FILES}

DETERMINISTIC = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=75,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# pieces that YAML, the expression language and templates all give meaning to
YAML_BITS = [
    "\t",
    '"',
    "'",
    "[",
    "]",
    "{",
    "}",
    ":",
    ": ",
    "- ",
    "---",
    "...",
    "&a ",
    "*a",
    "&a",
    "*b",
    "#",
    "!!python/object ",
    "!!str ",
    "? ",
    "|",
    ">",
    "%",
    "@",
    "`",
    "<<: *a",
    "\n",
    "\n  ",
    "  ",
    ",",
    "\\",
    "\u00e9",
    "\ufeff",
    "\x00",
]
EXPR_BITS = [
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "==",
    "=",
    "!=",
    "<",
    ">=",
    "and ",
    "or ",
    "not ",
    " in ",
    "+",
    "-",
    "*",
    "/",
    "%",
    ".",
    ",",
    '"',
    "'",
    'f"',
    "{{",
    "}}",
    "{%",
    "%}",
    "x",
    "wo",
    "order_id",
    "work_orders",
    "null",
    "true",
    "1",
    "3.5",
    "len(",
    "sample(",
    "choice(",
    "random()",
    "let ",
    "if ",
    "else ",
    "fail ",
    "for ",
    "where ",
    "by=",
    ";",
    "\n",
    "__class__",
    "lambda",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("props") / "specs"
    shutil.copytree(EXAMPLE, root / EXAMPLE.name)
    yield root


def lint_with(tree: Path, name: str, content: bytes) -> None:
    """Write ``content`` as spec file ``name`` of the tree, lint, check the invariants, restore the file."""
    path = tree / EXAMPLE.name / name
    path.write_bytes(content)
    try:
        result = lint_paths([tree])
    finally:
        path.write_bytes(ORIGINAL.get(name, b""))
        if name not in ORIGINAL:
            path.unlink()
    check_invariants(result, content, path)


def check_invariants(result: object, content: bytes, path: Path) -> None:
    diags = result.diagnostics  # type: ignore[attr-defined]
    n_lines = max(content.count(b"\n"), 1) + 1
    for d in diags:
        assert d.code in CODES, d
        assert d.path, d
        assert isinstance(d.pos.line, int) and isinstance(d.pos.col, int)
        assert d.pos.line >= 1 and d.pos.col >= 1, d
        assert isinstance(d.severity, Severity)
        assert d.message and "Traceback" not in d.message, d
        if Path(d.path).resolve() == path.resolve():
            assert d.pos.line <= n_lines, (d, n_lines)
    assert diags == sorted(diags, key=lambda d: d.sort_key)
    # every reporter can print every diagnostic
    for report in (
        lambda out: report_text(diags, result.sources, out, True, 1),  # type: ignore[attr-defined]
        lambda out: report_github(diags, out),
    ):
        report(io.StringIO())
    out = io.StringIO()
    report_json(diags, out, 1)
    assert len(json.loads(out.getvalue())["diagnostics"]) == len(diags)


def lines_of(name: str) -> list[str]:
    return ORIGINAL[name].decode("utf-8").splitlines(keepends=True)


spec_file = st.sampled_from(SPEC_FILES)


@DETERMINISTIC
@given(name=spec_file, data=st.data())
def test_line_edits(tree: Path, name: str, data: st.DataObject) -> None:
    lines = lines_of(name)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        op = data.draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent"]), label="op")
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1), label="other line")
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = " " * data.draw(st.integers(1, 4), label="spaces") + lines[i]
        else:
            lines[i] = lines[i][data.draw(st.integers(1, 4), label="spaces") :] or "\n"
    lint_with(tree, name, "".join(lines).encode("utf-8"))


@DETERMINISTIC
@given(name=spec_file, data=st.data())
def test_inserted_characters(tree: Path, name: str, data: st.DataObject) -> None:
    text = ORIGINAL[name].decode("utf-8")
    for _ in range(data.draw(st.integers(1, 4), label="inserts")):
        at = data.draw(st.integers(0, len(text)), label="at")
        bit = data.draw(st.sampled_from(YAML_BITS) | st.text(max_size=4), label="bit")
        text = text[:at] + bit + text[at:]
    lint_with(tree, name, text.encode("utf-8", errors="surrogatepass"))


@DETERMINISTIC
@given(name=spec_file, data=st.data())
def test_truncated_and_invalid_bytes(tree: Path, name: str, data: st.DataObject) -> None:
    raw = ORIGINAL[name]
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    tail = data.draw(st.sampled_from([b"", b"\xff", b"\xc3", b"\xe2\x82", b"\x00", b"\r", b"\r\n"]), label="tail")
    lint_with(tree, name, raw[:cut] + tail)


@DETERMINISTIC
@given(name=spec_file, data=st.data())
def test_replaced_values(tree: Path, name: str, data: st.DataObject) -> None:
    lines = lines_of(name)
    candidates = [i for i, line in enumerate(lines) if ": " in line and not line.lstrip().startswith("#")]
    for _ in range(data.draw(st.integers(1, 3), label="replacements")):
        i = data.draw(st.sampled_from(candidates), label="line")
        key, _, _ = lines[i].partition(": ")
        value = data.draw(
            st.sampled_from(["", "null", "~", "[]", "{}", "123", "-1", "1e9", "true", "'x'", "|", ">-", "*a", "&a x"])
            | st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r"), max_size=12),
            label="value",
        )
        lines[i] = f"{key}: {value}\n"
    lint_with(tree, name, "".join(lines).encode("utf-8", errors="surrogatepass"))


EXPR_KEYS = ("when:", "returns:", "tells_user:", "assert:", "call:", "key:", "error:", "instruction:", "- ")


@DETERMINISTIC
@given(name=spec_file, data=st.data())
def test_mangled_expressions(tree: Path, name: str, data: st.DataObject) -> None:
    lines = lines_of(name)
    candidates = [i for i, line in enumerate(lines) if line.lstrip().startswith(EXPR_KEYS) or "(" in line]
    candidates = candidates or list(range(len(lines)))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        i = data.draw(st.sampled_from(candidates), label="line")
        line = lines[i].rstrip("\n")
        start = len(line) - len(line.lstrip()) + 1
        at = data.draw(st.integers(min(start, len(line)), len(line)), label="at")
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]), label="op")
        bit = data.draw(st.sampled_from(EXPR_BITS), label="bit")
        if op == "insert":
            line = line[:at] + bit + line[at:]
        elif op == "delete":
            line = line[:at] + line[at + data.draw(st.integers(1, 6), label="n") :]
        else:
            line = line[:at] + bit + line[at + len(bit) :]
        lines[i] = line + "\n"
    lint_with(tree, name, "".join(lines).encode("utf-8"))


@DETERMINISTIC
@given(name=spec_file, data=st.data())
def test_effects_programs(tree: Path, name: str, data: st.DataObject) -> None:
    """Lines inside block scalars (effects programs, multi-line returns) are mangled too."""
    lines = lines_of(name)
    inside, candidates = False, []
    for i, line in enumerate(lines):
        if line.rstrip().endswith(("|", ">", ">-", "|-")):
            inside = True
            continue
        if inside and line.startswith("  "):
            candidates.append(i)
        else:
            inside = False
    if not candidates:
        candidates = list(range(len(lines)))
    i = data.draw(st.sampled_from(candidates), label="line")
    bits = data.draw(st.lists(st.sampled_from(EXPR_BITS), min_size=1, max_size=4), label="bits")
    line = lines[i].rstrip("\n")
    at = data.draw(st.integers(0, len(line)), label="at")
    lines[i] = line[:at] + " ".join(bits) + line[at:] + "\n"
    lint_with(tree, name, "".join(lines).encode("utf-8"))


@DETERMINISTIC
@given(pieces=st.lists(st.sampled_from([*YAML_BITS, "kind", "Tool", "name", "x", " ", "1"]), max_size=30))
def test_arbitrary_small_files(tree: Path, pieces: list[str]) -> None:
    """A new file of random YAML-ish text next to the example's files."""
    lint_with(tree, "zz_random.yaml", "".join(pieces).encode("utf-8"))


@DETERMINISTIC
@given(data=st.data())
def test_documents_moved_between_files(tree: Path, data: st.DataObject) -> None:
    """A document copied into another file (a duplicate name) or removed (a dangling reference)."""
    docs = {name: ORIGINAL[name].decode("utf-8").split("\n---\n") for name in SPEC_FILES}
    source = data.draw(spec_file, label="from")
    target = data.draw(spec_file, label="to")
    doc = data.draw(st.sampled_from(docs[source]), label="document")
    remove = data.draw(st.booleans(), label="remove")
    if remove:
        kept = [d for d in docs[source] if d is not doc]
        lint_with(tree, source, "\n---\n".join(kept).encode("utf-8"))
    else:
        lint_with(tree, target, (ORIGINAL[target].decode("utf-8") + "\n---\n" + doc).encode("utf-8"))
