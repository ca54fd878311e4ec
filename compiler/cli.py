"""The ``aqwen-compile`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    from compiler.project import DEFAULT_SEED, DEFAULT_TASKS_PER_BRANCH

    parser = argparse.ArgumentParser(
        prog="aqwen-compile",
        description="Check specs and expand them into environment bundles (manifest.json, bundle.json, tasks.jsonl).",
    )
    parser.add_argument("specs", nargs="?", type=Path, default=Path("specs"), help="spec folder (default: specs/)")
    parser.add_argument("-o", "--output", type=Path, default=Path("build"), help="build folder (default: build/)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})")
    parser.add_argument("--tasks-per-branch", type=int, default=DEFAULT_TASKS_PER_BRANCH, metavar="N",
                        help=f"tasks drawn for each path of each workflow (default: {DEFAULT_TASKS_PER_BRANCH})")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.tasks_per_branch < 1:
        parser.print_usage(sys.stderr)
        sys.stderr.write("aqwen-compile: error: --tasks-per-branch must be at least 1\n")
        return 2
    from aqwen_spec.diagnostics import SpecError
    from aqwen_spec.lint.reporters import format_text, wants_color
    from compiler.bundle import write_bundles
    from compiler.project import compile_specs

    if not args.specs.exists():
        sys.stderr.write(f"aqwen-compile: error: no such folder: {args.specs}\n")
        return 2
    start = time.perf_counter()
    try:
        project = compile_specs(args.specs, seed=args.seed, tasks_per_branch=args.tasks_per_branch)
    except SpecError as exc:
        from aqwen_spec.source import SourceFile

        sources: dict[str, SourceFile] = {}
        for diag in exc.diagnostics:
            if diag.path not in sources and Path(diag.path).is_file():
                text = Path(diag.path).read_text(encoding="utf-8", errors="replace")
                sources[diag.path] = SourceFile(diag.path, text)
        color = wants_color(sys.stderr)
        for diag in exc.diagnostics:
            sys.stderr.write(format_text(diag, sources.get(diag.path), color) + "\n")
        sys.stderr.write(f"aqwen-compile: {len(exc.diagnostics)} error(s); nothing written to {args.output}\n")
        return 1
    for diag in project.diagnostics.warnings:
        sys.stderr.write(format_text(diag, project.sources.get(diag.path), wants_color(sys.stderr)) + "\n")
    written = write_bundles(project, args.output)
    if not args.quiet:
        for folder in written:
            compiled = project.domains[folder.name]
            n_adv = sum(1 for t in compiled.tasks if t.data["adversarial"])
            wfs = len({t.data["workflow"] for t in compiled.tasks})
            print(f"{folder}: {len(compiled.tasks)} tasks ({n_adv} adversarial) from {wfs} workflows")
            for line in coverage_lines(compiled):
                print(f"  {line}")
            if compiled.proofs:
                credit = ", ".join(f"{wf} {p.noop_mean:.2f}" for wf, p in sorted(compiled.proofs.items()))
                print(f"  doing nothing earns (mean reward per workflow): {credit}")
        print(f"compiled in {time.perf_counter() - start:.2f} s")
    return 0


def coverage_lines(compiled: Any) -> list[str]:
    """One line per workflow: tasks per path (adversarial variants of refusal and transfer paths in brackets),
    then the branches the search found beyond the pooled states and the cases left out of scope."""
    lines = []
    for name, report in sorted(compiled.coverage.items()):
        parts = []
        for path, n in report.tasks.items():
            adv = report.adversarial.get(path)
            parts.append(f"{path} {n}" + (f" (+{adv} adversarial)" if adv is not None else ""))
        lines.append(f"{name}: " + ", ".join(parts))
        for branch, how in report.searched.items():
            lines.append(f"  branch {branch}: found by the search, on {how}")
        for entry in report.out_of_scope:
            lines.append(f"  out of scope: {entry['tool']} failing on {entry['precondition']!r} "
                         f"({entry['samples']} samples): {entry['reason']}")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
