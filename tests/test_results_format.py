"""Results and errors as the model sees them (``aqwen_spec.results``): formats, error templates, and a port of a
Python tool class (``tests/fixtures/ticket_desk``) replayed call by call against the original."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from port_originals import load_original

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
    return load_original(DESK / "original.py", "TicketDesk")


def _random_call(rng: random.Random, ids: list[str]) -> tuple[str, dict[str, Any]]:
    some_id = rng.choice([*ids, "T-99", ""])
    name = rng.choice(["open_ticket", "get_ticket", "list_open", "close_ticket", "ticket_json", "assign_agent"])
    if name == "open_ticket":
        return name, {"subject": rng.choice(["", "VPN down", "Écran noir", "it's 'quoted'"])}
    if name == "list_open":
        return name, {}
    return name, {"ticket_id": some_id}


def test_a_port_shows_what_the_python_original_shows(desk_bundle: Any) -> None:
    from runtime.episodes.env import Environment, EpisodeConfig

    rng = random.Random(13)
    undone = 0
    for episode in range(3):
        env = Environment(desk_bundle, desk_bundle.tasks[0], config=EpisodeConfig(max_tool_calls=1000))
        env.reset()
        desk = _original()
        for _ in range(150):
            name, args = _random_call(rng, list(desk.tickets))
            expected = desk.call(name, args)
            undone += expected.endswith("is closed")  # drew, then failed: the draws are undone
            assert env.call_tool(name, args) == expected, (episode, name, args)
            assert env.last_call_ok == (not expected.startswith(("Error:", '{"detail":')))
        assert env.state == {"tickets": desk.tickets, "next_id": desk.next_id}
        env.close()
    assert undone > 5


def test_gold_trajectories_show_results_in_the_format(desk_bundle: Any) -> None:
    task = next(t for t in desk_bundle.tasks if t["workflow"] == "close_a_ticket")
    shown = {m["name"]: m["content"] for m in task["gold"]["messages"] if m["role"] == "tool"}
    desk = _original()
    ticket = task["slots"]["t"]["id"]
    assert shown["get_ticket"] == str(desk.get_ticket(ticket))
    assert shown["close_ticket"] == "None"
    assert task["gold"]["calls"][-1]["result"] is None
    assert shown["assign_agent"] == desk.call("assign_agent", {"ticket_id": ticket})  # the same first draws
    assert task["clock"] == {"today": "2024-05-31", "now": "2024-05-31T09:00:00"} and task["random_seed"] == 42


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
    assert env.call_tool("transfer_to_human", {"reason": "x"}) == "Error: transfer_to_human is missing argument " \
        "'destination' (one of: billing, dispatch_supervisor, emergency_line)"
    assert env.call_tool("transfer_to_human", {"reason": "x", "destination": "biling"}) == \
        'Error: unknown destination "biling"; destinations: billing, dispatch_supervisor, emergency_line'
    assert not env.done and env.counts["malformed"] == 6
    assert env.call_tool("transfer_to_human", {"reason": "x", "destination": "billing"}) == \
        "{'status': 'transferred'}"
    assert env.call_tool("list_open", {}) == "Error: the episode is over"
    env.close()


def _lazy_episode(bundle: Any, task: dict[str, Any], read_every_call: bool, seed: int, eager: bool = False
                  ) -> tuple[Any, ...]:
    """An episode of call_tool calls (reads, writes, refusals, bad arguments, unknown tools), assistant turns
    and a transfer, its messages, calls and counts read after every call or only at the end; ``eager``: every
    call recorded at once, through the path of the transfer tool and the spent budget."""
    from runtime.episodes.env import Environment, EpisodeConfig

    env = Environment(bundle, task, config=EpisodeConfig(max_tool_calls=14))
    env.reset()
    if eager:
        env.call_tool = env._call_tool  # type: ignore[method-assign]
    rng = random.Random(seed)
    calls = [("get_ticket", {"ticket_id": "T-1"}), ("get_ticket", {"ticket_id": "T-9"}), ("get_ticket", {}),
             ("get_ticket", {"ticket_id": 3}), ("assign_agent", {"ticket_id": "T-1"}), ("reopen", {"x": 1}),
             ("ticket_json", {"ticket_id": "T-1"}), ("close_ticket", {"ticket_id": "T-1"}), ("list_open", {}),
             ("get_ticket", {"ticket_id": "T-1", "extra": True})]
    seen: list[Any] = []
    reads: list[Any] = []
    for i in range(18):
        if i % 7 == 6:  # an assistant turn with a call of its own, and one that does not parse
            seen.append(env.step('<tool_call>{"name": "get_ticket", "arguments": {"ticket_id": "T-1"}}</tool_call>'
                                 "<tool_call>{not json</tool_call>").observations)
        else:
            name, args = rng.choice(calls)
            seen.append((env.call_tool(name, args), env.last_call_ok, env.tool_calls))
        if read_every_call:
            reads.append((json.dumps(env.messages), list(env.calls), env.counts))
    seen.append(env.call_tool("transfer_to_human", {"reason": "x", "destination": "billing"}))
    seen.append(env.call_tool("list_open", {}))
    messages, records, counts = json.dumps(env.messages), list(env.calls), list(env.counts.items())
    result = json.dumps(env.result().to_json())
    env.close()
    return seen, reads[-1] if reads else None, messages, records, counts, result


@pytest.mark.parametrize("seed", range(4))
def test_call_tool_records_the_same_whenever_the_record_is_read(desk_bundle: Any, seed: int) -> None:
    """call_tool writes its calls into messages, calls and counts only when one of them is read: what is read is
    the same as when they are read after every call (order, keys, the scored result, the budget's end)."""
    task = desk_bundle.tasks[0]
    lazy = _lazy_episode(desk_bundle, task, False, seed)
    read = _lazy_episode(desk_bundle, task, True, seed)
    eager = _lazy_episode(desk_bundle, task, True, seed, eager=True)
    assert lazy[0] == read[0] == eager[0] and lazy[2:] == read[2:] == eager[2:]
    assert read[1] == eager[1] and read[1][0] == lazy[2]  # the last read: the messages before the transfer
    messages = json.loads(lazy[2])
    tool_messages = [m for m in messages if m["role"] == "tool"]
    assert len(lazy[3]) == 14 and len(tool_messages) == 14 + 2  # the budget: 14 calls, two parse errors
    assert lazy[0][-1] == "Error: the episode is over"
    first = next(i for i, m in enumerate(messages) if m.get("tool_calls"))
    assert messages[first]["content"] == "" and messages[first + 1]["role"] == "tool"
    assert dict(lazy[4])["tool_calls"] == 14


def test_a_bundle_that_sets_a_format_is_format_2(desk_bundle: Any) -> None:
    assert desk_bundle.manifest["format_version"] == "2.0"
    assert desk_bundle.domain.result == ResultFormat(format="python", error="Error: {{ message }}")
    assert desk_bundle.tools["ticket_json"].result.separators == (",", ":")


def _replay_gold(bundle: Any, task: dict[str, Any]) -> list[str]:
    from runtime.episodes.env import Environment

    env = Environment(bundle, task)
    env.reset()
    shown = [env.call_tool(c["name"], c["arguments"]) for c in task["gold"]["calls"]]
    env.close()
    return shown


def test_an_episode_replays_its_gold_draws(desk_bundle: Any, tmp_path: Path) -> None:
    """The runtime's episode draws what the compiler's gold run drew: from the domain's seed, or without one from
    the task's own seed (different tasks, different draws)."""
    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle

    for task in desk_bundle.tasks:
        shown = [m["content"] for m in task["gold"]["messages"] if m["role"] == "tool"]
        assert _replay_gold(desk_bundle, task) == shown
    specs = tmp_path / "specs"
    specs.mkdir()
    text = (DESK / "specs" / "desk.yaml").read_text(encoding="utf-8")
    (specs / "desk.yaml").write_text(text.replace("random: {seed: 42}\n", ""), encoding="utf-8")
    [folder] = write_bundles(compile_specs(specs, tasks_per_branch=2), tmp_path / "build")
    bundle = Bundle.load(folder)
    seeds = {t["random_seed"] for t in bundle.tasks}
    assert len(seeds) > 1 and 42 not in seeds
    for task in bundle.tasks:
        shown = [m["content"] for m in task["gold"]["messages"] if m["role"] == "tool"]
        assert _replay_gold(bundle, task) == shown
        if task["workflow"] != "close_a_ticket":
            continue
        desk = _original()
        desk.rng = random.Random(task["random_seed"])
        assert shown[1] == desk.call("assign_agent", {"ticket_id": task["slots"]["t"]["id"]})


DRAWS = [("rng_randint(1, 6)", lambda r: r.randint(1, 6)), ("rng_randrange(10)", lambda r: r.randrange(10)),
         ("rng_randrange(5, 50, 5)", lambda r: r.randrange(5, 50, 5)),
         ('rng_choice(["a", "b", "c"])', lambda r: r.choice(["a", "b", "c"])),
         ('rng_choice("xyz")', lambda r: r.choice("xyz")), ("rng_random()", lambda r: r.random()),
         ("rng_uniform(1.5, 2)", lambda r: r.uniform(1.5, 2)), ("rng_getrandbits(64)", lambda r: r.getrandbits(64)),
         ("rng_sample([1, 2, 3, 4], 2)", lambda r: r.sample([1, 2, 3, 4], 2)),
         ("rng_shuffle([1, 2, 3, 4])", lambda r: (lambda xs: (r.shuffle(xs), xs)[1])([1, 2, 3, 4])),
         ("random_id(8)", lambda r: "".join(r.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(8))),
         ('random_id(3, "AB")', lambda r: "".join(r.choice("AB") for _ in range(3)))]


@pytest.mark.parametrize("seed", [0, 42, 2**40 + 7])
def test_draws_are_pythons_random_random_calls(seed: int) -> None:
    from aqwen_spec.expr import evaluate, parse_expr
    from aqwen_spec.expr.episode import Episode, episode_context

    mine, python = Episode(seed=seed), random.Random(seed)
    rng = random.Random(seed)
    with episode_context(mine):
        for _ in range(200):  # an interleaved stream: every draw advances the same generator
            text, draw = rng.choice(DRAWS)
            assert evaluate(parse_expr(text), {}) == draw(python), text


def test_clock_functions() -> None:
    from aqwen_spec.expr import EvalError, evaluate, parse_expr
    from aqwen_spec.expr.episode import Episode, episode_context

    with episode_context(Episode(today="2024-05-31")):
        assert evaluate(parse_expr("[today(), now()]"), {}) == ["2024-05-31", "2024-05-31T00:00:00"]
    with episode_context(Episode(now="2024-05-31T09:30:00")):
        assert evaluate(parse_expr("[today(), now()]"), {}) == ["2024-05-31", "2024-05-31T09:30:00"]
    with pytest.raises(EvalError, match="needs a clock"):
        evaluate(parse_expr("today()"), {})


def test_transfers_go_to_a_declared_destination(desk_bundle: Any) -> None:
    from runtime.episodes.env import Environment

    [schema] = [s["function"] for s in desk_bundle.tool_schemas if s["function"]["name"] == "transfer_to_human"]
    assert schema["parameters"]["properties"]["destination"]["enum"] == ["billing", "dispatch_supervisor",
                                                                         "emergency_line"]
    assert schema["parameters"]["required"] == ["reason", "destination"]
    task = next(t for t in desk_bundle.tasks if t["workflow"] == "refund_request")
    assert task["gold"]["calls"][-1]["arguments"]["destination"] == "billing"
    rewards = {}
    for where in ("billing", "emergency_line"):
        env = Environment(desk_bundle, task)
        env.reset()
        env.call_tool("get_ticket", {"ticket_id": task["slots"]["t"]["id"]})
        env.call_tool("transfer_to_human", {"reason": "refund", "destination": where})
        assert env.done
        rewards[where] = env.result().reward
    assert rewards == {"billing": 1.0, "emergency_line": 0.5}


CLOCKED = """\
kind: Domain
name: outage_desk
clock: {today: 2024-05-31, now: "2024-05-31T09:00:00"}
state:
  outages: map[str]
  log: list[str]
initial_state:
  generate:
    outages: {count: 2, key: 'f"O-{i}"', fields: {}}
---
kind: Tool
name: stamp
domain: outage_desk
params:
  outage_id: str
requires:
  - when: outage_id in outages
    error: "no outage {{ outage_id }}"
effects:
  - append(log, f"{outage_id} at {now()}")
returns: 'join([str(today()), str(now()), str(days_between("2024-05-01", today()))], " ")'
---
kind: Workflow
name: stamp_today
domain: outage_desk
slots:
  o: choice(keys(outages))
tree:
  - call: stamp(outage_id=o)
  - inform_user: {value: today(), about: the date}
instruction: "Stamp {{ o }}."
---
kind: Workflow
name: stamp_new_year
domain: outage_desk
clock: {now: "2025-01-01T00:30:00"}
slots:
  o: choice(keys(outages))
tree:
  - call: stamp(outage_id=o)
instruction: "Stamp {{ o }}."
---
kind: Verifier
name: stamp_today_ok
for: stamp_today
checks:
  - assert: today() == "2024-05-31" and len(log) == 1
---
kind: Verifier
name: stamp_new_year_ok
for: stamp_new_year
checks:
  - assert: today() == "2025-01-01"
  - same_final_state_as_gold
"""


def test_the_clock_of_the_domain_and_of_a_workflow(tmp_path: Path) -> None:
    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "desk.yaml").write_text(CLOCKED, encoding="utf-8")
    [folder] = write_bundles(compile_specs(tmp_path / "specs", tasks_per_branch=2), tmp_path / "build")
    bundle = Bundle.load(folder)
    shown = {t["workflow"]: [m for m in t["gold"]["messages"] if m["role"] == "tool"][-1]["content"]
             for t in bundle.tasks}
    assert shown == {"stamp_today": '"2024-05-31 2024-05-31T09:00:00 30"',
                     "stamp_new_year": '"2025-01-01 2025-01-01T00:30:00 245"'}
    for task in bundle.tasks:
        assert task["clock"] == ({"now": "2025-01-01T00:30:00"} if task["workflow"] == "stamp_new_year"
                                 else {"today": "2024-05-31", "now": "2024-05-31T09:00:00"})
        assert "random_seed" not in task  # nothing draws, and no seed is declared
        assert _replay_gold(bundle, task) == [m["content"] for m in task["gold"]["messages"] if m["role"] == "tool"]
        from runtime.episodes.env import Environment

        env = Environment(bundle, task)
        env.reset()
        for call in task["gold"]["calls"]:
            env.call_tool(call["name"], call["arguments"])
        env.end_with([m["content"] for m in task["gold"]["messages"] if m["role"] == "assistant"])
        assert env.result().reward == 1.0


