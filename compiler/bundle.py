"""Writing environment bundles: ``BUILD/<domain>/{manifest.json, bundle.json, tasks.jsonl}``.

Output is deterministic (sorted keys, no timestamps, source paths relative to the spec root), so the same specs and
seed give byte-identical bundles. Each domain is written into a temporary folder beside its target and moved into
place, so a failed or interrupted compile never leaves a half-written bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from aqwen_spec import __version__
from aqwen_spec.resolved import SpecSet
from aqwen_spec.serialize import domain_to_json, persona_to_json, tool_to_json, verifier_to_json
from aqwen_spec.types import json_schema
from compiler.expand import TRANSFER_TOOL
from compiler.project import CompiledDomain, CompiledProject

FORMAT = "aqwen-bundle"
FORMAT_VERSION = "2.0"
"""Major.minor of the newest format. A reader accepts bundles of the majors it knows; minor versions only add
optional fields."""
BASE_FORMAT_VERSION = "1.2"
"""What a bundle that uses nothing added in 2.0 is written as: byte for byte what 1.2 wrote, readable by 1.x."""
SUPPORTED_MAJORS = (1, 2)
V2_DOMAIN_KEYS = ("result", "clock", "random", "transfers", "functions", "constants")
"""Keys of ``bundle.json``'s domain (and ``result`` of its tools, ``clock`` and ``random_seed`` of its tasks) that
an older reader would ignore and so misread: a bundle with any of them is format 2.0 (a domain's functions and
constants too: a 1.x reader would load it and fail at the first call of a function)."""


def format_version(body: dict[str, Any], tasks: list[dict[str, Any]]) -> str:
    """The lowest format version that reads this bundle right (see docs/bundle-format.md, versioning)."""
    tools = body["tools"].values()
    if any(k in body["domain"] for k in V2_DOMAIN_KEYS) or any("result" in t or "let" in t for t in tools) \
            or any("clock" in t or "random_seed" in t for t in tasks):
        return FORMAT_VERSION
    return BASE_FORMAT_VERSION

DEFAULT_SYSTEM_PROMPT = """You are a tool-using assistant for the {{ domain }} domain.
Follow this policy strictly:

{{ policy }}

Use the tools to look things up and to act. Talk to the user in plain text; ask for what you need, tell them the
outcome, refuse requests the policy forbids, and transfer to a human when the policy says so."""


def _dumps(value: Any) -> str:
    # no sort_keys: key order is data (records render in their declared order) and is already deterministic
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tool_schemas(specs: SpecSet, domain: str) -> list[dict[str, Any]]:
    """The domain's tools as OpenAI function specs (what the model is shown), the transfer tool included."""
    out = []
    for name, tool in sorted(specs.tools_of(domain).items()):
        props = {}
        for pname, p in tool.params.items():
            schema = dict(json_schema(p.type))
            if p.description:  # a type's own note (a duration's unit) stays after the parameter's
                unit = f" ({schema['description']})" if "description" in schema else ""
                schema["description"] = p.description + unit
            props[pname] = schema
        required = [n for n, p in tool.params.items() if p.required]
        out.append({"type": "function", "function": {
            "name": name, "description": tool.description,
            "parameters": {"type": "object", "properties": props, "required": required},
        }})
    transfers = specs.domains[domain].transfers
    if not transfers:
        out.append({"type": "function", "function": {
            "name": TRANSFER_TOOL,
            "description": "Transfer the user to a human agent, with a short reason. Ends the conversation.",
            "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]},
        }})
        return out
    out.append({"type": "function", "function": {
        "name": TRANSFER_TOOL,
        "description": "Transfer the user to a human agent at a destination, with a short reason. Ends the "
                       "conversation.",
        "parameters": {"type": "object", "properties": {
            "reason": {"type": "string"},
            "destination": {"type": "string", "enum": list(transfers), "description": "Where to transfer the user."},
        }, "required": ["reason", "destination"]},
    }})
    return out


