"""Final-state comparison in O(changes) (``aqwen_spec.semantics.changes``) against the full structural comparison.

Differential: random runs of real effect programs (map entries set, added and deleted, nested fields, list appends
and removals, writes through ``let`` aliases, writes undone by later writes) on copies of one initial state; the
journal comparison must give the full comparison's answer every time.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.expr import execute, parse_program, rollback
from aqwen_spec.expr.evaluator import copy_value
from aqwen_spec.semantics.changes import ABSENT, Delta, PathIndex, same_final_state, topmost, value_at

ROOT = Path(__file__).resolve().parents[1]


def _initial(rng: random.Random) -> dict[str, Any]:
    orders = {}
    for i in range(rng.randint(1, 6)):
        items = [{"sku": f"S{j}", "q": rng.randint(1, 3)} for j in range(rng.randint(0, 3))]
        orders[f"O{i}"] = {"st": rng.choice(["open", "paid"]), "items": items, "note": None}
    return {"orders": orders, "log": [rng.randint(0, 3) for _ in range(rng.randint(0, 3))],
            "meta": {"count": 0, "tags": ["a"]}}


def _statement(rng: random.Random, state: dict[str, Any]) -> str:
    keys = list(state["orders"])
    k = json.dumps(rng.choice(keys)) if keys else None
    value = json.dumps(rng.choice(["open", "paid", "void"]))
    options = [
        f'orders["O{rng.randint(0, 8)}"] = {{"st": {value}, "items": [], "note": null}}',
        f"append(log, {rng.randint(0, 3)})",
        "meta.count += 1",
        "meta.count -= 1",
        f'append(meta.tags, "{rng.choice("ab")}")',
    ]
    if state["log"]:
        options.append(f"remove(log, {rng.choice(state['log'])})")
    if k is not None:
        record = state["orders"][json.loads(k)]
        options += [
            f"orders[{k}].st = {value}",
            f"orders[{k}].st = {json.dumps(record['st'])}",  # a write that changes nothing
            f"delete orders[{k}]",
            f"let r = orders[{k}]\nr.note = {value}",
            f'append(orders[{k}].items, {{"sku": "S9", "q": {rng.randint(1, 3)}}})',
            f"orders[{k}].items = []",
        ]
        if record["items"]:
            i = rng.randrange(len(record["items"]))
            options += [f"orders[{k}].items[{i}].q = {rng.randint(1, 3)}",
                        f"remove(orders[{k}].items, orders[{k}].items[{i}])"]
    return rng.choice(options)


def _run(state: dict[str, Any], statements: list[str], journal: list[Any]) -> None:
    for text in statements:
        execute(parse_program(text), {}, state, journal=journal)


def _random_run(rng: random.Random, state: dict[str, Any], n: int, journal: list[Any]) -> list[str]:
    done = []
    for _ in range(n):
        text = _statement(rng, state)
        _run(state, [text], journal)
        done.append(text)
    return done


def test_journal_comparison_equals_full_comparison_on_random_runs() -> None:
    rng = random.Random(7)
    equal = differ = 0
    for _ in range(1200):
        initial = _initial(rng)
        gold_state, mine = copy_value(initial), copy_value(initial)
        gold_index, my_index = PathIndex(gold_state), PathIndex(mine)
        gold_journal: list[Any] = []
        my_journal: list[Any] = []
        gold_ops = _random_run(rng, gold_state, rng.randint(0, 4), gold_journal)
        style = rng.random()
        if style < 0.4:  # the same run, perhaps with extra writes that are undone again
            _run(mine, gold_ops, my_journal)
            extra = copy_value(mine)
            tail: list[Any] = []
            _random_run(rng, mine, rng.randint(0, 3), tail)
            if rng.random() < 0.7:
                rollback(tail)  # undone: the journal still names what was touched
                assert mine == extra
            my_journal += tail
        else:
            _random_run(rng, mine, rng.randint(0, 5), my_journal)
        delta = Delta.capture(gold_state, gold_index.touched(gold_journal))
        fast = same_final_state(mine, my_index.touched(my_journal), initial, delta)
        full = mine == gold_state
        assert fast == full, (initial, gold_ops, mine, gold_state)
        equal += full
        differ += not full
    assert equal > 250 and differ > 250  # both answers are well exercised


def test_gold_changes_below_a_record_the_episode_replaced() -> None:
    """The episode replaced a whole record, the gold changed one field of it: the gold's value at the record is
    the initial record with the gold's change."""
    initial = {"orders": {"A": {"st": "open", "items": [1]}}}
    gold, mine = copy_value(initial), copy_value(initial)
    gi, mi = PathIndex(gold), PathIndex(mine)
    gj: list[Any] = []
    mj: list[Any] = []
    _run(gold, ['orders["A"].st = "paid"'], gj)
    _run(mine, ['orders["A"] = {"st": "paid", "items": [1]}'], mj)
    delta = Delta.capture(gold, gi.touched(gj))
    assert same_final_state(mine, mi.touched(mj), initial, delta) is True
    assert initial["orders"]["A"]["st"] == "open"  # the initial state is only read
    _run(mine, ['orders["A"].items = []'], mj)
    assert same_final_state(mine, mi.touched(mj), initial, delta) is False


