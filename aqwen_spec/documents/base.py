"""What all spec documents share: strict models (unknown keys are errors) and names that are identifiers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64, description="An identifier.")]
ExprText = Annotated[str, Field(description="An expression in the spec expression language.")]
Template = Annotated[str, Field(description="A Jinja2 template (sandboxed).")]


class Model(BaseModel):
    """Base of document models: strict about unknown keys, lenient about nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Document(Model):
    """A top-level spec document. ``kind`` selects the model; ``name`` is unique per kind."""

    kind: str
    name: Name
    description: str = ""


class ResultSpec(Model):
    """How the model sees a call's result and errors (a domain's default; a tool's keys override it one by one)."""

    format: Literal["json", "text", "python"] | None = Field(
        None, description="json (the default): the value as JSON; text: a string result as it is, other values as "
        "JSON; python: what Python's str() gives (None, ['a'], {'k': 1}, True).")
    sort_keys: bool | None = Field(None, description="JSON: sort object keys (default: keys in the value's order).")
    separators: tuple[str, str] | None = Field(
        None, description='JSON: the item and key separators (default: [", ", ": "], or [",", ": "] with indent).')
    indent: int | None = Field(None, ge=0, description="JSON: indent nested values by this many spaces.")
    ensure_ascii: bool | None = Field(None, description="JSON: escape non-ASCII characters (default: false).")
    error: Template | dict[str, Any] | None = Field(
        None, description='How a failed call is shown: a template over message, tool and kind ("Error: {{ message '
        '}}"), or a mapping whose string values are such templates, shown as a result is. Default: '
        '{error: "{{ message }}"}.')


class Clock(Model):
    """The date and time an episode runs at: what ``today()`` and ``now()`` return (never the wall clock)."""

    today: str | None = Field(None, description="An ISO date (2024-05-31); default: the date of now.")
    now: str | None = Field(None, description='An ISO datetime ("2024-05-31T09:00:00"); default: today at 00:00.')
