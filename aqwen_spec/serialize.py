"""Checked specs to and from JSON: what a bundle carries so the runtime never reads YAML or parses expressions.

Types are written by name where they are named (``{"ref": "Machine"}``) with one table of definitions per domain;
expressions use :mod:`aqwen_spec.expr.serialize`.
"""

from __future__ import annotations

from typing import Any

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr.library import FunctionDef, Library
from aqwen_spec.expr.serialize import from_json as expr_from_json
from aqwen_spec.expr.serialize import to_json as expr_to_json
from aqwen_spec.resolved import (
    CheckIR,
    FullTextIR,
    Origin,
    ParamIR,
    PreconditionIR,
    RecordRuleIR,
    ResolvedDomain,
    ResolvedPersona,
    ResolvedTool,
    ResolvedVerifier,
    SqlTable,
)
from aqwen_spec.results import ResultFormat
from aqwen_spec.types import ANY, INT, EnumT, ListT, MapT, OptionalT, Prim, RecordT, SetT, Type, VariantT

# --- types ---------------------------------------------------------------------------------------------------


def type_to_json(t: Type) -> Any:
    if isinstance(t, Prim):
        return t.name
    if isinstance(t, EnumT):
        return {"enum": list(t.values)}
    if isinstance(t, ListT):
        return {"list": type_to_json(t.item)}
    if isinstance(t, MapT):
        return {"int_map": type_to_json(t.value)} if t.key == INT else {"map": type_to_json(t.value)}
    if isinstance(t, SetT):
        return {"set": type_to_json(t.item)}
    if isinstance(t, OptionalT):
        return {"optional": type_to_json(t.inner)}
    if isinstance(t, (RecordT, VariantT)):
        return {"ref": t.name}
    raise TypeError(f"cannot serialise type {t!r}")


def _record_def(r: RecordT) -> dict[str, Any]:
    # field order is kept (lists of pairs survive sort_keys): records are built, and rendered, in this order
    return {"fields": [[k, type_to_json(v)] for k, v in r.fields.items()], "defaults": dict(r.defaults)}


def types_to_json(types: dict[str, Type], state: RecordT) -> dict[str, Any]:
    """The table of named types of a domain, the state record included (as ``State``)."""
    out: dict[str, Any] = {}
    for name, t in {**types, "State": state}.items():
        if isinstance(t, RecordT):
            out[name] = {"record": _record_def(t)}
        elif isinstance(t, VariantT):
            out[name] = {"variant": {c: _record_def(r) for c, r in t.cases.items()}, "tag": t.tag}
        else:
            out[name] = {"alias": type_to_json(t)}
    return out


def types_from_json(table: dict[str, Any]) -> dict[str, Type]:
    named: dict[str, Type] = {}
    for name, d in table.items():
        if "record" in d:
            named[name] = RecordT(name)
        elif "variant" in d:
            named[name] = VariantT(name, d.get("tag", "kind"))
    for name, d in table.items():
        if "record" in d:
            _fill(named[name], d["record"], named)  # type: ignore[arg-type]
        elif "variant" in d:
            variant = named[name]
            assert isinstance(variant, VariantT)
            for case, rd in d["variant"].items():
                record = RecordT(f"{name}.{case}")
                _fill(record, rd, named)
                variant.cases[case] = record
        else:
            named[name] = type_from_json(d["alias"], named)
    return named


def _fill(record: RecordT, d: dict[str, Any], named: dict[str, Type]) -> None:
    record.fields.update({k: type_from_json(v, named) for k, v in d["fields"]})
    record.defaults.update(d.get("defaults", {}))


def type_from_json(d: Any, named: dict[str, Type]) -> Type:
    if isinstance(d, str):
        return Prim(d)
    if "enum" in d:
        return EnumT(tuple(d["enum"]))
    if "list" in d:
        return ListT(type_from_json(d["list"], named))
    if "map" in d:
        return MapT(type_from_json(d["map"], named))
    if "int_map" in d:
        return MapT(type_from_json(d["int_map"], named), INT)
    if "set" in d:
        return SetT(type_from_json(d["set"], named))
    if "optional" in d:
        return OptionalT(type_from_json(d["optional"], named))
    if "ref" in d:
        return named.get(d["ref"], ANY)
    raise ValueError(f"not a serialised type: {d!r}")


