"""The runtime: episodes, tool error paths, malformed model output, simulated users, rewards and evaluation."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from aqwen_spec.semantics import ToolRunner, copy_state
from compiler.cli import main as compile_main
from runtime.cli import main as run_main
from runtime.episodes.agents import NoopAgent, OracleAgent, RandomAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.env import Environment, EpisodeConfig, gold_progress
from runtime.episodes.evaluate import evaluate, pass_hat_k, run_episode
from runtime.episodes.parsing import parse_assistant
from runtime.episodes.users import STOP, LLMUser, ScriptedUser

ROOT = Path(__file__).resolve().parents[1]
RETAIL = ROOT / "tests" / "fixtures" / "retail"


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("build")
    assert compile_main([str(ROOT / "specs"), "-o", str(out), "-q"]) == 0
    return Bundle.load(out / "plant_maintenance")


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    sys.path.insert(0, str(RETAIL / "pytools"))
    out = tmp_path_factory.mktemp("build")
    assert compile_main([str(RETAIL / "specs"), "-o", str(out), "-q"]) == 0
    return Bundle.load(out / "retail")


# --- agents ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["plant", "retail"])
def test_oracle_succeeds_on_every_task(domain: str, request: pytest.FixtureRequest) -> None:
    bundle: Bundle = request.getfixturevalue(domain)
    report = evaluate(bundle, OracleAgent, k=1)
    failed = [(t.task["id"], t.result.score.failed(), t.result.metrics) for t in report.trials if not t.result.success]
    assert not failed
    assert report.success_rate == 1.0 and report.mean_reward == 1.0


def test_noop_and_random_agents_do_not_succeed(plant: Bundle) -> None:
    assert evaluate(plant, NoopAgent).success_rate <= 0.05
    assert evaluate(plant, lambda: RandomAgent(seed=1)).success_rate <= 0.05


def test_per_turn_gold_progress_adds_up_for_the_oracle(plant: Bundle) -> None:
    task = next(t for t in plant.tasks if len(t["gold"]["calls"]) >= 2 and t["gold"]["outcome"] == "done")
    result = run_episode(plant, task, OracleAgent(), EpisodeConfig(turn_reward=gold_progress))
    assert sum(result.turn_rewards) == pytest.approx(1.0)


# --- tool error paths -----------------------------------------------------------------------------------------


def _runner(bundle: Bundle) -> tuple[ToolRunner, dict]:
    state = bundle.initial_state(bundle.tasks[0])
    return ToolRunner(bundle.tools, state), state


@pytest.mark.parametrize(
    ("name", "args", "kind", "message"),
    [
        ("no_such_tool", {}, "unknown_tool", "unknown tool 'no_such_tool'"),
        ("get_work_order", ["WO-1"], "bad_arguments", "must be a JSON object"),
        ("get_work_order", {}, "bad_arguments", "missing argument 'order_id'"),
        ("get_work_order", {"order_id": "WO-1000", "x": 1}, "bad_arguments", "has no argument 'x'"),
        ("get_work_order", {"order_id": 1000}, "bad_arguments", "must be a string"),
        ("list_open_work_orders", {"line": "L9"}, "bad_arguments", "must be one of L1, L2, L3"),
        ("reserve_part", {"order_id": "WO-1000", "part_id": "P-11", "qty": "2"}, "bad_arguments", "an integer"),
        ("get_work_order", {"order_id": "WO-9"}, "precondition", "no work order WO-9"),
        ("reserve_part", {"order_id": "WO-1000", "part_id": "P-12", "qty": 1}, "effect", "only 0 of P-12 in stock"),
    ],
)
def test_declarative_tool_errors(plant: Bundle, name: str, args: object, kind: str, message: str) -> None:
    runner, state = _runner(plant)
    before = copy_state(state)
    outcome = runner.call(name, args)
    assert not outcome.ok and outcome.error_kind == kind and message in str(outcome.error)
    assert json.loads(outcome.render()) == {"error": outcome.error}
    assert state == before


def test_effects_are_all_or_nothing_and_transactional(retail: Bundle) -> None:
    runner, state = _runner(retail)
    before = copy_state(state)
    # fails half-way through (the second I-1 is not in the order): nothing of the first part may remain
    failed = runner.call("exchange_items", {"order_id": "O-2", "old_items": ["I-1", "I-1"],
                                            "new_items": ["I-2", "I-2"], "payment_method_id": "GC-1"})
    assert failed.error == "the order does not hold 2 x I-1" and state == before
    ok = runner.call("cancel_order", {"order_id": "O-1"})
    assert ok.ok and state["payment_methods"]["GC-1"]["balance"] == 25.01
    assert ok.value["refunds"] == [{"method_id": "GC-1", "amount": 15.01}, {"method_id": "CC-1", "amount": 25.0}]
    again = runner.call("cancel_order", {"order_id": "O-1"})
    assert again.error_kind == "effect" and "only pending orders" in str(again.error)


def test_python_and_sql_implementations(retail: Bundle) -> None:
    runner, state = _runner(retail)
    assert runner.call("loyalty_discount", {"order_id": "O-2"}).value == {"order_id": "O-2", "discount": 0.05}
    missing = runner.call("loyalty_discount", {"order_id": "O-9"})
    assert missing.error == "no order O-9" and missing.error_kind == "implementation"
    state["orders"]["O-boom"] = copy_state(state["orders"]["O-1"])
    crash = runner.call("loyalty_discount", {"order_id": "O-boom"})
    assert crash.error_kind == "implementation" and "RuntimeError: a bug in user code" in str(crash.error)
    assert runner.call("revenue_by_status", {"status": "pending"}).value == [{"orders": 2}]
    runner.call("cancel_order", {"order_id": "O-1"})
    assert runner.call("revenue_by_status", {"status": "cancelled"}).value == [{"orders": 1}]


# --- malformed model output -----------------------------------------------------------------------------------


def test_parsing_of_qwen3_tool_calls() -> None:
    turn = parse_assistant('<think>hm</think>Let me check.<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n'
                           '</tool_call><tool_call>{"name": "b", "arguments": "{\\"y\\": 2}"}</tool_call>')
    assert turn.content == "Let me check." and [c.name for c in turn.tool_calls] == ["a", "b"]
    assert turn.tool_calls[1].arguments == {"y": 2} and not turn.problems
    bad = parse_assistant('<tool_call>{"name": "a", "arguments": {</tool_call><tool_call>[1]</tool_call>'
                          '<tool_call>{"arguments": {}}</tool_call><tool_call>{"name": "z"')
    assert [p.kind for p in bad.problems] == ["broken_json", "not_an_object", "missing_name", "unclosed_tag",
                                               "broken_json"]


def _fuzz_text(rng: random.Random, tools: list[str]) -> str:
    name = rng.choice([*tools, "nope", "", "transfer_to_humans", "get_work_order "])
    args = rng.choice([
        {}, {"order_id": rng.choice(["WO-1", "", None, 5, [], {}])}, {"order_id": "WO-1000", "qty": -1},
        {"part_id": "P-11", "qty": rng.choice([0, -3, 2.5, "x", 10**9]), "order_id": "WO-1001"},
        {"line": rng.choice(["L1", "L4", 1])}, {"x": {"y": [1, 2]}}, "notanobject", None,
    ])
    body = json.dumps({"name": name, "arguments": args})
    mangle = rng.random()
    if mangle < 0.2:
        body = body[: rng.randint(0, len(body))]
    elif mangle < 0.3:
        body = body.replace('"', "'")
    elif mangle < 0.4:
        body = "".join(rng.choice('{}[]":,abc\\\n') for _ in range(rng.randint(0, 40)))
    elif mangle < 0.5:
        return f"<tool_call>{body}"
    return f"<tool_call>{body}</tool_call>"


def test_ten_thousand_malformed_calls_never_crash_or_leak_state(plant: Bundle) -> None:
    rng = random.Random(7)
    tools = sorted(plant.tools)
    task = plant.tasks[0]
    steps = 0
    config = EpisodeConfig(max_turns=10_000, max_tool_calls=10_000)
    while steps < 10_000:
        env = Environment(plant, task, config=config)
        env.reset()
        for _ in range(500):
            before = copy_state(env.state)
            result = env.step(_fuzz_text(rng, tools))
            steps += 1
            failed = all("error" in json.loads(o["content"]) for o in result.observations if o["role"] == "tool")
            if failed:
                assert env.state == before
            if result.done or steps >= 10_000:
                break
        metrics = env.result().metrics
        assert metrics["malformed"] > 0
        env.close()


# --- users, budgets, evaluation ---------------------------------------------------------------------------------


def test_scripted_user_tactics(plant: Bundle) -> None:
    task = next(t for t in plant.tasks if "withholds_id_until_asked" in t["user"]["tactics"])
    value = str(task["user"]["knows"][0]["value"])
    user = ScriptedUser(task)
    assert value not in user.opening()
    assert value in user.reply(f"Could you tell me {task['user']['knows'][0]['about']}?")
    wrong_task = json.loads(json.dumps(task))
    wrong_task["user"]["tactics"] = ["gives_wrong_id_first"]
    liar = ScriptedUser(wrong_task)
    first = liar.reply(f"What is {task['user']['knows'][0]['about']}?")
    second = liar.reply(f"Sorry, what is {task['user']['knows'][0]['about']} again?")
    assert value not in first and value in second
    pushy = next(t for t in plant.tasks if t["adversarial"])
    user = ScriptedUser(pushy)
    assert pushy["user"]["pressure"][0] in user.opening()
    assert STOP not in user.reply("I'm sorry, I cannot do that: it is against the policy.")
    assert STOP in user.reply("I still cannot do that.")


class _ScriptedChat:
    """A deterministic chat model standing in for an LLM in the user-simulator plumbing."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.seen: list[list[dict]] = []

    def complete(self, messages: list[dict]) -> str:
        self.seen.append(list(messages))
        return self.replies[len(self.seen) - 1]


