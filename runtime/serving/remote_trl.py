"""GRPO with its episodes on a served environment: TRL's ``environment_factory`` over the network.

:class:`RemoteTRLEnvironment` is :class:`runtime.training.trl_environment.TRLEnvironment` with the episodes on an
``aqwen-run serve-env`` server instead of in this process: each environment instance TRL makes holds one session of
OpenEnv's client; ``reset`` starts the row's task there, the tool methods (same signatures and docstrings, built from
the tool schemas the server sends) are tool-call steps, and :meth:`RemoteTRLEnvironment.reward` ends every rollout's
episode on what the model said (a message to the user, then an empty turn) and returns the server's verifier
reward. Nothing of the bundle is needed here, only the server's URL::

    env = RemoteTRLEnvironment("http://127.0.0.1:8000")
    trainer = GRPOTrainer(model=..., train_dataset=env.dataset(env.task_ids()[:64]), environment_factory=env.factory,
                          reward_funcs=[env.reward], ...)
    trainer.train()
    env.close()
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from runtime.training.trl_environment import _text, _tool_method

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # environment_factory is marked experimental in TRL


@dataclass
class RemoteResult:
    reward: float
    success: bool
    verdict: dict[str, Any] = field(default_factory=dict)


class RemoteEpisode:
    """One session on the server, one episode at a time (the interface TRLEnvironment's tool methods call)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.done = True
        self.final: dict[str, Any] | None = None

    def start(self, task_id: str) -> list[dict[str, Any]]:
        result = self.client.reset(task_id=task_id)
        self.done, self.final = False, None
        return list(result.observation["messages"])

    def _step(self, action: dict[str, Any]) -> Any:
        result = self.client.step(action)
        if result.done:
            self.done, self.final = True, result.observation["verdict"]
        return result

    def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        if self.done:
            return json.dumps({"error": "the episode is over"})
        result = self._step({"tool_calls": [{"name": name, "arguments": arguments}]})
        contents = [r["content"] for r in result.observation["tool_results"]]
        return contents[-1] if contents else json.dumps({"error": "the episode is over"})

    def end_with(self, said: list[str], turns: int | None = None) -> RemoteResult:
        text = "\n".join(s for s in said if s.strip())
        if not self.done and text:
            self._step({"message": text})
        if not self.done:
            self._step({"text": ""})  # an empty turn: the agent is done
        assert self.final is not None
        return RemoteResult(float(self.final["reward"]), bool(self.final["success"]), self.final)


class RemoteTRLEnvironment:
    """An ``aqwen-run serve-env`` server as TRL's ``environment_factory`` (see the module docstring)."""

    def __init__(self, url: str, message_timeout_s: float = 60.0) -> None:
        from openenv.core.generic_client import GenericEnvClient

        self.url = url.rstrip("/")
        self._client_cls = GenericEnvClient
        self._timeout = message_timeout_s
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        probe = self._client()
        try:
            self.tool_schemas: list[dict[str, Any]] = probe.reset(seed=0).observation["tools"]
        finally:
            self._close(probe)
        self.name = self._get("/metadata")["name"]
        self.factory = self._make_factory()

    def _client(self) -> Any:
        client = self._client_cls(base_url=self.url, message_timeout_s=self._timeout).sync()
        with self._lock:
            self._clients.append(client)
        return client

    def _close(self, client: Any) -> None:
        client.close()
        with self._lock:
            self._clients.remove(client)

    def _get(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self._timeout) as response:
            return json.loads(response.read())

    def task_ids(self) -> list[str]:
        """The served bundle's task ids (OpenEnv's task API)."""
        return [str(t["id"]) for t in self._get(f"/{self.name}/tasks", {"split": "all"})["tasks"]]

    def _make_factory(self) -> type:
        owner = self

        def init(self: Any) -> None:
            self.episode = RemoteEpisode(owner._client())

        def reset(self: Any, task_id: str, **row: Any) -> None:
            self.episode.start(task_id)

        namespace: dict[str, Any] = {"__init__": init, "reset": reset,
                                     "__doc__": f"One session of {owner.name} on {owner.url}; the public methods "
                                                "are its tools."}
        for schema in self.tool_schemas:
            function = schema["function"]
            if function["name"] in namespace or function["name"] == "get_reward" or function["name"].startswith("_"):
                raise ValueError(f"tool {function['name']!r}: TRL's environment_factory reserves this name")
            namespace[function["name"]] = _tool_method(function)
        return type("RemoteBundleEnvironment", (), namespace)

    def dataset(self, task_ids: list[str]) -> Any:
        """A ``datasets.Dataset`` of every task's conversational ``prompt`` (from the server) and its ``task_id``."""
        from datasets import Dataset

        episode = RemoteEpisode(self._client())
        try:
            prompts = [episode.start(task_id) for task_id in task_ids]
        finally:
            self._close(episode.client)
        return Dataset.from_dict({"prompt": prompts, "task_id": list(task_ids)})

    def results(self, completions: list[Any], environments: list[Any]) -> list[RemoteResult]:
        out = []
        for completion, environment in zip(completions, environments, strict=True):
            messages = completion if isinstance(completion, list) else [{"role": "assistant",
                                                                          "content": str(completion)}]
            assistant = [m for m in messages if m.get("role") == "assistant"]
            out.append(environment.episode.end_with([_text(m.get("content")) for m in assistant], len(assistant)))
        return out

    def reward(self, completions: list[Any], environments: list[Any], **kwargs: Any) -> list[float]:
        """A TRL reward function: the server's verifier reward of every rollout."""
        return [r.reward for r in self.results(completions, environments)]

    def close(self) -> None:
        """Close every session this object opened."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
