"""``aqwen-run serve-env``: every example domain served on a free loopback port and driven by OpenEnv's own client
(sync and async) and the ``mcp`` SDK's client; sessions isolated; bad requests answered cleanly and their resources
freed; finished episodes logged across a restart; a tampered or other-version bundle refused."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openenv")
pytest.importorskip("mcp")

from openenv.core.generic_client import GenericEnvClient

from compiler import compile_specs, write_bundles
from runtime.episodes.agents import OracleAgent, RandomAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.evaluate import run_episode
from runtime.serving.env_server import EpisodeLog, Served, build_app, bundle_version, serving

ROOT = Path(__file__).resolve().parents[1]
SPECS = [ROOT / "specs", *sorted(p / "specs" for p in (ROOT / "examples").iterdir() if (p / "specs").is_dir())]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Bundle]:
    out = tmp_path_factory.mktemp("build")
    return [Bundle.load(f) for specs in SPECS for f in write_bundles(compile_specs(specs), out / specs.parent.name)]


@pytest.fixture(scope="module")
def plant(bundles: list[Bundle]) -> Bundle:
    return next(b for b in bundles if b.name == "plant_maintenance")


@contextmanager
def served(bundle: Bundle, log: Path | None = None, **kwargs: Any) -> Iterator[tuple[str, Served]]:
    shared = Served(bundle, log=EpisodeLog(log) if log else None)
    with serving(build_app(shared, **kwargs), ws_max_size=kwargs.get("max_body", 1 << 20)) as url:
        yield url, shared


def gold_actions(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The oracle's turns as typed actions: the gold tool calls with the gold text."""
    turns = []
    for m in task["gold"]["messages"]:
        if m["role"] == "assistant":
            action: dict[str, Any] = {"tool_calls": m.get("tool_calls") or []}
            if m["content"]:
                action["message"] = m["content"]
            turns.append(action if action["tool_calls"] or m["content"] else {"text": ""})
    return turns


def play_sync(env: Any, task: dict[str, Any], actions: list[dict[str, Any]]) -> Any:
    result = env.reset(task_id=task["id"])
    assert result.observation["task_id"] == task["id"] and not result.done
    for action in actions:
        result = env.step(action)
        if result.done:
            return result
    while not result.done:  # the oracle has nothing more to say: an empty turn ends the episode
        result = env.step({"text": ""})
    return result


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(predicate: Any, what: str, tries: int = 300) -> None:
    for _ in range(tries):
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened: {what}")


# --- whole episodes of every example domain ----------------------------------------------------------------------


def test_every_domain_oracle_scores_one_and_noop_zero_sync_client(bundles: list[Bundle], tmp_path: Path) -> None:
    assert len(bundles) == len(SPECS) >= 5
    for bundle in bundles:
        log = tmp_path / f"{bundle.name}.jsonl"
        with served(bundle, log) as (url, shared), GenericEnvClient(base_url=url).sync() as env:
            for task in bundle.tasks:
                result = play_sync(env, task, gold_actions(task))
                assert result.reward == 1.0 and result.observation["verdict"]["success"], (bundle.name, task["id"])
                noop = play_sync(env, task, [{"text": ""}])
                assert not noop.observation["verdict"]["success"], (bundle.name, task["id"])
                assert noop.reward == run_episode(bundle, task, _Noop()).reward
            assert env.state()["bundle_version"] == bundle_version(bundle)
            wait_for(lambda shared=shared: len(shared.live) <= 1, "the last session still open")
        records = EpisodeLog(log).read()
        assert len(records) == 2 * len(bundle.tasks)
        assert sum(r["success"] for r in records) == len(bundle.tasks)  # oracle 1, noop 0 on every task


class _Noop:
    name = "noop"

    def start(self, task: dict[str, Any], tools: list[dict[str, Any]]) -> None:
        pass

    def act(self, messages: list[dict[str, Any]]) -> str:
        return ""


