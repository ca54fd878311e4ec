"""What counts as telling the user a value (``tells_user`` checks and the scripted user's "have I heard it all")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.semantics.user import heard_everything, leaves_before_the_end
from aqwen_spec.semantics.verify import mentions
from runtime.episodes.users import STOP, ScriptedUser

FIXTURES = Path(__file__).resolve().parent / "fixtures"

STATED = [
    ("how many are in stock: 0", 0),
    ("the change is -5 units", -5),
    ("3.5 units", 3.5),
    ("1,250 units this week", 1250),
    ("the rate is 5%", 5),
    ("in total: 12.", 12),
    ("It is 12, as planned", 12),
    ("weight 12.50 kg", 12.5),
    ("it costs $7.25", 7.25),
    ("x=7", 7),
    ("on line L1.", "L1"),
    ("wo-1002 is closed", "WO-1002"),
    ("(ok)", "ok"),
    ("Ben Okafor is assigned", "Ben Okafor"),
    ("a servo drive fuse.", "servo drive fuse"),
    ("reserved on 2025-03-03", "2025-03-03"),
    ("yes, it is", True),
    ("it is not", False),
    ("stock 0 on L2", [0, "L2"]),
    ("stock 4 of P-11", {"part": "P-11", "stock": 4}),
    ("anything", None),
]

NOT_STATED = [
    ("work order WO-1002", 0),  # a digit of an id is not a number told
    ("work order WO-1002", 1002),
    ("part P-300", 300),
    ("3.5 units", 3),
    ("the 3rd shift", 3),
    ("on 2025-03-03", 3),
    ("on line L10", "L1"),
    ("work order WO-1002", "WO-100"),
    ("it is booked", "ok"),
    ("stock 0 on L2", [0, "L3"]),
    ("nothing to say", 0),
    ("it is", True),
]


@pytest.mark.parametrize(("text", "value"), STATED)
def test_stated(text: str, value: Any) -> None:
    assert mentions(text, value)


@pytest.mark.parametrize(("text", "value"), NOT_STATED)
def test_not_stated(text: str, value: Any) -> None:
    assert not mentions(text, value)


# --- numbers compare equal across int and float forms and formatting ---------------------------------------------

NUMERIC_FORMS = [  # (what the agent says, the value, told?)
    ("25", 25, True),
    ("25.0", 25, True),
    ("25.00", 25, True),
    ("25.000 units", 25, True),
    ("$25.00.", 25, True),
    ("25", 25.0, True),  # a float value said as an int
    ("25.00", 25.0, True),
    ("2.50 kg", 2.5, True),
    ("1,234.50", 1234.5, True),
    ("-3.0", -3, True),
    ("0.00", 0, True),
    ("0.3", 0.1 + 0.2, True),  # a float's rounding noise is not the agent's mistake
    ("0.33", 1 / 3, True),  # two decimals are enough
    ("25.01", 25, False),
    ("25.5", 25, False),
    ("125.00", 25, False),
    ("2.5", 25, False),
    ("25,00", 25, False),  # a decimal comma reads as 2,500
    ("WO-25.00", 25, False),
]


@pytest.mark.parametrize(("text", "value", "told"), NUMERIC_FORMS)
def test_numbers_in_any_form(text: str, value: Any, told: bool) -> None:
    """``tells_user`` and the scripted user's "heard it all" rule are one rule: they agree on every form."""
    assert mentions(text, value) is told
    assert heard_everything([{"about": "the answer", "value": value}], text) is told
    task = {"user": {"instruction": "How many?"}, "gold": {"informs": [{"about": "the answer", "value": value}],
                                                          "outcome": "done"}}
    assert (STOP in ScriptedUser(task).reply(f"The answer: {text}")) is told


@pytest.mark.parametrize("said", ["25", "25.0", "25.00"])
@pytest.mark.parametrize("workflow", ["bin_count", "bin_weight"])
def test_a_numeric_answer_given_as_25_00_succeeds(said: str, workflow: str, tmp_path: Path) -> None:
    """The stockroom fixture stores 25 as an int (count) and 25.0 as a float (weight): an episode that looks the bin
    up and answers in any of the three forms succeeds, and the scripted user ends the conversation on it."""
    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import Environment

    write_bundles(compile_specs(FIXTURES / "numeric"), tmp_path)
    bundle = Bundle.load(tmp_path / "stockroom")
    task = next(t for t in bundle.tasks if t["workflow"] == workflow)
    env = Environment(bundle, task)
    env.reset()
    env.step('<tool_call>{"name": "get_bin", "arguments": {"bin_id": "B-1"}}</tool_call>')
    step = env.step(f"Bin B-1: {said}")
    assert step.done and env.terminated_by == "user_stop"
    result = step.info["result"]
    assert result.success and result.reward == 1.0, result.score.failed()