def test_paths_and_values() -> None:
    state = {"a": {"b": [10, {"c": 1}]}, "z": None}
    assert value_at(state, ("a", "b", 1, "c")) == 1
    assert value_at(state, ("a", "b", 5)) is ABSENT
    assert value_at(state, ("z",)) is None
    assert value_at(state, ("y",)) is ABSENT
    assert set(topmost([("a", "b"), ("a",), ("z",), ("a", "b", 1)])) == {("a",), ("z",)}
    assert len(PathIndex(state)) == 4  # the root, a, a.b, a.b[1]


class _OthersCalls:
    """Makes calls other tasks' gold trajectories make (so they mostly succeed, and write), then stops."""

    name = "others"

    def __init__(self, pool: list[dict[str, Any]], seed: int, n: int) -> None:
        self.rng, self.pool, self.n = random.Random(seed), pool, n

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        self.left = self.n

    def act(self, messages: list[dict[str, Any]]) -> str:
        from runtime.episodes.parsing import format_tool_call

        self.left -= 1
        return format_tool_call(self.rng.choice(self.pool)) if self.left >= 0 and self.pool else ""


@pytest.mark.parametrize("domain", ["plant", "retail"])
def test_episode_rewards_compare_like_whole_states(domain: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Episodes (the oracle; calls from other tasks' golds, before or after the oracle's; random calls): the
    reward's journal comparison says what comparing the whole final state with the gold's says."""
    from compiler import compile_specs, write_bundles
    from runtime.episodes.agents import OracleAgent, RandomAgent
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import Environment

    class Checked(Environment):
        """Scores as usual, and compares the whole final state with the gold's at the same moment."""

        def score(self) -> Any:
            assert self._index is not None and self.bundle.gold_changes(self.task) is not None  # the journal path
            result = super().score()
            [check] = [c for c in result.score.checks if c.kind == "same_final_state_as_gold"]
            full = self.state == self.bundle.gold_final_state(self.task)
            assert check.passed == full, self.task["id"]
            seen[full] += 1
            return result

    specs = ROOT / "specs"
    if domain == "retail":
        monkeypatch.syspath_prepend(str(ROOT / "tests" / "fixtures" / "retail" / "pytools"))
        specs = ROOT / "tests" / "fixtures" / "retail" / "specs"
    [folder] = write_bundles(compile_specs(specs, tasks_per_branch=3), tmp_path)
    bundle = Bundle.load(folder)
    pool = [c for t in bundle.tasks for c in t["gold"]["calls"] if c["name"] in bundle.tools]
    seen = {True: 0, False: 0}
    for n, task in enumerate(bundle.tasks):
        if "same_final_state_as_gold" not in {c.kind for v in task["verifiers"] for c in bundle.verifiers[v].checks}:
            continue
        runs: list[list[Any]] = [[OracleAgent()], [_OthersCalls(pool, n, 3)], [OracleAgent(), _OthersCalls(pool, n, 2)],
                                 [_OthersCalls(pool, n, 2), OracleAgent()], [RandomAgent(seed=n, turns=6)]]
        for actors in runs:
            env = Checked(bundle, task)
            messages = env.reset()
            for actor in actors:
                actor.start(task, bundle.tool_schemas)
                for _ in range(12):
                    text = actor.act(messages)
                    if not text or env.done:
                        break
                    messages += env.step(text).observations
            env.result()
    assert seen[True] > 10 and seen[False] > 10, seen


def test_a_failed_python_tool_after_a_write_leaves_the_pool_clean(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A python tool that fails restores the state only if it changed it: otherwise the containers stay in place, so
    the journal still undoes the episode's earlier writes and still names what the reward compares."""
    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import Environment

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "fixtures" / "retail" / "pytools"))
    [folder] = write_bundles(compile_specs(ROOT / "tests" / "fixtures" / "retail" / "specs", tasks_per_branch=1),
                             tmp_path)
    bundle = Bundle.load(folder)
    task = next(t for t in bundle.tasks if t["branch"] == "refuse")
    pristine = bundle.states.pristine(task["initial_state"]["seed"])
    env = Environment(bundle, task)
    env.reset()
    env.step('<tool_call>{"name": "cancel_order", "arguments": {"order_id": "O-1"}}</tool_call>')
    env.step('<tool_call>{"name": "loyalty_discount", "arguments": {"order_id": "nope"}}</tool_call>')
    assert not env.runner.dirty
    [check] = [c for c in env.score().score.checks if c.kind == "same_final_state_as_gold"]
    assert check.passed is False  # the cancellation is still seen
    env.close()
    again = Environment(bundle, task)
    again.reset()
    assert again.state == pristine  # the cancellation was rolled back
    again.close()