# --- definitions ---------------------------------------------------------------------------------------------


def _origin(o: Origin) -> list[Any]:
    return [o.path, o.pos.line, o.pos.col]


def _origin_from(d: list[Any] | None) -> Origin:
    return Origin(d[0], Pos(d[1], d[2])) if d else Origin("<bundle>", Pos(1, 1))


def _expr(e: Any) -> Any:
    return None if e is None else expr_to_json(e)


def _fulltext(indexes: tuple[FullTextIR, ...]) -> dict[str, Any]:
    """``{"fulltext": [...]}`` with full-text indexes; nothing without (other bundles stay byte for byte the same)."""
    return {"fulltext": [[i.field, list(i.columns), i.tokenizer] for i in indexes]} if indexes else {}


def _fulltext_from(d: dict[str, Any]) -> tuple[FullTextIR, ...]:
    return tuple(FullTextIR(f, tuple(cols), tok) for f, cols, tok in d.get("fulltext", ()))


def _tables(tables: tuple[SqlTable, ...]) -> dict[str, Any]:
    """``{"tables": [...]}`` for a ``sql`` tool; nothing for the others (their bundles stay byte for byte the same)."""
    return {"tables": [[name, list(cols)] for name, cols in tables]} if tables else {}


def _tables_from(d: dict[str, Any]) -> tuple[SqlTable, ...]:
    return tuple((name, tuple(cols)) for name, cols in d.get("tables", ()))


def _result(fmt: ResultFormat) -> dict[str, Any]:
    """``{"result": ...}`` for a format other than the default; nothing otherwise (bundles stay the same)."""
    data = fmt.to_json()
    return {"result": data} if data else {}
def library_to_json(lib: Library) -> dict[str, Any]:
    """``{"functions": ..., "constants": ...}`` for a domain that declares them; nothing for one that does not (its
    bundle stays byte for byte the same). Functions keep their parameters in order."""
    out: dict[str, Any] = {}
    if lib.functions:
        out["functions"] = {
            n: {"params": [[p, type_to_json(t)] for p, t in f.params.items()], "returns": type_to_json(f.returns),
                "body": expr_to_json(f.body), "@": [f.pos.line, f.pos.col]}
            for n, f in lib.functions.items()
        }
    if lib.constants:
        out["constants"] = {n: {"type": type_to_json(lib.constant_types[n]), "value": v}
                            for n, v in lib.constants.items()}
    return out


def library_from_json(d: dict[str, Any], named: dict[str, Type]) -> Library:
    lib = Library()
    for n, f in d.get("functions", {}).items():
        line, col = f.get("@", (1, 1))
        lib.functions[n] = FunctionDef(n, {p: type_from_json(t, named) for p, t in f["params"]},
                                       expr_from_json(f["body"]), type_from_json(f["returns"], named), True,
                                       Pos(line, col))
    for n, c in d.get("constants", {}).items():
        lib.constants[n] = c["value"]
        lib.constant_types[n] = type_from_json(c["type"], named)
    lib.freeze()
    return lib


def domain_to_json(d: ResolvedDomain) -> dict[str, Any]:
    return {
        "name": d.name,
        "description": d.description,
        "types": types_to_json(d.types, d.state),
        "policy": d.policy,
        "system_prompt": d.system_prompt,
        "initial_data": d.initial_data,
        "generate": [
            [k, {
                "count": r.count if isinstance(r.count, int) else _expr(r.count),
                "key": _expr(r.key),
                "fields": [[f, _expr(v) if not isinstance(v, (int, float, bool, str, type(None))) else {"const": v}]
                           for f, v in r.fields.items()],
            }]
            for k, r in d.generate.items()
        ],
        "origin": _origin(d.origin),
        **_fulltext(d.fulltext),
        **_result(d.result),
        **({"clock": d.clock} if d.clock else {}),
        **({"random": {"seed": d.random_seed}} if d.random_seed is not None else {}),
        **({"transfers": d.transfers} if d.transfers else {}),
        **library_to_json(d.library),
    }


