"""``kind: Verifier``: what must hold at the end of an episode, with weights for partial credit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from aqwen_spec.documents.base import Document, Name

CHECK_KEYS = ["assert", "require", "forbid", "tells_user", "same_final_state_as_gold", "same_outcome_as_gold"]
CHECK_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "enum": ["same_final_state_as_gold", "same_outcome_as_gold"]},
        {
            "type": "object",
            "properties": {
                "assert": {"type": "string", "description": "An expression over the final state that must be true."},
                "require": {"type": "string", "description": "A tool call that must happen: tool or tool(args)."},
                "forbid": {"type": "string", "description": "A tool call that must not happen."},
                "tells_user": {"type": "string", "description": "An expression whose value the agent must say."},
                "same_final_state_as_gold": {"type": "boolean"},
                "same_outcome_as_gold": {
                    "type": "boolean",
                    "description": "The episode ends as the gold does: done, refused or transferred.",
                },
                "when": {"type": "string", "description": "Apply only when this holds (e.g. branch == 'refuse')."},
                "weight": {"type": "number", "minimum": 0},
                "gate": {"type": "boolean", "description": "A policy gate: failing it makes the reward 0."},
                "name": {"type": "string"},
            },
            "additionalProperties": False,
        },
    ]
}


class Verifier(Document):
    kind: Literal["Verifier"] = "Verifier"
    for_: Name = Field(alias="for", description="The workflow this verifier scores.")
    checks: list[Annotated[Any, WithJsonSchema(CHECK_SCHEMA)]] = Field(min_length=1)
    success_threshold: float = Field(1.0, ge=0, le=1, description="Reward at or above which an episode succeeds.")
