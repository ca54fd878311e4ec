"""Evaluation: every task K times, success and reward per workflow, branch and persona, and pass^k.

pass^k follows tau2-bench: for a task with n trials of which c succeed, C(c, k) / C(n, k), averaged over tasks.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any

from runtime.episodes.agents import Agent
from runtime.episodes.bundle import Bundle
from runtime.episodes.env import Environment, EpisodeConfig, EpisodeResult


def run_episode(bundle: Bundle, task: dict[str, Any], agent: Agent, config: EpisodeConfig | None = None,
                user: Any = None) -> EpisodeResult:
    """One episode of ``task`` with ``agent`` (the scripted user unless ``user`` is given)."""
    env = Environment(bundle, task, user=user, config=config)
    messages = env.reset()
    agent.start(task, bundle.tool_schemas)
    try:
        while not env.done:
            step = env.step(agent.act(messages))
            messages = env.messages
            if step.done:
                break
        return env.result()
    finally:
        env.close()


def pass_hat_k(successes: list[int], trials: int, k: int) -> float:
    """tau2-bench's pass^k: the chance that k trials drawn from a task's n all succeed, averaged over tasks."""
    if not successes or k > trials:
        return 0.0
    return sum(comb(c, k) / comb(trials, k) for c in successes) / len(successes)


@dataclass
class Trial:
    task: dict[str, Any]
    trial: int
    result: EpisodeResult


@dataclass
class EvalReport:
    agent: str
    domain: str
    k: int
    trials: list[Trial] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        return len({t.task["id"] for t in self.trials})

    @property
    def success_rate(self) -> float:
        return sum(t.result.success for t in self.trials) / len(self.trials) if self.trials else 0.0

    @property
    def mean_reward(self) -> float:
        return sum(t.result.reward for t in self.trials) / len(self.trials) if self.trials else 0.0

    def pass_hat(self) -> dict[int, float]:
        per_task: dict[str, int] = defaultdict(int)
        for t in self.trials:
            per_task[t.task["id"]] += int(t.result.success)
        return {k: pass_hat_k(list(per_task.values()), self.k, k) for k in range(1, self.k + 1)}

    def groups(self, key: Callable[[dict[str, Any]], str]) -> dict[str, dict[str, float]]:
        buckets: dict[str, list[Trial]] = defaultdict(list)
        for t in self.trials:
            buckets[key(t.task)].append(t)
        out = {}
        for name, trials in sorted(buckets.items()):
            per_task: dict[str, int] = defaultdict(int)
            for t in trials:
                per_task[t.task["id"]] += int(t.result.success)
            out[name] = {
                "n": len(trials),
                "tasks": len(per_task),
                "success": sum(t.result.success for t in trials) / len(trials),
                "reward": sum(t.result.reward for t in trials) / len(trials),
                f"pass^{self.k}": pass_hat_k(list(per_task.values()), self.k, self.k),
            }
        return out

    def metrics(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for t in self.trials:
            for name, value in t.result.metrics.items():
                if isinstance(value, (int, float)):
                    totals[name] += value
        return dict(sorted(totals.items()))

    def summary(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "domain": self.domain,
            "n_tasks": self.n_tasks,
            "k": self.k,
            "n_trials": len(self.trials),
            "success_rate": self.success_rate,
            "mean_reward": self.mean_reward,
            "pass_hat_k": {str(k): v for k, v in self.pass_hat().items()},
            "by_workflow": self.groups(lambda t: t["workflow"]),
            "by_branch": self.groups(lambda t: f"{t['workflow']}/{'.'.join(t['path'])}"),
            "by_persona": self.groups(lambda t: str(t.get("persona"))),
            "metrics": self.metrics(),
        }

    def write_trajectories(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for t in self.trials:
                row = {"task_id": t.task["id"], "trial": t.trial, "workflow": t.task["workflow"],
                       "path": t.task["path"], "persona": t.task.get("persona"),
                       "difficulty": t.task.get("difficulty", {}), **t.result.to_json()}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def evaluate(bundle: Bundle, make_agent: Callable[[], Agent], k: int = 1, tasks: Iterable[dict[str, Any]] | None = None,
             config: EpisodeConfig | None = None) -> EvalReport:
    """Run every task ``k`` times with fresh agents from ``make_agent``."""
    chosen = list(tasks) if tasks is not None else bundle.tasks
    agent = make_agent()
    report = EvalReport(agent.name, bundle.name, k)
    for task in chosen:
        for trial in range(k):
            report.trials.append(Trial(task, trial, run_episode(bundle, task, make_agent(), config)))
    return report


def format_table(title: str, rows: dict[str, dict[str, float]], k: int) -> str:
    """Rows of :meth:`EvalReport.groups` as a table: tasks (and, with k > 1, trials: k per task), success and mean
    reward per trial, pass^k per task."""
    width = max([len(title), *map(len, rows)]) + 2
    trials = f"  {'trials':>6}" if k > 1 else ""
    head = f"{title:<{width}}{'tasks':>5}{trials}  {'success':>8}  {'reward':>7}  {f'pass^{k}':>7}"
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        n_trials = f"  {int(r['n']):>6}" if k > 1 else ""
        lines.append(f"{name:<{width}}{int(r.get('tasks', r['n'])):>5}{n_trials}  {r['success']:>8.3f}  "
                     f"{r['reward']:>7.3f}  {r[f'pass^{k}']:>7.3f}")
    return "\n".join(lines)