def _gold(*messages: tuple[str, str, bool], informs: Any = ("WO-7",)) -> dict[str, Any]:
    """A gold of (role, content, makes a tool call) messages, informing the user of ``informs``."""
    return {"outcome": "done", "informs": [{"about": "x", "value": v} for v in informs],
            "messages": [{"role": r, "content": c, **({"tool_calls": [{"name": "t", "arguments": {}}]} if t else {})}
                         for r, c, t in messages]}


@pytest.mark.parametrize(("gold", "expected"), [
    (_gold(("assistant", "Which order?", False), ("user", "WO-7", False), ("assistant", "", True),
           ("assistant", "WO-7 is closed.", False)), None),  # values stated last: nothing after needs the user
    (_gold(("assistant", "WO-7 is closed.", False), ("assistant", "", True), ("tool", "{}", False)), (0, 1)),
    (_gold(("assistant", "Done.", False), ("assistant", "", True), ("assistant", "WO-7 it was.", False)), None),
    (_gold(("assistant", "WO-7.", False), ("assistant", "More?", False), ("assistant", "", True)), (0, 1)),
    (_gold(("assistant", "Noted.", False), ("assistant", "", True), informs=()), (0, 1)),
    (_gold(("assistant", "", True)), None),
    ({**_gold(("assistant", "WO-7.", False), ("assistant", "", True)), "outcome": "refused"}, None),
])
def test_where_the_scripted_user_walks_out(gold: dict[str, Any], expected: Any) -> None:
    assert leaves_before_the_end(gold) == expected


@pytest.mark.parametrize(("text", "of_path"), [
    ('branch == "close"', True),
    ('branch in ["close", "refuse"] and not (path == [])', True),
    ('branch == wo.id', False),  # a slot: not the path's alone
    ('len(path) > 1', False),  # calls are left to the evaluator
    ('status == "closed"', False),  # a state field
])
def test_conditions_remembered_per_path_read_only_the_path(text: str, of_path: bool) -> None:
    from aqwen_spec.expr import parse_expr
    from aqwen_spec.semantics.verify import _of_path

    assert _of_path(parse_expr(text)) is of_path


def test_a_condition_on_the_branch_applies_per_path_however_often_asked() -> None:
    """A check's ``when`` on the branch is remembered per path: scores alternate between paths as evaluated afresh;
    a ``when`` that reads a slot is evaluated every time."""
    from dataclasses import replace

    from aqwen_spec.expr import parse_expr
    from aqwen_spec.semantics.verify import CallRecord, Evidence, score
    from compiler import compile_specs

    specs = compile_specs(Path(__file__).resolve().parents[1] / "specs").specs
    verifier = next(v for v in specs.verifiers_of("close_after_repair") if v.name == "close_after_repair_ok")
    state = {"work_orders": {"WO-1": {"id": "WO-1", "status": "closed"}}}
    calls = [CallRecord("get_work_order", {"order_id": "WO-1"}, True), CallRecord("close_work_order",
                                                                                   {"order_id": "WO-1"}, True)]

    def evidence(path: list[str], wo: str = "WO-1") -> Evidence:
        return Evidence(calls=calls, assistant_text="WO-1 is closed", final_state=state, initial_state=state,
                        slots={"wo": {"id": wo}}, path=path, gold_final_state=state, outcome="done")

    applies = {"close": [True, True, True, False, True, True], "refuse_unsafe": [True, True, True, True, False, False]}
    for branch in ["close", "refuse_unsafe", "close", "refuse_unsafe"]:
        result = score(verifier, evidence([branch]))
        assert [c.applicable for c in result.checks] == applies[branch]
        assert result.reward == (1.0 if branch == "close" else 0.0)  # the forbidden close counts on refuse_unsafe
    # a condition reading a slot: the same path, other values, other answers
    own = replace(verifier, checks=[replace(verifier.checks[-1], when=parse_expr('wo.id == "WO-1"'))])
    assert [score(own, evidence(["close"], wo)).checks[0].applicable for wo in ["WO-1", "WO-2", "WO-1"]] == \
        [True, False, True]
