"""Checking a Tool against its domain: parameter types, preconditions, effects, return value, implementation."""

from __future__ import annotations

import re
from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.check.domain import type_from_yaml
from aqwen_spec.check.episode import draws
from aqwen_spec.check.guards import guards_of, lookup_key, unguarded
from aqwen_spec.check.results import check_result
from aqwen_spec.check.scopes import state_scope
from aqwen_spec.diagnostics import Pos, did_you_mean
from aqwen_spec.documents.tool import Param, Tool
from aqwen_spec.expr.checker import RecordLitT, Scope, check_expr, check_program_scope, define_binding, narrowed
from aqwen_spec.resolved import (
    Origin,
    ParamIR,
    PreconditionIR,
    ResolvedDomain,
    ResolvedTool,
    sql_tables,
    table_item,
)
from aqwen_spec.results import DEFAULT
from aqwen_spec.types import ANY, BOOL, NULL, MapT, OptionalT, RecordT, Type, VariantT
from aqwen_spec.values import check_value

_PYTHON_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
_SQL_START = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
_SQL_PARAM = re.compile(r"(?<!:):([A-Za-z_]\w*)")
_SQL_FTS = re.compile(r"\b([A-Za-z_]\w*)_fts\b")
_SQL_NOISE = re.compile(r"'(?:[^']|'')*'?|--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)  # strings and comments
_SQL_CTE = re.compile(r"\b([A-Za-z_]\w*)\s*(?:\([^()]*\)\s*)?AS\s+(?:NOT\s+)?(?:MATERIALIZED\s+)?\(", re.IGNORECASE)
# a table after FROM or JOIN; not a table-valued function (json_each(...)), a schema (main.t) or a subquery
_SQL_TABLE = re.compile(r'\b(?:FROM|JOIN)\s+("?)([A-Za-z_]\w*)(?!\w)\1(?!\s*[(.])', re.IGNORECASE)
_SQL_DISTINCT = re.compile(r"\bDISTINCT\s*$", re.IGNORECASE)  # IS [NOT] DISTINCT FROM an expression
_WORD = re.compile(r"(?<!\w)\w+(?!\w)")


def check_tool(checker: DocChecker, doc: Tool, domain: ResolvedDomain | None) -> ResolvedTool:
    named = domain.types if domain else {}
    params: dict[str, ParamIR] = {}
    for pname, spec in doc.params.items():
        ppath = ("params", pname)
        param = spec if isinstance(spec, Param) else Param(type=spec, required=None)
        tpath = (*ppath, "type") if isinstance(spec, Param) else ppath
        ptype = type_from_yaml(param.type, named, checker, tpath) or ANY
        has_default = isinstance(spec, Param) and "default" in spec.model_fields_set
        if has_default and param.default is not None:
            for p in check_value(param.default, ptype):
                checker.report("AQ203", f"default: {p.message}", (*ppath, "default"))
        required = param.required if param.required is not None else not (
            isinstance(ptype, OptionalT) or has_default
        )
        if pname == "state":
            checker.report("AQ504", "parameter 'state' hides the whole state, which expressions name 'state'",
                           ppath, "rename the parameter, or read the state through its fields", key=True,
                           warning=True)
        if domain and pname in domain.state.fields:
            checker.report("AQ106", f"parameter '{pname}' hides the state field of the same name", ppath,
                           "rename the parameter (e.g. add _id)", key=True)
        elif domain and pname in domain.library.constants:
            checker.report("AQ111", f"parameter '{pname}' hides the constant of the same name", ppath,
                           "rename the parameter", key=True)
        params[pname] = ParamIR(pname, ptype, required, param.default, param.description)

    state = domain.state if domain else None
    checker.clock = bool(domain and domain.clock)
    scope = state_scope(state, {n: p.type for n, p in params.items()}, strict=True,
                        library=domain.library if domain else None) if state else None
    if scope is not None:
        scope.types = named
    requires: list[PreconditionIR] = []
    effects = returns = None
    returns_type: Type = NULL
    known = {*params, *(state.fields if state else ()), *(domain.library.constants if domain else ())}
    maps = {name for name, t in (state.fields.items() if state else ()) if isinstance(t, MapT)}
    maps |= {name for name, t in (domain.library.constant_types.items() if domain else ()) if isinstance(t, MapT)}
    bindings, binding_types = _check_bindings(checker, doc, params, state, scope, maps)
    known |= set(binding_types)
    guarded: set[tuple[str, str]] = set()
    for i, pre in enumerate(doc.requires):
        rpath = ("requires", i)
        when = checker.expr(pre.when, (*rpath, "when"), scope, BOOL, "a precondition") if scope else None
        if when is not None:
            for lookup in unguarded(when, set(params), maps, guarded):
                if lookup_key(lookup) not in guarded:  # once: a lookup that succeeded guards the rest
                    _warn_unguarded(checker, lookup, (*rpath, "when"))
                    guarded.add(lookup_key(lookup))
            guarded |= guards_of(when)
        if scope is not None and when is not None:
            scope = narrowed(scope, when)  # later preconditions, the effects and returns may rely on it
        checker.template(pre.error, (*rpath, "error"), known, {**{n: p.type for n, p in params.items()},
                                                                **binding_types})
        requires.append(PreconditionIR(when, pre.error, Origin(checker.path, checker.pos(rpath))))
    impl = doc.implementation
    kind = "declarative"
    if impl is not None:
        given = [k for k in ("python", "sql") if getattr(impl, k) is not None]
        if len(given) != 1:
            checker.report("AQ106", "an implementation is either 'python' or 'sql'", ("implementation",))
        elif impl.python is not None:
            kind = "python"
            if not _PYTHON_REF.match(impl.python):
                checker.report("AQ310", f"'{impl.python}' is not a 'package.module:function' reference",
                               ("implementation", "python"))
        else:
            kind = "sql"
            _check_sql(checker, impl.sql or "", params, domain)
        if kind != "declarative" and doc.effects is not None:
            checker.report("AQ106", f"a {kind} tool has no declarative effects", ("effects",))
    if doc.effects is not None and scope is not None:
        scope.drawing = True  # only the effects draw: a failed call then undoes its draws with its changes
        effects = checker.program(doc.effects, ("effects",), scope)
        scope.drawing = False
        if effects is not None:  # returns sees the state after the effects, and their locals
            scope = check_program_scope(effects, scope)[1]
            scope.drawing = False
    if doc.returns is not None and scope is not None:
        returns = checker.expr(doc.returns, ("returns",), scope, None, "'returns'")
        if returns is not None:
            returns_type = check_expr(returns, scope)[0]
            if isinstance(returns_type, RecordLitT):  # what workflows bind with as: a record, read field by field
                returns_type = MapT(ANY)
    elif kind != "declarative":
        returns_type = ANY
    access = doc.access or ("write" if doc.effects else "read")
    if access == "read" and doc.effects:
        checker.report("AQ106", "a read tool cannot have effects", ("access",), "set access: write")
    locators = {"returns": checker.text_locator(doc.returns or "", ("returns",)),
                "effects": checker.text_locator(doc.effects or "", ("effects",))}

    def locate(part: str, index: int, rel: Pos) -> Pos:
        if part == "requires":
            return checker.text_locator("", ("requires", index, "when"))(rel)
        if part == "let":
            return checker.text_locator("", ("let", bindings[index][0]))(rel)
        return locators[part](rel)

    tool = ResolvedTool(
        doc.name, doc.domain, doc.description, access, params, requires, effects, returns, returns_type,
        kind, impl.python if impl else None, impl.sql if impl else None,  # type: ignore[arg-type]
        Origin(checker.path, checker.pos(())), domain.fulltext if domain and kind == "sql" else (),
        sql_tables(domain.state) if domain and kind == "sql" else (), bindings=tuple(bindings),
    )
    tool.locate = locate
    tool.result = check_result(checker, doc.result, domain.result if domain else DEFAULT)
    tool.draws = effects is not None and draws(effects)
    tool.library = domain.library if domain and domain.library else None
    if returns is not None and kind == "declarative":
        for lookup in unguarded(returns, set(params), maps, guarded):
            if lookup_key(lookup) not in guarded:
                _warn_unguarded(checker, lookup, ("returns",), at=locate("returns", 0, lookup.pos))
                guarded.add(lookup_key(lookup))
    return tool


def _check_bindings(checker: DocChecker, doc: Tool, params: dict[str, ParamIR], state: RecordT | None,
                    scope: Scope | None, maps: set[str]) -> tuple[list[tuple[str, Any]], dict[str, Type]]:
    """The tool's ``let:`` bindings, checked in order (each sees the state, the parameters and the bindings above
    it) and defined in ``scope``; their types, for the error templates."""
    bindings: list[tuple[str, Any]] = []
    types: dict[str, Type] = {}
    for name, text in doc.let.items():
        path = ("let", name)
        taken = "a parameter" if name in params else "a state field" if state and (
            name in state.fields or name == "state") else None
        if taken is not None:
            checker.report("AQ330", f"the binding '{name}' has the name of {taken}", path,
                           "choose another name: a binding may not hide a parameter or a state field", key=True)
            continue
        expr = checker.parse_expr(text, path)
        if expr is None or scope is None:
            continue
        types[name] = checker.check_expr(expr, path, scope, None, f"binding '{name}'")
        for lookup in unguarded(expr, set(params), maps, set()):
            key, table = lookup_key(lookup)
            checker.report("AQ506", f"'{table}[{key}]' fails when {key} is not in {table}, and bindings are computed "
                           "before every precondition: an agent's wrong id then ends the call as an environment "
                           "defect (spec_error), not as a refusal", path,
                           f"bind get({table}, {key}) instead, and check {name} != null in a precondition",
                           rel=lookup.pos, warning=True)
        define_binding(scope, name, expr, types[name])
        bindings.append((name, expr))
    return bindings, types


def _warn_unguarded(checker: DocChecker, lookup: Any, ypath: Any, at: Pos | None = None) -> None:
    key, table = lookup_key(lookup)
    checker.report("AQ506", f"'{table}[{key}]' fails when {key} is not in {table}: an agent's wrong {key} then ends "
                            "the call as an environment defect (spec_error), not as a refusal", ypath,
                   f"check it in an earlier precondition: - when: {key} in {table} (with an error naming the "
                   f"unknown {key})", rel=None if at else lookup.pos, at=at, warning=True)


def _check_sql(checker: DocChecker, sql: str, params: dict[str, ParamIR], domain: ResolvedDomain | None) -> None:
    path = ("implementation", "sql")
    if not _SQL_START.match(sql):
        checker.report("AQ311", "SQL tools run read-only queries: start with SELECT or WITH", path)
        return
    if ";" in sql.strip().rstrip(";"):
        checker.report("AQ311", "a SQL tool runs exactly one statement", path)
    for name in _SQL_PARAM.findall(sql):
        if name not in params:
            checker.report("AQ311", f"the query binds ':{name}', which is not a parameter", path,
                           did_you_mean(name, params))
    if domain is not None:
        indexed = {index.field for index in domain.fulltext}
        for table in dict.fromkeys(_SQL_FTS.findall(sql)):
            if table in domain.state.fields and table not in indexed and f"{table}_fts" not in domain.state.fields:
                checker.report("AQ311", f"the query uses '{table}_fts', but the domain declares no full-text index "
                               f"of '{table}'", path, f"declare one in the domain: fulltext: {{{table}: [TEXT_FIELD]}}")
        _check_sql_tables(checker, sql, domain)


def _check_sql_tables(checker: DocChecker, sql: str, domain: ResolvedDomain) -> None:
    """Every table read after FROM or JOIN is one of the SQL view (a map or list of records, an index) or a CTE."""
    path = ("implementation", "sql")
    fields = domain.state.fields
    tables = [name for name, t in fields.items() if _may_be_table(t)]
    known = {t.casefold() for t in [*tables, *(f"{i.field}_fts" for i in domain.fulltext)]}
    clean = _SQL_NOISE.sub(lambda m: " " * len(m.group()), sql)
    known.update(m.group(1).casefold() for m in _SQL_CTE.finditer(clean))
    folded = {name.casefold(): name for name in fields}
    reported: set[str] = set()
    for m in _SQL_TABLE.finditer(clean):
        name = m.group(2)
        key = name.casefold()
        if key in known or key in reported or key.startswith("sqlite_") or _SQL_DISTINCT.search(clean, 0, m.start()):
            continue
        if key.endswith("_fts") and key.removesuffix("_fts") in folded:
            continue  # a full-text index that is not declared: reported above
        reported.add(key)
        nth = sum(1 for w in _WORD.finditer(sql, 0, m.start(2)) if w.group() == name)
        at = checker.loaded.yaml.word_pos(path, name, nth)
        if key in folded:
            field = folded[key]
            checker.report("AQ311", f"the query reads '{name}', but {field} is {fields[field].render()}: the SQL view "
                           "has a table for each map or list of records", path, at=at)
        else:
            hint = did_you_mean(name, tables) or (f"the tables are {', '.join(tables)}" if tables else None)
            checker.report("AQ311", f"the query reads a table '{name}' that the SQL view does not have", path, hint,
                           at=at)


def _may_be_table(ftype: Type) -> bool:
    """A state field the SQL view may have a table for: a map or list of records, or of values of unknown type."""
    item = table_item(ftype)
    return isinstance(item, (RecordT, VariantT)) or item == ANY or ftype == ANY
