"""Tool spec skeletons, as commented YAML, from :class:`~aqwen_spec.interop.formats.FunctionDoc` s.

A skeleton has what the source format knows (name, description, typed parameters with descriptions and defaults)
and ``TODO(import)`` comments for what it does not: preconditions, effects and the return value, which need the
domain's state. The YAML lints clean next to a Domain document of the same name (unused-tool warnings aside).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import Any

import yaml

from aqwen_spec.interop.formats import FunctionDoc
from aqwen_spec.interop.schema import (
    KEYWORDS,
    Mapper,
    RecordDecl,
    TypeForm,
    default_of,
    description_of,
    pascal,
    sanitize_name,
)
from aqwen_spec.types import ANY, OptionalT, Type

TRANSFER_TOOL = "transfer_to_human"
"""Added to every bundle by the compiler; an imported copy of it is skipped."""
TODO = "TODO(import)"


@dataclass
class ParamSkeleton:
    name: str
    original: str
    form: TypeForm
    type: Type
    required: bool
    description: str = ""
    default: Any = None
    has_default: bool = False
    required_key: bool | None = None
    """``required:`` as written (only where the default rule would get it wrong)."""
    notes: list[str] = field(default_factory=list)

    def spec(self) -> Any:
        # a mapping in a parameter's place is its long form, so a type written as a mapping needs ``type:``
        if isinstance(self.form, str) and not (self.description or self.has_default or self.required_key is not None):
            return self.form
        out: dict[str, Any] = {"type": _flow(self.form)}
        if self.description:
            out["description"] = self.description
        if self.required_key is not None:
            out["required"] = self.required_key
        if self.has_default:
            out["default"] = self.default
        return out


@dataclass
class ToolSkeleton:
    name: str
    original: str
    description: str
    params: dict[str, ParamSkeleton]
    source: FunctionDoc
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    """What an import made: the YAML text, the tools, record types, and the tools left out (name, why)."""

    text: str
    tools: list[ToolSkeleton]
    records: dict[str, RecordDecl]
    skipped: list[tuple[str, str]]

    @property
    def renamed(self) -> dict[str, str]:
        """Original names that were not identifiers, tools and parameters (``tool.param``), to their new names."""
        out = {t.original: t.name for t in self.tools if t.original != t.name}
        for t in self.tools:
            out.update({f"{t.original}.{p.original}": f"{t.name}.{p.name}"
                        for p in t.params.values() if p.original != p.name})
        return out


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out = f"{name[:60]}_{n}"
        n += 1
    taken.add(out)
    return out


def _params(doc: FunctionDoc, tool_name: str, mapper: Mapper) -> dict[str, ParamSkeleton]:
    schema = doc.parameters
    found = schema.get("properties")
    props: dict[str, Any] = found if isinstance(found, dict) else {}
    listed = schema.get("required")
    required = {str(r) for r in listed} if isinstance(listed, list) else set()
    out: dict[str, ParamSkeleton] = {}
    taken: set[str] = set()
    for raw, sub in props.items():
        name = _unique(sanitize_name(str(raw), KEYWORDS), taken)
        notes = [f"original name '{raw}'"] if name != raw else []
        mapped = mapper.map(sub, f"{pascal(tool_name)}{pascal(name)}")
        notes += mapped.notes
        form, ptype = mapped.form, mapped.type
        default, has_default = default_of(sub, ptype, notes)
        required_key: bool | None = None
        if raw in required:
            if isinstance(ptype, OptionalT) or has_default:
                required_key = True
        elif not has_default:
            if ptype == ANY:
                required_key = False
            elif not isinstance(ptype, OptionalT):
                form, ptype = (f"{form}?" if isinstance(form, str) else {"optional": form}), OptionalT(ptype)
        is_required = required_key if required_key is not None else not (isinstance(ptype, OptionalT) or has_default)
        out[name] = ParamSkeleton(name, str(raw), form, ptype, is_required, description_of(sub), default,
                                  has_default, required_key, notes)
    return out


def build_tools(docs: list[FunctionDoc], records_as_types: bool = False
                ) -> tuple[list[ToolSkeleton], dict[str, RecordDecl], list[tuple[str, str]]]:
    mapper = Mapper(records_as_types)
    tools: list[ToolSkeleton] = []
    skipped: list[tuple[str, str]] = []
    taken: set[str] = set()
    for doc in docs:
        if doc.name == TRANSFER_TOOL:
            skipped.append((doc.name, "the compiler adds this tool to every bundle"))
            continue
        name = _unique(sanitize_name(doc.name, KEYWORDS), taken)
        notes = [f"original name '{doc.name}'"] if name != doc.name else []
        if doc.parameters.get("type") not in (None, "object", "dict"):
            notes.append(f"the parameters schema is a '{doc.parameters.get('type')}', not an object")
        tools.append(ToolSkeleton(name, doc.name, _clean_text(doc.description), _params(doc, name, mapper), doc,
                                  notes))
    return tools, mapper.records, skipped


def _clean_text(text: str) -> str:
    lines = [line.replace("\t", "    ").rstrip() for line in text.strip().splitlines()]
    return "\n".join(lines)


class _Dumper(yaml.SafeDumper):
    """Mappings in block style, lists in flow style (``enum: [low, high]``)."""


def _flow_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


class _FlowDict(dict[str, Any]):
    """A type written as a mapping: kept on one line (``type: {optional: {list: {enum: [a, b]}}}``)."""


def _flow_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


def _flow(form: Any) -> Any:
    return _FlowDict({k: _flow(v) for k, v in form.items()}) if isinstance(form, dict) else form


_Dumper.add_representer(list, _flow_list)
_Dumper.add_representer(_FlowDict, _flow_dict)


def _dump(value: Any, indent: int = 0) -> str:
    text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=110)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))


def _comment(lines: list[str], indent: int = 0, width: int = 116) -> str:
    pad = " " * indent
    out: list[str] = []
    for line in lines:
        wrapped = textwrap.wrap(line, width - indent - 2, break_long_words=False, break_on_hyphens=False) or [""]
        out.extend(f"{pad}# {w}".rstrip() for w in wrapped)
    return "".join(line + "\n" for line in out)


def _schema_summary(schema: dict[str, Any]) -> str:
    props = schema.get("properties")
    if isinstance(props, dict) and props:
        mapper = Mapper()
        parts = []
        for name, sub in props.items():
            form = mapper.map(sub, "Result").form
            parts.append(f"{name}: {form if isinstance(form, str) else json.dumps(form)}")
        return "{" + ", ".join(parts) + "}"
    return json.dumps(schema)[:300]


def _types_block(records: dict[str, RecordDecl], indent: int) -> str:
    out = []
    for decl in records.values():
        out.append(" " * indent + f"{decl.name}:\n")
        for fname, spec in decl.fields.items():
            notes = decl.comments.get(fname, [])
            if notes:
                out.append(_comment([f"{TODO}: {n}" for n in notes], indent + 2))
            long_form = isinstance(spec, dict) and "type" in spec
            spec = {**spec, "type": _flow(spec["type"])} if long_form else _flow(spec)
            out.append(_dump({fname: spec}, indent + 2))
    return "".join(out)


def _tool_text(tool: ToolSkeleton, domain: str) -> str:
    out = [_comment([f"{TODO}: {n}" for n in tool.notes])]
    out.append(_dump({"kind": "Tool", "name": tool.name, "domain": domain}))
    if tool.description:
        out.append(_dump({"description": tool.description}))
    else:
        out.append(_comment([f"{TODO}: the source has no description; the agent sees this one"]))
        out.append("description: \"\"\n")
    if tool.source.read_only is not None:
        out.append(_comment(["from the MCP annotation readOnlyHint"]))
        out.append(_dump({"access": "read" if tool.source.read_only else "write"}))
    if tool.params:
        out.append("params:\n")
        for p in tool.params.values():
            if p.notes:
                out.append(_comment([f"{TODO}: {n}" for n in p.notes], 2))
            out.append(_dump({p.name: p.spec()}, 2))
    hints = [
        f"{TODO}: preconditions: what must hold before the call, each with the error the agent sees, e.g.",
        "requires:",
        "  - when: <an expression over the state and the parameters>",
        "    error: \"<what went wrong, may use {{ parameters }}>\"",
        f"{TODO}: effects: what the call changes in the state (leave out for a lookup, and set access: read)",
        "effects: |",
        "  <statements, e.g. orders[order_id].status = \"closed\">",
        f"{TODO}: returns: what the agent sees after a successful call",
        "returns: <an expression, e.g. orders[order_id]>",
    ]
    if tool.source.returns:
        hints.append(f"the source documents the result as {_schema_summary(tool.source.returns)}")
    out.append(_comment(hints))
    return "".join(out)


def render(tools: list[ToolSkeleton], records: dict[str, RecordDecl], skipped: list[tuple[str, str]], domain: str,
           *, source: str = "", fmt: str = "", records_as_types: bool = False) -> str:
    head = [f"Tool skeletons for the domain '{domain}', imported from {source or 'a tool list'}"
            + (f" ({fmt} format)" if fmt else "") + " by `python -m aqwen_spec.interop import`.",
            f"Complete every {TODO}: the source says what the tools take, not what they do to the domain's "
            "state. Then run aqwen-lint on the spec folder."]
    head += [f"Left out: {name}: {why}" for name, why in skipped]
    parts = [_comment(head)]
    if records and not records_as_types:
        block = _types_block(records, 2)
        parts.append(_comment(["Record types for the object parameters typed `any` below. To use them, add them "
                               "to the domain's types: and change those parameters' type to the record's name:"]))
        parts.append("".join(f"# {line}\n".replace(" \n", "\n") for line in ("types:\n" + block).splitlines()))
    docs = []
    if records_as_types:
        domain_doc = [_dump({"kind": "Domain", "name": domain}),
                      _comment([f"{TODO}: what the domain is, for people"]), "description: \"\"\n"]
        if records:
            domain_doc += ["types:\n", _types_block(records, 2)]
        domain_doc += [_comment([f"{TODO}: the state the tools read and change (field: type)"]), "state: {}\n",
                       _comment([f"{TODO}: the rules the agent must follow"]), "policy: \"\"\n"]
        docs.append("".join(domain_doc))
    docs += [_tool_text(t, domain) for t in tools]
    return "".join(parts) + "---\n".join(docs)


def import_functions(docs: list[FunctionDoc], domain: str, *, source: str = "", fmt: str = "",
                     records_as_types: bool = False) -> ImportResult:
    """Skeletons for ``docs`` in domain ``domain``. With ``records_as_types`` the text starts with a Domain
    document declaring the record types of object parameters (which the parameters then use)."""
    tools, records, skipped = build_tools(docs, records_as_types)
    text = render(tools, records, skipped, domain, source=source, fmt=fmt, records_as_types=records_as_types)
    return ImportResult(text, tools, records, skipped)
