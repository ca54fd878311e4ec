"""Parsing assistant output in Qwen3's tool-call format (vLLM's ``hermes`` parser speaks the same).

``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks are tool calls; ``<think>...</think>`` is
reasoning; the rest is text for the user. Malformed output never raises: every problem is a :class:`ParseProblem`
that the environment turns into an error observation and a counted metric.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOOL_CALL = re.compile(r"<tool_call>(.*?)(</tool_call>|\Z)", re.DOTALL)
_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL)
MAX_CALLS_PER_TURN = 16


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class ParseProblem:
    kind: str  # broken_json | not_an_object | missing_name | bad_arguments | unclosed_tag | too_many_calls
    message: str
    raw: str = ""


@dataclass
class AssistantTurn:
    """One assistant turn: what it says to the user, the tool calls it makes, and what could not be parsed."""

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)
    raw: str | None = None

    def to_message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [c.to_json() for c in self.tool_calls]
        return msg


def _call_from(obj: Any, raw: str) -> ToolCall | ParseProblem:
    if not isinstance(obj, dict):
        return ParseProblem("not_an_object", "a tool call must be a JSON object with 'name' and 'arguments'", raw)
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return ParseProblem("missing_name", "a tool call needs a 'name' string", raw)
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # some models double-encode the arguments
        try:
            args = json.loads(args)
        except ValueError:
            return ParseProblem("bad_arguments", f"arguments of {name} are not valid JSON", raw)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return ParseProblem("bad_arguments", f"arguments of {name} must be a JSON object", raw)
    return ToolCall(name, args)


def parse_assistant(text: str) -> AssistantTurn:
    """Split raw model text into user-facing content, tool calls and parse problems."""
    turn = AssistantTurn(raw=text)
    visible = _THINK.sub("", text)
    calls: list[ToolCall] = []
    for match in _TOOL_CALL.finditer(visible):
        body = match.group(1).strip()
        if not match.group(2):
            turn.problems.append(ParseProblem("unclosed_tag", "a <tool_call> is never closed", body[:200]))
        if len(calls) >= MAX_CALLS_PER_TURN:
            turn.problems.append(ParseProblem("too_many_calls", f"at most {MAX_CALLS_PER_TURN} calls a turn", ""))
            break
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as exc:
            turn.problems.append(ParseProblem("broken_json", f"tool call is not valid JSON: {exc.msg}", body[:200]))
            continue
        parsed = _call_from(obj, body[:200])
        if isinstance(parsed, ParseProblem):
            turn.problems.append(parsed)
        else:
            calls.append(parsed)
    turn.tool_calls = calls
    turn.content = _TOOL_CALL.sub("", visible).strip()
    return turn


def from_message(message: dict[str, Any]) -> AssistantTurn:
    """An assistant turn from an OpenAI-style message (structured tool calls, e.g. from a server's parser)."""
    turn = AssistantTurn(content=str(message.get("content") or ""))
    if "<tool_call>" in turn.content:
        parsed = parse_assistant(turn.content)
        turn.content, turn.tool_calls, turn.problems = parsed.content, parsed.tool_calls, parsed.problems
    for call in message.get("tool_calls") or []:
        fn = call.get("function", call) if isinstance(call, dict) else None
        if fn is None:
            turn.problems.append(ParseProblem("not_an_object", "a tool call must be an object", str(call)[:200]))
            continue
        parsed_call = _call_from({"name": fn.get("name"), "arguments": fn.get("arguments")}, str(fn)[:200])
        if isinstance(parsed_call, ParseProblem):
            turn.problems.append(parsed_call)
        else:
            turn.tool_calls.append(parsed_call)
    return turn


def format_tool_call(call: dict[str, Any]) -> str:
    """A tool call as Qwen3 writes it."""
    return "<tool_call>\n" + json.dumps({"name": call["name"], "arguments": call["arguments"]},
                                        ensure_ascii=False) + "\n</tool_call>"
