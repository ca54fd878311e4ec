"""What the model sees of a tool call: the one place a result or an error becomes text.

A domain sets the default (``result:``), a tool may override it key by key. Every path that shows a call's outcome
to a model goes through :func:`render_result` and :func:`render_error`: the environment's step, the served
environment and its MCP tools, the gold trajectories written into bundles (and the SFT data made from them).

The defaults reproduce what aqwen-spec always showed: results as JSON (``ensure_ascii`` off, ``", "`` and ``": "``
separators, keys in the order the value has them) and errors as ``{"error": message}``.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["json", "text", "python"]
FORMATS: tuple[str, ...] = ("json", "text", "python")
JSON_OPTIONS: tuple[str, ...] = ("sort_keys", "separators", "indent", "ensure_ascii")
"""The keys of ``result:`` that shape JSON (used by ``json``, and by ``text`` for a value that is not a string)."""
ERROR_NAMES = frozenset({"message", "tool", "kind"})
"""The names an error template may use: the error message, the tool called, and why it failed (``precondition``,
``effect``, ``bad_arguments``, ``unknown_tool``, ``implementation``, ``spec_error``, ``episode``)."""


@dataclass(frozen=True, eq=True)
class ResultFormat:
    """How results and errors are shown to the model (see docs/spec-language.md, "Results and errors")."""

    format: Format = "json"
    sort_keys: bool = False
    separators: tuple[str, str] | None = None
    """``None``: Python's own choice, ``(", ", ": ")``, or ``(",", ": ")`` with an ``indent``."""
    indent: int | None = None
    ensure_ascii: bool = False
    error: str | Mapping[str, Any] | None = field(default=None, hash=False)
    """A template over ``message``, ``tool``, ``kind`` shown as it renders, or a mapping whose string values are such
    templates, shown as a result is; ``None`` for ``{"error": message}``."""

    def to_json(self) -> dict[str, Any]:
        """The keys that differ from the default (an empty dict for the default: bundles stay as they were)."""
        out: dict[str, Any] = {}
        for key, default in _DEFAULTS.items():
            value = getattr(self, key)
            if value != default:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ResultFormat:
        if not data:
            return DEFAULT
        values = dict(data)
        if values.get("separators") is not None:
            values["separators"] = tuple(values["separators"])
        return DEFAULT.merged({k: v for k, v in values.items() if k in _DEFAULTS})

    def merged(self, overrides: Mapping[str, Any]) -> ResultFormat:
        """This format with ``overrides`` (a tool's own ``result:`` keys) put over it."""
        if not overrides:
            return self
        values = {k: getattr(self, k) for k in _DEFAULTS}
        values.update(overrides)
        if values.get("separators") is not None:
            values["separators"] = tuple(values["separators"])
        merged = ResultFormat(**values)
        return DEFAULT if merged == DEFAULT else merged


_DEFAULTS: dict[str, Any] = {"format": "json", "sort_keys": False, "separators": None, "indent": None,
                             "ensure_ascii": False, "error": None}
DEFAULT = ResultFormat()
TRANSFERRED: Mapping[str, str] = {"status": "transferred"}
"""The result of the built-in transfer tool."""


