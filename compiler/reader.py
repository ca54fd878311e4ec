"""Reading bundles back: format and major version checked, every file's hash verified.

Both the runtime (``runtime.episodes.bundle.Bundle.load``) and the exporters (``compiler.export``) read bundles
through here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bundle import FORMAT, FORMAT_VERSION, LIBRARY_FORMAT_VERSION

SUPPORTED_MAJOR = int(FORMAT_VERSION.split(".")[0])
SUPPORTED_MAJORS = (SUPPORTED_MAJOR, int(LIBRARY_FORMAT_VERSION.split(".")[0]))
"""1.x, and 2.x (a domain with functions or constants)."""


class BundleError(Exception):
    """A bundle that cannot be used: missing files, another format version, a hash that does not match."""


@dataclass
class BundleFiles:
    """A bundle's manifest, body (``bundle.json``) and tasks, as verified JSON."""

    path: Path
    manifest: dict[str, Any]
    body: dict[str, Any]
    tasks: list[dict[str, Any]]
    problem_defs: dict[str, Any] = field(default_factory=dict)  # format 1.1: Problem definitions (IR), by name
    problems: list[dict[str, Any]] = field(default_factory=list)  # format 1.1: Problem instances

    @property
    def domain(self) -> str:
        return str(self.body["domain"]["name"])

    @property
    def tool_schemas(self) -> list[dict[str, Any]]:
        return list(self.body["tool_schemas"])

    def system_prompt(self) -> str:
        return render_system_prompt(self.body["system_prompt"], self.domain, self.body["domain"].get("policy", ""),
                                    self.tool_schemas)


def render_system_prompt(template: str, domain: str, policy: str, tool_schemas: list[dict[str, Any]]) -> str:
    """The agent's system prompt: the bundle's template with the domain, its policy and the tool names."""
    from aqwen_spec.templates import render

    names = ", ".join(s["function"]["name"] for s in tool_schemas)
    return render(template, {"domain": domain, "policy": policy, "tools": names})


def read_bundle(path: Path | str) -> BundleFiles:
    folder = Path(path)
    manifest = _read_json(folder / "manifest.json", "manifest")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{folder}: not an aqwen bundle (format is {manifest.get('format')!r})")
    version = str(manifest.get("format_version", ""))
    major = version.split(".")[0]
    if not major.isdigit() or int(major) not in SUPPORTED_MAJORS:
        raise BundleError(
            f"{folder}: bundle format version {version or '(missing)'} is not supported: this aqwen-spec reads "
            f"versions {' and '.join(f'{m}.x' for m in SUPPORTED_MAJORS)}; recompile the specs with aqwen-compile"
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
                f"{file}: content hash {actual[:12]}... does not match the manifest ({str(expected)[:12]}...): "
                "the file was changed after compiling; recompile with aqwen-compile"
            )
        files[name] = data
    for required in ("bundle.json", "tasks.jsonl"):
        if required not in files:
            raise BundleError(f"{folder}: the manifest lists no {required}")
    body = json.loads(files["bundle.json"])
    tasks = [json.loads(line) for line in files["tasks.jsonl"].decode().splitlines() if line.strip()]
    defs = json.loads(files["problems.json"])["problems"] if "problems.json" in files else {}
    problems = [json.loads(line) for line in files.get("problems.jsonl", b"").decode().splitlines() if line.strip()]
    return BundleFiles(folder, manifest, body, tasks, defs, problems)


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