def test_every_domain_async_client_raw_text_matches_in_process(bundles: list[Bundle], tmp_path: Path) -> None:
    """Raw model text (the oracle's Qwen3 tool-call format) through the async client: the served episode's transcript
    and reward are the in-process episode's, message for message."""

    async def drive(url: str, bundle: Bundle) -> None:
        async with GenericEnvClient(base_url=url) as env:
            for task in bundle.tasks:
                agent = OracleAgent()
                agent.start(task, bundle.tool_schemas)
                result = await env.reset(task_id=task["id"])
                while not result.done:
                    result = await env.step({"text": agent.act([])})
                assert result.reward == 1.0, (bundle.name, task["id"])

    for bundle in bundles:
        log = tmp_path / f"{bundle.name}.jsonl"
        with served(bundle, log) as (url, _):
            asyncio.run(drive(url, bundle))
        records = EpisodeLog(log).read()
        for task, record in zip(bundle.tasks, records, strict=True):
            local = run_episode(bundle, task, OracleAgent())
            assert record["task_id"] == task["id"] and record["messages"] == local.messages
            assert record["reward"] == local.reward == 1.0 and record["bundle_version"] == bundle_version(bundle)


def test_interleaved_sessions_on_one_task_equal_sequential_runs(plant: Bundle) -> None:
    task = plant.tasks[0]
    agents = [OracleAgent(), RandomAgent(seed=3), OracleAgent(), RandomAgent(seed=4)]

    async def episode_steps(env: Any, agent: Any) -> tuple[Any, list[str]]:
        agent.start(task, plant.tool_schemas)
        return await env.reset(task_id=task["id"]), []

    async def interleaved(url: str) -> list[list[Any]]:
        clients = [GenericEnvClient(base_url=url) for _ in agents]
        try:
            transcripts: list[list[Any]] = [[] for _ in agents]
            results = []
            for client, agent, tr in zip(clients, agents, transcripts, strict=True):
                agent.start(task, plant.tool_schemas)
                r = await client.reset(task_id=task["id"])
                tr.append(r.observation)
                results.append(r)
            while not all(r.done for r in results):  # one turn of each session in turn, all on the same task
                for i, (client, agent) in enumerate(zip(clients, agents, strict=True)):
                    if not results[i].done:
                        results[i] = await client.step({"text": agent.act([])})
                        transcripts[i].append(results[i].observation)
            return transcripts
        finally:
            for client in clients:
                await client.close()

    async def sequential(url: str) -> list[list[Any]]:
        transcripts = []
        for agent in agents:
            async with GenericEnvClient(base_url=url) as client:
                agent.start(task, plant.tool_schemas)
                r = await client.reset(task_id=task["id"])
                tr = [r.observation]
                while not r.done:
                    r = await client.step({"text": agent.act([])})
                    tr.append(r.observation)
                transcripts.append(tr)
        return transcripts

    with served(plant) as (url, _):
        together = asyncio.run(interleaved(url))
        apart = asyncio.run(sequential(url))
    assert together == apart
    assert together[0][-1]["verdict"]["success"] and together[2][-1]["verdict"]["success"]
    assert any(o["errors"] for o in together[1])  # the random agent's calls fail here, and only in its session


def test_reset_by_seed_and_schema_and_metadata(plant: Bundle) -> None:
    with served(plant) as (url, _), GenericEnvClient(base_url=url).sync() as env:
        first = env.reset(seed=3).observation
        assert first["task_id"] == plant.tasks[3]["id"]
        assert env.reset(seed=3 + len(plant.tasks)).observation["task_id"] == first["task_id"]
        assert [t["function"]["name"] for t in first["tools"]] == [t["function"]["name"] for t in plant.tool_schemas]
        assert first["messages"][0]["role"] == "system" and first["user_reply"] == first["messages"][1]["content"]
        schema = get_json(url + "/schema")
        calls = schema["action"]["$defs"]
        reserve = calls["PlantMaintenanceCall_reserve_part"]["properties"]
        published = {k: v for k, v in reserve["arguments"].items() if k != "title"}
        assert published == next(t["function"]["parameters"] for t in plant.tool_schemas
                                 if t["function"]["name"] == "reserve_part")
        assert "verdict" in schema["observation"]["properties"] and "task_id" in schema["state"]["properties"]
        meta = get_json(url + "/metadata")
        assert meta["name"] == "plant_maintenance" and meta["version"] == bundle_version(plant)
        tasks = post(url + "/plant_maintenance/tasks", b'{"split": "all"}')[1]["tasks"]
        assert [t["id"] for t in tasks] == [t["id"] for t in plant.tasks]
        with pytest.raises(RuntimeError, match="unknown task_id 'nope'"):
            env.reset(task_id="nope")


