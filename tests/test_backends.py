"""Model backends: the OpenAI-compatible agent against a real ``aqwen-run serve`` subprocess on loopback, failures
of the server, concurrent evaluation, and the (GPU-only) vLLM policy's import discipline."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from compiler.cli import main as compile_main
from runtime.backends import OpenAIAgent, evaluate_concurrent, from_openai_message, to_openai_messages
from runtime.backends.concurrent import run_episode_counted
from runtime.episodes.agents import OracleAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.env import Environment, EpisodeConfig
from runtime.episodes.evaluate import Trial, evaluate, run_episode

ROOT = Path(__file__).resolve().parents[1]
MODEL = "builtin:tiny-qwen3"


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("build")
    assert compile_main([str(ROOT / "specs"), "-o", str(out), "-q"]) == 0
    return Bundle.load(out / "plant_maintenance")


def _post(url: str, body: dict[str, Any], timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get(url: str) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


# --- a real server: `python -m runtime.cli serve builtin:tiny-qwen3 --port 0` ------------------------------------


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def posts(self) -> int:
        return self.log.read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "serve", MODEL, "--host", "127.0.0.1", "--port", "0",
             "--threads", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        url = ""
        deadline = time.monotonic() + 120  # the first run builds the tiny model into ~/.cache
        while not url and time.monotonic() < deadline:
            try:
                found = re.search(r"aqwen-run serve: .* on (http://\S+/v1)", lines.get(timeout=0.5))
                url = found.group(1) if found else ""
            except queue.Empty:
                if process.poll() is not None:
                    break
        if not url:
            pytest.fail(f"the server did not start (exit {process.poll()}):\n{log.read_text()[-3000:]}")
        while time.monotonic() < deadline:
            try:
                if _get(url.removesuffix("/v1") + "/health") == {"status": "ok"}:
                    break
            except OSError:
                time.sleep(0.1)
        yield Served(process, url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_chat_completions_round_trip_with_tools(server: Served, plant: Bundle) -> None:
    assert _get(server.url + "/models")["data"][0]["id"] == MODEL
    body = {"model": MODEL, "temperature": 0.8, "seed": 7, "max_tokens": 8, "tools": plant.tool_schemas,
            "messages": [{"role": "system", "content": "You help."}, {"role": "user", "content": "WO-1001?"},
                         {"role": "assistant", "content": "", "tool_calls": [
                             {"id": "c1", "type": "function",
                              "function": {"name": "get_work_order", "arguments": '{"order_id": "WO-1001"}'}}]},
                         {"role": "tool", "tool_call_id": "c1", "content": '{"status": "open"}'}]}
    status, reply = _post(server.url + "/chat/completions", body)
    assert status == 200, reply
    assert reply["object"] == "chat.completion" and reply["model"] == MODEL
    choice = reply["choices"][0]
    assert choice["finish_reason"] in ("stop", "length", "tool_calls")
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["tool_calls"], list)
    usage = reply["usage"]
    assert 1 <= usage["completion_tokens"] <= 8 and usage["prompt_tokens"] > 100  # the tools are in the prompt
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # the same seed gives the same sample
    assert _post(server.url + "/chat/completions", body)[1]["choices"] == reply["choices"]
    # refusals are OpenAI-style errors, and the server keeps serving
    assert _post(server.url + "/chat/completions", {**body, "model": "other"})[0] == 404
    status, error = _post(server.url + "/chat/completions", {"messages": "hi"})
    assert status == 400 and error["error"]["param"] == "messages"
    assert _post(server.url + "/chat/completions", {**body, "stream": True})[0] == 400


def test_bad_requests_get_openai_style_errors(server: Served) -> None:
    """Unknown routes, bodies that are not JSON objects: OpenAI-style errors from the FastAPI server, which goes on."""
    status, error = _post(server.url + "/completions", {"prompt": "hi"})
    assert status == 404 and error["error"]["type"] == "NotFoundError"
    assert "/v1/completions" in error["error"]["message"]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for raw, why in ((b"{not json", "not JSON"), (b"[1, 2]", "JSON object")):
        request = urllib.request.Request(server.url + "/chat/completions", raw, {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            opener.open(request, timeout=30)
        assert exc.value.code == 400 and why in json.loads(exc.value.read())["error"]["message"]
    assert _get(server.url.removesuffix("/v1") + "/health") == {"status": "ok"}


def test_openai_agent_runs_episodes_over_http(server: Served, plant: Bundle) -> None:
    before = server.posts()
    agent = OpenAIAgent(server.url, MODEL, temperature=1.0, seed=3, max_tokens=12, timeout=30)
    result = run_episode(plant, plant.tasks[0], agent, EpisodeConfig(max_turns=3))
    assert 1 <= result.metrics["turns"] <= 3
    assert result.metrics["terminated_by"] in ("agent_end", "turn_budget", "user_stop", "transfer", "tool_budget")
    assert 0.0 <= result.reward <= 1.0
    assert agent.metrics["failed_turns"] == 0 and agent.metrics["turns"] == result.metrics["turns"]
    assert agent.metrics["requests"] == result.metrics["turns"] == server.posts() - before
    assert agent.metrics["prompt_tokens"] > 100 * result.metrics["turns"]
    assert [m["role"] for m in result.messages[:2]] == ["system", "user"]
    # several episodes at once, each with its own agent, through the same server
    report = evaluate_concurrent(plant, plant.tasks[:3], lambda: OpenAIAgent(server.url, MODEL, max_tokens=8),
                                 workers=3, config=EpisodeConfig(max_turns=2))
    assert report.agent == f"openai:{MODEL}" and len(report.trials) == 3
    metrics = report.metrics()
    assert "agent.failed_turns" not in metrics and "agent.retries" not in metrics
    assert metrics["agent.requests"] == metrics["turns"] >= 3
    assert metrics["tokens"] == metrics["agent.completion_tokens"] > 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_ends_the_episode_and_is_counted(plant: Bundle) -> None:
    waits: list[float] = []
    agent = OpenAIAgent(f"http://127.0.0.1:{_closed_port()}", MODEL, retries=2, backoff=0.25, sleep=waits.append)
    result = run_episode_counted(plant, plant.tasks[0], agent, EpisodeConfig(max_turns=5))
    assert result.metrics["turns"] == 1 and not result.success
    assert result.metrics["terminated_by"] == "backend_error"
    assert result.metrics["agent.failed_turns"] == 1
    assert agent.metrics["error.connection"] == 3 and agent.metrics["retries"] == 2
    assert waits == [0.25, 0.5]
    assert "connection" in agent.last_error


# --- a scripted fake server: server errors, malformed replies, timeouts, structured tool calls ---------------------


class Script(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replies: list[tuple[int, bytes, float]]) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _ScriptHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ScriptHandler(BaseHTTPRequestHandler):
    server: Script

    def do_POST(self) -> None:
        self.server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        status, data, delay = self.server.replies.pop(0) if self.server.replies else (500, b"{}", 0.0)
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def script() -> Iterator[Script]:
    server = Script([])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _completion(message: dict[str, Any], finish: str = "stop") -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": finish}],
                       "usage": {"prompt_tokens": 50, "completion_tokens": 5}}).encode()


def test_server_errors_are_retried_then_counted(script: Script) -> None:
    waits: list[float] = []
    script.replies = [(500, b'{"error": {"message": "boom"}}', 0), (200, b"not json", 0),
                      (200, b'{"choices": []}', 0), (200, _completion({"role": "assistant", "content": "Hello"}), 0)]
    agent = OpenAIAgent(script.url, "m", retries=3, sleep=waits.append)
    agent.start({"id": "t"}, [])
    assert agent.act([{"role": "user", "content": "hi"}]) == "Hello"
    assert agent.metrics["error.http_500"] == 1 and agent.metrics["error.bad_response"] == 2
    assert agent.metrics["retries"] == 3 and agent.metrics["failed_turns"] == 0 and len(waits) == 3
    # a request the server refuses (400) is not retried
    script.replies = [(400, b'{"error": {"message": "prompt too long"}}', 0)]
    assert agent.act([{"role": "user", "content": "hi"}]) == ""
    assert agent.metrics["error.http_400"] == 1 and agent.metrics["failed_turns"] == 1
    assert "prompt too long" in agent.last_error
    # a reply slower than the timeout
    script.replies = [(200, _completion({"role": "assistant", "content": "late"}), 1.0)]
    slow = OpenAIAgent(script.url, "m", retries=0, timeout=0.2)
    slow.start({"id": "t"}, [])
    assert slow.act([{"role": "user", "content": "hi"}]) == ""
    assert slow.metrics["error.timeout"] == 1 and slow.metrics["failed_turns"] == 1


def test_structured_tool_calls_drive_the_environment(script: Script, plant: Bundle) -> None:
    task = next(t for t in plant.tasks if t["gold"]["calls"])
    gold = task["gold"]["calls"][0]
    call = {"id": "srv_1", "type": "function",
            "function": {"name": gold["name"], "arguments": json.dumps(gold["arguments"])}}
    script.replies = [(200, _completion({"role": "assistant", "content": None, "tool_calls": [call]},
                                        "tool_calls"), 0),
                      (200, _completion({"role": "assistant", "content": ""}), 0)]
    agent = OpenAIAgent(script.url, "m")
    result = run_episode(plant, task, agent, EpisodeConfig(max_turns=4))
    assert result.metrics["tool_calls"] == 1 and result.metrics.get("malformed", 0) == 0
    assert result.messages[2]["tool_calls"] == [{"name": gold["name"], "arguments": gold["arguments"]}]
    first, second = script.bodies
    assert first["tools"] == plant.tool_schemas and first["model"] == "m" and first["temperature"] == 0.0
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    sent = second["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    sent_call = sent[2]["tool_calls"][0]
    assert sent_call["type"] == "function" and sent_call["function"]["name"] == gold["name"]
    assert json.loads(sent_call["function"]["arguments"]) == gold["arguments"]
    assert sent[3]["tool_call_id"] == sent_call["id"] and sent[3]["content"] == result.messages[3]["content"]
    assert agent.metrics["structured_tool_calls"] == 1


def test_message_conversion_both_ways(plant: Bundle) -> None:
    messages = [
        {"role": "system", "content": "s"}, {"role": "user", "content": "u"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "a", "arguments": {"x": 1}},
                                                             {"name": "b", "arguments": {}}]},
        {"role": "tool", "name": "error", "content": '{"error": "could not parse a tool call"}'},
        {"role": "tool", "name": "a", "content": "ra"}, {"role": "tool", "name": "b", "content": "rb"},
        {"role": "assistant", "content": "done?"}, {"role": "user", "content": "yes"},
    ]
    out = to_openai_messages(messages)
    ids = [c["id"] for c in out[2]["tool_calls"]]
    assert out[2]["tool_calls"][0]["function"] == {"name": "a", "arguments": '{"x": 1}'}
    assert [m.get("tool_call_id") for m in out[4:6]] == ids and out[3]["role"] == "tool"
    assert out[3]["tool_call_id"] not in ids
    assert to_openai_messages(messages) == out  # ids are stable from turn to turn
    strict = to_openai_messages(messages, strict=True)
    assert [m["role"] for m in strict] == ["system", "user", "assistant", "tool", "tool", "user", "assistant", "user"]
    assert [m["tool_call_id"] for m in strict[3:5]] == ids and "could not parse" in strict[5]["content"]

    text = from_openai_message({"content": "Checking.", "reasoning_content": "hmm", "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "get_work_order", "arguments": '{"order_id": "W"}'}},
        {"id": "2", "type": "function", "function": {"name": "get_work_order", "arguments": "{broken"}}]})
    assert text.startswith("<think>\nhmm\n</think>\nChecking.\n<tool_call>\n")
    env = Environment(plant, plant.tasks[0])
    env.reset()
    env.step(text)
    assert env.messages[2]["tool_calls"] == [{"name": "get_work_order", "arguments": {"order_id": "W"}}]
    assert env.messages[2]["content"] == "Checking."
    assert env.counts["parse_error.bad_arguments"] == 1 and env.counts["tool_calls"] == 1
    env.close()


def test_server_side_parsing_of_generated_text() -> None:
    from runtime.serving.model_server import response_message

    message, calls = response_message('<think>\nplan\n</think>\n\nLet me look.\n<tool_call>\n'
                                      '{"name": "get_work_order", "arguments": {"order_id": "WO-1"}}\n</tool_call>')
    assert calls and message["content"] == "Let me look." and message["reasoning_content"] == "plan"
    [call] = message["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_work_order", "arguments": '{"order_id": "WO-1"}'}
    assert from_openai_message(message).endswith('{"name": "get_work_order", "arguments": {"order_id": "WO-1"}}'
                                                 '\n</tool_call>')
    broken = 'ok <tool_call>\n{"name": "x", "arguments": {\n</tool_call>'
    assert response_message(broken) == ({"role": "assistant", "content": broken, "tool_calls": []}, False)
    assert response_message("Hello.") == ({"role": "assistant", "content": "Hello.", "tool_calls": []}, False)


# --- concurrency ------------------------------------------------------------------------------------------------


class _Gate:
    """Replays the oracle; for one task, the first turn waits (like a slow HTTP reply) until ``release`` is set."""

    name = "gate"

    def __init__(self, slow_id: str, release: threading.Event, waited: list[bool]) -> None:
        self.inner = OracleAgent()
        self.slow_id, self.release, self.waited = slow_id, release, waited

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        self.task_id = task["id"]
        self.inner.start(task, tools)

    def act(self, messages: list[dict[str, Any]]) -> str:
        if self.task_id == self.slow_id and not self.waited:
            self.waited.append(self.release.wait(timeout=20))
        return self.inner.act(messages)


def test_a_slow_episode_does_not_stall_the_others(plant: Bundle) -> None:
    tasks = plant.tasks[:6]
    slow_id = tasks[0]["id"]
    release = threading.Event()
    waited: list[bool] = []
    finished: list[str] = []

    def on_done(trial: Trial) -> None:
        finished.append(trial.task["id"])
        if len(finished) == len(tasks) - 1:
            release.set()  # every other episode ended while the slow one was still waiting

    started = time.monotonic()
    report = evaluate_concurrent(plant, tasks, lambda: _Gate(slow_id, release, waited), workers=3, on_done=on_done)
    assert waited == [True], "the other episodes did not finish while one episode waited"
    assert finished[-1] == slow_id and slow_id not in finished[:-1]
    assert time.monotonic() - started < 15
    assert [t.task["id"] for t in report.trials] == [t["id"] for t in tasks]  # task order, not finish order
    assert report.success_rate == 1.0


def test_concurrent_evaluation_matches_sequential(plant: Bundle) -> None:
    sequential = evaluate(plant, OracleAgent, k=2)
    concurrent = evaluate_concurrent(plant, None, OracleAgent, k=2, workers=8)
    assert [(t.task["id"], t.trial, t.result.reward, t.result.success) for t in concurrent.trials] == \
        [(t.task["id"], t.trial, t.result.reward, t.result.success) for t in sequential.trials]
    assert concurrent.summary()["by_workflow"] == sequential.summary()["by_workflow"]


def test_an_agent_bug_fails_one_trial_not_the_evaluation(plant: Bundle) -> None:
    class Broken(OracleAgent):
        def act(self, messages: list[dict[str, Any]]) -> str:
            raise RuntimeError("bug")

    report = evaluate_concurrent(plant, plant.tasks[:2], Broken, workers=2)
    assert [t.result.metrics["terminated_by"] for t in report.trials] == ["exception", "exception"]
    assert report.metrics()["episode_errors"] == 2
    with pytest.raises(RuntimeError, match="bug"):
        evaluate_concurrent(plant, plant.tasks[:1], Broken, raise_errors=True)


# --- vLLM (GPU only): lazy, with a clear error when missing -------------------------------------------------------


def test_backends_import_neither_torch_nor_vllm() -> None:
    code = ("import sys, runtime.backends as b, runtime.backends.vllm, runtime.backends.openai, "
            "runtime.backends.concurrent; b.OpenAIAgent; "
            "assert not {'torch', 'vllm', 'transformers'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_vllm_policy_without_vllm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.backends import VLLMPolicy, VLLMUnavailable

    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed, even where it is
    with pytest.raises(VLLMUnavailable, match=r"pip install -e '\.\[gpu\]'"):
        VLLMPolicy("some/checkpoint")


def test_vllm_policy_maps_outputs_to_ids_and_logprobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy's use of the vLLM API, against a stand-in module (no GPU here)."""
    from runtime.backends import VLLMPolicy

    lp = types.SimpleNamespace
    seen: dict[str, Any] = {}

    class SamplingParams:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            seen["init"] = kwargs

        def generate(self, prompts: list[Any], sampling_params: Any, use_tqdm: bool) -> list[Any]:
            seen["prompts"], seen["params"] = prompts, sampling_params
            ended = lp(token_ids=[5, 9, 2], logprobs=[{5: lp(logprob=-0.5)}, {9: lp(logprob=-1.5), 4: lp(logprob=-0.1)},
                                                      {2: lp(logprob=float("nan"))}], finish_reason="stop",
                       stop_reason=None)
            cut = lp(token_ids=[7], logprobs=[{7: lp(logprob=-2.0)}], finish_reason="length", stop_reason=None)
            return [lp(outputs=[ended]), lp(outputs=[cut])]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    policy = VLLMPolicy("ckpt", temperature=1.0, seed=10, gpu_memory_utilization=0.3)
    assert seen["init"] == {"model": "ckpt", "gpu_memory_utilization": 0.3, "logprobs_mode": "processed_logprobs",
                            "seed": 10}
    out = policy.generate([[1, 2, 3], [4]], max_new_tokens=16)
    assert out == [([5, 9, 2], [-0.5, -1.5, 0.0]), ([7], [-2.0])]
    assert policy.missing_logprobs == 1
    assert seen["prompts"] == [{"prompt_token_ids": [1, 2, 3]}, {"prompt_token_ids": [4]}]
    params = [p.kwargs for p in seen["params"]]
    assert params[0]["logprobs"] == 0 and params[0]["max_tokens"] == 16 and params[0]["temperature"] == 1.0
    assert params[0]["seed"] != params[1]["seed"]


def test_pipeline_eval_stage_against_a_served_model(server: Served, plant: Bundle, tmp_path: Path) -> None:
    """backend: openai evaluates a model behind an OpenAI-compatible server, episodes running concurrently."""
    import json

    from aqwen_spec.documents.pipeline import Pipeline
    from runtime.pipeline.runner import PipelineRunner, RunState

    pipeline = Pipeline.model_validate({
        "kind": "Pipeline", "name": "served", "domain": "plant_maintenance", "backend": "openai",
        "model": {"name": "tiny", "endpoint": server.url, "served_name": MODEL, "workers": 2},
        "budget": {"max_turns": 2, "max_new_tokens": 16, "max_tokens": 64},
        "stages": [{"stage": "eval", "name": "served", "max_tasks": 2}],
    })
    runner = PipelineRunner(pipeline, plant, tmp_path, progress=False, echo=lambda _: None)
    summary = runner.run(RunState("tiny"))
    assert summary["stages"][0]["n_tasks"] == 2 and summary["after"]["success_rate"] is not None
    report = json.loads((tmp_path / "eval" / "served" / "report.json").read_text())
    assert report["metrics"]["turns"] >= 2
