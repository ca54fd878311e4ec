"""``kind: Persona``: who the simulated user is, how they talk, what they know, which tactics they use."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aqwen_spec.documents.base import Document, Name, Template


class Persona(Document):
    kind: Literal["Persona"] = "Persona"
    role: str = Field("", description="Who the user is, e.g. 'shift lead on line 3'.")
    voice: str = Field("", description="How they talk.")
    opening: Template = Field("", description="How they open the conversation (a Jinja2 template).")
    knows: list[str] = Field(default_factory=list, description="Facts the user knows beyond the task's slots.")
    tactics: list[Name] = Field(default_factory=list, description="Adversarial tactics (see the tactic catalog).")
    domains: list[Name] = Field(default_factory=list, description="Domains this persona fits; empty means all.")
    pressure: dict[Name, str | list[str]] = Field(
        default_factory=dict,
        description="What this user says for a spoken tactic (tactic -> a line or lines); the domain's lines serve "
                    "where the persona has none.")
