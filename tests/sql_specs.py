"""Spec trees of one domain and its tools, written for the tests of ``sql:`` tools (SQL view, full-text indexes)."""

from __future__ import annotations

from pathlib import Path

from aqwen_spec.check import check_paths
from aqwen_spec.diagnostics import Severity
from aqwen_spec.resolved import SpecSet
from aqwen_spec.semantics import ToolRunner, generate_state


def write_tree(tmp_path: Path, name: str, domain: str, tools: str) -> Path:
    """``specs/<name>/domain.yaml`` and ``tools.yaml`` under ``tmp_path``; the ``specs`` folder."""
    root = tmp_path / "specs" / name
    root.mkdir(parents=True)
    (root / "domain.yaml").write_text(domain, encoding="utf-8")
    (root / "tools.yaml").write_text(tools, encoding="utf-8")
    return tmp_path / "specs"


def runner_of(specs: SpecSet, domain: str) -> ToolRunner:
    """A runner of the domain's tools on its state drawn with seed 0."""
    return ToolRunner(specs.tools_of(domain), generate_state(specs.domains[domain], 0))


def lint_errors(root: Path) -> list[tuple[str, int, int, str, str | None]]:
    """The errors of the specs under ``root``, sorted: code, line, column, message, hint."""
    return [(d.code, d.pos.line, d.pos.col, d.message, d.hint) for d in check_paths([root]).diagnostics.sorted()
            if d.severity is Severity.ERROR]
