"""Loading environment bundles: format and version checked, every file's hash verified, IR deserialised."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aqwen_spec.resolved import ResolvedDomain, ResolvedPersona, ResolvedTool, ResolvedVerifier
from aqwen_spec.serialize import domain_from_json, persona_from_json, tool_from_json, verifier_from_json

FORMAT = "aqwen-bundle"
SUPPORTED_MAJOR = 1


class BundleError(Exception):
    """A bundle that cannot be used: missing files, another format version, a hash that does not match."""


@dataclass
class Bundle:
    """A compiled environment: its domain, tools, personas, verifiers and tasks."""

    path: Path
    manifest: dict[str, Any]
    domain: ResolvedDomain
    tools: dict[str, ResolvedTool]
    tool_schemas: list[dict[str, Any]]
    personas: dict[str, ResolvedPersona]
    verifiers: dict[str, ResolvedVerifier]
    system_prompt: str
    tasks: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return self.domain.name

    @classmethod
    def load(cls, path: Path | str) -> Bundle:
        folder = Path(path)
        manifest = _read_json(folder / "manifest.json", "manifest")
        if manifest.get("format") != FORMAT:
            raise BundleError(f"{folder}: not an aqwen bundle (format is {manifest.get('format')!r})")
        version = str(manifest.get("format_version", ""))
        major = version.split(".")[0]
        if not major.isdigit() or int(major) != SUPPORTED_MAJOR:
            raise BundleError(
                f"{folder}: bundle format version {version or '(missing)'} is not supported: this aqwen-spec reads "
                f"version {SUPPORTED_MAJOR}.x; recompile the specs with aqwen-compile"
            )
        files: dict[str, bytes] = {}
        for name, expected in sorted(manifest.get("files", {}).items()):
            file = folder / name
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise BundleError(f"{file}: cannot read: {exc.strerror or exc}") from None
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                raise BundleError(
                    f"{file}: content hash {actual[:12]}... does not match the manifest ({expected[:12]}...): "
                    "the file was changed after compiling; recompile with aqwen-compile"
                )
            files[name] = data
        for required in ("bundle.json", "tasks.jsonl"):
            if required not in files:
                raise BundleError(f"{folder}: the manifest lists no {required}")
        body = json.loads(files["bundle.json"])
        domain = domain_from_json(body["domain"])
        named = {**domain.types, "State": domain.state}
        tools = {n: tool_from_json(t, named) for n, t in body["tools"].items()}
        personas = {n: persona_from_json(p) for n, p in body["personas"].items()}
        verifiers = {n: verifier_from_json(v) for n, v in body["verifiers"].items()}
        tasks = [json.loads(line) for line in files["tasks.jsonl"].decode().splitlines() if line.strip()]
        return cls(folder, manifest, domain, tools, body["tool_schemas"], personas, verifiers,
                   body["system_prompt"], tasks)

    def __post_init__(self) -> None:
        from aqwen_spec.semantics import generate_state
        from runtime.state_pool import StatePool

        self.states = StatePool(lambda seed: generate_state(self.domain, seed))
        self._gold_final: dict[str, dict[str, Any]] = {}

    def initial_state(self, task: dict[str, Any]) -> dict[str, Any]:
        """A fresh copy of a task's initial state."""
        from aqwen_spec.semantics import copy_state

        spec = task["initial_state"]
        if "state" in spec:
            return copy_state(spec["state"])
        return copy_state(self.states.pristine(int(spec["seed"])))

    def gold_final_state(self, task: dict[str, Any]) -> dict[str, Any]:
        """The state after the task's gold trajectory (replayed once per task, then cached)."""
        from aqwen_spec.semantics import ToolRunner

        key = str(task["id"])
        if key not in self._gold_final:
            state = self.initial_state(task)
            runner = ToolRunner(self.tools, state)
            for call in task["gold"]["calls"]:
                if call["name"] in self.tools:
                    runner.call(call["name"], call["arguments"])
            self._gold_final[key] = state
        return self._gold_final[key]

    def render_system_prompt(self) -> str:
        from aqwen_spec.templates import render

        if not hasattr(self, "_system_prompt"):
            names = ", ".join(s["function"]["name"] for s in self.tool_schemas)
            self._system_prompt = render(self.system_prompt, {"domain": self.domain.name, "policy": self.domain.policy,
                                                              "tools": names})
        return self._system_prompt

    def task(self, task_id: str) -> dict[str, Any]:
        for t in self.tasks:
            if t["id"] == task_id:
                return t
        raise KeyError(task_id)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path.parent}: no {path.name}: not a bundle folder (run aqwen-compile first)") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: cannot read the {what}: {exc}") from None
    if not isinstance(value, dict):
        raise BundleError(f"{path}: the {what} is not a JSON object")
    return value
