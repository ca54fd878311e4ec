"""An agent backed by any OpenAI-compatible chat-completions server (vLLM, SGLang, ``aqwen-run serve``, ...).

Requests go through ``httpx`` (one connection pool per process, shared by every agent and thread, so the turns of
many episodes reuse keep-alive connections); no ``openai`` package. The episode's messages are converted to OpenAI's
format (assistant tool calls with ids, tool results answering them), the bundle's tool schemas go as ``tools``, and the
reply, whether it carries structured ``tool_calls`` (a server-side parser such as vLLM's ``hermes``) or raw
``<tool_call>`` text, comes back as raw text in Qwen3's format for :meth:`runtime.episodes.env.Environment.step`
to parse.

A server that fails (connection refused, timeout, HTTP 5xx/429, a body that is not a chat completion) is retried a
bounded number of times with exponential backoff; after that the turn is empty, which ends the episode, and the
failure is counted in :attr:`OpenAIAgent.metrics` (``failed_turns``). An episode never crashes on the network.

vLLM, for example::

    vllm serve Qwen/Qwen3-4B --enable-auto-tool-choice --tool-call-parser hermes
    agent = OpenAIAgent("http://127.0.0.1:8000/v1", "Qwen/Qwen3-4B",
                        extra_body={"chat_template_kwargs": {"enable_thinking": False}})

(``enable_thinking: False`` renders prompts as :class:`runtime.training.rollout.ChatFormat` does for training; vLLM's
default for Qwen3 is thinking on. ``aqwen-run serve`` renders with thinking off unless asked.)
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from runtime.episodes.parsing import format_tool_call

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class BackendError(Exception):
    """A request that failed; ``kind`` is the metric it is counted under, ``retry`` whether trying again may help."""

    def __init__(self, kind: str, message: str, retry: bool = True, wait: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry = retry
        self.wait = wait


# --- message conversion (pure functions) ---------------------------------------------------------------------


def _call_id(message_index: int, call_index: int) -> str:
    return f"call_{message_index}_{call_index}"


def to_openai_messages(messages: list[dict[str, Any]], strict: bool = False) -> list[dict[str, Any]]:
    """Our episode messages in OpenAI's chat format.

    Assistant tool calls get ids (``call_<message>_<call>``, stable across turns, so a server's prefix cache keeps
    hitting) and arguments as a JSON string; each tool result answers the next call of its name with
    ``tool_call_id``. Observations that answer no call (the environment's parse-error results, ``name: "error"``)
    stay ``tool`` messages with an id of their own, as the model saw them in training; ``strict=True`` (for servers
    that check that every tool message answers a call, such as OpenAI's) sends them instead as one user message
    after the turn's tool results.
    """
    out: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []  # (id, name) of the last assistant turn's calls not yet answered
    orphans: list[str] = []

    def flush_orphans() -> None:
        if orphans:
            out.append({"role": "user", "content": "\n".join(orphans)})
            orphans.clear()

    for index, m in enumerate(messages):
        role = m.get("role")
        content = m.get("content")
        text = content if isinstance(content, str) else "" if content is None else json.dumps(content)
        if role == "tool":
            name = m.get("name", "")
            match = next((i for i, (_, n) in enumerate(pending) if n == name), None)
            if match is not None:
                call_id, _ = pending.pop(match)
                out.append({"role": "tool", "tool_call_id": call_id, "content": text})
            elif strict:
                orphans.append(text)
            else:
                out.append({"role": "tool", "tool_call_id": f"call_{index}_{name or 'error'}", "content": text})
            continue
        flush_orphans()
        if role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": text}
            calls = m.get("tool_calls") or []
            pending = []
            if calls:
                msg["tool_calls"] = []
                for j, call in enumerate(calls):
                    fn = call.get("function", call)
                    args = fn.get("arguments", {})
                    call_id = str(call.get("id") or _call_id(index, j))
                    msg["tool_calls"].append({
                        "id": call_id, "type": "function",
                        "function": {"name": fn.get("name", ""),
                                     "arguments": args if isinstance(args, str) else json.dumps(args,
                                                                                                 ensure_ascii=False)},
                    })
                    pending.append((call_id, str(fn.get("name", ""))))
            out.append(msg)
        else:
            out.append({"role": str(role), "content": text})
    flush_orphans()
    return out


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def from_openai_message(message: dict[str, Any]) -> str:
    """An OpenAI assistant message (``content``, structured ``tool_calls``, ``reasoning_content``) as raw Qwen3 text.

    Structured calls become ``<tool_call>`` blocks; arguments that are not valid JSON are kept as a string, so the
    environment reports them as malformed (``parse_error.bad_arguments``) instead of this function guessing.
    """
    parts: list[str] = []
    reasoning = _text_of(message.get("reasoning_content") or message.get("reasoning"))
    if reasoning.strip():
        parts.append(f"<think>\n{reasoning.strip()}\n</think>")
    content = _text_of(message.get("content"))
    if content.strip():
        parts.append(content.strip())
    for call in message.get("tool_calls") or []:
        fn = call.get("function", call) if isinstance(call, dict) else {}
        if not isinstance(fn, dict):
            fn = {}
        args: Any = fn.get("arguments", {})
        if isinstance(args, str):
            with contextlib.suppress(ValueError):  # else it stays a string: the environment counts bad arguments
                args = json.loads(args) if args.strip() else {}
        parts.append(format_tool_call({"name": str(fn.get("name") or ""), "arguments": args}))
    return "\n".join(parts)


# --- the agent -----------------------------------------------------------------------------------------------


class OpenAIAgent:
    """An :class:`runtime.episodes.agents.Agent` that asks an OpenAI-compatible ``/chat/completions`` endpoint for
    each turn.

    ``base_url`` is the API root (``http://host:8000/v1``; a bare ``http://host:8000`` gets ``/v1``). Make one agent
    per episode (``make_agent`` in :func:`runtime.episodes.evaluate.evaluate` and
    :func:`runtime.backends.evaluate_concurrent` does);
    :attr:`metrics` counts requests, retries, errors by kind, failed turns and token usage for the caller.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        top_p: float | None = None,
        seed: int | None = None,
        send_tools: bool = True,
        strict: bool = False,
        extra_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url = base_url.rstrip("/")
        if urllib.parse.urlsplit(url).path in ("", "/"):
            url += "/v1"  # http://host:8000 means the usual API root
        self.base_url = url
        self.model = model
        self.name = f"openai:{model}"
        self.api_key = api_key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.top_p = top_p
        self.seed = seed
        self.send_tools = send_tools
        self.strict = strict
        self.extra_body = dict(extra_body or {})
        self.headers = dict(headers or {})
        self.sleep = sleep
        self.metrics: Counter[str] = Counter()
        self.last_error = ""
        self.last_tokens = 0
        """Completion tokens of the last turn (0 when the server reports no usage): pass to ``Environment.step``."""
        self.tools: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        host = urllib.parse.urlsplit(url).hostname or ""
        self._client = _client(host not in LOOPBACK)  # never send loopback traffic through a proxy

    # --- Agent protocol ----------------------------------------------------------------------------------------

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        self.tools = list(tools)
        self.task_id = str(task.get("id", ""))

    def act(self, messages: list[dict[str, Any]]) -> str:
        body = self.request_body(messages)
        self.last_tokens = 0
        for attempt in range(self.retries + 1):
            try:
                reply = self._post("/chat/completions", body)
                return self._turn_text(reply)
            except BackendError as exc:
                self._count(f"error.{exc.kind}")
                self.last_error = f"{exc.kind}: {exc}"
                if not exc.retry or attempt == self.retries:
                    break
                self._count("retries")
                delay = min(self.max_backoff, self.backoff * 2 ** attempt)
                if exc.wait is not None:
                    delay = min(self.max_backoff, max(delay, exc.wait))
                self.sleep(delay)
        self._count("failed_turns")
        return ""  # an empty turn: the environment ends the episode

    # --- requests ------------------------------------------------------------------------------------------------

    def request_body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": to_openai_messages(messages, self.strict),
                                "temperature": self.temperature, "max_tokens": self.max_tokens, "stream": False}
        if self.send_tools and self.tools:
            body["tools"] = self.tools
            body["tool_choice"] = "auto"
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.seed is not None:
            body["seed"] = self.seed
        body.update(self.extra_body)
        return body

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.metrics[key] += n

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        self._count("requests")
        try:
            response = self._client.post(self.base_url + path, content=data, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise BackendError("timeout", f"no reply within {self.timeout:g} s ({type(exc).__name__})") from None
        except httpx.ConnectError as exc:
            raise BackendError("connection", f"cannot reach {self.base_url}: {exc}") from None
        except httpx.RemoteProtocolError as exc:  # a bad status line, a reply cut short
            raise BackendError("bad_response", f"{type(exc).__name__}: {exc}") from None
        except httpx.TransportError as exc:  # reset mid-read, broken pipe
            raise BackendError("connection", f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            code = response.status_code
            raise BackendError(f"http_{code}", f"HTTP {code}: {_error_detail(response.content)}", code in RETRY_STATUS,
                               _retry_after(response.headers.get("Retry-After"))) from None
        raw = response.content
        try:
            reply = json.loads(raw)
        except ValueError:
            raise BackendError("bad_response", f"the reply is not JSON: {raw[:200]!r}") from None
        if not isinstance(reply, dict):
            raise BackendError("bad_response", "the reply is not a JSON object")
        return reply

    def _turn_text(self, reply: dict[str, Any]) -> str:
        choices = reply.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            error = reply.get("error")
            raise BackendError("bad_response", f"no choices in the reply{f': {error}' if error else ''}")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise BackendError("bad_response", "choices[0] has no message")
        tool_calls = message.get("tool_calls")
        if tool_calls is not None and not isinstance(tool_calls, list):
            raise BackendError("bad_response", "message.tool_calls is not a list")
        usage = reply.get("usage")
        if isinstance(usage, dict):
            for key in ("prompt_tokens", "completion_tokens"):
                value = usage.get(key)
                if isinstance(value, int):
                    self._count(key, value)
            completion = usage.get("completion_tokens")
            self.last_tokens = completion if isinstance(completion, int) else 0
        if choice.get("finish_reason") == "length":
            self._count("truncated_turns")
        if tool_calls:
            self._count("structured_tool_calls", len(tool_calls))
        self._count("turns")
        return from_openai_message(message)


_CLIENTS: dict[bool, httpx.Client] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(trust_env: bool) -> httpx.Client:
    """The process's connection pool (one with the environment's proxy settings, one without, for loopback)."""
    with _CLIENTS_LOCK:
        if trust_env not in _CLIENTS:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            # TCP_NODELAY: a request's headers and body leave at once, whatever the server's socket settings (a
            # reply or request in two pieces can otherwise wait for a delayed ACK: about 40 ms)
            transport = httpx.HTTPTransport(limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            _CLIENTS[trust_env] = httpx.Client(trust_env=trust_env, transport=transport)
        return _CLIENTS[trust_env]


def _error_detail(raw: bytes) -> str:
    try:
        body = json.loads(raw)
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
        return str(message)[:300]
    except ValueError:
        return raw[:300].decode("utf-8", "replace")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
