"""Compiled environments in TRL's own tool loop: ``GRPOTrainer(environment_factory=...)``.

aqwen-run's GRPO stages use ``rollout_func`` (:mod:`runtime.training.sft_grpo`), which plays whole episodes with the
simulated user. TRL's ``environment_factory`` loop is simpler: the model calls tools until it answers without one,
and that answer ends the episode; no user speaks in between. Tasks whose opening message holds everything the agent
needs play the same in both loops; tasks that need the user's answers mid-episode (clarifications, confirmations)
cannot be solved in TRL's. Use this to train on a bundle from TRL code of your own (TRL's vLLM generation included),
and as the baseline that ``benchmarks/grpo_step.py`` compares our GRPO step with::

    from trl import GRPOTrainer
    from runtime.training.trl_environment import TRLEnvironment

    env = TRLEnvironment(bundle)
    trainer = GRPOTrainer(model=..., args=..., train_dataset=env.dataset(tasks),
                          environment_factory=env.factory, reward_funcs=[env.reward])

Each instance of ``env.factory`` plays one task at a time: ``reset(task_id=...)`` starts it on a fresh state, and its
public methods are the bundle's tools (a signature and a Google-style docstring per tool, from which TRL renders the
tool schemas); every call goes to the tool runner and is recorded as in :meth:`runtime.episodes.env.Environment.step`.
``env.reward`` hands the text of each rollout's assistant messages to its environment as what the agent told the user
(there is no user turn to tell it in) and returns the verifiers' reward.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any, Optional

from runtime.episodes.bundle import Bundle
from runtime.episodes.env import Environment, EpisodeConfig, EpisodeResult

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # environment_factory is marked experimental in TRL

_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list,
                          "object": dict}


def _hint(schema: dict[str, Any]) -> Any:
    """The Python type hint whose JSON schema (as transformers derives it) is closest to ``schema``."""
    kinds = schema.get("type", "string")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    nullable = "null" in kinds
    kinds = [k for k in kinds if k != "null"] or ["string"]
    hint = _TYPES.get(kinds[0], str)
    if hint is list and isinstance(schema.get("items"), dict):
        hint = list[_hint(schema["items"])]  # type: ignore[misc]
    return Optional[hint] if nullable else hint  # noqa: UP045 - typing.get_type_hints needs a real type object


def _docstring(function: dict[str, Any]) -> str:
    lines = [function.get("description") or function["name"].replace("_", " ").capitalize() + ".", "", "Args:"]
    for name, schema in function.get("parameters", {}).get("properties", {}).items():
        text = " ".join(str(schema.get("description") or name.replace("_", " ")).split())
        if "enum" in schema:
            text += f" (choices: {json.dumps(schema['enum'])})"
        lines.append(f"    {name}: {text}")
    return "\n".join(lines if len(lines) > 3 else lines[:1])


def _tool_method(function: dict[str, Any]) -> Any:
    """A method that runs one of the bundle's tools, with the signature and docstring TRL reads its schema from."""
    name = function["name"]
    if not name.isidentifier():
        raise ValueError(f"tool {name!r}: TRL's environment_factory needs tool names that are Python identifiers")
    parameters = function.get("parameters", {})
    required = set(parameters.get("required", []))
    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    for param, schema in parameters.get("properties", {}).items():
        if not param.isidentifier():
            raise ValueError(f"tool {name!r}: parameter {param!r} is not a Python identifier")
        annotations[param] = _hint(schema)
        default = inspect.Parameter.empty if param in required else None
        signature.append(inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=annotations[param]))

    def method(self: Any, **arguments: Any) -> str:
        return str(self.episode.call_tool(name, arguments))

    method.__name__ = method.__qualname__ = name
    method.__doc__ = _docstring(function)
    method.__annotations__ = annotations
    method.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    return method


class TRLEnvironment:
    """A bundle as TRL's ``environment_factory`` (see the module docstring)."""

    def __init__(self, bundle: Bundle, config: EpisodeConfig | None = None) -> None:
        self.bundle = bundle
        self.config = config or EpisodeConfig()
        self.tasks = {str(t["id"]): t for t in bundle.tasks}
        self.factory = self._make_factory()

    def _make_factory(self) -> type:
        owner = self

        def reset(self: Any, task_id: str, **row: Any) -> None:
            if self.episode is not None:
                self.episode.close()
            if task_id not in owner.tasks:
                raise KeyError(f"task {task_id!r} is not in bundle {owner.bundle.domain.name!r}")
            self.episode = Environment(owner.bundle, owner.tasks[task_id], config=owner.config)
            self.episode.reset()

        def init(self: Any) -> None:
            self.episode = None

        namespace: dict[str, Any] = {"__init__": init, "reset": reset, "__doc__": "One episode at a time of "
                                     f"{owner.bundle.domain.name}; the public methods are its tools."}
        for schema in self.bundle.tool_schemas:
            function = schema["function"]
            if function["name"] in namespace or function["name"] == "get_reward" or function["name"].startswith("_"):
                # TRL reads reset and get_reward as the environment's own, and never offers _names as tools
                raise ValueError(f"tool {function['name']!r}: TRL's environment_factory reserves this name")
            namespace[function["name"]] = _tool_method(function)
        return type("BundleEnvironment", (), namespace)

    def opening(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        """The prompt of a task: the system prompt with the policy and the user's first message."""
        env = Environment(self.bundle, task, config=self.config)
        try:
            return env.reset()
        finally:
            env.close()

    def dataset(self, tasks: list[dict[str, Any]]) -> Any:
        """A ``datasets.Dataset`` with the conversational ``prompt`` of every task and its ``task_id``."""
        from datasets import Dataset

        return Dataset.from_dict({"prompt": [self.opening(t) for t in tasks],
                                  "task_id": [str(t["id"]) for t in tasks]})

    def results(self, completions: list[Any], environments: list[Any]) -> list[EpisodeResult]:
        """End every rollout's episode on the text of its assistant messages and score it."""
        out = []
        for completion, environment in zip(completions, environments, strict=True):
            messages = completion if isinstance(completion, list) else [{"role": "assistant",
                                                                          "content": str(completion)}]
            assistant = [m for m in messages if m.get("role") == "assistant"]
            said = [_text(m.get("content")) for m in assistant]
            out.append(environment.episode.end_with(said, turns=len(assistant)))
        return out

    def reward(self, completions: list[Any], environments: list[Any], **kwargs: Any) -> list[float]:
        """A TRL reward function: the verifiers' reward of every rollout."""
        return [r.reward for r in self.results(completions, environments)]


def _text(content: Any) -> str:
    if isinstance(content, list):  # multimodal-style content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")
