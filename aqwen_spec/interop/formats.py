"""Reading tool definitions from other ecosystems into one shape, :class:`FunctionDoc`.

Accepted inputs (``detect_format`` tells them apart):

- ``openai``: OpenAI function calling: a list of ``{"type": "function", "function": {name, description, parameters}}``,
  bare function objects, or ``{"tools": [...]}`` holding either;
- ``mcp``: an MCP ``tools/list`` result, ``{"tools": [{name, description, inputSchema}]}``, or its JSON-RPC envelope
  ``{"jsonrpc": "2.0", "result": {"tools": [...]}}``;
- ``bfcl``: the Berkeley Function Calling Leaderboard's function docs: one JSON object per line with ``name``,
  ``description``, ``parameters`` (types ``dict``, ``float``, ``integer``, ``string``, ``array``, ``boolean``,
  ``any``) and often ``response``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["openai", "mcp", "bfcl"]
FORMATS: tuple[Format, ...] = ("openai", "mcp", "bfcl")


class InteropError(ValueError):
    """Input that is not one of the accepted tool formats."""


@dataclass(frozen=True)
class FunctionDoc:
    """One tool as another ecosystem describes it: a name, a description and a JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    source: Format
    returns: dict[str, Any] | None = None
    """The documented result schema, where the format has one (BFCL ``response``, MCP ``outputSchema``)."""
    read_only: bool | None = None
    """MCP's ``annotations.readOnlyHint``, where given."""
    extra: dict[str, Any] = field(default_factory=dict)


def _json_lines(text: str) -> list[Any] | None:
    values = []
    for line in text.splitlines():
        if line.strip():
            try:
                values.append(json.loads(line))
            except ValueError:
                return None
    return values


def parse_json(text: str) -> Any:
    """The whole text as JSON, or, failing that, a list of its JSON lines."""
    try:
        return json.loads(text)
    except ValueError as exc:
        lines = _json_lines(text)
        if lines is None:
            raise InteropError(f"not JSON and not JSON lines: {exc}") from None
        return lines


def _tool_list(data: Any) -> list[Any]:
    if isinstance(data, dict) and isinstance(data.get("result"), dict):
        data = data["result"]
    if isinstance(data, dict) and isinstance(data.get("tools"), list):
        return list(data["tools"])
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise InteropError("expected a JSON object or a list of tools")


def _param_type(item: dict[str, Any]) -> Any:
    params = item.get("parameters")
    return params.get("type") if isinstance(params, dict) else None


def detect_format(data: Any) -> Format:
    """Which format parsed JSON is in (see the module docstring)."""
    if isinstance(data, dict) and ("jsonrpc" in data or isinstance(data.get("result"), dict)):
        return "mcp"
    items = [i for i in _tool_list(data) if isinstance(i, dict)]
    if not items:
        raise InteropError("no tools found")
    if any("inputSchema" in i for i in items):
        return "mcp"
    if any(i.get("type") == "function" or isinstance(i.get("function"), dict) for i in items):
        return "openai"
    if any(_param_type(i) == "dict" or "response" in i for i in items):
        return "bfcl"
    return "openai"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _schema(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {"type": "object", "properties": {}}
    if not isinstance(value, dict):
        raise InteropError(f"{where}: the parameters are not a JSON object")
    return value


def read_functions(data: Any, fmt: Format | Literal["auto"] = "auto") -> list[FunctionDoc]:
    """Every tool in parsed JSON ``data``, in order."""
    if fmt == "auto":
        fmt = detect_format(data)
    out: list[FunctionDoc] = []
    for i, item in enumerate(_tool_list(data)):
        where = f"tool #{i + 1}"
        if not isinstance(item, dict):
            raise InteropError(f"{where}: expected a JSON object, found {type(item).__name__}")
        if fmt == "openai" and isinstance(item.get("function"), dict):
            item = item["function"]
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InteropError(f"{where}: no 'name'")
        where = f"tool '{name}'"
        if fmt == "mcp":
            params = _schema(item.get("inputSchema", item.get("parameters")), where)
            annotations = item.get("annotations") if isinstance(item.get("annotations"), dict) else {}
            hint = annotations.get("readOnlyHint")
            returns = item.get("outputSchema")
            out.append(FunctionDoc(name, _str(item.get("description")), params, "mcp",
                                   returns if isinstance(returns, dict) else None,
                                   hint if isinstance(hint, bool) else None))
        else:
            params = _schema(item.get("parameters"), where)
            returns = item.get("response")
            out.append(FunctionDoc(name, _str(item.get("description")), params, fmt,
                                   returns if isinstance(returns, dict) else None))
    return out


def load_functions(text: str, fmt: Format | Literal["auto"] = "auto") -> tuple[Format, list[FunctionDoc]]:
    """Parse ``text`` (JSON or JSON lines) and read its tools; returns the format found and the tools."""
    data = parse_json(text)
    found: Format = detect_format(data) if fmt == "auto" else fmt
    return found, read_functions(data, found)
