"""Built-in agents: ``oracle`` (replays the gold trajectory), ``noop`` (ends at once), ``random`` (random calls).

Model agents (transformers, vLLM, OpenAI-compatible servers) implement the same :class:`Agent` protocol.
"""

from __future__ import annotations

import json
import random
from typing import Any, Protocol

from runtime.episodes.parsing import format_tool_call


class Agent(Protocol):
    name: str

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        """Called at the start of an episode."""

    def act(self, messages: list[dict[str, Any]]) -> str:
        """The next assistant turn, as raw model text (Qwen3 tool-call format)."""


class OracleAgent:
    """Replays the task's gold assistant turns in order: what a perfect agent would say and call."""

    name = "oracle"

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        self.turns = [m for m in task["gold"]["messages"] if m["role"] == "assistant"]
        self.index = 0

    def act(self, messages: list[dict[str, Any]]) -> str:
        if self.index >= len(self.turns):
            return ""
        turn = self.turns[self.index]
        self.index += 1
        calls = turn.get("tool_calls") or []
        return "\n".join([turn["content"]] * bool(turn["content"]) + [format_tool_call(c) for c in calls])


class ReplayAgent(OracleAgent):
    """Replays given assistant turns (a teacher's episode) instead of the gold: for distillation."""

    name = "replay"

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        self.turns = [m for m in self.messages if m["role"] == "assistant"]
        self.index = 0


class NoopAgent:
    """Ends the episode at once."""

    name = "noop"

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        pass

    def act(self, messages: list[dict[str, Any]]) -> str:
        return ""


def _random_value(schema: dict[str, Any], rng: random.Random) -> Any:
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = rng.choice([k for k in kind if k != "null"] or ["null"])
    if kind == "integer":
        return rng.randint(-2, 10)
    if kind == "number":
        return round(rng.uniform(-2, 100), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [_random_value(schema.get("items", {}), rng) for _ in range(rng.randint(0, 2))]
    if kind == "object":
        return {k: _random_value(v, rng) for k, v in schema.get("properties", {}).items()}
    if kind == "null":
        return None
    return rng.choice(["A-1", "WO-1001", "M-101", "T-1", "P-11", "x", ""])


class RandomAgent:
    """Calls random tools with random arguments of the right types for a few turns, then ends."""

    name = "random"

    def __init__(self, seed: int = 0, turns: int = 4) -> None:
        self.seed = seed
        self.max_turns = turns

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        self.rng = random.Random(f"{self.seed}:{task['id']}")
        self.tools = [t["function"] for t in tools if t["function"]["name"] != "transfer_to_human"]
        self.turn = 0

    def act(self, messages: list[dict[str, Any]]) -> str:
        self.turn += 1
        if self.turn > self.max_turns or not self.tools:
            return ""
        fn = self.rng.choice(self.tools)
        params = fn.get("parameters", {}).get("properties", {})
        args = {name: _random_value(schema, self.rng) for name, schema in params.items()}
        return format_tool_call({"name": fn["name"], "arguments": json.loads(json.dumps(args))})


BUILTIN_AGENTS = {"oracle": OracleAgent, "noop": NoopAgent, "random": RandomAgent}