def bundle_json(specs: SpecSet, domain: str, tasks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    d = specs.domains[domain]
    workflows = specs.workflows_of(domain)
    body = {
        "format": FORMAT,
        "format_version": BASE_FORMAT_VERSION,
        "domain": domain_to_json(d),
        "tools": {n: tool_to_json(t) for n, t in sorted(specs.tools_of(domain).items())},
        "tool_schemas": tool_schemas(specs, domain),
        "personas": {n: persona_to_json(p) for n, p in sorted(specs.personas.items())
                     if not p.domains or domain in p.domains},
        "verifiers": {v.name: verifier_to_json(v) for w in sorted(workflows) for v in specs.verifiers_of(w)},
        "system_prompt": d.system_prompt or DEFAULT_SYSTEM_PROMPT,
    }
    body["format_version"] = format_version(body, tasks or [])
    return body


def _rel(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).name


def manifest_json(project: CompiledProject, compiled: CompiledDomain, files: dict[str, bytes],
                  version: str = BASE_FORMAT_VERSION) -> dict[str, Any]:
    specs = project.specs
    domain = specs.domains[compiled.name]
    root = project.root if project.root.is_dir() else project.root.parent
    used = {domain.origin.path} | {t.origin.path for t in specs.tools_of(compiled.name).values()}
    used |= {w.origin.path for w in specs.workflows_of(compiled.name).values()}
    used |= {v.origin.path for w in specs.workflows_of(compiled.name) for v in specs.verifiers_of(w)}
    used |= {p.origin.path for p in specs.personas.values() if not p.domains or compiled.name in p.domains}
    used |= {p.origin.path for p in specs.problems_of(compiled.name).values()}
    sources = {}
    for path in sorted(used):
        sources[_rel(path, root)] = sha256(Path(path).read_bytes())
    base = Path(domain.origin.path).parent
    for data_file in domain.data_files:
        full = base / data_file
        if full.exists():
            sources[_rel(str(full), root)] = sha256(full.read_bytes())
    tasks = [t.data for t in compiled.tasks]
    counts: dict[str, Any] = {}
    if "problems.jsonl" in files:  # format 1.1: Problem instances (absent when the domain has no problems)
        instances = project.problems.get(compiled.name, [])
        counts["problems"] = len(specs.problems_of(compiled.name))
        counts["problem_instances"] = dict(sorted(Counter(i["problem"] for i in instances).items()))
    return {
        "format": FORMAT,
        "format_version": version,
        "aqwen_spec_version": __version__,
        "domain": compiled.name,
        "seed": project.seed,
        "tasks_per_branch": project.tasks_per_branch,
        "sources": dict(sorted(sources.items())),
        "files": {name: sha256(data) for name, data in sorted(files.items())},
        "counts": {
            "tasks": len(tasks),
            "workflows": dict(sorted(Counter(t["workflow"] for t in tasks).items())),
            "branches": dict(sorted(Counter(f"{t['workflow']}/{'.'.join(t['path'])}" for t in tasks).items())),
            "personas": dict(sorted(Counter(str(t["persona"]) for t in tasks).items())),
            "adversarial": sum(1 for t in tasks if t["adversarial"]),
            **counts,
        },
        # format 1.2: per workflow, tasks per path, adversarial variants per refusal/transfer path, branches the
        # search found beyond the pooled states, cases left out of scope
        "coverage": {wf: report.to_json() for wf, report in sorted(compiled.coverage.items())},
        # format 1.2: the verifier proofs per workflow (compiler.proofs)
        "proofs": {wf: proof.to_json() for wf, proof in sorted(compiled.proofs.items())},
    }


def write_bundles(project: CompiledProject, build: Path | str) -> list[Path]:
    """Write one bundle per domain under ``build``; returns their folders."""
    build = Path(build)
    build.mkdir(parents=True, exist_ok=True)
    written = []
    for name, compiled in sorted(project.domains.items()):
        body = bundle_json(project.specs, name, [t.data for t in compiled.tasks])
        files = {
            "bundle.json": (_dumps(body) + "\n").encode(),
            "tasks.jsonl": "".join(_dumps(t.data) + "\n" for t in compiled.tasks).encode(),
        }
        if project.specs.problems_of(name):
            from compiler.problems import problem_to_json

            defs = {n: problem_to_json(p) for n, p in sorted(project.specs.problems_of(name).items())}
            files["problems.json"] = (_dumps({"problems": defs}) + "\n").encode()
            files["problems.jsonl"] = "".join(_dumps(i) + "\n" for i in project.problems.get(name, [])).encode()
        manifest = manifest_json(project, compiled, files, body["format_version"])
        files["manifest.json"] = (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
        target = build / name
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=build))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bundle is an ordinary folder
        try:
            for fname, data in files.items():
                (tmp / fname).write_bytes(data)
            if target.exists():
                old = build / f".{name}.old.{os.getpid()}"
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        written.append(target)
    write_pipelines(project, build)
    return written


def write_pipelines(project: CompiledProject, build: Path) -> None:
    """``BUILD/pipelines/<name>.json``: each Pipeline document, resolved, for ``aqwen-run``."""
    if not project.specs.pipelines:
        return
    folder = build / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in sorted(project.specs.pipelines.items()):
        data = doc.model_dump(mode="json", by_alias=True)
        (folder / f"{name}.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