# --- bad requests ---------------------------------------------------------------------------------------------


async def _raw_ws(url: str, frames: list[str | bytes]) -> list[Any]:
    from websockets.asyncio.client import connect

    answers = []
    async with connect(url.replace("http://", "ws://") + "/ws", proxy=None) as ws:
        for frame in frames:
            await ws.send(frame)
            answers.append(json.loads(await ws.recv()))
    return answers


def test_malformed_json_unknown_tool_and_finished_episode_get_clean_errors(plant: Bundle) -> None:
    task = plant.tasks[0]
    with served(plant) as (url, shared):
        reset = json.dumps({"type": "reset", "data": {"task_id": task["id"]}})
        unknown = json.dumps({"type": "step", "data": {"tool_calls": [{"name": "launch_rocket", "arguments": {}}]}})
        both = json.dumps({"type": "step", "data": {"text": "hi", "message": "hi"}})
        raw_unknown = json.dumps({"type": "step", "data": {"text": '<tool_call>{"name": "launch_rocket", '
                                                                   '"arguments": {}}</tool_call>'}})
        end = json.dumps({"type": "step", "data": {"text": ""}})
        answers = asyncio.run(_raw_ws(url, ["{not json", reset, unknown, both, raw_unknown, end, end]))
        assert answers[0]["type"] == "error" and answers[0]["data"]["code"] == "INVALID_JSON"
        assert answers[1]["type"] == "observation"  # the session survives a malformed frame
        assert answers[2]["data"]["code"] == "VALIDATION_ERROR"
        assert "launch_rocket" in json.dumps(answers[2]["data"]["errors"]) and "reserve_part" in json.dumps(answers[2])
        assert answers[3]["data"]["code"] == "VALIDATION_ERROR"
        # raw text naming an unknown tool is the runtime's error observation, as in-process
        assert answers[4]["data"]["observation"]["errors"] == ["unknown_tool"]
        assert answers[5]["data"]["done"] is True
        assert answers[6]["data"]["code"] == "EXECUTION_ERROR" and "episode is over" in answers[6]["data"]["message"]
        wait_for(lambda: not shared.live, "the session freed")
        status, body = post(url + "/step", b'{"action": ')
        assert status == 422 and body["detail"]
        status, _ = post(url + "/step", json.dumps({"action": {"tool_calls": [{"name": "x"}]}}).encode())
        assert status == 422


def test_unknown_session_is_refused(plant: Bundle) -> None:
    from websockets.asyncio.client import connect

    async def attach(url: str) -> Any:
        async with connect(url.replace("http://", "ws://") + "/ws?session_id=nope", proxy=None) as ws:
            return json.loads(await ws.recv())

    with served(plant) as (url, shared):
        answer = asyncio.run(attach(url))
        assert answer["type"] == "error" and "Unknown session_id: nope" in answer["data"]["message"]
        _, body = post(url + "/mcp", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "openenv/session/close",
                                                 "params": {"session_id": "nope"}}).encode())
        assert "Unknown session_id" in body["error"]["message"]
        req = urllib.request.Request(url + "/agent/mcp", method="POST", data=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                     "mcp-session-id": "nope"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=30)
        assert exc.value.code == 404
        assert not shared.live


def test_oversized_bodies_are_refused_and_free_their_session(plant: Bundle) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def big_frame(url: str) -> Any:
        async with connect(url.replace("http://", "ws://") + "/ws", proxy=None) as ws:
            await ws.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
            await ws.recv()
            await ws.send(json.dumps({"type": "step", "data": {"message": "x" * 50_000}}))
            with pytest.raises(ConnectionClosed) as exc:
                await ws.recv()
            return exc.value.rcvd

    with served(plant, max_body=20_000) as (url, shared):
        close = asyncio.run(big_frame(url))
        assert close is not None and close.code == 1009  # message too big
        wait_for(lambda: not shared.live, "the oversized session freed")
        status, body = post(url + "/step", json.dumps({"action": {"message": "x" * 50_000}}).encode())
        assert status == 413 and "20000 bytes" in body["detail"]


