"""Document models: what a spec file says, validated by pydantic (stage 1 of the pipeline).

:data:`KINDS` maps each ``kind:`` to its model. Adding a kind is one model module and one entry here.
"""

from __future__ import annotations

from aqwen_spec.documents.base import Document, Model
from aqwen_spec.documents.domain import Domain
from aqwen_spec.documents.persona import Persona
from aqwen_spec.documents.pipeline import Pipeline
from aqwen_spec.documents.problem import Problem
from aqwen_spec.documents.tool import Tool
from aqwen_spec.documents.verifier import Verifier
from aqwen_spec.documents.workflow import Workflow

KINDS: dict[str, type[Document]] = {
    "Domain": Domain,
    "Tool": Tool,
    "Persona": Persona,
    "Workflow": Workflow,
    "Verifier": Verifier,
    "Pipeline": Pipeline,
    "Problem": Problem,
}

__all__ = ["KINDS", "Document", "Domain", "Model", "Persona", "Pipeline", "Problem", "Tool", "Verifier", "Workflow"]
