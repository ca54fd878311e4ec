"""Loading environment bundles: format and version checked, every file's hash verified, IR deserialised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aqwen_spec.resolved import ResolvedDomain, ResolvedPersona, ResolvedTool, ResolvedVerifier
from aqwen_spec.serialize import domain_from_json, persona_from_json, tool_from_json, verifier_from_json
from compiler.reader import BundleError, read_bundle, render_system_prompt

if TYPE_CHECKING:
    from aqwen_spec.semantics.changes import Delta

__all__ = ["Bundle", "BundleError"]

@dataclass
class Bundle:
    """A compiled environment: its domain, tools, personas, verifiers and tasks."""

    path: Path
    manifest: dict[str, Any]
    domain: ResolvedDomain
    tools: dict[str, ResolvedTool]
    tool_schemas: list[dict[str, Any]]
    personas: dict[str, ResolvedPersona]
    verifiers: dict[str, ResolvedVerifier]
    system_prompt: str
    tasks: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return self.domain.name

    @classmethod
    def load(cls, path: Path | str) -> Bundle:
        files = read_bundle(path)
        body = files.body
        domain = domain_from_json(body["domain"])
        named = {**domain.types, "State": domain.state}
        tools = {n: tool_from_json(t, named) for n, t in body["tools"].items()}
        personas = {n: persona_from_json(p) for n, p in body["personas"].items()}
        verifiers = {n: verifier_from_json(v) for n, v in body["verifiers"].items()}
        if domain.library:  # the domain's functions and constants, stored once, seen by every tool and check
            for tool in tools.values():
                tool.library = domain.library
            for verifier in verifiers.values():
                verifier.library = domain.library
        return cls(files.path, files.manifest, domain, tools, body["tool_schemas"], personas, verifiers,
                   body["system_prompt"], files.tasks)

    def __post_init__(self) -> None:
        from aqwen_spec.semantics import generate_state
        from runtime.episodes.state_pool import StatePool

        self.states = StatePool(lambda seed: generate_state(self.domain, seed), self.domain.state)
        self._gold_final: dict[str, dict[str, Any]] = {}
        self._gold_changes: dict[str, Any] = {}

    def initial_state(self, task: dict[str, Any]) -> dict[str, Any]:
        """A fresh copy of a task's initial state."""
        from aqwen_spec.semantics import copy_state

        spec = task["initial_state"]
        if "state" in spec:
            return self.states.inline(spec["state"])
        return copy_state(self.states.pristine(int(spec["seed"])))

    def gold_final_state(self, task: dict[str, Any]) -> dict[str, Any]:
        """The state after the task's gold trajectory (replayed once per task, then cached)."""
        from aqwen_spec.expr.episode import Episode
        from aqwen_spec.semantics import ToolRunner

        key = str(task["id"])
        if key not in self._gold_final:
            state = self.initial_state(task)
            runner = ToolRunner(self.tools, state)
            runner.keep_values = False  # only the state counts here
            runner.episode = Episode.of_task(task)  # the gold's draws again
            for call in task["gold"]["calls"]:
                if call["name"] in self.tools:
                    runner.call(call["name"], call["arguments"])
            self._gold_final[key] = state
        return self._gold_final[key]

    def gold_changes(self, task: dict[str, Any]) -> Delta | None:
        """What the task's gold trajectory changes in its initial state (replayed once per task on a pooled state
        under a journal, then cached): rewards compare only there. None where the changes cannot be journaled (an
        inline state, or a ``python:`` tool that writes): then whole states are compared."""
        from aqwen_spec.expr.episode import Episode
        from aqwen_spec.semantics import ToolRunner
        from aqwen_spec.semantics.changes import Delta

        key = str(task["id"])
        if key not in self._gold_changes:
            delta = None
            if "state" not in task["initial_state"]:
                state, journal = self.states.acquire(task)
                index = self.states.index(task, state)
                runner = ToolRunner(self.tools, state, journal)
                runner.keep_values = False
                runner.episode = Episode.of_task(task)
                for call in task["gold"]["calls"]:
                    if call["name"] in self.tools:
                        runner.call(call["name"], call["arguments"])
                if index is not None and not runner.dirty:
                    delta = Delta.capture(state, index.touched(journal))
                self.states.release(task, state, journal, dirty=runner.dirty)
            self._gold_changes[key] = delta
        return self._gold_changes[key]

    def render_system_prompt(self) -> str:
        if not hasattr(self, "_system_prompt"):
            self._system_prompt = render_system_prompt(self.system_prompt, self.domain.name, self.domain.policy,
                                                       self.tool_schemas)
        return self._system_prompt

    def task(self, task_id: str) -> dict[str, Any]:
        for t in self.tasks:
            if t["id"] == task_id:
                return t
        raise KeyError(task_id)
