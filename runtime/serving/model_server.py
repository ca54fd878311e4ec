"""A small OpenAI-compatible server for a local transformers checkpoint: ``aqwen-run serve CHECKPOINT``.

Serves a trained checkpoint (or ``builtin:tiny-qwen3``) on CPU or one GPU, so that anything that speaks the OpenAI
chat API, :class:`runtime.backends.OpenAIAgent` included, can talk to it. For throughput, use vLLM
(``vllm serve CHECKPOINT --enable-auto-tool-choice --tool-call-parser hermes``): same API, same tool-call format.

Endpoints: ``POST /v1/chat/completions`` (``messages``, ``tools``, ``tool_choice`` ``auto``/``none``,
``temperature``, ``top_p``, ``top_k``, ``max_tokens``/``max_completion_tokens``, ``seed``, ``stop``,
``chat_template_kwargs``; one choice, no streaming), ``GET /v1/models``, ``GET /health``.

The prompt is rendered with the tokenizer's chat template, tools included, with thinking off unless the request's
``chat_template_kwargs`` (or ``--enable-thinking``) say otherwise, as :class:`runtime.training.rollout.ChatFormat`
renders it for training. ``<tool_call>`` blocks in the output come back as structured ``tool_calls`` (finish reason
``tool_calls``); output with a malformed call comes back whole as ``content``, as vLLM's ``hermes`` parser does, so
the client sees exactly what the model wrote. The server is FastAPI on uvicorn; requests are served one generation
at a time (a lock, generation on a worker thread); the model is loaded before the port opens, so ``/health``
answering means ready.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
import uuid
from typing import Any

from runtime.episodes.parsing import parse_assistant

MAX_BODY = 16 * 1024 * 1024
DEFAULT_MAX_TOKENS = 1024


class RequestError(Exception):
    """A request the server refuses, with its HTTP status and OpenAI error type."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.param = param


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    raise RequestError(400, "message content must be a string or a list of content parts", param="messages")


def template_messages(messages: Any) -> list[dict[str, Any]]:
    """OpenAI request messages as chat-template messages (arguments decoded to objects, content parts joined)."""
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list", param="messages")
    out: list[dict[str, Any]] = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            raise RequestError(400, "each message needs a role: system, user, assistant or tool", param="messages")
        role = "system" if m["role"] == "developer" else m["role"]
        msg: dict[str, Any] = {"role": role, "content": _text(m.get("content"))}
        if role == "assistant" and m.get("tool_calls"):
            calls = []
            for call in m["tool_calls"]:
                fn = call.get("function", call) if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise RequestError(400, "a tool call needs function.name", param="messages")
                args = fn.get("arguments", {})
                if isinstance(args, str):
                    with contextlib.suppress(ValueError):  # else the template writes the string as it is
                        args = json.loads(args) if args.strip() else {}
                calls.append({"type": "function", "function": {"name": fn["name"], "arguments": args}})
            msg["tool_calls"] = calls
        if role == "tool" and m.get("name"):
            msg["name"] = m["name"]
        out.append(msg)
    return out


def response_message(text: str, parse_tools: bool = True) -> tuple[dict[str, Any], bool]:
    """The assistant message for generated ``text``, and whether it holds tool calls.

    Well-formed ``<tool_call>`` blocks become structured ``tool_calls`` and ``<think>`` becomes
    ``reasoning_content`` (vLLM's ``hermes`` tool parser and ``qwen3`` reasoning parser do the same); text with a
    malformed call, or any text when ``parse_tools`` is false, is returned whole as ``content``.
    """
    turn = parse_assistant(text) if parse_tools else None
    if turn is None or turn.problems:
        return {"role": "assistant", "content": text, "tool_calls": []}, False
    calls = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
              "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
             for c in turn.tool_calls]
    message: dict[str, Any] = {"role": "assistant", "content": turn.content or (None if calls else ""),
                               "tool_calls": calls}
    return _with_reasoning(message, text), bool(calls)


def _with_reasoning(message: dict[str, Any], text: str) -> dict[str, Any]:
    start, end = text.find("<think>"), text.find("</think>")
    if start >= 0:
        thought = text[start + len("<think>"):end if end > start else len(text)].strip()
        message["reasoning_content"] = thought or None
    return message


