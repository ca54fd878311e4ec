"""A bundle's tools over MCP (the ``mcp`` SDK's server): for agents, at ``/agent/mcp`` or on stdio.

One MCP session is one episode at a time, on its own runtime :class:`runtime.episodes.env.Environment`. Besides the
bundle's tools (their JSON Schemas as ``inputSchema``), three tools run the episode:

- ``start_episode(task_id?, seed?)``: starts a task (by id, or the task at ``seed mod len(tasks)``, or a random
  one); returns the system prompt and the user's first message;
- ``say_to_user(message)``: the simulated user, as a tool: returns the user's reply (the episode ends when the user
  leaves);
- ``end_episode()``: scores the episode; returns the verifier's breakdown.

Tool calls run through :meth:`runtime.episodes.env.Environment.call_tool`, so arguments are checked, calls recorded,
and errors (unknown tool, bad arguments) answered exactly as in-process; those come back with ``isError``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import mcp.types as types
from mcp.server.lowlevel import Server

from runtime.serving.env_server import Episode, Served, verdict_json

EPISODE_TOOLS = ("start_episode", "say_to_user", "end_episode")


def episode_tools() -> list[types.Tool]:
    return [
        types.Tool(name="start_episode",
                   description="Start an episode: a task by id, or by seed (the task at seed mod the number of "
                               "tasks), or a random one. Returns the system prompt and the user's first message.",
                   inputSchema={"type": "object", "properties": {"task_id": {"type": "string"},
                                                                 "seed": {"type": "integer", "minimum": 0}}}),
        types.Tool(name="say_to_user", description="Say something to the user; returns the user's reply.",
                   inputSchema={"type": "object", "properties": {"message": {"type": "string"}},
                                "required": ["message"]}),
        types.Tool(name="end_episode", description="End the episode and score it; returns the verifier's breakdown.",
                   inputSchema={"type": "object", "properties": {}}),
    ]


def make_mcp_server(served: Served) -> Server[Episode, Any]:
    """An MCP server whose every session has its own :class:`Episode` (closed when the session ends)."""
    clash = sorted(set(EPISODE_TOOLS) & set(served.models.tool_names))
    if clash:
        raise ValueError(f"{served.bundle.name}: tools named {', '.join(clash)} clash with the MCP episode tools")
    tools = [types.Tool(name=s["function"]["name"], description=s["function"].get("description") or "",
                        inputSchema=s["function"].get("parameters") or {"type": "object", "properties": {}})
             for s in served.bundle.tool_schemas] + episode_tools()

    @asynccontextmanager
    async def session_episode(_: Server[Episode, Any]) -> AsyncIterator[Episode]:
        episode = Episode(served, "mcp", start_hint="start_episode")
        try:
            yield episode
        finally:
            episode.close()

    server: Server[Episode, Any] = Server(served.bundle.name, version=served.version, lifespan=session_episode,
                                          instructions=f"Tools of {served.bundle.name}; call start_episode first.")

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return tools

    @server.call_tool(validate_input=False)  # the runtime checks arguments, as in-process
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        episode = server.request_context.lifespan_context
        try:
            if name == "start_episode":
                seed = arguments.get("seed")
                messages = episode.start(arguments.get("task_id"), int(seed) if seed is not None else None)
                env = episode.env
                assert env is not None
                return _result({"task_id": env.task["id"], "system": messages[0]["content"],
                                "user": messages[-1]["content"]})
            if name == "say_to_user":
                step = episode.step(str(arguments.get("message", "")))
                replies = [m["content"] for m in step.observations if m["role"] == "user"]
                out: dict[str, Any] = {"user": replies[-1] if replies else "", "done": step.done}
                if step.done:
                    out["verdict"] = verdict_json(step.info["result"])
                return _result(out)
            if name == "end_episode":
                return _result(verdict_json(episode.finish()))
            content = episode.call_tool(name, arguments)
            failed = episode.env is None or not episode.env.last_call_ok
            return types.CallToolResult(content=[types.TextContent(type="text", text=content)], isError=failed)
        except ValueError as exc:
            return types.CallToolResult(content=[types.TextContent(type="text", text=str(exc))], isError=True)

    return server


def _result(data: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(data, ensure_ascii=False))],
                                structuredContent=data)


class _Endpoint:
    """The streamable-HTTP session manager as a plain ASGI endpoint (no slash redirects)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.manager.handle_request(scope, receive, send)


def mount_mcp(app: Any, served: Served, max_sessions: int, session_timeout: float | None, max_body: int) -> None:
    """Serve the MCP server at ``/agent/mcp`` of ``app`` (streamable HTTP, sessions bounded and reaped when idle)."""
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.routing import Route

    manager = StreamableHTTPSessionManager(make_mcp_server(served), json_response=True,
                                           session_idle_timeout=session_timeout, max_request_body_size=max_body,
                                           max_sessions=max_sessions)
    app.router.routes.append(Route("/agent/mcp", endpoint=_Endpoint(manager), methods=["GET", "POST", "DELETE"]))
    stack = AsyncExitStack()

    async def start() -> None:
        await stack.enter_async_context(manager.run())

    async def stop() -> None:
        await stack.aclose()

    app.router.on_startup.append(start)
    app.router.on_shutdown.insert(0, stop)


def run_stdio(served: Served) -> None:
    """Serve the MCP server on stdin/stdout until the client closes it."""
    import anyio
    from mcp.server.stdio import stdio_server

    server = make_mcp_server(served)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
