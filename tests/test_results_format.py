"""Results and errors as the model sees them (``aqwen_spec.results``): formats, error templates, and a port of a
Python tool class (``tests/fixtures/ticket_desk``) replayed call by call against the original."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.results import DEFAULT, ResultFormat, render_error, render_result

ROOT = Path(__file__).resolve().parents[1]
DESK = ROOT / "tests" / "fixtures" / "ticket_desk"

VALUES: list[Any] = [None, True, False, 0, -3, 2.5, 1e-7, 10**20, "", "Transfer successful", "it's", 'say "hi"',
                     "naïve ✓", ["a"], [], {}, {"k": 1}, {"b": [1, {"x": None}], "a": "é"}, [True, None, 1.0],
                     {"quote": "it's \"both\""}]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_python_format_is_what_python_prints(value: Any) -> None:
    assert render_result(value, ResultFormat(format="python")) == str(value)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_text_format_shows_strings_as_they_are_and_the_rest_as_json(value: Any) -> None:
    shown = render_result(value, ResultFormat(format="text"))
    assert shown == (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


@pytest.mark.parametrize("value", VALUES, ids=repr)
@pytest.mark.parametrize("options", [{}, {"sort_keys": True}, {"separators": (",", ":")}, {"indent": 2},
                                     {"ensure_ascii": True}, {"indent": 1, "sort_keys": True, "ensure_ascii": True}])
def test_json_options_are_pythons(value: Any, options: dict[str, Any]) -> None:
    fmt = ResultFormat(**options)
    expected = json.dumps(value, **{"ensure_ascii": False, **options})
    assert render_result(value, fmt) == expected


def test_the_default_is_unchanged() -> None:
    assert render_result({"a": "é", "b": [1, 2]}) == '{"a": "é", "b": [1, 2]}'
    assert render_error("no order WO-1") == '{"error": "no order WO-1"}'
    assert DEFAULT.merged({}) is DEFAULT and DEFAULT.merged({"format": "json"}) is DEFAULT
    assert ResultFormat.from_json(DEFAULT.to_json()) is DEFAULT and DEFAULT.to_json() == {}


def test_error_formats() -> None:
    text = ResultFormat(error="Error: {{ message }} ({{ tool }}, {{ kind }})")
    assert render_error("no order 7", text, "close", "precondition") == "Error: no order 7 (close, precondition)"
    mapping = ResultFormat(error={"status": "error", "ok": False, "detail": "{{ message }}"}, separators=(",", ":"))
    assert render_error("x", mapping) == '{"status":"error","ok":false,"detail":"x"}'
    python = ResultFormat(format="python")
    assert render_error("no order 7", python) == "{'error': 'no order 7'}"
    assert ResultFormat.from_json(mapping.to_json()) == mapping


@pytest.fixture(scope="module")
def desk_bundle(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle

    [folder] = write_bundles(compile_specs(DESK / "specs", tasks_per_branch=2), tmp_path_factory.mktemp("desk"))
    return Bundle.load(folder)


def _original() -> Any:
    spec = importlib.util.spec_from_file_location("ticket_desk_original", DESK / "original.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TicketDesk()


def _random_call(rng: random.Random, ids: list[str]) -> tuple[str, dict[str, Any]]:
    some_id = rng.choice([*ids, "T-99", ""])
    name = rng.choice(["open_ticket", "get_ticket", "list_open", "close_ticket", "ticket_json"])
    if name == "open_ticket":
        return name, {"subject": rng.choice(["", "VPN down", "Écran noir", "it's 'quoted'"])}
    if name == "list_open":
        return name, {}
    return name, {"ticket_id": some_id}


def test_a_port_shows_what_the_python_original_shows(desk_bundle: Any) -> None:
    from runtime.episodes.env import EpisodeConfig, Environment

    rng = random.Random(13)
    for episode in range(3):
        env = Environment(desk_bundle, desk_bundle.tasks[0], config=EpisodeConfig(max_tool_calls=1000))
        env.reset()
        desk = _original()
        for _ in range(150):
            name, args = _random_call(rng, list(desk.tickets))
            expected = desk.call(name, args)
            assert env.call_tool(name, args) == expected, (episode, name, args)
            assert env.last_call_ok == (not expected.startswith(("Error:", '{"detail":')))
        assert env.state == {"tickets": desk.tickets, "next_id": desk.next_id}
        env.close()


def test_gold_trajectories_show_results_in_the_format(desk_bundle: Any) -> None:
    task = desk_bundle.tasks[0]
    shown = {m["name"]: m["content"] for m in task["gold"]["messages"] if m["role"] == "tool"}
    desk = _original()
    ticket = task["slots"]["t"]["id"]
    assert shown["get_ticket"] == str(desk.get_ticket(ticket))
    assert shown["close_ticket"] == "None"
    assert task["gold"]["calls"][-1]["result"] is None


def test_the_runtimes_own_errors_use_the_domains_error_format(desk_bundle: Any) -> None:
    from runtime.episodes.env import Environment

    env = Environment(desk_bundle, desk_bundle.tasks[0])
    env.reset()
    assert env.call_tool("reopen", {}).startswith("Error: unknown tool 'reopen'; tools: ")
    assert env.call_tool("get_ticket", {"id": "T-1"}) == \
        "Error: get_ticket has no argument 'id' (arguments: ticket_id)"
    assert env.call_tool("ticket_json", {}) == \
        '{"detail":"ticket_json is missing argument \'ticket_id\'","status":"error","tool":"ticket_json"}'
    step = env.step("<tool_call>{not json</tool_call>")
    assert step.observations[0]["content"].startswith("Error: could not parse a tool call")
    assert env.call_tool("transfer_to_human", {"reason": "x"}) == "{'status': 'transferred'}"
    assert env.call_tool("list_open", {}) == "Error: the episode is over"
    env.close()


def test_a_bundle_that_sets_a_format_is_format_2(desk_bundle: Any) -> None:
    assert desk_bundle.manifest["format_version"] == "2.0"
    assert desk_bundle.domain.result == ResultFormat(format="python", error="Error: {{ message }}")
    assert desk_bundle.tools["ticket_json"].result.separators == (",", ":")
