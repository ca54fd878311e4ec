"""What all spec documents share: strict models (unknown keys are errors) and names that are identifiers."""

from __future__ import annotations

from typing import Annotated

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
