"""``aqwen-run serve-env BUILD/<domain>``: a bundle served as an OpenEnv environment and over MCP.

The arguments and the command; the server itself is :mod:`runtime.serving.env_server` (imported only when the
command runs: ``openenv`` takes seconds to import).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.serving.asgi import DEFAULT_MAX_BODY

DEFAULT_MAX_SESSIONS = 2048
DEFAULT_SESSION_TIMEOUT = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="a bundle folder written by aqwen-compile (BUILD/<domain>)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    parser.add_argument("--log", type=Path, default=None,
                        help="JSONL file of finished episodes (default: runs/serve-<domain>/episodes.jsonl)")
    parser.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS,
                        help="concurrent sessions (default: %(default)s); one more is refused")
    parser.add_argument("--session-timeout", type=float, default=DEFAULT_SESSION_TIMEOUT,
                        help="seconds a session may sit idle before it is closed (default: %(default)s)")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                        help="largest request body or WebSocket message in bytes (default: %(default)s)")
    parser.add_argument("--max-turns", type=int, default=20, help="assistant turns per episode (default: 20)")
    parser.add_argument("--mcp-stdio", action="store_true",
                        help="serve the tools over MCP on stdin/stdout instead of HTTP")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")


def run(args: argparse.Namespace) -> int:
    """Load the bundle (refused if tampered with or of another format version), bind, print the URL, serve."""
    from runtime.episodes.bundle import Bundle, BundleError

    prog = "aqwen-run serve-env"
    for flag, value in (("--max-sessions", args.max_sessions), ("--max-body", args.max_body),
                        ("--max-turns", args.max_turns)):
        if value < 1:
            sys.stderr.write(f"{prog}: error: {flag} must be at least 1\n")
            return 2
    if args.session_timeout <= 0:
        sys.stderr.write(f"{prog}: error: --session-timeout must be positive\n")
        return 2
    try:
        bundle = Bundle.load(args.bundle)
    except BundleError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 1
    try:
        from runtime.serving.asgi import serve_until_interrupted
        from runtime.serving.env_server import EpisodeLog, Served, bind, build_app, make_server, url_of
    except ImportError as exc:
        sys.stderr.write(f"{prog}: error: serving needs the serve extra: pip install -e '.[serve]' ({exc})\n")
        return 1
    from runtime.episodes.env import EpisodeConfig

    log = EpisodeLog(args.log or Path("runs") / f"serve-{bundle.name}" / "episodes.jsonl")
    served = Served(bundle, EpisodeConfig(max_turns=args.max_turns), log)
    if args.mcp_stdio:
        from runtime.serving.mcp_tools import run_stdio

        run_stdio(served)
        return 0
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        sys.stderr.write(f"{prog}: error: cannot bind {args.host}:{args.port}: {exc.strerror or exc}\n")
        return 1
    app = build_app(served, args.max_sessions, args.session_timeout, args.max_body)
    server = make_server(app, args.max_body, args.quiet)
    print(f"{prog}: {bundle.name} (version {served.version}, {len(bundle.tasks)} tasks) on {url_of(sock)}",
          flush=True)
    print(f"{prog}: episodes logged to {log.path}", flush=True)
    serve_until_interrupted(server, sock)
    return 0