def test_a_client_that_vanishes_mid_episode_frees_its_session(plant: Bundle) -> None:
    script = (
        "import sys, time\n"
        "from openenv.core.generic_client import GenericEnvClient\n"
        "env = GenericEnvClient(base_url=sys.argv[1]).sync()\n"
        "env.reset(seed=0)\n"
        "env.step({'message': 'hello'})\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    with served(plant) as (url, shared):
        client = subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True, env=ENV)
        try:
            assert client.stdout is not None and client.stdout.readline().strip() == "ready"
            assert len(shared.live) == 1
            client.send_signal(signal.SIGKILL)
            client.wait(timeout=30)
            wait_for(lambda: not shared.live, "the vanished client's session freed")
        finally:
            if client.poll() is None:
                client.kill()
                client.wait(timeout=30)


def test_a_session_idle_past_its_timeout_is_closed(plant: Bundle) -> None:
    async def idle(url: str, shared: Served) -> str:
        async with GenericEnvClient(base_url=url) as env:
            await env.reset(seed=0)
            assert len(shared.live) == 1
            for _ in range(300):  # openenv's reaper looks every 5 s at least
                if not shared.live:
                    break
                await asyncio.sleep(0.05)
            assert not shared.live
            with pytest.raises(RuntimeError) as exc:
                await env.step({"message": "still there?"})
            return str(exc.value)

    with served(plant, session_timeout=0.5) as (url, shared):
        message = asyncio.run(idle(url, shared))
    assert "session is closed" in message and "idle" in message


# --- the log across a restart, and refused bundles (the real command) -------------------------------------------


