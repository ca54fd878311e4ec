"""Compiler throughput: tasks drawn per second on one core, and the whole `aqwen-compile specs/` wall time.

Run: python benchmarks/compile_throughput.py [--tasks 5000] [--runs 5]
Goals (issue: the compiler): at least 20,000 tasks/s per core; compiling specs/ in under 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tasks_per_second(n: int, runs: int) -> tuple[list[float], list[float], list[tuple[int, int]]]:
    """Tasks per wall-clock second and per CPU second of this process (the second is what a busy shared machine
    disturbs least), and per run how many distinct samples and (sample, persona) pairs the tasks hold."""
    import json

    from compiler import TaskGenerator, compile_specs

    project = compile_specs(ROOT / "specs")
    rates, cpu_rates, distinct = [], [], []
    for run in range(runs):
        generator = TaskGenerator(project.specs, "plant_maintenance", seed=run)
        generator.generate(100, seed=10_000 + run)  # warm: initial states generated, expressions compiled
        start, cpu = time.perf_counter(), time.process_time()
        tasks = generator.generate(n, seed=run)
        rates.append(len(tasks) / (time.perf_counter() - start))
        cpu_rates.append(len(tasks) / (time.process_time() - cpu))
        samples = {(t.data["workflow"], json.dumps(t.data["initial_state"]), json.dumps(t.data["slots"]))
                   for t in tasks}
        pairs = {(t.data["workflow"], json.dumps(t.data["initial_state"]), json.dumps(t.data["slots"]),
                  t.data["persona"]) for t in tasks}
        distinct.append((len(samples), len(pairs)))
    return rates, cpu_rates, distinct


def compile_wall(runs: int) -> list[float]:
    exe = Path(sys.executable).with_name("aqwen-compile")
    times = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([str(exe), str(ROOT / "specs"), "-o", out, "-q"], check=True)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the goal is stated per core
    rates, cpu_rates, distinct = tasks_per_second(args.tasks, args.runs)
    runs = ", ".join(f"{r:,.0f}" for r in rates)
    print(f"tasks/s on one core: median {statistics.median(rates):,.0f} (runs: {runs})")
    runs = ", ".join(f"{r:,.0f}" for r in cpu_rates)
    print(f"tasks per CPU second: median {statistics.median(cpu_rates):,.0f} (runs: {runs})")
    runs = ", ".join(f"{s:,} and {p:,}" for s, p in distinct)
    print(f"distinct samples and (sample, persona) pairs among the {args.tasks:,} tasks (runs: {runs})")
    walls = compile_wall(args.runs)
    print(f"aqwen-compile specs/: median {statistics.median(walls):.2f} s wall "
          f"(runs: {', '.join(f'{w:.2f}' for w in walls)})")


if __name__ == "__main__":
    main()
