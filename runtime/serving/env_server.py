"""A compiled bundle served as an OpenEnv environment (``aqwen-run serve-env BUILD/<domain>``).

Built on the ``openenv`` package's own server (:func:`openenv.core.env_server.create_fastapi_app`): ``/ws`` holds
one session per connection (``reset``, ``step``, ``state``, ``close`` messages, as OpenEnv's clients send them),
``/reset``, ``/step``, ``/state`` answer one-shot HTTP requests, ``/schema`` publishes the bundle's typed models
(:mod:`runtime.serving.env_models`), ``/health`` and ``/metadata`` (the bundle's content hash as its version).
The bundle's tools are also served to agents over MCP at ``/agent/mcp`` (:mod:`runtime.serving.mcp_tools`).

Each session owns one :class:`runtime.episodes.env.Environment`: what an episode is (tools, simulated user,
budgets, verifiers) is the runtime's, unchanged. ``reset(task_id=...)`` picks a task by id, ``reset(seed=N)``
the task at ``N mod len(tasks)``, ``reset()`` a random one. Every finished episode is appended to a JSONL log
(:class:`EpisodeLog`) that a restarted server keeps appending to.
"""

from __future__ import annotations

import functools
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openenv.core.env_server.interfaces import Environment as OpenEnvEnvironment
from openenv.core.env_server.types import EnvironmentMetadata, Observation, State

from compiler.envpack import content_version
from runtime.episodes.bundle import Bundle
from runtime.episodes.env import Environment, EpisodeConfig, EpisodeResult, StepResult
from runtime.serving.asgi import BodyLimit, bind, make_server, serving, url_of
from runtime.serving.env_models import EnvModels, models_for
from runtime.serving.serve_env import DEFAULT_MAX_BODY, DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_TIMEOUT


def bundle_version(bundle: Bundle) -> str:
    """The bundle's content hash (:func:`compiler.envpack.content_version`): its tasks, tools and verifiers."""
    return content_version(bundle.manifest)


