"""Checking a ``result:`` setting (a domain's default or a tool's override): its error templates and options."""

from __future__ import annotations

from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.documents.base import ResultSpec
from aqwen_spec.results import ERROR_NAMES, JSON_OPTIONS, ResultFormat


def check_result(checker: DocChecker, spec: ResultSpec | None, base: ResultFormat) -> ResultFormat:
    """``base`` with the keys ``spec`` sets put over it; the error template's names are checked (AQ308, AQ309) and
    JSON options that the format never uses are a warning (AQ520)."""
    if spec is None:
        return base
    overrides: dict[str, Any] = {k: getattr(spec, k) for k in spec.model_fields_set if getattr(spec, k) is not None}
    if isinstance(spec.error, str):
        checker.template(spec.error, ("result", "error"), set(ERROR_NAMES))
    elif isinstance(spec.error, dict):
        _check_templates(checker, spec.error, ("result", "error"))
    fmt = base.merged(overrides)
    if fmt.format == "python":
        for option in JSON_OPTIONS:
            if option in overrides:
                checker.report("AQ520", f"'{option}' shapes JSON, but results in format python are shown as Python's "
                               "str() shows them", ("result", option),
                               "drop it, or use format: json (or text)", key=True, warning=True)
    return fmt


def _check_templates(checker: DocChecker, value: Any, ypath: tuple[Any, ...]) -> None:
    if isinstance(value, str):
        checker.template(value, ypath, set(ERROR_NAMES))
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_templates(checker, v, (*ypath, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_templates(checker, v, (*ypath, i))
