"""Runtime speed on a large state: one tool call through the step path, a fresh environment, a reward.

The plant-maintenance specs are compiled with their work-order generator raised to --records (default 10,000), so
the state holds that many records. Measured, as medians over many repetitions:

- step: one declarative write call (``assign_technician``: arguments validated, five preconditions, effects, the
  result rendered as JSON) through ``Environment.step`` (given an already parsed turn, and given raw model text);
- fresh environment: ``Environment(bundle, task).reset()`` plus ``close()`` (the state comes from the pool and the
  previous episode's changes are rolled back);
- reward: scoring a finished episode with its verifiers (final-state comparison with the gold included), both as
  the runtime does it (only the paths the episode's and the gold's journals touched) and by comparing the whole
  final state with the gold's (``--whole`` alone, or both by default).

``--domain retail`` measures on a retail-size state instead: the retail test domain (``tests/fixtures/retail``)
with --orders generated orders (default 21,000: about 4 MB of JSON, orders with item lists and payments) and 3,000
items; a ``cancel`` episode (refunds appended, balances and status set) is scored.

Goals (issue: the runtime): step <= 10 us, fresh environment <= 0.5 ms, reward <= 1 ms.
Run: python benchmarks/runtime_step.py [--records 10000] [--reps 2000]
     python benchmarks/runtime_step.py --domain retail [--orders 21000]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def build(records: int, out: Path) -> Path:
    from compiler import compile_specs, write_bundles

    specs = out / "specs"
    shutil.copytree(ROOT / "specs", specs)
    domain = specs / "plant_maintenance" / "domain.yaml"
    text = domain.read_text()
    text = re.sub(r"(work_orders:\n\s+count: )\d+", rf"\g<1>{records}", text)
    text = text.replace('key: f"WO-{1000 + i}"', 'key: f"WO-{100000 + i}"')
    domain.write_text(text)
    project = compile_specs(specs, tasks_per_branch=2)
    write_bundles(project, out / "build")
    return out / "build" / "plant_maintenance"


RETAIL_GENERATE = """  generate:
    items:
      count: 3000
      key: f"I-{100 + i}"
      fields:
        name: f"{choice(['lamp', 'chair', 'desk', 'shelf', 'rug'])} model {i} in {choice(['oak', 'steel', 'grey'])}"
        price: round(random() * 200 + 5, 2)
        available: random() < 0.8
    orders:
      count: ORDERS
      key: f"O-{10000 + i}"
      fields:
        status: choice(["pending", "delivered", "cancelled"])
        items: "[choice(keys(items)) for k in range(randint(1, 4))]"
        payments: "[{method_id: 'CC-1', amount: round(random() * 300, 2)}]"