@pytest.mark.parametrize("undone", [text for text, _ in DRAWS])
def test_a_failed_calls_draws_are_undone_by_replay(undone: str) -> None:
    """Undoing a call replays the draws that stood from the seed: every kind of draw, undone between others, leaves
    the generator where Python's would be without it."""
    from aqwen_spec.expr import evaluate, parse_expr
    from aqwen_spec.expr.episode import Episode, episode_context

    mine, python = Episode(seed=7), random.Random(7)
    with episode_context(mine):
        for text, draw in DRAWS:  # one of each kind stands before the undone call
            mine.begin()
            assert evaluate(parse_expr(text), {}) == draw(python), text
        mine.begin()
        evaluate(parse_expr(undone), {})
        evaluate(parse_expr(undone), {})
        mine.undo()
        for text, draw in DRAWS:
            mine.begin()
            assert evaluate(parse_expr(text), {}) == draw(python), text


def test_undo_after_a_long_episode_replays_from_a_checkpoint() -> None:
    """Past a few hundred draws the episode saves the generator's state once and replays from there."""
    from aqwen_spec.expr import evaluate, parse_expr
    from aqwen_spec.expr.episode import Episode, episode_context

    mine, python = Episode(seed=3), random.Random(3)
    draw = parse_expr("rng_randint(1, 1000)")
    with episode_context(mine):
        for i in range(1500):
            mine.begin()
            if i % 7 == 3:  # a call that draws and fails
                evaluate(draw, {})
                mine.undo()
            else:
                assert evaluate(draw, {}) == python.randint(1, 1000), i
        assert len(mine._log) <= 600


