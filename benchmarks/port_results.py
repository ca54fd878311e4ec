"""A ported tool call against its Python original: the ticket desk of ``tests/fixtures/ticket_desk``.

Both answer the same calls with the same strings (``tests/test_results_format.py`` replays them); this measures what
one call costs: ``Environment.call_tool`` on the port (arguments checked, preconditions, effects, draws from the
episode's generator, the result rendered in the domain's ``python`` format, the error in its own format) against
the original's method call plus ``str()`` of its result, interleaved in one process, medians of many repetitions.

Run: python benchmarks/port_results.py [--reps 3000]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
