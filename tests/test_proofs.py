"""Verifier proofs at compile time (``compiler/proofs.py``): doing nothing fails, a harmless extra read passes, the
partial credit of doing nothing is reported; and what they prove agrees with the runtime's own episodes.

Fixtures in ``tests/fixtures/proofs/`` use the header format of ``tests/fixtures/bad/`` (see
``tests/test_bad_specs.py``); they are compiled, not linted, inside a copy of ``specs/plant_maintenance``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aqwen_spec.diagnostics import CODES, Severity, SpecError
from compiler import compile_specs, write_bundles
from compiler.cli import main as compile_main
from compiler.proofs import NOOP_CREDIT_LIMIT
from runtime.episodes.agents import NoopAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.evaluate import run_episode
from tests.test_bad_specs import read_expectation

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "specs" / "plant_maintenance"
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "proofs").glob("*.yaml"))
SPEC_TREES = [ROOT / "specs", *sorted((ROOT / "examples").glob("*/specs"))]


def _tree_with(fixture: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "specs"
    shutil.copytree(EXAMPLE, root / EXAMPLE.name)
    target = root / EXAMPLE.name / f"zz_{fixture.name}"
    shutil.copyfile(fixture, target)
    return root, target


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_proof_fixture(fixture: Path, tmp_path: Path) -> None:
    exp = read_expectation(fixture)
    root, target = _tree_with(fixture, tmp_path)
    try:
        diags = compile_specs(root).diagnostics.items
        assert exp.severity is Severity.WARNING, "the fixture compiled without errors"
    except SpecError as exc:
        diags = exc.diagnostics
    mine = [d for d in diags if Path(d.path).resolve() == target.resolve() and d.severity is exp.severity]
    shown = "\n".join(f"{d.location()}: [{d.code}] {d.message} (hint: {d.hint})" for d in diags)
    assert mine, shown
    first = min(mine, key=lambda d: (d.pos.line, d.pos.col, d.code))
    assert (first.code, first.pos.line, first.pos.col) == (exp.code, exp.line, exp.col), shown
    assert first.hint == exp.hint, shown
    assert not [d for d in diags if d.severity is Severity.ERROR and d not in mine], shown


def test_every_proof_code_has_a_fixture() -> None:
    assert {read_expectation(f).code for f in FIXTURES} == {"AQ615", "AQ616", "AQ617"}
    assert {"AQ615", "AQ616", "AQ617"} <= set(CODES)


def test_do_nothing_message_names_the_checks_it_passed(tmp_path: Path) -> None:
    root, _ = _tree_with(ROOT / "tests" / "fixtures" / "proofs" / "aq615_do_nothing_succeeds.yaml", tmp_path)
    with pytest.raises(SpecError) as info:
        compile_specs(root)
    [diag] = info.value.diagnostics
    assert "for 6 of 6 tasks of workflow 'look_up_order'" in diag.message
    assert "passed same_final_state_as_gold_0, forbid_1" in diag.message


def test_extra_read_is_a_call_the_gold_does_not_make(tmp_path: Path) -> None:
    root, _ = _tree_with(ROOT / "tests" / "fixtures" / "proofs" / "aq616_extra_read_breaks_a_check.yaml", tmp_path)
    with pytest.raises(SpecError) as info:
        compile_specs(root)
    [diag] = info.value.diagnostics
    assert "get_machine(machine_id='M-" in diag.message and "'no_machine_lookup'" in diag.message
    assert "6 of 6 tasks tried" in diag.message


@pytest.mark.parametrize("tree", SPEC_TREES, ids=[str(p.relative_to(ROOT)) for p in SPEC_TREES])
def test_shipped_specs_prove_clean_and_doing_nothing_earns_little(tree: Path) -> None:
    project = compile_specs(tree)
    assert not [d for d in project.diagnostics.items if d.code in ("AQ615", "AQ616", "AQ617")]
    for compiled in project.domains.values():
        assert set(compiled.proofs) == {t.data["workflow"] for t in compiled.tasks}
        for proof in compiled.proofs.values():
            assert proof.tasks > 0 and proof.extra_read_tried == proof.tasks
            assert proof.noop_mean <= NOOP_CREDIT_LIMIT and not proof.noop_successes


def test_do_nothing_reward_is_the_noop_agents_reward_in_the_runtime(tmp_path: Path) -> None:
    """The compiler's do-nothing trajectory is what the runtime's noop agent does: same reward on every task."""
    fixture = ROOT / "tests" / "fixtures" / "proofs" / "aq617_do_nothing_earns_partial_credit.yaml"
    root, _ = _tree_with(fixture, tmp_path)
    project = compile_specs(root)
    write_bundles(project, tmp_path / "build")
    bundle = Bundle.load(tmp_path / "build" / "plant_maintenance")
    proofs = project.domains["plant_maintenance"].proofs
    by_task = {task_id: r for p in proofs.values() for task_id, r in p.noop_rewards.items()}
    assert len(by_task) == len(bundle.tasks)
    rewards = {t["id"]: run_episode(bundle, t, NoopAgent()).reward for t in bundle.tasks}
    assert rewards == pytest.approx(by_task)
    assert proofs["look_up_order"].noop_mean == pytest.approx(0.75)  # not 0: the comparison is not vacuous


def test_manifest_and_command_line_report_the_proofs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = ROOT / "tests" / "fixtures" / "proofs" / "aq617_do_nothing_earns_partial_credit.yaml"
    root, _ = _tree_with(fixture, tmp_path)
    assert compile_main([str(root), "-o", str(tmp_path / "build")]) == 0
    captured = capsys.readouterr()
    assert "warning[AQ617]" in captured.err and "docs/training.md" in captured.err
    assert "doing nothing earns (mean reward per workflow): assign_technician_to_order 0.00" in captured.out
    assert "look_up_order 0.75" in captured.out
    manifest = json.loads((tmp_path / "build" / "plant_maintenance" / "manifest.json").read_text())
    assert manifest["format_version"] == "1.2"
    assert manifest["proofs"]["look_up_order"] == {"tasks": 6, "do_nothing_mean_reward": 0.75,
                                                   "do_nothing_succeeds": 0, "extra_read_tried": 6,
                                                   "extra_read_fails": 0}
    assert manifest["proofs"]["line_backlog"]["do_nothing_mean_reward"] == 0.0


PYTHON_WRITE_TOOL = '''
---
kind: Tool
name: mark_delivered
domain: retail
description: Mark a pending order delivered (a Python function).
access: write
params:
  order_id: str
implementation:
  python: proof_tools:mark_delivered
---
kind: Workflow
name: deliver
domain: retail
slots:
  order: sample(orders where status == "pending")
tree:
  - call: get_order(order_id=order.id)
  - call: mark_delivered(order_id=order.id)
instruction: "Order {{ order.id }} arrived; mark it delivered."
---
kind: Verifier
name: deliver_ok
for: deliver
checks:
  - same_final_state_as_gold
  - require: get_order(order_id=order.id)
  - forbid: cancel_order
'''


def test_proofs_with_a_python_tool_that_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``python:`` write tool changes the state behind the journal: the proofs copy the state instead, and still
    agree with the runtime's noop agent (which compares whole states for such a domain)."""
    (tmp_path / "proof_tools.py").write_text(
        "def mark_delivered(state, order_id):\n"
        "    state['orders'][order_id]['status'] = 'delivered'\n"
        "    return state['orders'][order_id]\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "fixtures" / "retail" / "pytools"))
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "tests" / "fixtures" / "retail" / "specs", specs)
    with (specs / "domain.yaml").open("a", encoding="utf-8") as f:
        f.write(PYTHON_WRITE_TOOL)
    project = compile_specs(specs)
    proof = project.domains["retail"].proofs["deliver"]
    assert proof.tasks > 0 and proof.extra_read_tried == proof.tasks
    # doing nothing: the state is not the gold's (the order stays pending) and get_order was not called
    assert proof.noop_mean == pytest.approx(1 / 3) and not proof.noop_successes
    write_bundles(project, tmp_path / "build")
    bundle = Bundle.load(tmp_path / "build" / "retail")
    for task in bundle.tasks:
        expected = project.domains["retail"].proofs[task["workflow"]].noop_rewards[task["id"]]
        assert run_episode(bundle, task, NoopAgent()).reward == pytest.approx(expected), task["id"]
