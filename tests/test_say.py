"""``say:`` templates: the gold's assistant messages in words, checked to work with the simulated user and verifiers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aqwen_spec.diagnostics import SpecError
from aqwen_spec.lint import lint_paths
from aqwen_spec.semantics.user import reads_as, say_problem
from compiler import compile_specs, write_bundles
from runtime.episodes.agents import OracleAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.evaluate import run_episode

SPECS = Path(__file__).resolve().parents[1] / "specs"

ASK = "    - ask_user: {about: the work order id, reveals: wo.id}\n"
CLOSE = "            - inform_user: {value: wo.id, about: the closed work order}\n"
REFUSE = '          otherwise: refuse(reason="critical work order without a recorded safety check")\n'


def _specs(tmp_path: Path, **replace: str) -> tuple[Path, str]:
    target = tmp_path / "specs"
    shutil.copytree(SPECS, target)
    wf = target / "plant_maintenance" / "workflows.yaml"
    text = wf.read_text()
    for old, new in replace.values():  # type: ignore[misc]
        assert old in text
        text = text.replace(old, new, 1)
    wf.write_text(text)
    return target, text


NATURAL = {
    "ask": (ASK, '    - ask_user: {about: the work order id, reveals: wo.id, say: "Which work order is it?"}\n'),
    "close": (CLOSE, "            - inform_user: {value: wo.id, about: the closed work order, say: \"All set: "
                     "work order {{ value }} is closed and {{ wo.machine_id }} is back in service.\"}\n"),
    "refuse": (REFUSE, "          otherwise:\n            refuse: {reason: no recorded safety check, say: \"I'm sorry"
                       ", I can't close a critical work order before a safety check is recorded.\"}\n"),
}


def test_say_texts_become_the_gold_and_the_oracle_still_scores_one(tmp_path: Path) -> None:
    specs, _ = _specs(tmp_path, **NATURAL)  # type: ignore[arg-type]
    project = compile_specs(specs)
    write_bundles(project, tmp_path / "build")
    bundle = Bundle.load(tmp_path / "build" / "plant_maintenance")
    tasks = [t for t in bundle.tasks if t["workflow"] == "close_after_repair"]
    said = {m["content"] for t in tasks for m in t["gold"]["messages"] if m["role"] == "assistant"}
    assert "Which work order is it?" in said
    closed = [t for t in tasks if t["branch"] == "close"]
    refused = [t for t in tasks if t["branch"] == "refuse_unsafe"]
    assert closed and refused
    for task in closed:
        wo = task["slots"]["wo"]
        assert (f"All set: work order {wo['id']} is closed and {wo['machine_id']} is back in service."
                in [m["content"] for m in task["gold"]["messages"]])
    for task in refused:
        assert task["gold"]["messages"][-1]["content"].startswith("I'm sorry, I can't close a critical")
    for task in tasks:  # the scripted user and the verifiers read the worded gold as they read the plain one
        result = run_episode(bundle, task, OracleAgent())
        assert result.reward == 1.0, (task["id"], result)


def _compile_error(specs: Path) -> list:  # type: ignore[type-arg]
    with pytest.raises(SpecError) as info:
        compile_specs(specs)
    return [d for d in info.value.diagnostics if d.code == "AQ623"]


def test_an_inform_that_does_not_state_its_value_is_a_compile_error(tmp_path: Path) -> None:
    bad = CLOSE.replace("}", ', say: "All done, the order is closed."}')
    specs, text = _specs(tmp_path, close=(CLOSE, bad))
    [diag] = _compile_error(specs)
    line = text.splitlines().index(bad.rstrip("\n")) + 1
    assert diag.path.endswith("workflows.yaml") and (diag.pos.line, diag.pos.col) == (line, 15)
    assert "does not state the value" in diag.message and "close_after_repair/close/" in diag.message


@pytest.mark.parametrize(("name", "old", "new", "why"), [
    ("refuse", REFUSE, '          otherwise:\n            refuse: {reason: unsafe, say: "That one needs a safety check '
                       'first."}\n', "must read as a refusal"),
    ("ask", ASK, '    - ask_user: {about: the work order id, reveals: wo.id, say: "Tell me the work order id."}\n',
     "must read as a question"),
])
def test_a_say_that_reads_as_another_action_is_a_compile_error(tmp_path: Path, name: str, old: str, new: str,
                                                               why: str) -> None:
    specs, _ = _specs(tmp_path, edit=(old, new))
    [diag] = _compile_error(specs)
    assert why in diag.message


def test_a_say_naming_an_unknown_value_is_a_lint_error(tmp_path: Path) -> None:
    bad = CLOSE.replace("}", ', say: "Closed {{ order }}."}')
    specs, text = _specs(tmp_path, close=(CLOSE, bad))
    diags = [d for d in lint_paths([specs]).diagnostics if d.code == "AQ309"]
    assert len(diags) == 1 and "order" in diags[0].message
    assert diags[0].pos.line == text.splitlines().index(bad.rstrip("\n")) + 1


@pytest.mark.parametrize(("text", "reading"), [
    ("Which work order is it?", "question"), ("Shall I go ahead and close it?", "confirmation"),
    ("I'm sorry, I can't do that.", "refusal"), ("Work order WO-1 is closed.", "statement"),
])
def test_how_the_user_reads_a_message(text: str, reading: str) -> None:
    assert reads_as(text) == reading


def test_say_problem_rules() -> None:
    assert say_problem("inform_user", "You have 25.00 units left.", 25) is None
    assert say_problem("inform_user", "You have units left.", 25) is not None
    assert say_problem("confirm", "Is that right?") is not None  # a question, but not asking for the go-ahead
    assert say_problem("confirm", "Shall I proceed?") is None
    assert say_problem("refuse", "  ") == "it renders to an empty message"