def test_llm_user_gets_persona_and_task_and_can_stop(plant: Bundle) -> None:
    task = plant.tasks[0]
    model = _ScriptedChat(["Hi, I need help.", task["user"]["knows"][0]["value"], f"Thanks! {STOP}"])
    result = run_episode(plant, task, OracleAgent(), user=LLMUser(task, model))
    system = model.seen[0][0]["content"]
    assert task["user"]["instruction"] in system and "###STOP###" in system
    assert result.metrics["terminated_by"] in ("user_stop", "transfer", "agent_end")


def test_budgets_end_episodes(plant: Bundle) -> None:
    task = plant.tasks[0]
    env = Environment(plant, task, config=EpisodeConfig(max_turns=2))
    env.reset()
    env.step('<tool_call>{"name": "get_part", "arguments": {"part_id": "P-10"}}</tool_call>')
    step = env.step('<tool_call>{"name": "get_part", "arguments": {"part_id": "P-11"}}</tool_call>')
    assert step.done and step.info["result"].metrics["terminated_by"] == "turn_budget"
    env = Environment(plant, task, config=EpisodeConfig(max_tokens=10))
    env.reset()
    assert env.step("<tool_call>{}</tool_call>", tokens=11).done


def test_state_pool_rolls_back_between_episodes(plant: Bundle) -> None:
    task = next(t for t in plant.tasks if t["workflow"] == "close_after_repair" and t["branch"] == "close")
    pristine = copy_state(plant.states.pristine(task["initial_state"]["seed"]))
    for _ in range(3):
        assert run_episode(plant, task, OracleAgent()).success
    env = Environment(plant, task)
    env.reset()
    assert env.state == pristine
    env.close()