def domain_from_json(d: dict[str, Any]) -> ResolvedDomain:
    named = types_from_json(d["types"])
    state = named.pop("State")
    assert isinstance(state, RecordT)
    generate = {}
    for k, r in d["generate"]:
        count = r["count"] if isinstance(r["count"], int) else expr_from_json(r["count"])
        fields = {f: v["const"] if isinstance(v, dict) and "const" in v else expr_from_json(v)
                  for f, v in r["fields"]}
        generate[k] = RecordRuleIR(count, expr_from_json(r["key"]) if r["key"] else None, fields)
    return ResolvedDomain(d["name"], d["description"], named, state, d["policy"], d["system_prompt"],
                          d["initial_data"], generate, _origin_from(d.get("origin")), fulltext=_fulltext_from(d),
                          result=ResultFormat.from_json(d.get("result")), clock=d.get("clock"),
                          random_seed=d["random"]["seed"] if "random" in d else None,
                          transfers=list(d.get("transfers", [])),
                          library=library_from_json(d, {**named, "State": state}))


def tool_to_json(t: ResolvedTool) -> dict[str, Any]:
    return {
        "name": t.name,
        "domain": t.domain,
        "description": t.description,
        "access": t.access,
        "params": [
            [n, {"type": type_to_json(p.type), "required": p.required, "default": p.default,
                 "description": p.description}]
            for n, p in t.params.items()
        ],
        "requires": [{"when": _expr(r.when), "error": r.error, "origin": _origin(r.origin)} for r in t.requires],
        "effects": _expr(t.effects),
        "returns": _expr(t.returns),
        "implementation": t.implementation,
        "python": t.python,
        "sql": t.sql,
        "origin": _origin(t.origin),
        **_fulltext(t.fulltext),
        **_tables(t.tables),
        **_result(t.result),
        **({"let": [[n, _expr(e)] for n, e in t.bindings]} if t.bindings else {}),
    }


def tool_from_json(d: dict[str, Any], named: dict[str, Type]) -> ResolvedTool:
    params = {
        n: ParamIR(n, type_from_json(p["type"], named), p["required"], p["default"], p["description"])
        for n, p in d["params"]
    }
    requires = [PreconditionIR(expr_from_json(r["when"]), r["error"], _origin_from(r.get("origin")))
                for r in d["requires"]]
    effects = expr_from_json(d["effects"]) if d["effects"] else None
    returns = expr_from_json(d["returns"]) if d["returns"] else None
    return ResolvedTool(d["name"], d["domain"], d["description"], d["access"], params, requires, effects, returns,
                        ANY, d["implementation"], d["python"], d["sql"], _origin_from(d.get("origin")),
                        _fulltext_from(d), _tables_from(d), ResultFormat.from_json(d.get("result")),
                        bindings=tuple((n, expr_from_json(e)) for n, e in d.get("let", ())))


def persona_to_json(p: ResolvedPersona) -> dict[str, Any]:
    return {
        "name": p.name, "description": p.description, "role": p.role, "voice": p.voice, "opening": p.opening,
        "knows": p.knows, "tactics": p.tactics, "domains": p.domains, "adversarial": p.adversarial,
    }


def persona_from_json(d: dict[str, Any]) -> ResolvedPersona:
    return ResolvedPersona(d["name"], d["description"], d["role"], d["voice"], d["opening"], d["knows"],
                           d["tactics"], d["domains"], Origin("<bundle>", Pos(1, 1)))


def verifier_to_json(v: ResolvedVerifier) -> dict[str, Any]:
    return {
        "name": v.name,
        "workflow": v.workflow,
        "description": v.description,
        "success_threshold": v.success_threshold,
        "checks": [
            {"kind": c.kind, "name": c.name, "expr": _expr(c.expr), "tool": c.tool,
             "args": {k: _expr(a) for k, a in c.args.items()}, "when": _expr(c.when), "weight": c.weight,
             "gate": c.gate}
            for c in v.checks
        ],
        "origin": _origin(v.origin),
    }


def verifier_from_json(d: dict[str, Any]) -> ResolvedVerifier:
    checks = [
        CheckIR(c["kind"], c["name"], expr_from_json(c["expr"]) if c["expr"] else None, c["tool"],
                {k: expr_from_json(a) for k, a in c["args"].items()},
                expr_from_json(c["when"]) if c["when"] else None, c["weight"], c["gate"])
        for c in d["checks"]
    ]
    return ResolvedVerifier(d["name"], d["workflow"], d["description"], checks, d["success_threshold"],
                            _origin_from(d.get("origin")))
