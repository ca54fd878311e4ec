"""A ported tool call against its Python original: the ticket desk of ``tests/fixtures/ticket_desk``.

Both answer the same calls with the same strings (``tests/test_results_format.py`` replays them); this measures what
one call costs: ``Environment.call_tool`` on the port (arguments checked, preconditions, effects, draws from the
episode's generator, the result rendered in the domain's ``python`` format, the error in its own format) against
the original's method call plus ``str()`` of its result, interleaved in one process, medians of many repetitions.

``--port stockroom`` measures the stockroom of ``tests/fixtures/stockroom`` instead (a counter written by name,
``let:`` bindings, a domain function and a constant table, a set, ``group_by``, format specs): it has no workflow,
so its calls go through ``ToolRunner.call`` plus rendering the result, the step path without the episode's bookkeeping.

Run: python benchmarks/port_results.py [--reps 3000] [--port desk|stockroom]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import statistics
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


def _median_us(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3000)
    parser.add_argument("--port", choices=["desk", "stockroom"], default="desk")
    args = parser.parse_args()
    if args.port == "stockroom":
        _stockroom(args.reps)
        return
    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import Environment, EpisodeConfig

    spec = importlib.util.spec_from_file_location("ticket_desk_original", DESK / "original.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with tempfile.TemporaryDirectory() as tmp:
        [folder] = write_bundles(compile_specs(DESK / "specs", tasks_per_branch=1), Path(tmp))
        bundle = Bundle.load(folder)
    env = Environment(bundle, bundle.tasks[0], config=EpisodeConfig(max_tool_calls=10**9))
    env.reset()
    desk = module.TicketDesk()
    print(f"{'call':<40} {'port':>9} {'python':>9} {'ratio':>6}")
    for name, arguments in CALLS:
        assert env.call_tool(name, arguments) == desk.call(name, arguments) or name == "assign_agent"
        port: list[float] = []
        python: list[float] = []
        on_port = functools.partial(env.call_tool, name, arguments)
        on_python = functools.partial(desk.call, name, arguments)
        for _ in range(5):  # interleaved rounds: both see the same machine load
            port.append(_median_us(on_port, args.reps // 5))
            python.append(_median_us(on_python, args.reps // 5))
        p, q = statistics.median(port), statistics.median(python)
        shown = f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
        print(f"{shown:<40} {p:>7.1f}us {q:>7.1f}us {p / q:>5.1f}x")


STOCKROOM = ROOT / "tests" / "fixtures" / "stockroom"
STOCKROOM_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("order", {"part": "bolt", "qty": "x", "customer": "ana"}),  # a binding, then a failed precondition
    ("cancel", {"order_id": "O-00009"}),  # a failed precondition
    ("flag", {"customer": "ana"}),  # a write into a set, shown as Python prints a list
    ("by_customer", {}),  # group_by over the orders, joined
    ("stock_value", {}),  # a generator sum over a constant table, ',.2f'
]


def _interleaved(on_port: Callable[[], Any], on_python: Callable[[], Any], reps: int) -> tuple[float, float]:
    port: list[float] = []
    python: list[float] = []
    for _ in range(5):  # interleaved rounds: both see the same machine load
        port.append(_median_us(on_port, reps // 5))
        python.append(_median_us(on_python, reps // 5))
    return statistics.median(port), statistics.median(python)


def _stockroom(reps: int) -> None:
    from aqwen_spec.check import check_paths
    from aqwen_spec.semantics.tools import ToolRunner

    spec = importlib.util.spec_from_file_location("stockroom_original", STOCKROOM / "original.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    room = module.Stockroom()
    for qty in ("3", "5", "2"):  # a few orders, so the reads have something to group
        room.order("bolt", qty, "ana")
    state = json.loads(json.dumps(room.state()))  # the port's own copy
    runner = ToolRunner(check_paths([STOCKROOM / "specs"]).specs.tools_of("stockroom"), state)
    print(f"{'call':<40} {'port':>9} {'python':>9} {'ratio':>6}")
    for name, arguments in STOCKROOM_CALLS:
        assert runner.call(name, arguments).render() == room.call(name, arguments)
        p, q = _interleaved(lambda: runner.call(name, arguments).render(),  # noqa: B023 (called in the loop)
                            lambda: room.call(name, arguments), reps)  # noqa: B023
        shown = f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
        print(f"{shown:<40} {p:>7.1f}us {q:>7.1f}us {p / q:>5.1f}x")


if __name__ == "__main__":
    main()
