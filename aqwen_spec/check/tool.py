"""Checking a Tool against its domain: parameter types, preconditions, effects, return value, implementation."""

from __future__ import annotations

import re

from aqwen_spec.check.context import DocChecker
from aqwen_spec.check.domain import type_from_yaml
from aqwen_spec.check.scopes import state_scope
from aqwen_spec.diagnostics import did_you_mean
from aqwen_spec.documents.tool import Param, Tool
from aqwen_spec.resolved import Origin, ParamIR, PreconditionIR, ResolvedDomain, ResolvedTool
from aqwen_spec.types import ANY, BOOL, NULL, OptionalT, Type
from aqwen_spec.values import check_value

_PYTHON_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
_SQL_START = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
_SQL_PARAM = re.compile(r"(?<!:):([A-Za-z_]\w*)")
_SQL_FTS = re.compile(r"\b([A-Za-z_]\w*)_fts\b")


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
        if domain and pname in domain.state.fields:
            checker.report("AQ106", f"parameter '{pname}' hides the state field of the same name", ppath,
                           "rename the parameter (e.g. add _id)", key=True)
        params[pname] = ParamIR(pname, ptype, required, param.default, param.description)

    state = domain.state if domain else None
    scope = state_scope(state, {n: p.type for n, p in params.items()}) if state else None
    requires: list[PreconditionIR] = []
    effects = returns = None
    returns_type: Type = NULL
    known = {*params, *(state.fields if state else ())}
    for i, pre in enumerate(doc.requires):
        rpath = ("requires", i)
        when = checker.expr(pre.when, (*rpath, "when"), scope, BOOL, "a precondition") if scope else None
        checker.template(pre.error, (*rpath, "error"), known)
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
        effects = checker.program(doc.effects, ("effects",), scope)
    if doc.returns is not None and scope is not None:
        returns = checker.expr(doc.returns, ("returns",), scope, None, "'returns'")
        if returns is not None:
            from aqwen_spec.expr import check_expr

            returns_type = check_expr(returns, scope)[0]
    elif kind != "declarative":
        returns_type = ANY
    access = doc.access or ("write" if doc.effects else "read")
    if access == "read" and doc.effects:
        checker.report("AQ106", "a read tool cannot have effects", ("access",), "set access: write")
    return ResolvedTool(
        doc.name, doc.domain, doc.description, access, params, requires, effects, returns, returns_type,
        kind, impl.python if impl else None, impl.sql if impl else None,  # type: ignore[arg-type]
        Origin(checker.path, checker.pos(())), domain.fulltext if domain and kind == "sql" else (),
    )


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