"""


def build_retail(orders: int, out: Path) -> Path:
    """The retail test domain with ``orders`` generated orders (its verifier's fixed-order assert made general)."""
    from compiler import compile_specs, write_bundles

    retail = ROOT / "tests" / "fixtures" / "retail"
    sys.path.insert(0, str(retail / "pytools"))
    specs = out / "specs"
    shutil.copytree(retail / "specs", specs)
    domain = specs / "domain.yaml"
    text = domain.read_text()
    first_end = text.index("---")
    text = text[:first_end] + RETAIL_GENERATE.replace("ORDERS", str(orders)) + text[first_end:]
    text = text.replace('assert: payment_methods["GC-1"].balance == 25.01',
                        'assert: orders[order.id].status == "cancelled"')
    domain.write_text(text)
    project = compile_specs(specs, tasks_per_branch=2)
    write_bundles(project, out / "build")
    return out / "build" / "retail"


def gold_episode(bundle: Any, task: dict[str, Any], config: Any) -> Any:
    """An episode that made the gold's tool calls and said what the gold says (not yet scored)."""
    from runtime.episodes.env import Environment
    from runtime.episodes.parsing import AssistantTurn, ToolCall

    e = Environment(bundle, task, config=config)
    e.reset()
    for message in task["gold"]["messages"]:
        if message["role"] == "assistant" and message.get("tool_calls"):
            calls = [ToolCall(c["name"], c["arguments"]) for c in message["tool_calls"]]
            e.step(AssistantTurn(tool_calls=calls))
        elif message["role"] == "assistant":
            e.said.append(message["content"])
    return e


def rewards(bundle: Any, task: dict[str, Any], config: Any, reps: int) -> tuple[float, float]:
    """Median reward time (us): as the runtime compares (the journals' paths), and comparing whole states."""
    e = gold_episode(bundle, task, config)
    assert e.score().success
    journal_us = median_us(e.score, reps)
    whole = bundle.gold_changes
    bundle.gold_changes = lambda task: None  # the runtime's fallback: the whole final state against the gold's
    try:
        assert e.score().success
        whole_us = median_us(e.score, reps)
    finally:
        bundle.gold_changes = whole
    e.close()
    return journal_us, whole_us


def retail(args: argparse.Namespace) -> None:
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import EpisodeConfig

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Bundle.load(build_retail(args.orders, Path(tmp)))
        task = next(t for t in bundle.tasks if t["workflow"] == "cancel" and t["branch"] == "cancel")
        state = bundle.states.pristine(task["initial_state"]["seed"])
        size = len(json.dumps(state))
        n_records = sum(len(v) for v in state.values() if isinstance(v, (dict, list)))
        config = EpisodeConfig(max_turns=10**9, max_tool_calls=10**9)

        fresh_us = fresh_environment_us(bundle, task, args.reps)
        journal_us, whole_us = rewards(bundle, task, config, max(200, args.reps // 10))
    print(f"state: {n_records:,} records, {size / 1e6:.1f} MB of JSON")
    print(f"fresh environment (reset + close):    {fresh_us:.1f} us median  (goal <= 500 us)")
    print(f"reward, journal paths (the runtime):  {journal_us:.1f} us median  (goal <= 1000 us)")
    print(f"reward, whole states compared:        {whole_us:.1f} us median")


def median_us(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def fresh_environment_us(bundle: Any, task: dict[str, Any], reps: int) -> float:
    """Median microseconds of a fresh environment (reset + close); the first one, untimed, leaves a pooled state for
    the task's seed, as a running trainer has."""
    from runtime.episodes.env import Environment

    def fresh() -> None:
        e = Environment(bundle, task)
        e.reset()
        e.close()

    fresh()
    return median_us(fresh, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--domain", choices=["plant", "retail"], default="plant")
    parser.add_argument("--orders", type=int, default=21_000, help="generated orders of the retail state")
    args = parser.parse_args()
    if args.domain == "retail":
        retail(args)
        return

    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import Environment, EpisodeConfig
    from runtime.episodes.parsing import AssistantTurn, ToolCall

    with tempfile.TemporaryDirectory() as tmp:
        folder = build(args.records, Path(tmp))
        bundle = Bundle.load(folder)
        task = next(t for t in bundle.tasks
                    if t["workflow"] == "assign_technician_to_order" and t["branch"] == "assign")
        state = bundle.states.pristine(task["initial_state"]["seed"])
        n_records = sum(len(v) for v in state.values() if isinstance(v, (dict, list)))
        open_orders = [k for k, v in state["work_orders"].items() if v["status"] == "open"]
        config = EpisodeConfig(max_turns=10**9, max_tool_calls=10**9)

        env = Environment(bundle, task, config=config)
        env.reset()
        calls = iter(open_orders * (1 + args.reps // max(1, len(open_orders))))

        def step_parsed() -> None:
            order = next(calls)
            env.state["work_orders"][order]["status"] = "open"  # keep the call valid on every repetition
            call = ToolCall("assign_technician", {"order_id": order, "technician_id": "T-1"})
            turn = AssistantTurn(tool_calls=[call])
            env.step(turn)

        step_us = median_us(step_parsed, args.reps)
        texts = iter(
            f'<tool_call>{{"name": "assign_technician", "arguments": {{"order_id": "{o}", "technician_id": "T-1"}}}}'
            "</tool_call>" for o in open_orders * (1 + args.reps // max(1, len(open_orders)))
        )

        def step_text() -> None:
            text = next(texts)
            order = text.split('"order_id": "')[1].split('"')[0]
            env.state["work_orders"][order]["status"] = "open"
            env.step(text)

        step_text_us = median_us(step_text, args.reps)
        env.close()

        fresh_us = fresh_environment_us(bundle, task, args.reps)

        reward_us, whole_us = rewards(bundle, task, config, max(200, args.reps // 10))

    print(f"state: {n_records:,} records")
    print(f"tool call through step (parsed turn): {step_us:.1f} us median  (goal <= 10 us)")
    print(f"tool call through step (raw text):    {step_text_us:.1f} us median")
    print(f"fresh environment (reset + close):    {fresh_us:.1f} us median  (goal <= 500 us)")
    print(f"reward, journal paths (the runtime):  {reward_us:.1f} us median  (goal <= 1000 us)")
    print(f"reward, whole states compared:        {whole_us:.1f} us median")


if __name__ == "__main__":
    main()
