"""Linting as a function: which files, which spec trees, and every diagnostic sorted by position."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aqwen_spec.diagnostics import Diagnostic

if TYPE_CHECKING:
    from aqwen_spec.source import SourceFile

_DOMAIN_DOC = re.compile(r"^kind:\s*Domain\b", re.MULTILINE)


@dataclass
class LintResult:
    diagnostics: list[Diagnostic]
    sources: dict[str, SourceFile] = field(default_factory=dict)
    n_files: int = 0


def spec_tree_root(path: Path, top: Path | None = None) -> Path:
    """The spec tree a file belongs to, so a hook given one changed file still checks its cross-file references.

    The root is the highest ancestor folder named ``specs`` below ``top`` (the working directory); failing that, the
    nearest ancestor folder holding a ``kind: Domain`` document; failing that, the file's own folder.
    """
    top = (top or Path.cwd()).resolve()
    path = path.resolve()
    start = path if path.is_dir() else path.parent
    ancestors = [d for d in (start, *start.parents) if d != top and top in d.parents]
    named = [d for d in ancestors if d.name == "specs"]
    if named:
        return named[-1]
    for folder in ancestors:
        for candidate in sorted(folder.glob("*.y*ml")):
            try:
                if _DOMAIN_DOC.search(candidate.read_text(encoding="utf-8", errors="replace")[:200_000]):
                    return folder
            except OSError:
                continue
    return start


def lint_paths(paths: Iterable[Path], expand_to_tree: bool = True) -> LintResult:
    """Check the given files and folders (with the whole spec tree of each file, unless told not to)."""
    return lint_roots(resolve_roots(paths, expand_to_tree))


def lint_roots(roots: list[Path]) -> LintResult:
    """Check spec trees (as :func:`resolve_roots` gives them)."""
    from aqwen_spec.check import check_paths

    result = check_paths(roots)
    return LintResult(result.diagnostics.sorted(), result.sources, len(result.sources))


def resolve_roots(paths: Iterable[Path], expand_to_tree: bool = True) -> list[Path]:
    """The folders to check: each file's spec tree (unless told not to), folders inside others dropped; paths that
    do not exist are kept, to be reported."""
    roots: list[Path] = []
    missing: list[Path] = []
    for path in paths:
        if not path.exists():
            missing.append(path)
        elif path.is_file() and expand_to_tree:
            roots.append(spec_tree_root(path))
        else:
            roots.append(path)
    # a file inside a folder already listed adds nothing
    unique = []
    for root in dict.fromkeys(p.resolve() for p in roots):
        if not any(other != root and other in root.parents for other in dict.fromkeys(p.resolve() for p in roots)):
            unique.append(root)
    return [*unique, *missing]
