"""Ported tool calls against their Python originals: the ticket desk of ``tests/fixtures/ticket_desk`` and the stockroom
of ``tests/fixtures/stockroom``.

Both ports answer the same calls with the same strings as their originals (``tests/test_results_format.py`` and
``tests/test_port_stockroom.py`` replay them); this measures what one call costs: ``Environment.call_tool`` on the
port (the environment's step path: the call recorded and counted, arguments checked, preconditions, effects, draws
from the episode's generator, the result rendered in the domain's format, an error in its own format) against the
original's method call plus ``str()`` of its result, interleaved in one process, medians of many repetitions.
``call_tool`` writes its calls into the messages, the call records and the counts when they are next read; the
``written`` column is that work per call (timed once per episode, when its messages are read at its end), and the
last ratio counts it in.

Episodes are as long as the default ``EpisodeConfig`` allows (40 tool calls): the environment is reset between two
timed calls when one ends, as a rollout would (the reset is not timed). The stockroom has no workflow, so its episode
is of a task made here (the original's state, inline). ``--closures`` runs the ports step by step with the closure
evaluator instead of each tool's generated function (:mod:`aqwen_spec.semantics.toolcode`), for comparison.

Run: python benchmarks/port_results.py [--reps 3000] [--port desk|stockroom|both] [--closures]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DESK = ROOT / "tests" / "fixtures" / "ticket_desk"
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_ticket", {"ticket_id": "T-1"}),  # a read, a dict shown as Python prints it
    ("get_ticket", {"ticket_id": "T-9"}),  # a failed precondition, shown as "Error: ..."
    ("assign_agent", {"ticket_id": "T-1"}),  # a write with three draws
    ("ticket_json", {"ticket_id": "T-1"}),  # compact JSON, keys sorted
]
STOCKROOM = ROOT / "tests" / "fixtures" / "stockroom"
STOCKROOM_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("order", {"part": "bolt", "qty": "x", "customer": "ana"}),  # a binding, then a failed precondition
    ("cancel", {"order_id": "O-00009"}),  # a failed precondition
    ("flag", {"customer": "ana"}),  # a write into a set, shown as Python prints a list
    ("by_customer", {}),  # group_by over the orders, joined
    ("stock_value", {}),  # a generator sum over a constant table, ',.2f'
]


def _median_us(fn: Callable[[], Any], reps: int, between: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(reps):
        if between is not None:
            between()
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def _original(folder: Path, cls: str) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    from port_originals import load_original

    return load_original(folder / "original.py", cls)


def _environment(specs: Path, task: dict[str, Any] | None, closures: bool) -> Any:
    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import Environment

    with tempfile.TemporaryDirectory() as tmp:
        [folder] = write_bundles(compile_specs(specs, tasks_per_branch=1), Path(tmp))
        bundle = Bundle.load(folder)
    env = Environment(bundle, task if task is not None else bundle.tasks[0])
    env.reset()
    env.runner.generated = not closures
    return env


def _run(env: Any, original: Any, calls: list[tuple[str, dict[str, Any]]], reps: int, closures: bool) -> None:
    written: list[float] = []  # per call: writing the episode's recorded calls out (messages, calls, counts)

    def fresh() -> None:  # a new episode once this one has spent its tool calls (not timed)
        if env.tool_calls >= env.config.max_tool_calls:
            n = env.tool_calls
            start = time.perf_counter_ns()
            _ = env.messages  # what call_tool recorded, written out as a reader of the messages gets it
            written.append((time.perf_counter_ns() - start) / n / 1000)
            env.reset()
            env.runner.generated = not closures

    for name, arguments in calls:
        shown = f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
        port: list[float] = []
        python: list[float] = []
        written.clear()
        for _ in range(5):  # interleaved rounds: both see the same machine load
            port.append(_median_us(lambda: env.call_tool(name, arguments), reps // 5, fresh))  # noqa: B023
            python.append(_median_us(lambda: original.call(name, arguments), reps // 5))  # noqa: B023
        p, q = statistics.median(port), statistics.median(python)
        w = statistics.median(written) if written else 0.0
        print(f"{shown:<44} {p:>7.1f}us {w:>7.2f}us {q:>7.1f}us {p / q:>5.1f}x {(p + w) / q:>5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3000)
    parser.add_argument("--port", choices=["desk", "stockroom", "both"], default="both")
    parser.add_argument("--closures", action="store_true", help="run the ports with the closure evaluator")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
          + (", closure evaluator" if args.closures else ""))
    print(f"{'call':<44} {'port':>9} {'written':>9} {'python':>9} {'ratio':>6} {'+written':>6}")
    if args.port in ("desk", "both"):
        desk = _original(DESK, "TicketDesk")
        env = _environment(DESK / "specs", None, args.closures)
        for name, arguments in CALLS:
            assert env.call_tool(name, arguments) == desk.call(name, arguments) or name == "assign_agent"
        _run(env, desk, CALLS, args.reps, args.closures)
    if args.port in ("stockroom", "both"):
        room = _original(STOCKROOM, "Stockroom")
        for qty in ("3", "5", "2"):  # a few orders, so the reads have something to group
            room.order("bolt", qty, "ana")
        task = {"id": "bench", "initial_state": {"state": json.loads(json.dumps(room.state()))}, "slots": {}}
        env = _environment(STOCKROOM / "specs", task, args.closures)
        for name, arguments in STOCKROOM_CALLS:
            assert env.call_tool(name, arguments) == room.call(name, arguments), name
        _run(env, room, STOCKROOM_CALLS, args.reps, args.closures)


if __name__ == "__main__":
    main()