@contextmanager
def serve_env(bundle: Path, *args: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "serve-env", str(bundle), "--port", "0", "--quiet",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " on http://127.0.0.1:" in line, line + (proc.stderr.read() if proc.stderr else "")
        yield line.rsplit(" on ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def test_the_episode_log_survives_a_restart(plant: Bundle, tmp_path: Path) -> None:
    log = tmp_path / "episodes.jsonl"
    task = plant.tasks[1]
    for run in range(2):
        with serve_env(plant.path, "--log", str(log)) as url, GenericEnvClient(base_url=url).sync() as env:
            result = play_sync(env, task, gold_actions(task))
            assert result.reward == 1.0
            health = get_json(url + "/health")
            assert health["status"] == "healthy"
        if run == 0:
            with log.open("a") as fh:
                fh.write('{"cut short by a crash')
    records = EpisodeLog(log).read()
    assert [r["task_id"] for r in records] == [task["id"]] * 2
    assert all(r["success"] and r["transport"] == "openenv" for r in records)
    assert len(log.read_text().splitlines()) == 3


def test_a_tampered_or_other_version_bundle_is_refused(plant: Bundle, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(plant.path, tampered)
    with (tampered / "tasks.jsonl").open("a") as fh:
        fh.write("\n")
    other = tmp_path / "other"
    shutil.copytree(plant.path, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["format_version"] = "9.0"
    (other / "manifest.json").write_text(json.dumps(manifest))
    for folder, why in ((tampered, "content hash"), (other, "format version 9.0 is not supported")):
        proc = subprocess.run([sys.executable, "-m", "runtime.cli", "serve-env", str(folder), "--port", "0"],
                              capture_output=True, text=True, env=ENV, timeout=120)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.startswith("aqwen-run serve-env: error: ") and why in proc.stderr
        assert "Traceback" not in proc.stderr


# --- MCP --------------------------------------------------------------------------------------------------------


def _text(result: Any) -> str:
    return "".join(c.text for c in result.content)


async def _mcp_episode(session: Any, bundle: Bundle, task: dict[str, Any]) -> dict[str, Any]:
    """The oracle through MCP tools: its calls as tool calls, its words through say_to_user."""
    listed = await session.list_tools()
    names = {t.name for t in listed.tools}
    assert names == {t["function"]["name"] for t in bundle.tool_schemas} | {"start_episode", "say_to_user",
                                                                             "end_episode"}
    schema = next(t.inputSchema for t in listed.tools if t.name == "reserve_part")
    assert schema == next(t["function"]["parameters"] for t in bundle.tool_schemas
                          if t["function"]["name"] == "reserve_part")
    early = await session.call_tool("get_part", {"part_id": "P-11"})
    assert early.isError and "start_episode first" in _text(early)
    await session.call_tool("start_episode", {"task_id": task["id"]})
    bad = await session.call_tool("launch_rocket", {})
    assert bad.isError and "unknown" in _text(bad).lower()
    opening = await session.call_tool("start_episode", {"task_id": task["id"]})  # a fresh episode of the task
    assert opening.structuredContent["task_id"] == task["id"] and opening.structuredContent["user"]
    done = False
    for m in task["gold"]["messages"]:
        if m["role"] != "assistant" or done:
            continue
        for call in m.get("tool_calls") or []:
            await session.call_tool(call["name"], call["arguments"])
        if not m.get("tool_calls") and m["content"]:
            said = await session.call_tool("say_to_user", {"message": m["content"]})
            done = said.structuredContent["done"]
            if done:
                return said.structuredContent["verdict"]
    return (await session.call_tool("end_episode", {})).structuredContent


def test_mcp_client_over_http_lists_and_calls_the_tools(plant: Bundle, tmp_path: Path) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    task = next(t for t in plant.tasks if any(m["role"] == "assistant" and not m.get("tool_calls")
                                              for m in t["gold"]["messages"]))

    async def drive(url: str) -> dict[str, Any]:
        async with streamable_http_client(url + "/agent/mcp") as (read, write, _), ClientSession(read, write) as s:
            await s.initialize()
            return await _mcp_episode(s, plant, task)

    log = tmp_path / "episodes.jsonl"
    with served(plant, log) as (url, shared):
        verdict = asyncio.run(drive(url))
        wait_for(lambda: not shared.live, "the MCP session freed")
    records = EpisodeLog(log).read()
    assert len(records) == 1 and records[0]["transport"] == "mcp" and records[0]["task_id"] == task["id"]
    assert verdict["success"] and verdict["reward"] == records[0]["reward"] == 1.0
    assert "tool_error.unknown_tool" not in records[0]["metrics"]  # that call was in the abandoned episode


def test_mcp_errors_come_from_the_outcome_in_a_domain_with_its_own_error_format(tmp_path: Path) -> None:
    """``isError`` is the call's outcome: in a domain whose errors read ``Error: ...`` (not JSON) and whose
    results may be any text, the text alone could not tell."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    [folder] = write_bundles(compile_specs(ROOT / "tests" / "fixtures" / "ticket_desk" / "specs", tasks_per_branch=1),
                             tmp_path)
    desk = Bundle.load(folder)
    task = next(t for t in desk.tasks if t["workflow"] == "close_a_ticket")

    async def drive(url: str) -> list[Any]:
        async with streamable_http_client(url + "/agent/mcp") as (read, write, _), ClientSession(read, write) as s:
            await s.initialize()
            await s.call_tool("start_episode", {"task_id": task["id"]})
            return [await s.call_tool(name, {"ticket_id": tid}) for name, tid in
                    (("get_ticket", "T-9"), ("get_ticket", "T-1"), ("ticket_json", "T-9"))]

    with served(desk) as (url, shared):
        missing, found, compact = asyncio.run(drive(url))
        wait_for(lambda: not shared.live, "the MCP session freed")
    assert missing.isError and _text(missing) == "Error: no ticket T-9"
    assert not found.isError and _text(found).startswith("{'id': 'T-1', ")
    assert compact.isError and _text(compact) == '{"detail":"no ticket T-9","status":"error","tool":"ticket_json"}'


def test_mcp_client_over_stdio(plant: Bundle, tmp_path: Path) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, env=ENV, cwd=str(tmp_path), args=[
        "-m", "runtime.cli", "serve-env", str(plant.path), "--mcp-stdio", "--log", str(tmp_path / "e.jsonl")])
    task = plant.tasks[0]

    async def drive() -> dict[str, Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            return await _mcp_episode(s, plant, task)

    verdict = asyncio.run(drive())
    assert verdict["success"] and verdict["reward"] == 1.0
    assert EpisodeLog(tmp_path / "e.jsonl").read()[0]["task_id"] == task["id"]


# --- OpenEnv's own checks, and the exported environment package ------------------------------------------------


def test_openenv_runtime_validator_passes(plant: Bundle) -> None:
    from openenv.cli._validation import validate_running_environment

    with served(plant) as (url, _):
        report = validate_running_environment(url)
    assert report["passed"], [c for c in report["criteria"] if not c["passed"]]
    assert report["summary"]["passed_count"] >= 6


def test_exported_openenv_package_serves_the_bundle(plant: Bundle, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import tomllib

    import yaml

    from compiler.export import main as export_main
    from runtime.episodes.bundle import BundleError

    out = tmp_path / "plant_maintenance"
    assert export_main([str(plant.path), "--openenv", str(out)]) == 0
    version = bundle_version(plant)
    assert yaml.safe_load((out / "openenv.yaml").read_text())["version"] == version
    project = tomllib.loads((out / "pyproject.toml").read_text())["project"]
    assert project["version"] == f"0+{version}" and project["scripts"]["server"] == "plant_maintenance.server.app:main"

    def load_app(folder: Path, name: str) -> Any:
        spec = importlib.util.spec_from_file_location(name, folder / "server" / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    monkeypatch.setenv("AQWEN_EPISODE_LOG", str(tmp_path / "episodes.jsonl"))
    module = load_app(out, "exported_plant_app")
    task = plant.tasks[2]
    with serving(module.app) as url, GenericEnvClient(base_url=url).sync() as env:
        assert get_json(url + "/metadata")["version"] == version
        assert play_sync(env, task, gold_actions(task)).reward == 1.0
    assert EpisodeLog(tmp_path / "episodes.jsonl").read()[0]["bundle_version"] == version
    with (out / "bundle" / "tasks.jsonl").open("a") as fh:
        fh.write("\n")
    with pytest.raises(BundleError, match="content hash"):
        load_app(out, "exported_plant_app_tampered")
    assert export_main([str(plant.path), "--openenv", str(tmp_path)]) == 1  # not an environment folder: kept


# --- GRPO with its rollouts on the server -----------------------------------------------------------------------


def test_grpo_trains_on_rollouts_from_the_server(plant: Bundle, tmp_path: Path) -> None:
    """TRL's GRPOTrainer on the built-in tiny model, two steps, every rollout's episode played on a live server over
    the network (OpenEnv's client inside TRL's environment_factory) and scored there: the rewards TRL logs are the
    rewards the server logged."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from trl import GRPOConfig, GRPOTrainer

    from runtime.serving.remote_trl import RemoteTRLEnvironment
    from runtime.training.models import domain_corpus, load, resolve_model

    torch.set_num_threads(1)
    model, tokenizer = load(resolve_model("builtin:tiny-qwen3", domain_corpus(plant)))
    log = tmp_path / "episodes.jsonl"
    with served(plant, log) as (url, shared):
        env = RemoteTRLEnvironment(url)
        try:
            assert env.tool_schemas == plant.tool_schemas and env.task_ids() == [t["id"] for t in plant.tasks]
            scored: list[list[float]] = []

            def reward(completions: list[Any], environments: list[Any], **kwargs: Any) -> list[float]:
                rewards = env.reward(completions, environments, **kwargs)
                scored.append(rewards)
                return rewards

            config = GRPOConfig(
                output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, report_to="none",
                per_device_train_batch_size=4, num_generations=2, max_steps=2, learning_rate=1e-5, beta=0.0,
                max_completion_length=48, logging_steps=1, save_strategy="no", seed=0, disable_tqdm=True,
                max_tool_calling_iterations=2, chat_template_kwargs={"enable_thinking": False})
            trainer = GRPOTrainer(model=model, args=config, train_dataset=env.dataset(env.task_ids()[:8]),
                                  processing_class=tokenizer, environment_factory=env.factory, reward_funcs=[reward])
            trainer.train()
        finally:
            env.close()
        wait_for(lambda: not shared.live, "the trainer's sessions freed")
    logged = [row for row in trainer.state.log_history if "rewards/reward/mean" in row]
    assert len(scored) == len(logged) == 2 and all(len(r) == 4 for r in scored)
    records = EpisodeLog(log).read()
    assert sorted(r["reward"] for r in records) == sorted(x for rewards in scored for x in rewards)
    for rewards, row in zip(scored, logged, strict=True):
        assert row["rewards/reward/mean"] == pytest.approx(sum(rewards) / len(rewards), abs=1e-4)


def test_listening_sockets_say_tcp_so_replies_are_not_delayed() -> None:
    """asyncio sets TCP_NODELAY on accepted sockets only when the listening socket's proto is TCP; with proto 0 a
    reply written in two pieces waits for the client's delayed ACK (about 40 ms a request, measured)."""
    import socket

    from runtime.serving.asgi import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.getsockname()[1] > 0
    finally:
        sock.close()
