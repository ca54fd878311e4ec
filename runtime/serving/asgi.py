"""Serving an ASGI application with uvicorn: a bound socket (port 0: a free one), a request-body limit, a server
on a background thread for tests and benchmarks. Imports nothing heavier than uvicorn."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_MAX_BODY = 1 << 20


class BodyLimit:
    """ASGI middleware: an HTTP request body over ``limit`` bytes gets 413 before the app reads it."""

    def __init__(self, app: Any, limit: int, payload: dict[str, Any] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.payload = payload or {"detail": f"request body over {limit} bytes"}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _too_large(send, self.payload)
                return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(send, self.payload)


class _TooLarge(Exception):
    pass


async def _too_large(send: Any, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it a reply
    # written in two pieces waits for the client's delayed ACK (about 40 ms per request, measured)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def make_server(app: Any, ws_max_size: int = DEFAULT_MAX_BODY, quiet: bool = True) -> Any:
    """A uvicorn server for ``app``; its log (requests too, unless ``quiet``) goes to stderr: stdout is left to the
    command's own lines (the URL it serves on)."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config = uvicorn.Config(app, log_level="warning" if quiet else "info", access_log=not quiet,
                            log_config=log_config, ws_max_size=ws_max_size, ws="websockets-sansio", lifespan="on",
                            timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def serve_until_interrupted(server: Any, sock: socket.socket) -> None:
    """Run ``server`` (from :func:`make_server`) on the bound ``sock`` until Ctrl-C; the socket is closed after."""
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


@contextmanager
def serving(app: Any, host: str = "127.0.0.1", port: int = 0, ws_max_size: int = DEFAULT_MAX_BODY) -> Iterator[str]:
    """Serve ``app`` on a background thread for the block (tests, benchmarks); yields the base URL."""
    sock = bind(host, port)
    server = make_server(app, ws_max_size)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("the environment server did not start")
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
