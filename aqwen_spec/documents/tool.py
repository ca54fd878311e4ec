"""``kind: Tool``: typed parameters, preconditions, effects, return value, and how it is implemented."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from aqwen_spec.documents.base import Document, ExprText, Model, Name, ResultSpec, Template


class Param(Model):
    """A tool parameter (exported to the model as JSON Schema)."""

    type: str | dict[str, Any]
    description: str = ""
    required: bool | None = Field(None, description="Default: required unless optional (T?) or defaulted.")
    default: Any = None


class Precondition(Model):
    """A condition that must hold before the call; otherwise the model sees ``error``."""

    when: ExprText
    error: Template


class Implementation(Model):
    """How a tool runs. Declarative (the default) needs none of these."""

    python: str | None = Field(None, description="Escape hatch: 'package.module:function' (never run by lint).")
    sql: str | None = Field(None, description="A SQL query against the SQLite view of the state; :param binds.")


class Tool(Document):
    kind: Literal["Tool"] = "Tool"
    domain: Name
    access: Literal["read", "write"] | None = Field(None, description="Default: write if it has effects.")
    params: dict[Name, str | Param] = Field(default_factory=dict)
    let: dict[Name, ExprText] = Field(
        default_factory=dict,
        description="Bindings computed once, in order, before the preconditions; seen by requires, effects, returns.",
    )
    requires: list[Precondition] = Field(default_factory=list)
    effects: str | list[str] | None = Field(None, description="A statement program run all-or-nothing.")
    returns: ExprText | None = None
    implementation: Implementation | None = None
    result: ResultSpec | None = Field(
        None, description="How the model sees this tool's result and errors: the domain's result: with these keys "
        "put over it.")
