"""Loading environment bundles: format and version checked, every file's hash verified, IR deserialised."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
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
    _states: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

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

    def initial_state(self, task: dict[str, Any]) -> dict[str, Any]:
        """A fresh copy of a task's initial state (generated from its seed once, then copied)."""
        from aqwen_spec.semantics import copy_state, generate_state

        spec = task["initial_state"]
        if "state" in spec:
            return copy_state(spec["state"])
        seed = int(spec["seed"])
        if seed not in self._states:
            self._states[seed] = generate_state(self.domain, seed)
        return copy_state(self._states[seed])


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
