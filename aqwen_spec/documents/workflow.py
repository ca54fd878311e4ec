"""``kind: Workflow``: a behaviour-tree template from which tasks are drawn.

The tree is validated by :mod:`aqwen_spec.tree` (by hand, for precise positions); here it is kept as data with a
JSON Schema for editors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from aqwen_spec.documents.base import Clock, Document, ExprText, Model, Name, Template

_ACTION_KEYS = ["call", "ask_user", "inform_user", "confirm", "refuse", "transfer"]
# pydantic cannot emit a $ref to a definition it does not own: mark the spot, jsonschema.py swaps in the $ref
NODE_REF: dict[str, Any] = {"x-aqwen-ref": "Node", "description": "A behaviour-tree node."}
NODE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "description": "An action as a call: tool(arg=expr), refuse(reason=...), ..."},
        {
            "type": "object",
            "properties": {
                "sequence": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                "select": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "when": {"type": "string"},
                            "then": {},
                            "otherwise": {},
                            "personas": {"type": "array", "items": {"type": "string"}},
                            "scenario": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
                **{key: {} for key in _ACTION_KEYS},
                "as": {"type": "string"},
            },
            "additionalProperties": False,
            "minProperties": 1,
        },
        {"type": "array", "items": {"$ref": "#/$defs/Node"}},
    ],
}


class OutOfScope(Model):
    """A case the workflow deliberately leaves out: samples where a call of ``tool`` fails on the precondition
    whose error contains ``precondition`` are dropped instead of being an uncovered case (AQ607)."""

    tool: Name = Field(description="The tool whose call fails.")
    precondition: str = Field(description="Text of the precondition's error, as written in the tool.")
    reason: str = Field(min_length=1, description="Why the case is out of scope (for reviewers).")


class Workflow(Document):
    kind: Literal["Workflow"] = "Workflow"
    domain: Name
    personas: list[Name] = Field(default_factory=list, description="Personas to draw; empty means all that fit.")
    slots: dict[Name, ExprText] = Field(default_factory=dict, description="Values drawn from the initial state.")
    tree: Annotated[Any, WithJsonSchema(NODE_REF)]
    instruction: Template = Field(description="What the simulated user wants (a Jinja2 template).")
    out_of_scope: list[OutOfScope] = Field(
        default_factory=list,
        description="Cases no branch handles on purpose: a tool's precondition failing is dropped, not an error.")
    clock: Clock | None = Field(None, description="The date and time its tasks run at; default: the domain's.")