def test_pass_hat_k_follows_tau2_bench() -> None:
    assert pass_hat_k([4, 2, 0], trials=4, k=1) == pytest.approx((1 + 0.5 + 0) / 3)
    assert pass_hat_k([4, 2, 0], trials=4, k=2) == pytest.approx((1 + 1 / 6 + 0) / 3)
    assert pass_hat_k([4], trials=4, k=4) == 1.0


def test_eval_command_json_and_trajectories(plant: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_main(["eval", str(plant.path), "--agent", "oracle", "--k", "2", "--json", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_tasks"] == len(plant.tasks) and summary["success_rate"] == 1.0
    assert summary["mean_reward"] == 1.0 and summary["pass_hat_k"] == {"1": 1.0, "2": 1.0}
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 2 * len(plant.tasks) and json.loads(lines[0])["score"]["checks"]
    assert run_main(["eval", str(tmp_path), "--agent", "oracle"]) == 1
    assert "not a bundle folder" in capsys.readouterr().err


def test_eval_table_counts_tasks_and_trials(plant: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["eval", str(plant.path), "--agent", "oracle", "--k", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{len(plant.tasks)} tasks x 2 trials" in out
    head = next(line for line in out.splitlines() if line.startswith("workflow"))
    assert head.split() == ["workflow", "tasks", "trials", "success", "reward", "pass^2"]
    rows = out.split(head, 1)[1].split("\n\n", 1)[0].splitlines()[2:]  # under the header and its rule
    tasks = sum(int(r.split()[1]) for r in rows)
    trials = sum(int(r.split()[2]) for r in rows)
    assert (tasks, trials) == (len(plant.tasks), 2 * len(plant.tasks))
