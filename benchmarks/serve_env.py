"""Served environments against in-process ones: steps/s and step latency at 1, 100 and 1,000 concurrent sessions.

The plant-maintenance bundle; every session plays whole oracle episodes (the gold turns as raw model text, so every
step parses text, runs tool calls or asks the simulated user, and the last one scores the episode with its verifiers).

- served: ``aqwen-run serve-env`` in its own process on a loopback port; N sessions of OpenEnv's async client
  (``GenericEnvClient``, one WebSocket each) in this process, all connected and reset before the clock starts, then
  stepping at once. A step's latency is from the client's send to its parsed answer, so it includes the wait behind
  the other sessions' steps on the server: at N sessions it is about N times the server's time per step;
- in-process: the same N episodes on runtime ``Environment`` objects in this process, stepped in turn (as the
  served sessions' steps are, one at a time, on the server's event loop); latency is one ``step`` call.

Both sides share the same 2 cores. Run: python benchmarks/serve_env.py [--sessions 1 100 1000] [--steps 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def episodes_for(bundle: Any, sessions: int, steps: int) -> list[list[dict[str, Any]]]:
    """Per session, the tasks it plays: about ``steps`` steps in all, at least one episode per session."""
    def turns(task: dict[str, Any]) -> int:
        return sum(1 for m in task["gold"]["messages"] if m["role"] == "assistant") + 1

    per_episode = statistics.mean(turns(t) for t in bundle.tasks)
    per_session = max(1, round(steps / sessions / per_episode))
    return [[bundle.tasks[(s * per_session + e) % len(bundle.tasks)] for e in range(per_session)]
            for s in range(sessions)]


def in_process(bundle: Any, plan: list[list[dict[str, Any]]]) -> dict[str, float]:
    from runtime.episodes.agents import OracleAgent
    from runtime.episodes.env import Environment

    latencies: list[float] = []
    queues = [list(tasks) for tasks in plan]
    def start(i: int) -> tuple[Any, Any] | None:
        if not queues[i]:
            return None
        task = queues[i].pop(0)
        env = Environment(bundle, task)
        env.reset()
        agent = OracleAgent()
        agent.start(task, [])
        return env, agent

    live = [start(i) for i in range(len(plan))]
    began = time.perf_counter()
    while any(s is not None for s in live):
        for i, s in enumerate(live):
            if s is None:
                continue
            env, agent = s
            text = agent.act([])
            t0 = time.perf_counter()
            result = env.step(text)
            latencies.append(time.perf_counter() - t0)
            if result.done:
                env.close()
                live[i] = start(i)
    wall = time.perf_counter() - began
    return {"steps": len(latencies), "steps_s": len(latencies) / wall, "p50_ms": 1000 * percentile(latencies, 0.5),
            "p99_ms": 1000 * percentile(latencies, 0.99)}


async def served(url: str, plan: list[list[dict[str, Any]]]) -> dict[str, float]:
    from openenv.core.generic_client import GenericEnvClient

    from runtime.episodes.agents import OracleAgent

    latencies: list[float] = []
    clients = [GenericEnvClient(base_url=url, message_timeout_s=600) for _ in plan]
    gate = asyncio.Semaphore(64)  # connect at most 64 at a time

    async def first_reset(client: Any, task: dict[str, Any]) -> Any:
        async with gate:
            return await client.reset(task_id=task["id"])

    began_connect = time.perf_counter()
    firsts = await asyncio.gather(*(first_reset(c, tasks[0]) for c, tasks in zip(clients, plan, strict=True)))
    connect_s = time.perf_counter() - began_connect

    async def session(client: Any, tasks: list[dict[str, Any]], result: Any) -> None:
        for n, task in enumerate(tasks):
            if n:
                result = await client.reset(task_id=task["id"])
            agent = OracleAgent()
            agent.start(task, [])
            while not result.done:
                text = agent.act([])
                t0 = time.perf_counter()
                result = await client.step({"text": text})
                latencies.append(time.perf_counter() - t0)
            assert result.reward == 1.0, task["id"]

    began = time.perf_counter()
    await asyncio.gather(*(session(c, tasks, r) for c, tasks, r in zip(clients, plan, firsts, strict=True)))
    wall = time.perf_counter() - began
    await asyncio.gather(*(c.close() for c in clients))
    return {"steps": len(latencies), "steps_s": len(latencies) / wall, "p50_ms": 1000 * percentile(latencies, 0.5),
            "p99_ms": 1000 * percentile(latencies, 0.99), "connect_s": connect_s}


def start_server(bundle_dir: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "serve-env", str(bundle_dir), "--port", "0",
                             "--quiet", "--log", str(log), "--max-sessions", "2048"],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " on http" not in line:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line}")
    return proc, line.rsplit(" on ", 1)[1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--steps", type=int, default=3000, help="steps per measurement, about (default: 3000)")
    args = parser.parse_args()

    from compiler import compile_specs, write_bundles
    from runtime.episodes.bundle import Bundle

    with tempfile.TemporaryDirectory() as tmp:
        folder = next(f for f in write_bundles(compile_specs(ROOT / "specs"), Path(tmp) / "build")
                      if f.name == "plant_maintenance")
        bundle = Bundle.load(folder)
        proc, url = start_server(folder, Path(tmp) / "episodes.jsonl")
        rows = []
        try:
            for n in args.sessions:
                plan = episodes_for(bundle, n, max(args.steps, n * 6))
                local = in_process(bundle, plan)
                remote = asyncio.run(served(url, plan))
                rows.append((n, local, remote))
                print(f"{n:>5} sessions: in-process {local['steps_s']:8.0f} steps/s p50 {local['p50_ms']:.3f} ms "
                      f"p99 {local['p99_ms']:.3f} ms | served {remote['steps_s']:6.0f} steps/s "
                      f"p50 {remote['p50_ms']:.2f} ms p99 {remote['p99_ms']:.2f} ms "
                      f"({remote['steps']:.0f} steps; {n} sessions opened in {remote['connect_s']:.1f} s)",
                      flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        logged = sum(1 for _ in (Path(tmp) / "episodes.jsonl").open())
    print(f"\nepisodes logged by the server: {logged}")
    print("| sessions | in-process steps/s | p50 | p99 | served steps/s | p50 | p99 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, local, remote in rows:
        print(f"| {n:,} | {local['steps_s']:,.0f} | {local['p50_ms']:.3f} ms | {local['p99_ms']:.3f} ms | "
              f"{remote['steps_s']:,.0f} | {remote['p50_ms']:.1f} ms | {remote['p99_ms']:.1f} ms |")


if __name__ == "__main__":
    main()
