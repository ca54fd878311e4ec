"""Typed OpenEnv models generated from a bundle: the Action, Observation and State of its served environment.

- Action: one assistant turn, as ``tool_calls`` (each ``{"name": <a tool of the bundle>, "arguments": {...}}``,
  the arguments published with the tool's own JSON Schema) with an optional ``message``, a ``message`` to the user
  alone, or raw model ``text`` (parsed as in-process: Qwen3 ``<tool_call>`` blocks). A tool the bundle does not have
  is refused by validation; the arguments' values are checked by the environment itself, which answers a bad
  argument with the same error observation as in-process.
- Observation: the new chat messages, the tool results, the user's reply, and at the end the verifier's breakdown
  (checks, reward, success) and the episode's metrics.
- State: the task, the turn, tool calls made, whether and why the episode ended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, cast

from openenv.core.env_server.types import Action, Observation, State
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model, model_validator
from pydantic_core import PydanticCustomError

from runtime.episodes.bundle import Bundle


class ChatMessage(BaseModel):
    """A chat message as the runtime records it (``role``: system, user, assistant or tool)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str = ""
    name: str | None = None


class ToolResult(BaseModel):
    name: str = Field(description="the tool called ('error' for a call that could not be parsed)")
    content: str = Field(description="the result text the model sees (JSON)")


class Verdict(BaseModel):
    """The verifier's breakdown of a finished episode."""

    reward: float
    success: bool
    gate_failed: bool = False
    checks: list[dict[str, Any]] = Field(default_factory=list, description="each check: what, applicable, passed")
    metrics: dict[str, Any] = Field(default_factory=dict, description="turns, tool calls, errors, terminated_by")


class EpisodeState(State):
    task_id: str | None = None
    turn: int = 0
    tool_calls: int = 0
    done: bool = False
    terminated_by: str = ""
    bundle_version: str = ""


def _class_prefix(domain: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", domain) if part) or "Bundle"


@dataclass(frozen=True)
class EnvModels:
    action: type[Action]
    observation: type[Observation]
    state: type[State]
    tool_names: tuple[str, ...]


def models_for(bundle: Bundle) -> EnvModels:
    """The Action/Observation/State classes of one bundle (tool names and argument schemas from its tools)."""
    prefix = _class_prefix(bundle.name)
    calls: list[Any] = []
    names: list[str] = []
    for schema in bundle.tool_schemas:
        fn = schema["function"]
        name = str(fn["name"])
        names.append(name)
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        model = create_model(
            f"{prefix}Call_{name}",
            __config__=ConfigDict(extra="forbid"),
            __doc__=fn.get("description") or name,
            name=(Literal[name], ...),
            arguments=(Annotated[dict[str, Any], WithJsonSchema(params)], Field(default_factory=dict)),
        )
        calls.append(model)
    union: Any = dict[str, Any]  # a bundle without tools: only messages and text
    if len(calls) == 1:
        union = calls[0]
    elif calls:
        union = Annotated[Union[tuple(calls)], Field(discriminator="name")]  # noqa: UP007

    def exactly_one(self: Any) -> Any:
        # a PydanticCustomError (not a ValueError) keeps the error JSON-serialisable in OpenEnv's error frames
        if self.text is not None and (self.tool_calls or self.message is not None):
            raise PydanticCustomError("action_kind", "give raw model 'text', or 'tool_calls' and/or a 'message', "
                                                     "not both")
        if self.text is None and not self.tool_calls and self.message is None:
            raise PydanticCustomError("action_kind", "an action needs 'tool_calls', a 'message' or raw model 'text'")
        return self

    action = create_model(
        f"{prefix}Action",
        __base__=Action,
        __doc__=f"One assistant turn in {bundle.name}: tool calls, a message to the user, or raw model text.",
        __validators__={"exactly_one": cast(Any, model_validator(mode="after")(exactly_one))},
        tool_calls=(list[union], Field(default_factory=list, description="tool calls of this turn")),
        message=(str | None, Field(default=None, description="text to the user (the simulated user replies)")),
        text=(str | None, Field(default=None, description="raw model text, parsed as in-process")),
    )
    observation = create_model(
        f"{prefix}Observation",
        __base__=Observation,
        __doc__=f"What the agent sees after a reset or a turn in {bundle.name}.",
        task_id=(str, ...),
        turn=(int, 0),
        messages=(list[ChatMessage], Field(default_factory=list, description="new messages, in order")),
        tool_results=(list[ToolResult], Field(default_factory=list)),
        user_reply=(str | None, None),
        errors=(list[str], Field(default_factory=list, description="error kinds of this turn")),
        tools=(list[dict[str, Any]], Field(default_factory=list, description="the tool schemas (at reset)")),
        verdict=(Verdict | None, Field(default=None, description="the verifier's breakdown (at the end)")),
    )
    state = create_model(f"{prefix}State", __base__=EpisodeState, __doc__=f"An episode's state in {bundle.name}.")
    return EnvModels(action, observation, state, tuple(names))
