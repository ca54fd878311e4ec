"""``python -m aqwen_spec.interop import FILE --domain NAME [--format F] [-o OUT.yaml] [--with-domain]``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from aqwen_spec.interop import FORMATS, InteropError, import_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aqwen_spec.interop",
                                     description="Tool spec skeletons from other tool formats.")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="write Tool spec skeletons (YAML) for the tools in a JSON file",
                         description="Write Tool spec skeletons (YAML) for the tools in FILE: OpenAI function "
                         "calling JSON, an MCP tools/list result, or BFCL function docs (JSON lines).")
    imp.add_argument("file", type=Path, help="the tool list (JSON or JSON lines)")
    imp.add_argument("--domain", required=True, help="the domain the tools belong to (an identifier)")
    imp.add_argument("--format", choices=[*FORMATS, "auto"], default="auto", help="input format (default: auto)")
    imp.add_argument("-o", "--output", type=Path, help="write the YAML here (default: standard output)")
    imp.add_argument("--with-domain", action="store_true",
                     help="start with a Domain skeleton declaring record types for object parameters "
                     "(default: those parameters are typed any, with the record types in a comment)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", args.domain):
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{parser.prog}: error: --domain must be an identifier, not {args.domain!r}\n")
        return 2
    try:
        result = import_file(args.file, args.domain, args.format, records_as_types=args.with_domain)
    except OSError as exc:
        sys.stderr.write(f"{parser.prog}: error: cannot read {args.file}: {exc.strerror or exc}\n")
        return 2
    except (InteropError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"{parser.prog}: error: {args.file}: {exc}\n")
        return 1
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(result.text, encoding="utf-8")
    else:
        sys.stdout.write(result.text)
    n_params = sum(len(t.params) for t in result.tools)
    summary = f"{len(result.tools)} tools, {n_params} parameters"
    if result.records:
        summary += f", {len(result.records)} record types"
    if result.renamed:
        summary += f", {len(result.renamed)} names made identifiers"
    if result.skipped:
        summary += f", {len(result.skipped)} left out ({', '.join(n for n, _ in result.skipped)})"
    sys.stderr.write(f"{summary}{f' -> {args.output}' if args.output else ''}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
