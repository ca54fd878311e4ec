"""Expression IR to and from JSON, so bundles carry compiled expressions and the runtime needs no parser.

Each node becomes ``{"_": "NodeClass", field: value, ...}`` with its position as ``"@": [line, col]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr import ast as A

_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (*A.EXPR_TYPES, *A.STMT_TYPES, A.Program)}


def to_json(node: Any) -> Any:
    """A JSON-ready value for an IR node (or a tuple, list or constant inside one)."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        out: dict[str, Any] = {"_": type(node).__name__}
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if f.metadata.get("omit_default") and value == f.default:
                continue  # a field added later: older bundles (and their hashes) stay as they were
            if isinstance(value, Pos):
                if f.name == "pos":
                    out["@"] = [value.line, value.col]
                continue
            out[f.name] = to_json(value)
        return out
    if isinstance(node, tuple):
        return [to_json(v) for v in node]
    return node


def from_json(data: Any) -> Any:
    """The IR node for a value written by :func:`to_json`."""
    if isinstance(data, dict) and "_" in data:
        cls = _CLASSES.get(data["_"])
        if cls is None:
            raise ValueError(f"unknown expression node '{data['_']}'")
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "pos":
                line, col = data.get("@", (1, 1))
                kwargs["pos"] = Pos(line, col)
            elif f.name in data:
                kwargs[f.name] = _tuples(from_json(data[f.name]))
        return cls(**kwargs)
    if isinstance(data, list):
        return [from_json(v) for v in data]
    return data


def _tuples(value: Any) -> Any:
    """IR nodes hold tuples where JSON has lists (fields, kwargs, statement bodies, f-string parts)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
