"""Distillation by rejection sampling: a teacher solves training tasks, its perfect episodes become SFT data.

The teacher is any backend: a local or built-in checkpoint through transformers (``hf``), a large model on vLLM
(``vllm``, GPU only) or an OpenAI-compatible server (``openai``). Every teacher episode is scored by the task's
verifiers; those scoring 1.0 are replayed through the environment in the *student's* chat format
(:func:`runtime.training.rollout.agent_traces` with :class:`runtime.episodes.agents.ReplayAgent`), so the student trains
on exactly the ids its own rollouts would produce, with tool outputs and user turns masked out, then SFT runs on them.

Writes ``runs/<name>/distill/<stage>/report.json`` (attempts, teacher success, episodes kept) and
``teacher.jsonl`` (every teacher episode with its reward).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

Task = dict[str, Any]


def teacher_episodes(runner: Any, stage: Any, tasks: list[Task]) -> list[tuple[Task, Any]]:
    """(task, EpisodeResult) for every teacher attempt: ``stage.k`` per task."""
    teacher = stage.teacher
    path = teacher.name
    if teacher.backend != "openai":
        from runtime.training.models import domain_corpus, resolve_model

        path = str(resolve_model(teacher.name, domain_corpus(runner.bundle, runner.train_tasks)))
    report = runner.play(path, tasks, stage.k, stage.temperature, name="teacher", backend=teacher.backend,
                         server=teacher)
    return [(t.task, t.result) for t in report.trials]


def perfect(result: Any) -> bool:
    return bool(result.success) and result.reward >= 1.0


def run_distill_stage(runner: Any, model_path: str, stage: Any, name: str, resume: bool) -> dict[str, Any]:
    """The ``distill`` pipeline stage (see the module docstring)."""
    from runtime.episodes.agents import ReplayAgent
    from runtime.pipeline.runner import spread
    from runtime.training.rollout import ChatFormat, Rollout, agent_traces
    from runtime.training.sft_grpo import run_sft

    folder: Path = runner.dir / "distill" / name
    folder.mkdir(parents=True, exist_ok=True)
    tasks = spread(runner.train_tasks, stage.max_tasks)
    runner.echo(f"[{name}] teacher {stage.teacher.name} ({stage.teacher.backend}): {stage.k} attempts on "
                f"{len(tasks)} training tasks")
    episodes = teacher_episodes(runner, stage, tasks)
    with (folder / "teacher.jsonl").open("w", encoding="utf-8") as f:
        for task, episode in episodes:
            f.write(json.dumps({"task": task["id"], "reward": episode.reward, "success": episode.success,
                                "messages": episode.messages}) + "\n")
    kept: list[tuple[Task, list[dict[str, Any]]]] = []
    seen: set[str] = set()
    for task, episode in episodes:
        key = json.dumps([task["id"], [m for m in episode.messages if m["role"] == "assistant"]], sort_keys=True)
        if perfect(episode) and key not in seen:
            seen.add(key)
            kept.append((task, episode.messages))
    replay_failures = 0

    def make_traces(fmt: ChatFormat) -> list[Rollout]:
        nonlocal replay_failures
        traces: list[Rollout] = []
        for task, messages in kept:
            trace = agent_traces(runner.bundle, [task], partial(ReplayAgent, messages), fmt, runner.config)[0]
            if perfect(trace.result):
                traces.append(trace)
            else:  # a teacher episode the environment does not reproduce (e.g. an LLM-simulated user)
                replay_failures += 1
        return traces

    report: dict[str, Any] = {
        "teacher": stage.teacher.name, "backend": stage.teacher.backend, "n_tasks": len(tasks),
        "attempts": len(episodes),
        "teacher_success_rate": round(sum(perfect(r) for _, r in episodes) / len(episodes), 4) if episodes else 0.0,
        "kept_episodes": len(kept), "kept_tasks": len({t["id"] for t, _ in kept}),
    }
    result: dict[str, Any] = {k: report[k] for k in ("teacher_success_rate", "kept_episodes", "kept_tasks")}
    if kept:
        def sink(row: dict[str, Any]) -> None:
            runner._metric({"stage": name, **row})

        trained = run_sft(model_path, runner.bundle, [], runner.dir / "checkpoints" / name, stage.sft,
                          runner.config, sink, resume=resume, make_traces=make_traces,
                          trainer_args=runner.trainer_args)
        result["checkpoint"] = str(trained.checkpoint)
    else:
        runner.echo(f"[{name}] the teacher solved no task perfectly: nothing to distill, the model is unchanged")
    report["replay_failures"] = replay_failures
    result["replay_failures"] = replay_failures
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    runner.echo(f"[{name}] teacher success {report['teacher_success_rate']:.3f}; {len(kept)} perfect episodes on "
                f"{report['kept_tasks']} tasks distilled")
    return result
