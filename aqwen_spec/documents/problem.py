"""``kind: Problem``: a verifiable reasoning problem: sampled parameters, a question, a computed answer, knobs.

Instances are drawn by the compiler (``compiler/problems.py``): the parameters are sampled under a seeded generator,
the question is rendered from them, and the answer is computed by the expression language, never by a model. Knobs
are the difficulty settings the reasoning flywheel turns up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aqwen_spec.documents.base import Document, ExprText, Model, Name, Template

Number = int | float


class Knob(Model):
    """A difficulty setting: a number between ``min`` and ``max`` (or ``range: [min, max]``)."""

    min: Number | None = Field(None, description="The easiest setting.")
    max: Number | None = Field(None, description="The hardest setting.")
    range: tuple[Number, Number] | None = Field(None, description="[min, max] in one key.")
    default: Number | None = Field(None, description="The setting instances are drawn at (default: min).")
    step: Number = Field(1, description="How much one 'harder' step of the flywheel turns the knob up.")
    description: str = ""


class AnswerPython(Model):
    """Escape hatch: the answer computed by a Python function, called with one dict of the knobs and params."""

    python: str = Field(description="'package.module:function' (never imported by lint).")


CheckKind = Literal["exact", "numeric", "set", "list"]


class Problem(Document):
    kind: Literal["Problem"] = "Problem"
    domain: Name | None = Field(None, description="The domain whose bundle carries the problem; none: every domain.")
    knobs: dict[Name, Knob] = Field(default_factory=dict, description="Difficulty knobs, usable as names below.")
    params: dict[Name, ExprText | int | float | bool] = Field(
        default_factory=dict,
        description="Values drawn per instance, in order; sampling functions allowed; each sees the knobs and the "
        "params above it.",
    )
    constraints: list[ExprText] = Field(
        default_factory=list, description="Conditions the params must satisfy; an instance that fails one is redrawn."
    )
    question: Template = Field(description="The question (a Jinja2 template over the params and knobs).")
    answer: ExprText | AnswerPython = Field(
        description="An expression computing the answer from the params and knobs, or {python: 'pkg.module:func'}."
    )
    check: CheckKind = Field("exact", description="How a model's answer is compared with the computed one.")
    tolerance: float | None = Field(None, ge=0, description="check numeric: the largest absolute difference accepted.")
    solution: Template | None = Field(
        None, description="A worked solution (template over params, knobs and 'answer'), the SFT target; ends with "
        "'Answer: ...' added automatically."
    )