class EpisodeLog:
    """Finished episodes appended to a JSONL file, one line each, flushed at once; a restarted server appends
    to the same file (a line cut short by a crash is closed first, so later lines stay readable)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self.path.open("ab+") as fh:
            if fh.tell() > 0:
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)

    def read(self) -> list[dict[str, Any]]:
        """Every complete record (a line cut short by a crash is skipped)."""
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


@dataclass
class Served:
    """What every session of one server shares: the bundle (read-only), episode budgets, models and the log."""

    bundle: Bundle
    config: EpisodeConfig = field(default_factory=EpisodeConfig)
    log: EpisodeLog | None = None

    def __post_init__(self) -> None:
        self.models: EnvModels = models_for(self.bundle)
        self.version = bundle_version(self.bundle)
        self.by_id = {str(t["id"]): t for t in self.bundle.tasks}
        self._rng = random.Random()
        self.live: set[Episode] = set()
        """The sessions' episodes not yet closed (a session's resources are freed when it leaves this set)."""

    def pick_task(self, task_id: str | None, seed: int | None) -> dict[str, Any]:
        if task_id is not None:
            if task_id not in self.by_id:
                raise ValueError(f"unknown task_id {task_id!r}: {self.bundle.name} has {len(self.by_id)} tasks "
                                 f"(GET /{self.bundle.name}/tasks lists them)")
            return self.by_id[task_id]
        if not self.bundle.tasks:
            raise ValueError(f"{self.bundle.name} has no tasks")
        index = seed % len(self.bundle.tasks) if seed is not None else self._rng.randrange(len(self.bundle.tasks))
        return self.bundle.tasks[index]

    def record(self, episode_id: str, result: EpisodeResult, transport: str) -> None:
        if self.log is not None:
            self.log.append({"episode_id": episode_id, "domain": self.bundle.name, "bundle_version": self.version,
                             "transport": transport, "time": time.time(), **result.to_json()})


class Episode:
    """One session's episode on a runtime :class:`Environment`; shared by the OpenEnv and MCP front ends.

    A lock keeps a close (the idle reaper's, on another thread) from running in the middle of a step.
    """

    def __init__(self, served: Served, transport: str, start_hint: str = "reset") -> None:
        self.served = served
        self.transport = transport
        self.start_hint = start_hint
        self.env: Environment | None = None
        self.episode_id = ""
        self.closed = False
        self.logged = False
        self._lock = threading.Lock()
        served.live.add(self)

    def start(self, task_id: str | None = None, seed: int | None = None,
              episode_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self._check_open()
            task = self.served.pick_task(task_id, seed)
            if self.env is not None:
                self.env.close()
            self.env = Environment(self.served.bundle, task, config=self.served.config)
            self.episode_id = episode_id or uuid.uuid4().hex
            self.logged = False
            return self.env.reset()

    def _running(self) -> Environment:
        self._check_open()
        if self.env is None:
            raise ValueError(f"no episode yet: {self.start_hint} first")
        if self.env.done:
            raise ValueError(f"the episode is over: {self.start_hint} to start another")
        return self.env

    def step(self, turn: str | dict[str, Any]) -> StepResult:
        with self._lock:
            result = self._running().step(turn)
            if result.done:
                self._finished(result.info["result"])
            return result

    def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        with self._lock:
            env = self._running()
            content = env.call_tool(name, arguments)
            if env.done:
                self._finished(env.result())
            return content

    def finish(self) -> EpisodeResult:
        """Score the episode (ending it if it still runs); a finished one's result again."""
        with self._lock:
            self._check_open()
            if self.env is None:
                raise ValueError(f"no episode yet: {self.start_hint} first")
            result = self.env.result()
            self._finished(result)
            return result

    def _finished(self, result: EpisodeResult) -> None:
        if not self.logged:
            self.logged = True
            self.served.record(self.episode_id, result, self.transport)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if self.env is not None:
                self.env.close()  # an unfinished episode's state goes back to the pool
        self.served.live.discard(self)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("this session is closed (idle past its timeout, or closed by the client)")


def verdict_json(result: EpisodeResult) -> dict[str, Any]:
    score = result.score.to_json()
    return {"reward": result.reward, "success": result.success, "gate_failed": score["gate_failed"],
            "checks": score["checks"], "metrics": result.metrics}


class BundleEnvironment(OpenEnvEnvironment):
    """An OpenEnv environment on one bundle: one instance per session, made by the server's factory."""

    SUPPORTS_CONCURRENT_SESSIONS = True
    # sessions are made and closed on one shared worker thread (not one thread per session); steps are short
    # and run on the event loop itself (see step_async)
    REQUIRES_SINGLE_THREAD_EXECUTOR = True

    def __init__(self, served: Served) -> None:
        super().__init__()
        self.served = served
        self.episode = Episode(served, "openenv")

    def reset(self, seed: int | None = None, episode_id: str | None = None, task_id: str | None = None,
              **kwargs: Any) -> Observation:
        if kwargs:
            raise ValueError(f"unknown reset arguments: {', '.join(sorted(kwargs))} (task_id, seed, episode_id)")
        messages = self.episode.start(task_id, seed, episode_id)
        env = self.episode.env
        assert env is not None
        return self.served.models.observation(task_id=str(env.task["id"]), messages=messages,
                                              user_reply=messages[-1]["content"],
                                              tools=self.served.bundle.tool_schemas, reward=None, done=False)

    async def reset_async(self, seed: int | None = None, episode_id: str | None = None,
                          task_id: str | None = None, **kwargs: Any) -> Observation:
        return self.reset(seed, episode_id, task_id, **kwargs)

    def step(self, action: Any, timeout_s: float | None = None, **kwargs: Any) -> Observation:
        turn: str | dict[str, Any]
        if action.text is not None:
            turn = action.text
        else:
            turn = {"role": "assistant", "content": action.message or "",
                    "tool_calls": [{"name": c.name, "arguments": c.arguments} if hasattr(c, "name") else c
                                   for c in action.tool_calls]}
        result = self.episode.step(turn)
        return self._observation(result)

    async def step_async(self, action: Any, timeout_s: float | None = None, **kwargs: Any) -> Observation:
        return self.step(action, timeout_s, **kwargs)

    def _observation(self, result: StepResult) -> Observation:
        env = self.episode.env
        assert env is not None
        tool_results = [{"name": m.get("name", ""), "content": m["content"]}
                        for m in result.observations if m["role"] == "tool"]
        replies = [m["content"] for m in result.observations if m["role"] == "user"]
        verdict = None
        reward = result.reward
        if result.done:
            final: EpisodeResult = result.info["result"]
            verdict = verdict_json(final)
            reward = final.reward
        return self.served.models.observation(
            task_id=str(env.task["id"]), turn=env.turn, messages=result.observations, tool_results=tool_results,
            user_reply=replies[-1] if replies else None, errors=list(result.info.get("errors", [])),
            verdict=verdict, reward=reward, done=result.done)

    @property
    def state(self) -> State:
        env = self.episode.env
        if env is None:
            return self.served.models.state(bundle_version=self.served.version)
        return self.served.models.state(
            episode_id=self.episode.episode_id, step_count=env.turn, task_id=str(env.task["id"]), turn=env.turn,
            tool_calls=len(env.calls), done=env.done, terminated_by=env.terminated_by,
            bundle_version=self.served.version)

    def get_metadata(self) -> EnvironmentMetadata:
        bundle = self.served.bundle
        return EnvironmentMetadata(name=bundle.name, version=self.served.version,
                                   description=f"{bundle.name}: {len(bundle.tasks)} tasks, "
                                               f"{len(bundle.tools)} tools (compiled by aqwen-compile)")

    def close(self) -> None:
        self.episode.close()

    # OpenEnv's task API (GET /<env>/splits, POST /<env>/tasks, ...): the bundle's tasks as one split
    def list_splits(self) -> list[str]:
        return ["all"]

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return [_task_card(t) for t in self._split(split)]

    def num_tasks(self, split: str) -> int:
        return len(self._split(split))

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        return _task_card(self._split(split)[index])

    def _split(self, split: str) -> list[dict[str, Any]]:
        if split != "all":
            raise IndexError(split)
        return self.served.bundle.tasks


def _task_card(task: dict[str, Any]) -> dict[str, Any]:
    return {key: task.get(key) for key in ("id", "workflow", "branch", "persona", "difficulty", "adversarial")}


# --- the application -------------------------------------------------------------------------------------------


def build_app(served: Served, max_sessions: int = DEFAULT_MAX_SESSIONS,
              session_timeout: float | None = DEFAULT_SESSION_TIMEOUT, max_body: int = DEFAULT_MAX_BODY,
              mcp: bool = True) -> Any:
    """The ASGI application: OpenEnv's FastAPI app for this bundle, MCP at ``/agent/mcp``, bodies bounded."""
    from openenv.core.env_server import create_fastapi_app
    from openenv.core.env_server.types import ConcurrencyConfig

    app = create_fastapi_app(
        functools.partial(BundleEnvironment, served), served.models.action, served.models.observation,
        concurrency_config=ConcurrencyConfig(max_concurrent_envs=max_sessions, session_timeout=session_timeout),
        env_name=served.bundle.name, state_cls=served.models.state, mode="simulation")
    app.title = f"{served.bundle.name} (aqwen-spec bundle {served.version})"
    if mcp:
        from runtime.serving.mcp_tools import mount_mcp

        mount_mcp(app, served, max_sessions=max_sessions, session_timeout=session_timeout, max_body=max_body)
    return BodyLimit(app, max_body)


__all__ = ["BundleEnvironment", "Episode", "EpisodeLog", "Served", "bind", "build_app", "bundle_version",
           "make_server", "serving", "url_of"]
