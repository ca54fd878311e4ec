"""What lints clean runs clean, at run time: ``state`` is bound, ``returns`` sees the effects, and a run-time error
in a tool's own expressions is a spec defect (``spec_error``), never a precondition's refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.check import check_paths
from aqwen_spec.diagnostics import SpecError
from aqwen_spec.semantics import ToolRunner, copy_state
from compiler import compile_specs, write_bundles
from runtime.episodes.bundle import Bundle
from runtime.episodes.env import Environment

DOMAIN = """\
kind: Domain
name: club
types:
  User: {id: str, name: str, active: bool, visits: int}
state:
  counter: int
  users: map[User]
initial_state:
  data:
    counter: 0
    users:
      U-1: {id: U-1, name: Ana, active: true, visits: 0}
      U-2: {id: U-2, name: Ben, active: false, visits: 3}
---
kind: Tool
name: bump
domain: club
description: Count one more visitor.
requires:
  - when: state.counter >= 0
    error: the counter is broken
effects: state.counter += 1
returns: state.counter
---
kind: Tool
name: get_user
domain: club
description: A member, if active.
access: read
params:
  uid: str
requires:
  - when: users[uid].active
    error: "{{ uid }} is not active"
returns: users[uid]
---
kind: Tool
name: add_user
domain: club
description: Add a member with a fresh id.
params:
  name: str
effects: |
  let id = f"U-{len(users) + 1}"
  users[id] = {id: id, name: name, active: true, visits: 0}
returns: users[id]
---
kind: Tool
name: visit
domain: club
description: Record a visit; every 'per' visits, something.
params:
  uid: str
  per: int
requires:
  - when: uid in users
    error: "no member {{ uid }}"
effects: |
  users[uid].visits += 1
  state.counter = users[uid].visits // per
returns: users[uid]
---
kind: Tool
name: rename
domain: club
description: Rename a member; the result names a second member too.
params:
  uid: str
  name: str
  other: str
requires:
  - when: uid in users
    error: "no member {{ uid }}"
effects: users[uid].name = name
returns: "[users[uid], users[other]]"
---
kind: Tool
name: named
domain: club
description: How many members have this name (a parameter named state hides the whole state).
access: read
params:
  state: str
returns: count(users, name == state)
---
kind: Workflow
name: greet
domain: club
slots:
  u: choice([k for k in keys(state.users) if state.users[k].active])
tree:
  - get_user(uid=u)
  - bump
  - inform_user: {value: u, about: the member}
instruction: "Greet {{ u }}."
---
kind: Verifier
name: greet_ok
for: greet
checks:
  - assert: state.counter == initial.counter + 1
  - tells_user: u
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("club") / "specs"
    root.mkdir()
    (root / "club.yaml").write_text(DOMAIN, encoding="utf-8")
    return root


@pytest.fixture()
def runner(tree: Path) -> tuple[ToolRunner, dict[str, Any]]:
    checked = check_paths([tree])
    assert not checked.diagnostics.has_errors(), [str(d) for d in checked.diagnostics.errors]
    assert [d.code for d in checked.diagnostics if d.code == "AQ504"] == ["AQ504"]
    state = copy_state(checked.specs.domains["club"].initial_data)
    return ToolRunner(checked.specs.tools_of("club"), state), state


def test_state_is_bound_in_when_effects_and_returns(runner: tuple[ToolRunner, dict[str, Any]]) -> None:
    tools, state = runner
    outcome = tools.call("bump", {})
    assert outcome.ok, outcome.error
    assert outcome.value == 1 and state["counter"] == 1
    assert tools.call("bump", {}).value == 2


def test_a_parameter_named_state_hides_the_state(runner: tuple[ToolRunner, dict[str, Any]]) -> None:
    tools, _ = runner
    assert tools.call("named", {"state": "Ana"}).value == 1


def test_returns_sees_the_effects_and_their_locals(runner: tuple[ToolRunner, dict[str, Any]]) -> None:
    tools, state = runner
    outcome = tools.call("add_user", {"name": "Chen"})
    assert outcome.ok, outcome.error
    assert outcome.value == {"id": "U-3", "name": "Chen", "active": True, "visits": 0} == state["users"]["U-3"]
    seen = tools.call("visit", {"uid": "U-2", "per": 2})
    assert seen.ok and seen.value["visits"] == 4 and state["counter"] == 2


@pytest.mark.parametrize(
    ("name", "args", "part", "message"),
    [
        ("get_user", {"uid": "U-9"}, "precondition 1 of get_user", "no entry 'U-9'"),
        ("visit", {"uid": "U-1", "per": 0}, "effects of visit", "division by zero"),
        ("rename", {"uid": "U-1", "name": "Ada", "other": "U-9"}, "returns of rename", "no entry 'U-9'"),
    ],
)
def test_a_run_time_error_in_a_tool_is_a_spec_error(
    runner: tuple[ToolRunner, dict[str, Any]], name: str, args: dict[str, Any], part: str, message: str
) -> None:
    tools, state = runner
    before = copy_state(state)
    outcome = tools.call(name, args)
    assert not outcome.ok and outcome.error_kind == "spec_error"
    error = str(outcome.error)
    assert error.startswith("environment defect: ") and part in error and message in error
    assert "not active" not in error  # never the precondition's message
    assert outcome.defect is not None and outcome.defect.pos is not None
    assert state == before  # all or nothing, also when only returns fails


def test_a_false_precondition_is_still_a_refusal(runner: tuple[ToolRunner, dict[str, Any]]) -> None:
    tools, _ = runner
    outcome = tools.call("get_user", {"uid": "U-2"})
    assert outcome.error_kind == "precondition" and outcome.error == "U-2 is not active"


def test_the_episode_counts_spec_errors(tree: Path, tmp_path: Path) -> None:
    write_bundles(compile_specs(tree), tmp_path)
    bundle = Bundle.load(tmp_path / "club")
    env = Environment(bundle, bundle.tasks[0])
    env.reset()
    call = '<tool_call>{"name": "get_user", "arguments": {"uid": "U-9"}}</tool_call>'
    step = env.step(call)
    assert step.info["spec_error"] == 1 and step.info["errors"] == ["spec_error"]
    assert "environment defect" in json.loads(step.observations[0]["content"])["error"]
    result = env.result()
    assert result.metrics["spec_error"] == 1 and result.metrics.get("malformed", 0) == 0


def test_a_gold_call_that_hits_a_spec_error_is_a_located_compile_error(tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "specs"
    root.mkdir()
    text = DOMAIN.replace("choice([k for k in", 'choice(["U-7"] + [k for k in')
    (root / "club.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        compile_specs(root)
    [diag] = [d for d in info.value.diagnostics if d.code == "AQ620"]
    lines = text.splitlines()
    line = next(i for i, s in enumerate(lines, 1) if s == "  - when: users[uid].active")
    assert (diag.pos.line, diag.pos.col) == (line, lines[line - 1].index("users") + 1)
    assert "precondition 1 of get_user" in diag.message and "no entry 'U-7'" in diag.message
    assert diag.hint and "guard it" in diag.hint
