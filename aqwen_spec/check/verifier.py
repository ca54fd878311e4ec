"""Checking a Verifier against its workflow: assertions, required and forbidden calls, what the agent must say."""

from __future__ import annotations

from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.check.scopes import verifier_scope
from aqwen_spec.diagnostics import did_you_mean
from aqwen_spec.documents.verifier import CHECK_KEYS, Verifier
from aqwen_spec.loader import Broken
from aqwen_spec.resolved import (
    CheckIR,
    Origin,
    ResolvedDomain,
    ResolvedTool,
    ResolvedVerifier,
    ResolvedWorkflow,
)
from aqwen_spec.tree import TRANSFER_TOOL, walk_branches
from aqwen_spec.types import BOOL, STR

_OPTIONS = ("when", "weight", "gate", "name")


def check_verifier(checker: DocChecker, doc: Verifier, workflow: ResolvedWorkflow | None,
                   domain: ResolvedDomain | None, tools: dict[str, ResolvedTool],
                   broken: Broken | None = None) -> ResolvedVerifier:
    checks: list[CheckIR] = []
    checker.clock = bool((workflow and workflow.clock) or (domain and domain.clock))
    scope = verifier_scope(domain.state, workflow.slot_types, domain.library) if domain and workflow else None
    branch_names = {b.name for b in walk_branches(workflow.tree)} if workflow else set()
    for i, raw in enumerate(doc.checks):
        cpath = ("checks", i)
        if isinstance(raw, str):
            raw = {raw: True}
        if not isinstance(raw, dict):
            checker.report("AQ105", "a check should be a mapping like {assert: expr} or a check name", cpath)
            continue
        kinds = [k for k in raw if k in CHECK_KEYS]
        for key in raw:
            if key not in CHECK_KEYS and key not in _OPTIONS:
                hint = did_you_mean(str(key), [*CHECK_KEYS, *_OPTIONS])
                checker.report("AQ407", f"unknown check '{key}'", (*cpath, key), hint, key=True)
        if len(kinds) != 1:
            if not any(k not in CHECK_KEYS and k not in _OPTIONS for k in raw):
                checker.report("AQ407", "a check has exactly one of: " + ", ".join(CHECK_KEYS), cpath)
            continue
        kind = kinds[0]
        check = CheckIR(kind, str(raw.get("name") or f"{kind}_{i}"), origin=Origin(checker.path, checker.pos(cpath)))
        weight = raw.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            checker.report("AQ106", "'weight' should be a number >= 0", (*cpath, "weight"))
        else:
            check.weight = float(weight)
        gate = raw.get("gate", False)
        if not isinstance(gate, bool):
            checker.report("AQ105", "'gate' should be true or false", (*cpath, "gate"))
        check.gate = bool(gate)
        if scope is not None:
            if "when" in raw:
                check.when = checker.expr(raw["when"], (*cpath, "when"), scope, BOOL, "'when'")
                _check_branch_names(checker, check.when, branch_names, (*cpath, "when"))
            value = raw[kind]
            vpath = (*cpath, kind)
            if kind == "assert":
                check.expr = checker.expr(value, vpath, scope, BOOL, "an assertion")
            elif kind == "tells_user":
                check.expr = checker.expr(value, vpath, scope, None, "'tells_user'")
            elif kind in ("require", "forbid"):
                _tool_pattern(checker, check, value, vpath, tools, scope, broken, domain.transfers if domain else [])
            elif kind in ("same_final_state_as_gold", "same_outcome_as_gold") and value is not True:
                checker.report("AQ105", f"{kind} takes no value", vpath)
        checks.append(check)
    origin = Origin(checker.path, checker.pos(()))
    return ResolvedVerifier(doc.name, doc.for_, doc.description, checks, doc.success_threshold, origin,
                            domain.library if domain else None)


def _transfer_pattern(checker: DocChecker, check: CheckIR, call: Any, vpath: Any, scope: Any,
                      transfers: list[str]) -> None:
    """``require: transfer_to_human(destination="billing")``: the built-in transfer tool's arguments; a literal
    destination must be one the domain declares (AQ323)."""
    from aqwen_spec.expr.ast import Lit

    params = ("reason", "destination") if transfers else ("reason",)
    for name, arg in call.kwargs:
        if name not in params:
            checker.report("AQ408", f"tool '{TRANSFER_TOOL}' has no parameter '{name}'", vpath,
                           did_you_mean(name, params) or ("declare destinations on the domain: transfers: [...]"
                                                          if name == "destination" else None), rel=arg.pos)
            continue
        checker.check_expr(arg, vpath, scope, STR, f"argument '{name}'")
        if name == "destination" and isinstance(arg, Lit) and arg.value not in transfers:
            checker.report("AQ323", f"unknown transfer destination '{arg.value}'", vpath,
                           did_you_mean(str(arg.value), transfers) or "destinations: " + ", ".join(transfers),
                           rel=arg.pos)
        check.args[name] = arg


def _tool_pattern(checker: DocChecker, check: CheckIR, value: Any, vpath: Any, tools: dict[str, ResolvedTool],
                  scope: Any, broken: Broken | None, transfers: list[str]) -> None:
    from aqwen_spec.expr import ExprSyntaxError, parse_expr
    from aqwen_spec.expr.ast import Call

    if not isinstance(value, str):
        checker.report("AQ105", "name a tool, or a call like tool(arg=expr)", vpath)
        return
    text = value.strip()
    try:
        expr = parse_expr(text if "(" in text else text + "()")
    except ExprSyntaxError as exc:
        checker.report("AQ301", exc.message, vpath, exc.hint, rel=exc.pos)
        return
    if not isinstance(expr, Call) or expr.args:
        checker.report("AQ106", "name a tool, or a call with named arguments: tool(arg=expr)", vpath)
        return
    check.tool = expr.func
    if expr.func == TRANSFER_TOOL:
        _transfer_pattern(checker, check, expr, vpath, scope, transfers)
        return
    tool = tools.get(expr.func)
    if tool is None:
        if broken is None or not broken.skip(("Tool", expr.func)):
            checker.report("AQ403", f"unknown tool '{expr.func}'", vpath, did_you_mean(expr.func, tools))
        return
    for name, arg in expr.kwargs:
        if name not in tool.params:
            checker.report("AQ408", f"tool '{tool.name}' has no parameter '{name}'", vpath,
                           did_you_mean(name, tool.params), rel=arg.pos)
            continue
        checker.check_expr(arg, vpath, scope, tool.params[name].type, f"argument '{name}'")
        check.args[name] = arg


def _check_branch_names(checker: DocChecker, expr: Any, names: set[str], ypath: Any) -> None:
    """``branch == "x"`` and ``"x" in path`` must name a branch that exists in the workflow."""
    from aqwen_spec.expr.ast import Compare, Lit, Name

    def visit(node: Any) -> None:
        if isinstance(node, Compare):
            sides = (node.left, node.right)
            if any(isinstance(s, Name) and s.id in ("branch", "path") for s in sides):
                for s in sides:
                    if isinstance(s, Lit) and isinstance(s.value, str) and s.value not in names:
                        hint = did_you_mean(s.value, names) or "branches: " + ", ".join(sorted(names))
                        checker.report("AQ409", f"the workflow has no branch '{s.value}'", ypath, hint,
                                       rel=s.pos)
        for child in getattr(node, "__dataclass_fields__", {}):
            value = getattr(node, child)
            for item in value if isinstance(value, tuple) else (value,):
                if hasattr(item, "__dataclass_fields__"):
                    visit(item)

    if expr is not None:
        visit(expr)