class ChatModel:
    """A causal LM and its tokenizer behind a lock, answering chat-completion request bodies."""

    def __init__(self, model: Any, tokenizer: Any, name: str, enable_thinking: bool = False,
                 max_model_len: int | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.enable_thinking = enable_thinking
        config = getattr(model, "config", None)
        self.max_model_len = int(max_model_len or getattr(config, "max_position_embeddings", 0) or 4096)
        eos: set[int] = set()
        for source in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id",
                                                       None)):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, (list, tuple)):
                eos.update(int(e) for e in source)
        self.eos_ids = sorted(eos)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.lock = threading.Lock()
        self.created = int(time.time())

    @classmethod
    def load(cls, checkpoint: str, name: str | None = None, threads: int | None = None, dtype: str = "float32",
             enable_thinking: bool = False, max_model_len: int | None = None) -> ChatModel:
        from runtime.training.models import load, resolve_model

        model, tokenizer = load(resolve_model(checkpoint), dtype=dtype, threads=threads)
        return cls(model, tokenizer, name or checkpoint, enable_thinking, max_model_len)

    def render(self, body: dict[str, Any]) -> list[int]:
        tools = body.get("tools") or None
        if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
            raise RequestError(400, "'tools' must be a list of function specs", param="tools")
        kwargs = {"enable_thinking": self.enable_thinking, **(body.get("chat_template_kwargs") or {})}
        try:
            text = self.tokenizer.apply_chat_template(template_messages(body.get("messages")), tools=tools,
                                                      add_generation_prompt=True, tokenize=False, **kwargs)
        except RequestError:
            raise
        except Exception as exc:  # a template error is the request's fault (roles out of order, ...)
            raise RequestError(400, f"cannot render the chat template: {exc}", param="messages") from None
        return list(self.tokenizer(str(text), add_special_tokens=False)["input_ids"])

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("stream"):
            raise RequestError(400, "streaming is not supported by this server", param="stream")
        if body.get("n", 1) != 1:
            raise RequestError(400, "only n=1 is supported", param="n")
        model_name = body.get("model")
        if model_name not in (None, "", self.name):
            raise RequestError(404, f"the model '{model_name}' does not exist; this server has '{self.name}'",
                               "NotFoundError", "model")
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
        top_k = int(_number(body, "top_k", 0, -1, 1e9))
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise RequestError(400, "'seed' must be an integer", param="seed")
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise RequestError(400, "'stop' must be a string or a list of strings", param="stop")
        requested = body.get("max_completion_tokens", body.get("max_tokens"))
        if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int) or requested < 1):
            raise RequestError(400, "'max_tokens' must be a positive integer", param="max_tokens")
        with self.lock:  # one generation at a time; the tokenizer is not safe to share between threads either
            prompt = self.render(body)
            room = self.max_model_len - len(prompt)
            if room <= 0:
                raise RequestError(400, f"the prompt has {len(prompt)} tokens; this model's context is "
                                        f"{self.max_model_len}", param="messages")
            ids = self._generate(prompt, min(room, requested or DEFAULT_MAX_TOKENS), temperature, top_p, top_k,
                                 seed)
            ended = bool(ids) and ids[-1] in self.eos_ids
            text = str(self.tokenizer.decode(ids[:-1] if ended else ids, skip_special_tokens=False))
        finish = "stop" if ended else "length"
        for s in stop:
            at = text.find(s)
            if at >= 0:
                text, finish = text[:at], "stop"
        message, has_calls = response_message(text, body.get("tool_choice") != "none")
        if has_calls:
            finish = "tool_calls"
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(ids),
                      "total_tokens": len(prompt) + len(ids)},
        }

    def _generate(self, prompt: list[int], max_new: int, temperature: float, top_p: float, top_k: int,
                  seed: int | None) -> list[int]:
        import torch

        device = next(self.model.parameters()).device
        sample = temperature > 0
        if seed is not None:
            torch.manual_seed(seed)
        with torch.no_grad():
            out = self.model.generate(
                input_ids=torch.tensor([prompt], device=device),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long, device=device),
                max_new_tokens=max_new, do_sample=sample, temperature=temperature if sample else None,
                top_p=top_p if sample else None, top_k=max(0, top_k) if sample else None,
                pad_token_id=self.pad_id, eos_token_id=self.eos_ids,
            )
        kept: list[int] = []
        for t in out[0, len(prompt):].tolist():
            kept.append(int(t))
            if t in self.eos_ids:
                break
        return kept

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.name, "object": "model", "created": self.created,
                                            "owned_by": "aqwen-spec", "max_model_len": self.max_model_len}]}


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(400, f"'{key}' must be a number from {low:g} to {high:g}", param=key)
    return float(value)


