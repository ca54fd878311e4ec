"""The ``aqwen-lint`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from aqwen_spec.diagnostics import Severity


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aqwen-lint",
        description="Check aqwen-spec YAML specs: schema, expressions, templates and cross-file references.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="spec files or folders (default: specs/)")
    parser.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default=None,
        help="output format (default: text; github when GITHUB_ACTIONS is set)",
    )
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema of spec documents and exit")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the lint result cache")
    parser.add_argument(
        "--no-expand",
        action="store_true",
        help="check only the given files, not the whole spec tree they belong to",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.schema:
        from aqwen_spec.jsonschema import spec_json_schema

        sys.stdout.write(json.dumps(spec_json_schema(), indent=2) + "\n")
        return 0

    from aqwen_spec.lint import cache
    from aqwen_spec.lint.reporters import report_github, report_json, report_text, wants_color
    from aqwen_spec.lint.run import lint_roots, resolve_roots

    paths = args.paths or [Path("specs")]
    roots = resolve_roots(paths, expand_to_tree=not args.no_expand)
    use_cache = cache.enabled() and not args.no_cache
    entry = cache.key(roots, Path.cwd()) if use_cache else None
    hit = cache.load(entry) if entry else None
    sources: Any
    if hit is not None:
        diags, sources, n_files = hit
    else:
        result = lint_roots(roots)
        diags, sources, n_files = result.diagnostics, result.sources, result.n_files
        if entry:
            cache.store(entry, diags, sources, n_files)
    fmt = args.format or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
    if fmt == "json":
        report_json(diags, sys.stdout, n_files)
    elif fmt == "github":
        report_github(diags, sys.stdout)
        report_text(diags, sources, sys.stderr, False, n_files)
    else:
        report_text(diags, sources, sys.stdout, wants_color(sys.stdout), n_files)
    if any(d.severity is Severity.ERROR for d in diags):
        return 1
    if args.strict and diags:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