def test_the_episode_reaches_a_domain_function_that_reads_the_clock() -> None:
    """A tool runs with the episode installed when a domain function it calls (through another) reads the clock or
    draws, and without it otherwise; either way its outcome is the closure evaluator's."""
    from aqwen_spec.diagnostics import Pos
    from aqwen_spec.expr import parse_expr
    from aqwen_spec.expr.episode import Episode
    from aqwen_spec.expr.library import FunctionDef, Library
    from aqwen_spec.resolved import Origin, ResolvedTool
    from aqwen_spec.semantics import ToolRunner
    from aqwen_spec.semantics.toolcode import step_of
    from aqwen_spec.semantics.tools import _KIT
    from aqwen_spec.types import INT, STR

    library = Library({"stamp": FunctionDef("stamp", {}, parse_expr("f\"{day()} #{rng_randint(1, 9)}\""), STR),
                       "day": FunctionDef("day", {}, parse_expr("today()"), STR),
                       "twice": FunctionDef("twice", {"n": INT}, parse_expr("n * 2"), INT)})

    def tool(returns: str) -> ResolvedTool:
        return ResolvedTool("t", "d", "", "read", {}, [], None, parse_expr(returns), STR, "declarative", None, None,
                            Origin("x", Pos(1, 1)), library=library)

    stamped, doubled = tool("stamp()"), tool("f\"{twice(21)}\"")
    assert step_of(stamped, _KIT).episodic and not step_of(doubled, _KIT).episodic  # type: ignore[union-attr]
    for generated in (True, False):
        runner = ToolRunner({"stamped": stamped, "doubled": doubled}, {})
        runner.generated = generated
        runner.episode = Episode(today="2024-05-31", seed=42)
        assert runner.call("stamped", {}).value == f"2024-05-31 #{random.Random(42).randint(1, 9)}"
        assert runner.call("doubled", {}).value == "42"


