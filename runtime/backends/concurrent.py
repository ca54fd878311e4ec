"""Evaluation with episodes in a thread pool: a slow model reply (an HTTP round trip) never stalls other episodes.

Each episode has its own :class:`runtime.episodes.env.Environment` and its own agent; the bundle is shared (its
:class:`runtime.episodes.state_pool.StatePool` is thread-safe). Threads fit because episodes wait on the network, not on
Python: tool calls and verifiers are quick, model calls happen in the server.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aqwen_spec.semantics.verify import Score
from runtime.episodes.agents import Agent
from runtime.episodes.bundle import Bundle
from runtime.episodes.env import Environment, EpisodeConfig, EpisodeResult
from runtime.episodes.evaluate import EvalReport, Trial

log = logging.getLogger(__name__)


def run_episode_counted(bundle: Bundle, task: dict[str, Any], agent: Agent,
                        config: EpisodeConfig | None = None) -> EpisodeResult:
    """One episode, like :func:`runtime.episodes.evaluate.run_episode`, plus what the agent counted.

    Completion tokens the agent reports (``agent.last_tokens``) go to ``Environment.step``, so token budgets
    work; the agent's numeric ``metrics`` are added to the result's as ``agent.<name>``; an episode that ended
    because the backend failed (``agent.metrics['failed_turns']``) is ``terminated_by: backend_error``.
    """
    env = Environment(bundle, task, config=config)
    messages = env.reset()
    agent.start(task, bundle.tool_schemas)
    try:
        while not env.done:
            text = agent.act(messages)
            step = env.step(text, tokens=int(getattr(agent, "last_tokens", 0) or 0))
            messages = env.messages
            if step.done:
                break
        result = env.result()
    finally:
        env.close()
    counted = getattr(agent, "metrics", None)
    if isinstance(counted, Mapping):
        for name, value in counted.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                result.metrics[f"agent.{name}"] = value
        if counted.get("failed_turns") and result.metrics.get("terminated_by") == "agent_end":
            result.metrics["terminated_by"] = "backend_error"
    return result


def _crashed(task: dict[str, Any], exc: BaseException) -> EpisodeResult:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return EpisodeResult(str(task.get("id")), 0.0, False, Score(0.0, False),
                         {"terminated_by": "exception", "episode_errors": 1, "error": text[:500]}, [], [])


def evaluate_concurrent(
    bundle: Bundle,
    tasks: Iterable[dict[str, Any]] | None,
    make_agent: Callable[[], Agent],
    k: int = 1,
    workers: int = 8,
    config: EpisodeConfig | None = None,
    on_done: Callable[[Trial], None] | None = None,
    raise_errors: bool = False,
) -> EvalReport:
    """Every task ``k`` times (``tasks=None``: all of the bundle's), ``workers`` episodes at a time.

    Returns the same :class:`runtime.episodes.evaluate.EvalReport` as :func:`runtime.episodes.evaluate.evaluate`,
    trials in task order whatever order they finished in. ``on_done(trial)`` is called (from a worker thread, one call
    at a time) as each episode ends, e.g. for a progress bar. An exception inside one episode (an agent's bug) is
    logged and recorded as a failed trial with ``terminated_by: exception`` so the others' results are kept;
    ``raise_errors=True`` re-raises it instead.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    chosen = list(tasks) if tasks is not None else list(bundle.tasks)
    jobs = [(task, trial) for task in chosen for trial in range(k)]
    name = getattr(make_agent(), "name", "agent")
    report = EvalReport(str(name), bundle.name, k)
    done_lock = threading.Lock()

    def episode(task: dict[str, Any], trial: int) -> Trial:
        try:
            result = run_episode_counted(bundle, task, make_agent(), config)
        except Exception as exc:
            if raise_errors:
                raise
            log.exception("episode of task %s (trial %d) failed", task.get("id"), trial)
            result = _crashed(task, exc)
        record = Trial(task, trial, result)
        if on_done is not None:
            with done_lock:
                on_done(record)
        return record

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="aqwen-episode") as pool:
        futures = [pool.submit(episode, task, trial) for task, trial in jobs]
        try:
            report.trials = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return report
