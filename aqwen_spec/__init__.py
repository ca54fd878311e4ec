"""aqwen-spec: the spec language of declarative tool-use environments.

Stages: YAML documents (:mod:`aqwen_spec.documents`, loaded with positions by :mod:`aqwen_spec.loader`) are checked
into resolved specs (:mod:`aqwen_spec.check`, :mod:`aqwen_spec.resolved`); expressions live in
:mod:`aqwen_spec.expr`. Heavy libraries are never imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from aqwen_spec.check import CheckResult, check_paths, load_specs
    from aqwen_spec.diagnostics import Diagnostic, SpecError
    from aqwen_spec.resolved import SpecSet

__all__ = ["CheckResult", "Diagnostic", "SpecError", "SpecSet", "__version__", "check_paths", "load_specs"]

_LAZY = {
    "CheckResult": "aqwen_spec.check",
    "check_paths": "aqwen_spec.check",
    "load_specs": "aqwen_spec.check",
    "Diagnostic": "aqwen_spec.diagnostics",
    "SpecError": "aqwen_spec.diagnostics",
    "SpecSet": "aqwen_spec.resolved",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