def test_the_one_shot_encoder_writes_what_the_encoder_writes() -> None:
    """``one_shot`` (the C encoder made once per call, without ``encode``'s Python steps) gives ``encode``'s text and
    errors for every option set the results use; ``_decode`` reads what ``json.loads`` reads."""
    import json
    import math

    from aqwen_spec.results import one_shot
    from aqwen_spec.semantics.tools import _decode

    values: list[Any] = [None, True, 0, -3, 10**30, 2.5, 1e-7, math.inf, -math.inf, "", "é\"\\\n✓", [], {},
                         {"b": 1, "a": [1, {"z": None}], 3: "k", 2.5: "f", True: "t", None: "n"}, (1, "x"),
                         [{"id": "WO-1", "parts_used": [{"part_id": "P-1", "qty": 2}]}]]
    encoders = [json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")),
                json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str),
                json.JSONEncoder(), json.JSONEncoder(indent=2), json.JSONEncoder(allow_nan=False)]
    for encoder in encoders:
        fast = one_shot(encoder)
        for value in [*values, {"x": object()}, [math.nan]]:
            try:
                expected: Any = encoder.encode(value)
            except (TypeError, ValueError) as exc:
                expected = (type(exc), str(exc))
            try:
                got: Any = fast(value)
            except (TypeError, ValueError) as exc:
                got = (type(exc), str(exc))
            assert got == expected, (encoder.__dict__, value)
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        one_shot(json.JSONEncoder())(looped)
    for text in ["null", "1", " 1", "1 ", '{"a": [1, 2.5, "x"]}', "[1] [2]", "\ufeff1", "", "nan", "NaN"]:
        try:
            expected = json.loads(text)
        except ValueError as exc:
            expected = (type(exc), str(exc))
        try:
            got = _decode(text)
        except ValueError as exc:
            got = (type(exc), str(exc))
        assert got == expected or (got != got and expected != expected), text  # NaN is not equal to itself
