"""The agent can never read verifier-only data.

For every domain in ``specs/`` and ``examples/``: every field of a compiled task that only the verifiers (and the
training targets) may read gets unique sentinel values planted in it: the gold trajectory (messages, calls with their
arguments and results, outcome, what the agent must tell), the slots, the path and branch taken, the kind of request,
the difficulty and the task id; the verifiers get sentinel names, descriptions and expected values (a ``tells_user``
and an ``assert`` that compare with a sentinel). Then episodes run through
:class:`runtime.episodes.env.Environment` with the
oracle's calls (replayed from the task as compiled, unplanted) and with a probing agent that keeps asking and
claiming to be done, under the scripted user and under an LLM user that repeats its whole prompt. No sentinel may
appear in anything the agent is shown: the system prompt, the tool schemas, the user's messages, the tool results.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.expr import ast as A
from aqwen_spec.resolved import CheckIR
from compiler import compile_specs, write_bundles
from runtime.episodes.agents import OracleAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.env import Environment
from runtime.episodes.users import LLMUser
from runtime.training.trl_environment import TRLEnvironment

ROOT = Path(__file__).resolve().parents[1]
TREES = [ROOT / "specs", *sorted((ROOT / "examples").glob("*/specs"))]
MARK = "SNTL"
VERIFIER_ONLY = ("id", "workflow", "path", "branch", "slots", "gold", "difficulty", "request")


class _Sentinels:
    def __init__(self) -> None:
        self._n = itertools.count()

    def next(self) -> str:
        return f"{MARK}{next(self._n)}X"

    def plant(self, value: Any) -> Any:
        """The same shape, every scalar replaced by a fresh sentinel string."""
        if isinstance(value, dict):
            return {k: self.plant(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.plant(v) for v in value]
        return self.next()


def _planted_bundle(bundle: Bundle, marks: _Sentinels) -> Bundle:
    planted = copy.copy(bundle)
    planted.__post_init__()  # its own state pool and gold caches
    planted.verifiers = {}
    for name, verifier in bundle.verifiers.items():
        checks = [dataclasses.replace(c, name=marks.next()) for c in verifier.checks]
        checks += [CheckIR("tells_user", marks.next(), expr=A.Lit(marks.next())),
                   CheckIR("assert", marks.next(), expr=A.Compare("==", A.Lit(marks.next()), A.Lit(marks.next())))]
        planted.verifiers[name] = dataclasses.replace(verifier, checks=checks, description=marks.next())
    return planted


def _planted_task(task: dict[str, Any], marks: _Sentinels) -> dict[str, Any]:
    out = copy.deepcopy(task)
    for key in VERIFIER_ONLY:
        out[key] = marks.plant(out[key])
    return out


class _Prober:
    """Keeps asking for more, claims to be done, refuses: every way to make the user say something."""

    name = "prober"
    LINES = ["Could you tell me everything you know?", "What else can you tell me?", "Which one was it?",
             "I have done it.", "It is all set.", "Done, anything else?", "I can't do that.", "Shall I go ahead?"]

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        self.lines = iter(self.LINES)

    def act(self, messages: list[dict[str, Any]]) -> str:
        return next(self.lines, "")


class _EchoModel:
    """An LLM user that says everything in its prompt: the worst a model playing the user could do."""

    def complete(self, messages: list[dict[str, Any]]) -> str:
        return " ".join(str(m["content"]) for m in messages)


def _shown(bundle: Bundle, task: dict[str, Any], original: dict[str, Any], agent: Any, llm_user: bool) -> Iterator[str]:
    """Every text the agent is shown in one episode."""
    user = LLMUser(task, _EchoModel()) if llm_user else None
    env = Environment(bundle, task, user=user)
    messages = env.reset()
    agent.start(original, bundle.tool_schemas)  # the oracle replays the task as compiled, not the planted copy
    for _ in range(len(_Prober.LINES) + 2 * len(original["gold"]["messages"]) + 2):
        if env.done:
            break
        messages += env.step(agent.act(messages)).observations
    env.close()
    yield from (json.dumps(m, ensure_ascii=False) for m in env.messages if m["role"] != "assistant")


@pytest.mark.parametrize("tree", TREES, ids=[str(p.relative_to(ROOT)) for p in TREES])
def test_no_verifier_only_value_reaches_the_agent(tree: Path, tmp_path: Path) -> None:
    for folder in write_bundles(compile_specs(tree, tasks_per_branch=2), tmp_path):
        bundle = Bundle.load(folder)
        assert MARK not in json.dumps(bundle.tasks) + json.dumps(bundle.tool_schemas)  # no false alarms
        marks = _Sentinels()
        planted = _planted_bundle(bundle, marks)
        tasks = [_planted_task(t, marks) for t in bundle.tasks]
        planted.tasks = tasks
        seen = [json.dumps(planted.tool_schemas), planted.render_system_prompt()]
        seen += [json.dumps(m) for t in tasks[:3] for m in TRLEnvironment(planted).opening(t)]
        for task, original in zip(tasks, bundle.tasks, strict=True):
            for agent, llm_user in ((OracleAgent(), False), (_Prober(), False), (_Prober(), True)):
                seen += _shown(planted, task, original, agent, llm_user)
        leaked = [text for text in seen if MARK in text]
        assert not leaked, leaked[:3]
        # the planted values are really there to leak: the verifiers read them, and the episodes ran
        assert any(MARK in json.dumps(t["gold"]) for t in tasks)
        assert len(seen) > 10 * len(tasks)
