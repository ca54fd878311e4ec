"""Runtime speed on a large state: one tool call through the step path, a fresh environment, a reward.

The plant-maintenance specs are compiled with their work-order generator raised to --records (default 10,000), so
the state holds that many records. Measured, as medians over many repetitions:

- step: one declarative write call (``assign_technician``: arguments validated, five preconditions, effects, the
  result rendered as JSON) through ``Environment.step`` (given an already parsed turn, and given raw model text);
- fresh environment: ``Environment(bundle, task).reset()`` plus ``close()`` (the state comes from the pool and the
  previous episode's changes are rolled back);
- reward: scoring a finished episode with its verifiers (final-state comparison with the gold included).

Goals (issue: the runtime): step <= 10 us, fresh environment <= 0.5 ms, reward <= 1 ms.
Run: python benchmarks/runtime_step.py [--records 10000] [--reps 2000]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

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


def median_us(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(reps):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()

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

        def fresh() -> None:
            e = Environment(bundle, task)
            e.reset()
            e.close()

        fresh()  # the pool holds a state for this seed from now on
        fresh_us = median_us(fresh, args.reps)

        # an episode that made the gold's tool calls and said what the gold says; then score it repeatedly
        e = Environment(bundle, task, config=config)
        e.reset()
        for message in task["gold"]["messages"]:
            if message["role"] == "assistant" and message.get("tool_calls"):
                calls = [ToolCall(c["name"], c["arguments"]) for c in message["tool_calls"]]
                e.step(AssistantTurn(tool_calls=calls))
            elif message["role"] == "assistant":
                e.said.append(message["content"])
        assert e.score().success
        reward_us = median_us(e.score, max(200, args.reps // 10))
        e.close()

    print(f"state: {n_records:,} records")
    print(f"tool call through step (parsed turn): {step_us:.1f} us median  (goal <= 10 us)")
    print(f"tool call through step (raw text):    {step_text_us:.1f} us median")
    print(f"fresh environment (reset + close):    {fresh_us:.1f} us median  (goal <= 500 us)")
    print(f"reward evaluation:                    {reward_us:.1f} us median  (goal <= 1000 us)")


if __name__ == "__main__":
    main()
