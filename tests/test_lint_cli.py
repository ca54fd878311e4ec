"""The ``aqwen-lint`` command line: exit codes, output formats, colour, the JSON Schema, what it imports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from aqwen_spec.lint.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "specs" / "plant_maintenance"
SCRIPT = Path(sys.executable).parent / "aqwen-lint"

BROKEN_TOOL = """\
kind: Tool
name: peek_order
domain: plant_maintenance
params:
  order_id: str
requires:
  - when: work_order[order_id].status == "open"
    error: "no work order {{ order_id }}"
returns: work_orders[order_id]
"""
UNUSED_TOOL = """\
kind: Tool
name: count_machines
domain: plant_maintenance
returns: len(machines)
"""


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GITHUB_ACTIONS", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)


def make_tree(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    """A copy of the example tree under ``tmp_path/specs``, plus extra files; the working directory is tmp_path."""
    root = tmp_path / "specs"
    shutil.copytree(EXAMPLE, root / EXAMPLE.name)
    for name, text in (extra or {}).items():
        (root / EXAMPLE.name / name).write_text(text, encoding="utf-8")
    return root


# --- exit codes --------------------------------------------------------------------------------------------------


def test_clean_specs_exit_0(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["specs"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\d+ files checked: 0 errors, 0 warnings$", out, re.MULTILINE), out


def test_default_path_is_specs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main([]) == 0
    assert "0 errors" in capsys.readouterr().out


def test_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, {"zz_broken.yaml": BROKEN_TOOL})
    monkeypatch.chdir(tmp_path)
    assert main(["specs"]) == 1
    out = capsys.readouterr().out
    assert "specs/plant_maintenance/zz_broken.yaml:7:11: error[AQ302] unknown name 'work_order'" in out


def test_missing_path_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["no_such_folder"]) == 1
    assert "error[AQ901]" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--no-such-flag"], ["--format", "xml", "specs"], ["--strict=yes"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: aqwen-lint" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--strict" in capsys.readouterr().out


def test_warnings_fail_only_with_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"zz_unused.yaml": UNUSED_TOOL})
    monkeypatch.chdir(tmp_path)
    assert main(["specs"]) == 0
    out = capsys.readouterr().out
    assert "warning[AQ501] tool 'count_machines' is never called" in out
    assert "0 errors, 1 warning" in out
    assert main(["--strict", "specs"]) == 1


# --- formats -----------------------------------------------------------------------------------------------------


def test_text_format_has_caret_and_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"zz_broken.yaml": BROKEN_TOOL})
    monkeypatch.chdir(tmp_path)
    main(["--format", "text", "specs"])
    out = capsys.readouterr().out
    expected = (
        "specs/plant_maintenance/zz_broken.yaml:7:11: error[AQ302] unknown name 'work_order'\n"
        ' 7 |   - when: work_order[order_id].status == "open"\n'
        "   |           ^\n"
        "   = hint: did you mean 'work_orders'?\n"
    )
    assert expected in out
    assert "\033[" not in out  # captured output is not a terminal: no colour


def test_colour_only_when_asked_or_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"zz_broken.yaml": BROKEN_TOOL})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORCE_COLOR", "1")
    main(["specs"])
    assert "\033[31m" in capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")
    main(["specs"])
    assert "\033[" not in capsys.readouterr().out


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, {"zz_broken.yaml": BROKEN_TOOL, "zz_unused.yaml": UNUSED_TOOL})
    monkeypatch.chdir(tmp_path)
    assert main(["--format", "json", "specs"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"files_checked", "errors", "warnings", "diagnostics"}
    spec_files = len(list((tmp_path / "specs").rglob("*.yaml")))
    assert payload["files_checked"] == spec_files == len(list(EXAMPLE.glob("*.yaml"))) + 2
    assert payload["errors"] == 1
    # both new tools are never called (AQ501), and peek_order returns work_orders[order_id] unguarded (AQ506)
    warnings = sorted(d["code"] for d in payload["diagnostics"] if d["severity"] == "warning")
    assert warnings == ["AQ501", "AQ501", "AQ506"]
    for d in payload["diagnostics"]:
        assert set(d) == {"path", "line", "col", "severity", "code", "message", "hint"}
    first = next(d for d in payload["diagnostics"] if d["severity"] == "error")
    assert first == {
        "path": "specs/plant_maintenance/zz_broken.yaml",
        "line": 7,
        "col": 11,
        "severity": "error",
        "code": "AQ302",
        "message": "unknown name 'work_order'",
        "hint": "did you mean 'work_orders'?",
    }


def test_json_format_clean(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["--format", "json", "specs"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["errors"] == 0 and payload["diagnostics"] == []


_GITHUB = re.compile(r"^::(error|warning) file=([^,]+),line=(\d+),col=(\d+),title=(AQ\d{3})::(.+)$")


def test_github_format(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, {"zz_broken.yaml": BROKEN_TOOL, "zz_unused.yaml": UNUSED_TOOL})
    monkeypatch.chdir(tmp_path)
    assert main(["--format", "github", "specs"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines and all(_GITHUB.match(line) for line in lines), lines
    assert (
        "::error file=specs/plant_maintenance/zz_broken.yaml,line=7,col=11,title=AQ302::"
        "unknown name 'work_order' (did you mean 'work_orders'?)"
    ) in lines
    assert any(line.startswith("::warning ") for line in lines)
    assert "error[AQ302]" in captured.err  # people reading the log still get the text report


def test_github_format_is_automatic_under_github_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"zz_broken.yaml": BROKEN_TOOL})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["specs"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(_GITHUB.match(line) for line in lines), lines
    assert any(line.startswith("::error file=specs/plant_maintenance/zz_broken.yaml,line=7,col=11,") for line in lines)
    # an explicit --format wins
    main(["--format", "text", "specs"])
    assert not capsys.readouterr().out.startswith("::")


# --- one file checks the whole tree it belongs to ----------------------------------------------------------------


def _break_a_tool_that_a_workflow_calls(root: Path) -> None:
    tools = root / EXAMPLE.name / "tools.yaml"
    text = tools.read_text(encoding="utf-8")
    assert "name: close_work_order\n" in text
    tools.write_text(text.replace("name: close_work_order\n", "name: close_order\n"), encoding="utf-8")


def test_a_file_argument_checks_its_whole_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tree(tmp_path)
    _break_a_tool_that_a_workflow_calls(root)
    monkeypatch.chdir(tmp_path)
    assert main(["--format", "json", "specs/plant_maintenance/tools.yaml"]) == 1
    payload = json.loads(capsys.readouterr().out)
    errors = [d for d in payload["diagnostics"] if d["severity"] == "error"]
    assert errors and {d["path"] for d in errors} == {"specs/plant_maintenance/workflows.yaml"}
    assert {d["code"] for d in errors} == {"AQ403"}
    assert errors[0]["hint"] == "did you mean 'close_order'?"
    # --no-expand checks only the given file (so the domain it names is unknown there)
    main(["--format", "json", "--no-expand", "specs/plant_maintenance/tools.yaml"])
    payload = json.loads(capsys.readouterr().out)
    assert payload["files_checked"] == 1
    assert {d["path"] for d in payload["diagnostics"]} == {"specs/plant_maintenance/tools.yaml"}


# --- JSON Schema -------------------------------------------------------------------------------------------------


def _schema(capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return schema


def test_schema_validates_every_example_document(capsys: pytest.CaptureFixture[str]) -> None:
    validator = jsonschema.Draft202012Validator(_schema(capsys))
    docs = [
        (path.name, doc)
        for path in sorted((ROOT / "specs").rglob("*.yaml"))
        if "data" not in path.relative_to(ROOT / "specs").parts[:-1]
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc is not None
    ]
    assert len(docs) >= 20
    kinds = set()
    for name, doc in docs:
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors, (name, doc.get("name"), errors)
        kinds.add(doc["kind"])
    assert kinds == {"Domain", "Tool", "Persona", "Workflow", "Verifier", "Pipeline", "Problem"}


def test_schema_rejects_unknown_keys_and_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    validator = jsonschema.Draft202012Validator(_schema(capsys))
    tool = yaml.safe_load((EXAMPLE / "tools.yaml").read_text(encoding="utf-8").split("\n---\n")[0])
    assert validator.is_valid(tool)
    assert not validator.is_valid({**tool, "requries": []})
    assert not validator.is_valid({**tool, "kind": "Tol"})
    assert not validator.is_valid({**tool, "params": {"order_id": {"type": "str", "desciption": "x"}}})
    persona = {"kind": "Persona", "name": "p", "tactics": "vague_request"}
    assert not validator.is_valid(persona)


# --- the installed console script, in a fresh interpreter ---------------------------------------------------------


def test_console_script(tmp_path: Path) -> None:
    assert SCRIPT.exists(), SCRIPT
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "FORCE_COLOR")}
    clean = subprocess.run([str(SCRIPT), "specs/"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 errors" in clean.stdout
    make_tree(tmp_path, {"zz_broken.yaml": BROKEN_TOOL})
    broken = subprocess.run([str(SCRIPT), "specs"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert broken.returncode == 1
    assert "error[AQ302]" in broken.stdout and "\033[" not in broken.stdout
    usage = subprocess.run([str(SCRIPT), "--bogus"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert usage.returncode == 2


HEAVY = ("torch", "transformers", "trl", "accelerate", "peft", "datasets", "vllm", "deepspeed", "compiler", "runtime")


def test_lint_does_not_import_the_training_stack(tmp_path: Path) -> None:
    """Stand-in packages for torch & co. that record being imported: linting specs/ must not touch them."""
    fakes = tmp_path / "fakes"
    marker = tmp_path / "imported.txt"
    for name in HEAVY:
        if name in ("compiler", "runtime"):
            continue  # the repository's own packages: checked through sys.modules below
        (fakes / name).mkdir(parents=True)
        (fakes / name / "__init__.py").write_text(
            f"with open({str(marker)!r}, 'a') as f:\n    f.write({name!r} + '\\n')\n", encoding="utf-8"
        )
    code = (
        "import sys\n"
        "from aqwen_spec.lint.cli import main\n"
        "rc = main(['specs'])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc or (3 if heavy else 0))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(fakes)}
    env.pop("GITHUB_ACTIONS", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "HEAVY []" in proc.stdout
    assert not marker.exists(), marker.read_text(encoding="utf-8")


# --- one mistake, one report: what a broken file or document holds up is counted, not reported --------------------


def _lint_tree(tmp_path: Path, edit: dict[str, tuple[str, str]], extra: dict[str, str] | None = None) -> list:
    from aqwen_spec.lint import lint_paths

    root = tmp_path / "specs"
    shutil.copytree(EXAMPLE, root / EXAMPLE.name)
    for name, (old, new) in edit.items():
        path = root / EXAMPLE.name / name
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    for name, text in (extra or {}).items():
        (root / EXAMPLE.name / name).write_text(text, encoding="utf-8")
    diagnostics = lint_paths([root]).diagnostics
    return [(Path(d.path).name, d.pos.line, d.pos.col, d.code, d.message, d.hint) for d in diagnostics]


def test_a_file_that_does_not_parse_does_not_cascade(tmp_path: Path) -> None:
    over_indented = ('    error: "no machine {{ machine_id }}"', '      error: "no machine {{ machine_id }}"')
    found = _lint_tree(tmp_path, {"tools.yaml": over_indented})
    # the tools after the error are missing: workflows and verifiers calling them are not reported, only counted
    assert found == [
        ("tools.yaml", 20, 12, "AQ001", "mapping values are not allowed in this context",
         "'error:' is indented deeper than 'when:' above it, so YAML reads it as more of that value; "
         "line it up with 'when' (column 5)"),
        ("tools.yaml", 20, 12, "AQ109", "17 further checks skipped because tools.yaml does not parse",
         "fix this first: the checks that refer to it run again then"),
    ]


def test_a_typo_elsewhere_is_still_reported_next_to_a_file_that_does_not_parse(tmp_path: Path) -> None:
    over_indented = ('    error: "no machine {{ machine_id }}"', '      error: "no machine {{ machine_id }}"')
    typo = ("call: get_work_order(order_id=wo.id)", "call: get_work_ordr(order_id=wo.id)")
    found = _lint_tree(tmp_path, {"tools.yaml": over_indented, "workflows.yaml": typo})
    assert [(f, code, msg) for f, _, _, code, msg, _ in found if code == "AQ403"] == [
        ("workflows.yaml", "AQ403", "unknown tool 'get_work_ordr'")
    ]


WORKFLOW_ONLY_CALLER = """\
kind: Tool
name: note_machine
domain: plant_maintenance
params:
  machine_id: str
requires:
  - when: machine_id in machines
    error: "no machine {{ machine_id }}"
returns: machines[machine_id]
---
kind: Workflow
name: note_a_machine
domain: plant_maintenance
slots:
  m: sample(machines)
tree:
  - note_machine(machine_id=m.id)
---
kind: Verifier
name: note_a_machine_ok
for: note_a_machine
checks:
  - same_final_state_as_gold
"""


def test_a_document_missing_a_required_key_gives_no_unused_warnings(tmp_path: Path) -> None:
    # the workflow lacks 'instruction': its tool is then called by no valid workflow, but that is no news
    found = _lint_tree(tmp_path, {}, {"zz_note.yaml": WORKFLOW_ONLY_CALLER})
    assert [(f, line, code, msg) for f, line, _, code, msg, _ in found] == [
        ("zz_note.yaml", 11, "AQ104", "missing required key 'instruction'"),
        ("zz_note.yaml", 11, "AQ109", "2 further checks skipped because Workflow 'note_a_machine' is invalid"),
    ]
