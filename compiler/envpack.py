"""A bundle as an OpenEnv environment package (``python -m compiler.export BUNDLE --openenv OUT_DIR``).

The folder follows ``openenv init``'s layout: ``openenv.yaml`` (the manifest OpenEnv's tools read), ``pyproject.toml``
(a ``server`` script), ``server/app.py`` (the FastAPI app), ``client.py`` and ``README.md``, with the bundle's files
copied under ``bundle/``. Its version is the bundle's content hash (:func:`content_version`), so a score reported
by anything that ran the package traces back to the exact tasks, tools and verifiers. The server itself is
``aqwen-run serve-env``'s (``runtime.serving``), which checks the copied bundle's hashes again when it starts.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from compiler.reader import BundleFiles


def content_version(manifest: dict[str, Any]) -> str:
    """A bundle's content hash: sha256 over its files' hashes (tasks, tools, verifiers), 16 hex digits."""
    files = json.dumps(manifest.get("files", {}), sort_keys=True).encode()
    return hashlib.sha256(files).hexdigest()[:16]


def _class_name(domain: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", domain) if part) or "Bundle"


def write_openenv_env(bundle: BundleFiles, out: Path) -> Path:
    """Write the package into ``out`` (created; an existing package there is replaced); returns ``out``."""
    domain = str(bundle.manifest["domain"])
    version = content_version(bundle.manifest)
    tasks = len(bundle.tasks)
    cls = _class_name(domain)
    if out.exists():
        if not (out / "openenv.yaml").is_file():
            raise FileExistsError(f"{out} exists and is not an OpenEnv environment folder: not replaced")
        shutil.rmtree(out)
    (out / "server").mkdir(parents=True)
    files = ["manifest.json", *sorted(bundle.manifest.get("files", {}))]
    (out / "bundle").mkdir()
    for name in files:
        shutil.copy2(bundle.path / name, out / "bundle" / name)
    texts = {
        "openenv.yaml": f"""spec_version: 1
name: {domain}
version: "{version}"
type: space
runtime: fastapi
app: server.app:app
port: 8000
validation:
  reward:
    range: [0.0, 1.0]
    oracle_tolerance: 0.0
  capabilities:
    verifier:
      kind: reward_channel
  types:
    tags: [aqwen-spec, tool-use, simulated-user]
""",
        "pyproject.toml": f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "openenv-{domain.replace('_', '-')}"
version = "0+{version}"
description = "{domain}: a tool-use environment compiled by aqwen-spec ({tasks} tasks), served with OpenEnv"
requires-python = ">=3.11"
# aqwen-spec (its serve extra) serves the bundle: install it from its repository first
dependencies = ["aqwen-spec[serve]"]

[project.scripts]
server = "{domain}.server.app:main"

[tool.setuptools]
packages = ["{domain}", "{domain}.server"]
package-dir = {{ "{domain}" = ".", "{domain}.server" = "server" }}

[tool.setuptools.package-data]
"{domain}" = ["bundle/*", "openenv.yaml", "README.md"]
""",
        "__init__.py": f'''"""{domain}: an aqwen-spec bundle (content hash {version}) as an OpenEnv environment."""

from .client import {cls}Env

__all__ = ["{cls}Env"]
''',
        "client.py": f'''"""A client of the {domain} environment: OpenEnv's generic client (actions and observations
as dicts; their JSON Schemas are at the server's /schema)."""

from openenv.core.generic_client import GenericEnvClient


class {cls}Env(GenericEnvClient):
    """``async with {cls}Env(base_url=URL) as env`` (or ``{cls}Env(base_url=URL).sync()``):
    ``reset(task_id=...)`` or ``reset(seed=N)``; ``step({{"tool_calls": [...]}})``, ``step({{"message": ...}})``
    or ``step({{"text": ...}})``."""
''',
        "server/__init__.py": "",
        "server/app.py": f'''"""The {domain} environment on OpenEnv's server: ``uvicorn server.app:app`` or the
``server`` script.

Set ``AQWEN_EPISODE_LOG`` for the JSONL file finished episodes are appended to (default: episodes.jsonl).
"""

import os
from pathlib import Path

from runtime.episodes.bundle import Bundle
from runtime.serving.env_server import EpisodeLog, Served, build_app

VERSION = "{version}"
bundle = Bundle.load(Path(__file__).resolve().parents[1] / "bundle")  # refuses a copy whose hashes do not match
served = Served(bundle, log=EpisodeLog(os.environ.get("AQWEN_EPISODE_LOG", "episodes.jsonl")))
if served.version != VERSION:
    raise RuntimeError(f"bundle version {{served.version}} is not this package's {{VERSION}}")
app = build_app(served)


def main() -> None:
    import uvicorn

    uvicorn.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")))


if __name__ == "__main__":
    main()
''',
        "README.md": f"""# {domain}

A tool-use environment compiled by aqwen-spec: {tasks} tasks with a simulated user and verifiers, served on
OpenEnv's server. Version `{version}`: the bundle's content hash (its tasks, tools and verifiers).

- serve: `pip install -e .` (after aqwen-spec with its `serve` extra), then `server` or `uvicorn server.app:app`;
- use: OpenEnv's clients over WebSocket (`{cls}Env` in `client.py`), MCP at `/agent/mcp`.
""",
    }
    for rel, text in texts.items():
        (out / rel).write_text(text, encoding="utf-8")
    return out
