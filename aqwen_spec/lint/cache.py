"""A lint result cache keyed by content, as ruff and mypy keep one.

The key hashes every file under the spec trees being checked (specs and their data files), the linter's own source
files (by size and modification time) and the Python version. A hit replays the stored diagnostics without importing
pydantic, Lark or Jinja2, so re-linting unchanged specs (pre-commit on other files, editors, CI reruns) starts about
as fast as Python itself. Set ``AQWEN_LINT_CACHE=0`` or pass ``--no-cache`` to turn it off; the cache lives in
``~/.cache/aqwen-spec/lint`` (``XDG_CACHE_HOME`` honoured) and keeps the newest 64 results.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from aqwen_spec.diagnostics import Diagnostic, Pos, Severity

KEEP = 64
_PACKAGE = Path(__file__).resolve().parents[1]


def enabled() -> bool:
    return os.environ.get("AQWEN_LINT_CACHE", "1") not in ("0", "false", "no")


def folder() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "aqwen-spec" / "lint"


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return out


def key(roots: list[Path], cwd: Path) -> str | None:
    """The cache key of linting ``roots`` from ``cwd``; None when a root is missing (nothing worth caching)."""
    digest = hashlib.sha256(f"{sys.version_info[:3]}|{cwd}".encode())
    for source in sorted(_PACKAGE.rglob("*")):
        if source.suffix in (".py", ".lark"):
            stat = source.stat()
            digest.update(f"{source}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    for root in roots:
        if not root.exists():
            return None
        digest.update(f"root|{root}\n".encode())
        for file in _files(root):
            try:
                data = file.read_bytes()
            except OSError:
                return None
            digest.update(f"{file}|{len(data)}\n".encode())
            digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


class CachedLines:
    """The source lines a cached result's diagnostics point at (all the reporters need)."""

    def __init__(self, lines: dict[str, str]) -> None:
        self.lines = {int(k): v for k, v in lines.items()}

    def line(self, number: int) -> str | None:
        return self.lines.get(number)


def load(entry_key: str) -> tuple[list[Diagnostic], dict[str, CachedLines], int] | None:
    try:
        data: dict[str, Any] = json.loads((folder() / f"{entry_key}.json").read_text(encoding="utf-8"))
        diags = [
            Diagnostic(d["code"], d["message"], d["path"], Pos(d["line"], d["col"]), Severity(d["severity"]),
                       d.get("hint"))
            for d in data["diagnostics"]
        ]
        sources = {path: CachedLines(lines) for path, lines in data["lines"].items()}
        return diags, sources, int(data["n_files"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(entry_key: str, diags: list[Diagnostic], sources: dict[str, Any], n_files: int) -> None:
    """Write the result (atomically; a cache that cannot be written is silently skipped)."""
    lines: dict[str, dict[str, str]] = {}
    for d in diags:
        source = sources.get(d.path)
        text = source.line(d.pos.line) if source is not None else None
        if text is not None:
            lines.setdefault(d.path, {})[str(d.pos.line)] = text
    payload = {"diagnostics": [d.to_json() for d in diags], "lines": lines, "n_files": n_files}
    try:
        target = folder()
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".{entry_key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(tmp, target / f"{entry_key}.json")
        entries = sorted(target.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