def _error_payload(exc: RequestError) -> dict[str, Any]:
    return {"error": {"message": str(exc), "type": exc.kind, "param": exc.param, "code": exc.status}}


def build_app(chat: ChatModel, api_key: str | None = None, max_body: int = MAX_BODY) -> Any:
    """The ASGI application (FastAPI): the routes above, OpenAI-style errors, bodies over ``max_body`` refused."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    from runtime.serving.asgi import BodyLimit

    app = FastAPI(title=f"aqwen-run serve: {chat.name}", docs_url=None, redoc_url=None, openapi_url=None)

    # plain Starlette-style routes (the request as the only argument): no dependency injection to resolve
    async def refused(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, RequestError)
        return JSONResponse(_error_payload(exc), status_code=exc.status)

    async def no_route(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, HTTPException)
        kind = "NotFoundError" if exc.status_code in (404, 405) else "invalid_request_error"
        error = RequestError(exc.status_code, f"no route {request.method} {request.url.path}", kind)
        return JSONResponse(_error_payload(error), status_code=exc.status_code)

    def authorize(request: Any) -> None:
        if api_key and request.headers.get("authorization", "") != f"Bearer {api_key}":
            raise RequestError(401, "missing or wrong API key", "AuthenticationError")

    async def health(request: Any) -> Any:
        return JSONResponse({"status": "ok"})

    async def models(request: Any) -> Any:
        authorize(request)
        return JSONResponse(chat.models())

    async def completions(request: Any) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise RequestError(400, f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        authorize(request)
        try:  # generation runs on a worker thread; the lock in ChatModel keeps it one at a time
            reply = await run_in_threadpool(chat.complete, body)
        except RequestError:
            raise
        except Exception as exc:  # a bug or an out-of-memory: the client gets a 500, the server keeps serving
            sys.stderr.write(f"aqwen-run serve: generation failed: {exc!r}\n")
            raise RequestError(500, f"generation failed: {type(exc).__name__}: {exc}", "InternalServerError") from None
        return JSONResponse(reply)

    app.add_exception_handler(RequestError, refused)
    app.add_exception_handler(HTTPException, no_route)
    app.add_route("/health", health, methods=["GET"])
    for prefix in ("/v1", ""):
        app.add_route(f"{prefix}/models", models, methods=["GET"])
        app.add_route(f"{prefix}/chat/completions", completions, methods=["POST"])

    too_large = RequestError(413, f"the request body is over {max_body} bytes")
    return BodyLimit(app, max_body, _error_payload(too_large))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint folder, builtin:tiny-qwen3, builtin:smollm2-135m or a hub id")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    parser.add_argument("--served-model-name", default=None, help="the model's name in the API (default: CHECKPOINT)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on CPU)")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto (default: float32)")
    parser.add_argument("--max-model-len", type=int, default=None, help="context length (default: the model's)")
    parser.add_argument("--enable-thinking", action="store_true",
                        help="render prompts with thinking on (default: off, as training renders them)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint, bind, print the URL (one line on stdout) and serve until interrupted."""
    from runtime.serving.asgi import bind, make_server, serve_until_interrupted, url_of

    try:
        chat = ChatModel.load(args.checkpoint, args.served_model_name, args.threads, args.dtype,
                              args.enable_thinking, args.max_model_len)
    except (OSError, ValueError, RuntimeError) as exc:
        sys.stderr.write(f"aqwen-run serve: error: cannot load {args.checkpoint}: {exc}\n")
        return 1
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        sys.stderr.write(f"aqwen-run serve: error: cannot bind {args.host}:{args.port}: {exc.strerror or exc}\n")
        return 1
    server = make_server(build_app(chat, args.api_key), MAX_BODY, args.quiet)
    print(f"aqwen-run serve: {chat.name} on {url_of(sock)}/v1", flush=True)
    serve_until_interrupted(server, sock)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.serving.model_server", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