def test_a_python_tool_that_fails_after_changing_the_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its changes are undone by a restore behind the journal: the state is dirty, the reward compares whole states,
    and the pool drops the state instead of reusing it. A python read tool that writes makes the state dirty too."""
    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import Environment

    (tmp_path / "breaking_tools.py").write_text(
        "def scribble(state, order_id):\n"
        "    state['orders'][order_id]['status'] = 'cancelled'\n"
        "    raise RuntimeError('half done')\n"
        "def peek(state, order_id):\n"
        "    state['orders'][order_id]['status'] = 'cancelled'\n"
        "    return 'looked'\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "fixtures" / "retail" / "pytools"))
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "tests" / "fixtures" / "retail" / "specs", specs)
    with (specs / "domain.yaml").open("a", encoding="utf-8") as f:
        f.write("---\nkind: Tool\nname: scribble\ndomain: retail\ndescription: A tool with a bug.\n"
                "params:\n  order_id: str\nimplementation:\n  python: breaking_tools:scribble\n"
                "---\nkind: Tool\nname: peek\ndomain: retail\ndescription: A read tool that writes.\n"
                "params:\n  order_id: str\nimplementation:\n  python: breaking_tools:peek\n")
    [folder] = write_bundles(compile_specs(specs, tasks_per_branch=1), tmp_path / "build")
    bundle = Bundle.load(folder)
    task = next(t for t in bundle.tasks if t["branch"] == "refuse")
    pristine = bundle.states.pristine(task["initial_state"]["seed"])
    env = Environment(bundle, task)
    env.reset()
    state = env.state
    step = env.step('<tool_call>{"name": "scribble", "arguments": {"order_id": "O-1"}}</tool_call>')
    assert "half done" in step.observations[0]["content"]
    assert env.runner.dirty and env.state == pristine  # undone, by copies
    [check] = [c for c in env.score().score.checks if c.kind == "same_final_state_as_gold"]
    assert check.passed is True
    env.close()
    again = Environment(bundle, task)
    again.reset()
    assert again.state is not state and again.state == pristine
    again.step('<tool_call>{"name": "peek", "arguments": {"order_id": "O-1"}}</tool_call>')
    assert again.runner.dirty  # declared read, wrote all the same: not journaled, so the state is dirty
    [check] = [c for c in again.score().score.checks if c.kind == "same_final_state_as_gold"]
    assert check.passed is False
    again.close()
