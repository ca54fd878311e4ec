"""The corpus of bad specs: each fixture names the diagnostic it must produce, at an exact ``line:col``.

A fixture in ``tests/fixtures/bad/`` starts with header comments:

- ``# expect: AQxxx LINE:COL`` (first line): the code and position of the fixture file's first diagnostic of the
  expected severity (errors by default), diagnostics sorted by position;
- ``# severity: warning``: the expected diagnostic is a warning, and the fixture file has no errors at all;
- ``# hint: TEXT``: that diagnostic's hint, exactly;
- ``# standalone``: lint the fixture alone, not inside a copy of ``specs/plant_maintenance``.

Without ``# standalone`` the fixture is added to a copy of the example spec tree (as ``zz_<name>``, so that it sorts
after the example's files), so it can refer to the domain, its tools, personas and workflows. The example's own files
must stay free of errors: a fixture proves one mistake gives a diagnostic where the mistake is.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from aqwen_spec.diagnostics import CODES, Diagnostic, Severity
from aqwen_spec.lint import lint_paths
from aqwen_spec.source import MAX_FILE_BYTES, read_source

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "specs" / "plant_maintenance"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bad"

_EXPECT = re.compile(r"^# expect: (AQ\d{3}) (\d+):(\d+)\s*$")


@dataclass(frozen=True)
class Expectation:
    code: str
    line: int
    col: int
    severity: Severity = Severity.ERROR
    hint: str | None = None
    standalone: bool = False


def read_expectation(path: Path) -> Expectation:
    lines = path.read_text(encoding="utf-8").splitlines()
    m = _EXPECT.match(lines[0]) if lines else None
    assert m, f"{path.name}: the first line must be '# expect: AQxxx LINE:COL'"
    severity, hint, standalone = Severity.ERROR, None, False
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        if line.startswith("# severity: "):
            severity = Severity(line.removeprefix("# severity: ").strip())
        elif line.startswith("# hint: "):
            hint = line.removeprefix("# hint: ")
        elif line.strip() == "# standalone":
            standalone = True
    return Expectation(m.group(1), int(m.group(2)), int(m.group(3)), severity, hint, standalone)


def lint_fixture(fixture: Path, tmp_path: Path) -> tuple[Path, list[Diagnostic], list[Diagnostic]]:
    """Lint the fixture (in a copy of the example tree unless standalone): (its path, its diagnostics, all)."""
    exp = read_expectation(fixture)
    if exp.standalone:
        root = tmp_path / "alone"
        root.mkdir()
        target = root / fixture.name
    else:
        root = tmp_path / "specs"
        shutil.copytree(EXAMPLE, root / EXAMPLE.name)
        target = root / EXAMPLE.name / f"zz_{fixture.name}"
    shutil.copyfile(fixture, target)
    diags = lint_paths([root]).diagnostics
    mine = [d for d in diags if Path(d.path).resolve() == target.resolve()]
    return target, mine, diags


ALL_FIXTURES = sorted(FIXTURES.glob("*.yaml"))


def test_corpus_is_large_and_covers_codes() -> None:
    assert len(ALL_FIXTURES) >= 45
    covered = {read_expectation(f).code for f in ALL_FIXTURES}
    assert covered <= set(CODES)
    # codes bad input can produce that the corpus does not cover here are covered by generated inputs below:
    # AQ005 (non-UTF-8), AQ006 (too large), AQ009 (unreadable), AQ901 (missing path); AQ109 (checks held up by a
    # broken file) needs several files and comes with an error: tests/test_lint_cli.py covers it
    generated = {"AQ005", "AQ006", "AQ009", "AQ901", "AQ109"}
    lint_codes = {c for c in CODES if not c.startswith("AQ6")}  # AQ6xx come from compiling, not from linting
    assert lint_codes - covered - generated == set(), "codes without a bad-spec fixture"


@pytest.mark.parametrize("fixture", ALL_FIXTURES, ids=[f.stem for f in ALL_FIXTURES])
def test_bad_spec(fixture: Path, tmp_path: Path) -> None:
    exp = read_expectation(fixture)
    target, mine, everything = lint_fixture(fixture, tmp_path)
    shown = "\n".join(f"{d.location()}: {d.severity.value}[{d.code}] {d.message} (hint: {d.hint})" for d in mine)
    of_severity = [d for d in mine if d.severity is exp.severity]
    assert of_severity, f"no {exp.severity.value} in {fixture.name}; got:\n{shown}"
    first = min(of_severity, key=lambda d: (d.pos.line, d.pos.col, d.code))
    assert (first.code, first.pos.line, first.pos.col) == (exp.code, exp.line, exp.col), shown
    if exp.hint is not None:
        assert first.hint == exp.hint, shown
    if exp.severity is Severity.WARNING:
        assert not [d for d in mine if d.severity is Severity.ERROR], shown
    # the example tree itself stays free of errors: the mistake is reported where it is, not where it is used
    elsewhere = [d for d in everything if d.severity is Severity.ERROR and d not in mine]
    assert not elsewhere, "\n".join(f"{d.location()}: [{d.code}] {d.message}" for d in elsewhere)
    for d in everything:
        assert d.code in CODES
        assert d.pos.line >= 1 and d.pos.col >= 1
    assert first.pos.line <= len(target.read_text(encoding="utf-8").splitlines()) or exp.code in ("AQ004", "AQ007")


# --- inputs generated by the tests rather than stored as fixtures ---------------------------------------------------


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: Persona\nname: caf\xe9\n")
    diags = lint_paths([tmp_path]).diagnostics
    assert [(d.code, d.pos.line, d.pos.col) for d in diags] == [("AQ005", 2, 10)]
    assert "0xe9" in diags[0].message


def test_non_utf8_in_a_spec_tree_keeps_the_other_files_checked(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    shutil.copytree(EXAMPLE, root / EXAMPLE.name)
    (root / EXAMPLE.name / "zz_binary.yaml").write_bytes(b"\x00\xff\xfe garbage")
    diags = lint_paths([root]).diagnostics
    errors = [d for d in diags if d.severity is Severity.ERROR]
    assert [(Path(d.path).name, d.code, d.pos.line, d.pos.col) for d in errors] == [("zz_binary.yaml", "AQ005", 1, 2)]


def test_too_large_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    line = "# " + "x" * 98 + "\n"
    path.write_text("kind: Persona\nname: huge\n" + line * (MAX_FILE_BYTES // len(line) + 1), encoding="utf-8")
    assert path.stat().st_size > MAX_FILE_BYTES
    diags = lint_paths([tmp_path]).diagnostics
    assert [(d.code, d.pos.line, d.pos.col) for d in diags] == [("AQ006", 1, 1)]
    assert diags[0].hint


def test_unreadable_file(tmp_path: Path) -> None:
    # a folder where a file is expected fails to read on every platform, even as root
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    source, diags = read_source(folder)
    assert source is None
    assert [(d.code, d.pos.line, d.pos.col) for d in diags] == [("AQ009", 1, 1)]


@pytest.mark.parametrize("style", ["flow", "block"])
def test_very_deep_nesting_is_a_diagnostic_not_a_crash(tmp_path: Path, style: str) -> None:
    # 100,000 levels in 200 kB: PyYAML's C composer would recurse once per level and crash the interpreter
    n = 100_000
    body = "[" * n + "]" * n if style == "flow" else "\n" + "- " * n + "x"
    (tmp_path / "deep.yaml").write_text(f"kind: Persona\nname: deep\nrole: {body}\n", encoding="utf-8")
    diags = lint_paths([tmp_path]).diagnostics
    assert [d.code for d in diags] == ["AQ007"]


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    diags = lint_paths([missing]).diagnostics
    assert [d.code for d in diags] == ["AQ901"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    shutil.copytree(EXAMPLE, root / EXAMPLE.name)
    personas = root / EXAMPLE.name / "personas.yaml"
    personas.write_bytes(b"\xef\xbb\xbf" + personas.read_bytes())
    assert [d for d in lint_paths([root]).diagnostics if d.severity is Severity.ERROR] == []


# --- a few messages, in words ----------------------------------------------------------------------------------------


def _first(name: str, tmp_path: Path) -> Diagnostic:
    exp = read_expectation(FIXTURES / name)
    _, mine, _ = lint_fixture(FIXTURES / name, tmp_path)
    return min((d for d in mine if d.severity is exp.severity), key=lambda d: (d.pos.line, d.pos.col))


def test_messages(tmp_path: Path) -> None:
    cases = {
        "aq001_unclosed_quote.yaml": "a quoted string is never closed: the file ends first",
        "aq003_duplicate_key.yaml": "duplicate key 'role' (first defined at line 5)",
        "aq008_python_tag.yaml": "unsupported tag '!!python/object/apply:os.system'",
        "aq101_list_document.yaml": "a spec document must be a mapping, not a list",
        "aq102_unknown_kind.yaml": "unknown kind 'Tol'",
        "aq103_unknown_key_did_you_mean.yaml": "unknown key 'requries'",
        "aq105_wrong_value_type.yaml": "'tactics' should be a list, not a string",
        "aq302_unknown_name.yaml": "unknown name 'work_order'",
        "aq402_unknown_domain.yaml": "unknown domain 'plant_maintanance'",
        "aq408_missing_argument.yaml": "call of 'close_work_order' is missing required argument 'order_id'",
    }
    for i, (name, message) in enumerate(cases.items()):
        sub = tmp_path / str(i)
        sub.mkdir()
        assert _first(name, sub).message == message, name


def test_duplicate_name_points_at_the_first_definition(tmp_path: Path) -> None:
    d = _first("aq401_duplicate_tool_name.yaml", tmp_path)
    assert re.search(r"Tool 'get_work_order' is defined twice \(first at .*tools\.yaml:2\)", d.message), d.message


def test_messages_name_the_real_cause(tmp_path: Path) -> None:
    cases = {
        "aq304_append_wrong_item.yaml": "cannot store a WorkOrder in a list whose items are of type SafetyRecord",
        "aq103_enum_as_parameter_type.yaml": "'enum' is a type, not a key of this mapping",
        "aq301_assign_into_a_call.yaml": "an assignment target cannot start with a call",
        "aq301_if_condition_over_two_lines.yaml": "unexpected end of statement, expected '{'",
        "aq202_enum_yaml_boolean.yaml": "an enum lists its values as strings",
        "aq505_predicate_field_hides_parameter.yaml":
            "'machine_id' here is a field of each element, not the outer 'machine_id' it hides",
    }
    for i, (name, message) in enumerate(cases.items()):
        sub = tmp_path / str(i)
        sub.mkdir()
        assert _first(name, sub).message == message, name


def test_an_enum_as_a_parameter_type_is_one_error(tmp_path: Path) -> None:
    _, mine, _ = lint_fixture(FIXTURES / "aq103_enum_as_parameter_type.yaml", tmp_path)
    assert [d.code for d in mine if d.severity is Severity.ERROR] == ["AQ103"]
