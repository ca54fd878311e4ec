"""Compiler throughput: tasks drawn per second on one core, and the whole `aqwen-compile specs/` wall time.

Run: python benchmarks/compile_throughput.py [--tasks 5000] [--runs 5] [--baseline PATH --rounds 8]
Goals (issue: the compiler): at least 20,000 tasks/s per core; compiling specs/ in under 2 s.

``--baseline PATH`` compares with another checkout (its code run with PYTHONPATH=PATH, on this tree's specs/): one
warm worker process per version, pinned to the same CPU, the two taking turns on ``generate(--tasks)`` for
``--rounds`` rounds (seeds 0, 1, 2 each), so that a shared, busy machine disturbs both alike; it prints the medians
and the spread of tasks per CPU second.
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


def worker() -> None:
    """Serve measurements for ``--baseline``: read a task count per line, answer with tasks per CPU second of
    fresh generators (seeds 0, 1, 2, each warmed first) as a JSON list."""
    import json

    from compiler import TaskGenerator, compile_specs

    project = compile_specs(ROOT / "specs")
    print("ready", flush=True)
    for line in sys.stdin:
        n, rates = int(line), []
        for run in range(3):
            generator = TaskGenerator(project.specs, "plant_maintenance", seed=run)
            generator.generate(100, seed=10_000 + run)
            cpu = time.process_time()
            tasks = generator.generate(n, seed=run)
            rates.append(len(tasks) / (time.process_time() - cpu))
        print(json.dumps(rates), flush=True)


def interleaved(baseline: Path, n: int, rounds: int) -> dict[str, list[float]]:
    """Tasks per CPU second of this checkout and of ``baseline``, measured in turns (see the module docstring)."""
    import json

    cpu = str(min(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ""
    workers = {}
    for name, path in (("this", ROOT), ("baseline", baseline.resolve())):
        # the worker is this file run by the other code: ROOT (its specs/) stays this tree's
        env = dict(os.environ, PYTHONPATH=str(path), AQWEN_BENCH_WORKER=cpu)
        workers[name] = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True, env=env, cwd=path)
    rates: dict[str, list[float]] = {name: [] for name in workers}
    try:
        for name, proc in workers.items():
            if proc.stdout is None or proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {name} worker did not start")
        for r in range(rounds):
            for name in (("this", "baseline") if r % 2 == 0 else ("baseline", "this")):
                proc = workers[name]
                proc.stdin.write(f"{n}\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
                rates[name] += json.loads(proc.stdout.readline())  # type: ignore[union-attr]
    finally:
        for proc in workers.values():
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait()
    return rates


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
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with, in turns")
    parser.add_argument("--rounds", type=int, default=8, help="turns of each version with --baseline")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the goal is stated per core
    if args.baseline is not None:
        turns = interleaved(args.baseline, args.tasks, args.rounds)
        for name, values in turns.items():
            print(f"{name}: tasks per CPU second, median {statistics.median(values):,.0f} "
                  f"(slowest {min(values):,.0f}, fastest {max(values):,.0f}, {len(values)} runs)")
        print(f"ratio of the medians: {statistics.median(turns['this']) / statistics.median(turns['baseline']):.2f}")
        return
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
    if "AQWEN_BENCH_WORKER" in os.environ:  # a --baseline worker, run by the code on its PYTHONPATH
        if os.environ["AQWEN_BENCH_WORKER"] and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {int(os.environ["AQWEN_BENCH_WORKER"])})
        worker()
    else:
        main()