def one_shot(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode`` without its Python steps where the C encoder is there (and no indent): the same C encoder
    ``encode`` makes for every call (through ``iterencode``), made here from the encoder's own settings, with fresh
    circular-reference markers each call. The text is ``encoder.encode``'s, errors included."""
    make = getattr(json.encoder, "c_make_encoder", None)  # the C encoder, where json has it
    if make is None or encoder.indent is not None:
        return encoder.encode
    strings = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
    settings = (encoder.default, strings, encoder.indent, encoder.key_separator, encoder.item_separator,
                encoder.sort_keys, encoder.skipkeys, encoder.allow_nan)
    circular = encoder.check_circular

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return strings(value)
        return "".join(make({} if circular else None, *settings)(value, 0))

    return encode


_DEFAULT_JSON = one_shot(json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")))
"""``json.dumps(value, ensure_ascii=False, separators=(", ", ": "))``, its encoder made once."""


def render_json(value: Any, fmt: ResultFormat = DEFAULT) -> str:
    """``value`` as JSON, shaped by ``fmt``'s JSON options."""
    if fmt is DEFAULT:
        return _DEFAULT_JSON(value)
    separators = fmt.separators or ((",", ": ") if fmt.indent is not None else (", ", ": "))
    return json.dumps(value, ensure_ascii=fmt.ensure_ascii, separators=separators, indent=fmt.indent,
                      sort_keys=fmt.sort_keys)


def render_result(value: Any, fmt: ResultFormat = DEFAULT) -> str:
    """A successful call's value as the model sees it.

    ``json``: JSON. ``text``: a string as it is, any other value as JSON. ``python``: what Python's ``str()``
    gives (``None``, ``['a']``, ``{'k': 1}``, ``True``; a string as it is), as a Python tool's result is printed.
    """
    if fmt.format == "python":
        return str(value)
    if fmt.format == "text" and type(value) is str:
        return value
    return render_json(value, fmt)


def render_error(message: str, fmt: ResultFormat = DEFAULT, tool: str = "", kind: str = "") -> str:
    """A failed call as the model sees it: ``fmt.error`` rendered with ``message``, ``tool`` and ``kind``."""
    if fmt.error is None:
        return render_result({"error": message}, fmt) if fmt.format == "python" else \
            render_json({"error": message}, fmt)
    context = {"message": message, "tool": tool, "kind": kind}
    if isinstance(fmt.error, str):
        return _fill(fmt.error, context, message)
    value = _fill_all(fmt.error, context, message)
    return render_result(value, fmt) if fmt.format == "python" else render_json(value, fmt)


def error_text(fmt: ResultFormat, tool: str, kind: str) -> Callable[[str], str]:
    """``render_error(message, fmt, tool, kind)`` as a function of the message alone, made once (for a tool's
    generated step function): a plain template of ``message``, ``tool`` and ``kind`` is filled without Jinja."""
    if fmt.error is None and fmt.format != "python":
        return lambda message: render_json({"error": message}, fmt)
    affixes = error_affixes(fmt, tool, kind)
    if affixes is not None:  # the usual "Error: {{ message }}"
        before, after = affixes
        return lambda message: before + message + after
    pieces = _error_pieces(fmt, tool, kind)
    if pieces is not None:
        def fill(message: str) -> str:
            return "".join([message if p is None else p for p in pieces])

        return fill
    return lambda message: render_error(message, fmt, tool, kind)


def error_affixes(fmt: ResultFormat, tool: str, kind: str) -> tuple[str, str] | None:
    """``(before, after)`` where ``render_error(message, fmt, tool, kind)`` is ``before + message + after`` for every
    message (an error template of plain tags naming ``message`` once); ``None`` for any other error format."""
    pieces = _error_pieces(fmt, tool, kind)
    if pieces is None or pieces.count(None) != 1:
        return None
    at = pieces.index(None)
    return "".join(pieces[:at]), "".join(pieces[at + 1:])  # type: ignore[arg-type]


def _error_pieces(fmt: ResultFormat, tool: str, kind: str) -> list[str | None] | None:
    """A plain error template as its text pieces, ``None`` where the message goes (``None`` for any other)."""
    if not isinstance(fmt.error, str):
        return None
    from aqwen_spec.templates import _plain_parts

    parts = _plain_parts(fmt.error) if "{" in fmt.error else (fmt.error,)
    known = {"tool": tool, "kind": kind}
    if parts is None or not all(isinstance(p, str) or (not p[1] and p[0] in ERROR_NAMES) for p in parts):
        return None
    return [p if isinstance(p, str) else known.get(p[0]) for p in parts]


def _fill_all(value: Any, context: dict[str, Any], message: str) -> Any:
    if isinstance(value, str):
        return _fill(value, context, message)
    if isinstance(value, Mapping):
        return {k: _fill_all(v, context, message) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_all(v, context, message) for v in value]
    return value


def _fill(template: str, context: dict[str, Any], message: str) -> str:
    from aqwen_spec.templates import render

    try:
        return render(template, context)
    except Exception:  # lint checks the names; a template that still cannot render shows the message itself
        return message
