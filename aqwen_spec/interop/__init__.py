"""Interoperability: Tool spec skeletons from OpenAI function-calling JSON, MCP ``tools/list`` results and BFCL
function docs (``python -m aqwen_spec.interop import FILE --domain NAME``). See docs/interop.md."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aqwen_spec.interop.formats import FORMATS, Format, FunctionDoc, InteropError, load_functions, read_functions
from aqwen_spec.interop.skeleton import ImportResult, ParamSkeleton, ToolSkeleton, import_functions

__all__ = [
    "FORMATS",
    "Format",
    "FunctionDoc",
    "ImportResult",
    "InteropError",
    "ParamSkeleton",
    "ToolSkeleton",
    "import_file",
    "import_functions",
    "import_text",
    "load_functions",
    "read_functions",
]


def import_text(text: str, domain: str, fmt: Format | Literal["auto"] = "auto", *, source: str = "",
                records_as_types: bool = False) -> ImportResult:
    """Tool skeletons (YAML) for the tools in ``text`` (JSON or JSON lines)."""
    found, docs = load_functions(text, fmt)
    return import_functions(docs, domain, source=source, fmt=found, records_as_types=records_as_types)


def import_file(path: Path | str, domain: str, fmt: Format | Literal["auto"] = "auto", *,
                records_as_types: bool = False) -> ImportResult:
    """Tool skeletons (YAML) for the tools in the file at ``path``."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    return import_text(text, domain, fmt, source=file.name, records_as_types=records_as_types)
