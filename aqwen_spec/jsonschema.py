"""The JSON Schema of spec documents, for editors (VS Code's YAML extension) and other tools.

``aqwen-lint --schema > aqwen-spec.schema.json`` and point ``yaml.schemas`` at it: editors then complete keys, show
descriptions and flag unknown keys while a domain expert types.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from aqwen_spec.documents import KINDS
from aqwen_spec.documents.workflow import NODE_SCHEMA


def spec_json_schema() -> dict[str, Any]:
    union = Annotated[Union[tuple(KINDS.values())], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
    schema = TypeAdapter(union).json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    defs["Node"] = NODE_SCHEMA
    schema = _swap_refs(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "aqwen-spec document"
    schema["description"] = "One YAML document of an aqwen-spec spec file; 'kind' selects its shape."
    return schema


def _swap_refs(node: Any) -> Any:
    if isinstance(node, dict):
        if "x-aqwen-ref" in node:
            return {"$ref": f"#/$defs/{node['x-aqwen-ref']}"}
        return {k: _swap_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_swap_refs(v) for v in node]
    return node
