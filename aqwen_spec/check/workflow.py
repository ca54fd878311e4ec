"""Checking a Workflow: slots, the behaviour tree (tool calls and their arguments), the instruction template."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.check.episode import checked_clock
from aqwen_spec.check.scopes import state_scope
from aqwen_spec.diagnostics import did_you_mean
from aqwen_spec.documents.workflow import Workflow
from aqwen_spec.loader import Broken
from aqwen_spec.resolved import Origin, OutOfScopeIR, ResolvedDomain, ResolvedTool, ResolvedWorkflow
from aqwen_spec.tree import (
    SAY_NAMES,
    Action,
    Node,
    Select,
    Sequence,
    TreeParser,
    destination_of,
    walk_actions,
    walk_branches,
)
from aqwen_spec.types import ANY, BOOL, Type, is_assignable


def check_workflow(
    checker: DocChecker,
    doc: Workflow,
    domain: ResolvedDomain | None,
    tools: dict[str, ResolvedTool],
    broken: Broken | None = None,
    personas: Collection[str] | None = None,
) -> ResolvedWorkflow | None:
    broken = broken if broken is not None else Broken()
    clock = checked_clock(checker, doc.clock)
    checker.clock = clock is not None or bool(domain and domain.clock)
    parser = TreeParser(checker.loaded.yaml)
    tree = parser.parse(doc.tree, ("tree",))
    for p in parser.problems:
        checker.diagnostics.error(p.code, p.message, checker.path, p.pos, p.hint)
    slots: dict[str, Any] = {}
    slot_types: dict[str, Type] = {}
    bindings: dict[str, Type] = {}
    if domain is not None:
        for name, text in doc.slots.items():
            scope = state_scope(domain.state, slot_types, sampling=True, library=domain.library)
            expr = checker.expr(text, ("slots", name), scope)
            if expr is not None:
                from aqwen_spec.expr import check_expr

                slots[name] = expr
                slot_types[name] = check_expr(expr, scope)[0]
        if tree is not None:
            _check_node(checker, tree, domain, tools, slot_types, bindings, broken)
            _check_scenarios(checker, tree, domain)
    if tree is not None and personas is not None:
        _check_branch_personas(checker, tree, personas, broken)
    out_of_scope = _check_out_of_scope(checker, doc, tree, tools, broken)
    known = {*doc.slots, "persona", *bindings}
    checker.template(doc.instruction, ("instruction",), known, {**slot_types, **bindings})
    if tree is None:
        return None
    return ResolvedWorkflow(
        doc.name, doc.domain, doc.description, list(doc.personas), slots, slot_types, tree, doc.instruction,
        Origin(checker.path, checker.pos(())), bindings, out_of_scope, clock,
        library=domain.library if domain else None,
    )


def fail_messages(program: Any) -> list[str]:
    """The messages of the ``fail`` statements of an effects program, as written (``{...}`` for each expression
    of an f-string)."""
    from aqwen_spec.expr import ast as A

    out: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, A.Fail):
            msg = node.message
            if isinstance(msg, A.Lit) and isinstance(msg.value, str):
                out.append(msg.value)
            elif isinstance(msg, A.FString):
                out.append("".join(p if isinstance(p, str) else "{...}" for p in msg.parts))
        elif isinstance(node, (tuple, list)):
            for item in node:
                visit(item)
        elif hasattr(node, "__dataclass_fields__"):
            for name in node.__dataclass_fields__:
                visit(getattr(node, name))

    visit(program)
    return out


def _check_scenarios(checker: DocChecker, tree: Node, domain: ResolvedDomain) -> None:
    """A branch's ``scenario`` is an effects program on the initial state (no slots yet: they are drawn after)."""
    for branch in walk_branches(tree):
        if branch.scenario is not None:
            branch.scenario.expr = checker.program(branch.scenario.text, branch.scenario.ypath,
                                                   state_scope(domain.state, library=domain.library))


def _check_branch_personas(checker: DocChecker, tree: Node, personas: Collection[str],
                           broken: Broken) -> None:
    for branch in walk_branches(tree):
        for i, name in enumerate(branch.personas):
            if name not in personas and not broken.skip(("Persona", name)):
                checker.report("AQ404", f"unknown persona '{name}'", (*branch.ypath, "personas", i),
                               did_you_mean(name, personas))


def _check_out_of_scope(checker: DocChecker, doc: Workflow, tree: Node | None, tools: dict[str, ResolvedTool],
                        broken: Broken) -> list[OutOfScopeIR]:
    """Each ``out_of_scope`` entry names a tool the tree calls and text of one of its preconditions' errors (or of
    a ``fail`` message in its effects: index -1)."""
    called = {a.tool for a in walk_actions(tree) if a.kind == "call"} if tree is not None else set()
    out = []
    for i, entry in enumerate(doc.out_of_scope):
        epath = ("out_of_scope", i)
        tool = tools.get(entry.tool)
        if tool is None:
            if not broken.skip(("Tool", entry.tool)):
                checker.report("AQ403", f"unknown tool '{entry.tool}'", (*epath, "tool"),
                               did_you_mean(entry.tool, tools))
            continue
        if tree is not None and entry.tool not in called:
            checker.report("AQ608", f"out-of-scope entry names tool '{entry.tool}', which this workflow never calls",
                           (*epath, "tool"), "tools called: " + (", ".join(sorted(c for c in called if c)) or "none"))
            continue
        matches = [k for k, pre in enumerate(tool.requires) if entry.precondition in pre.error]
        fails = fail_messages(tool.effects)
        if any(entry.precondition in text for text in fails):
            matches.append(-1)  # the effects' own failures (a `fail` statement)
        if not matches:
            errors = "; ".join(repr(text) for text in [*(pre.error for pre in tool.requires), *fails]) or "none"
            checker.report("AQ608", f"out-of-scope entry matches no precondition of '{entry.tool}': no error "
                           f"contains {entry.precondition!r}", (*epath, "precondition"),
                           f"write part of one of its errors: {errors}")
            continue
        out.append(OutOfScopeIR(entry.tool, entry.precondition, entry.reason, matches,
                                Origin(checker.path, checker.pos(epath))))
    return out


def _check_node(checker: DocChecker, node: Node, domain: ResolvedDomain, tools: dict[str, ResolvedTool],
                slots: dict[str, Type], bindings: dict[str, Type], broken: Broken) -> None:
    if isinstance(node, Sequence):
        for child in node.children:
            _check_node(checker, child, domain, tools, slots, bindings, broken)
    elif isinstance(node, Select):
        for branch in node.branches:
            if branch.when is not None:
                scope = state_scope(domain.state, {**slots, **bindings}, library=domain.library)
                branch.when.expr = _arg_expr(checker, branch.when, scope, BOOL, "a branch condition")
            _check_node(checker, branch.body, domain, tools, slots, bindings, broken)
    else:
        _check_action(checker, node, domain, tools, slots, bindings, broken)


def _check_destination(checker: DocChecker, action: Action, domain: ResolvedDomain) -> None:
    """A transfer names one of the domain's ``transfers`` (AQ323), and does so where the domain declares any."""
    known = domain.transfers
    arg = action.args.get("to")
    if arg is None:
        if known:
            checker.report("AQ323", "this domain's transfers go to a destination: name one with 'to'",
                           action.ypath, "destinations: " + ", ".join(known))
        return
    name = destination_of(arg)
    if not known:
        checker.report("AQ323", f"transfer to '{name}', but the domain declares no transfer destinations",
                       arg.ypath, f"declare them on the domain: transfers: [{name}]", rel=arg.offset if arg.expr
                       is not None and not arg.text else None)
    elif name not in known:
        checker.report("AQ323", f"unknown transfer destination '{name}'", arg.ypath,
                       did_you_mean(name, known) or "destinations: " + ", ".join(known),
                       rel=arg.offset if arg.expr is not None and not arg.text else None)


def _arg_expr(checker: DocChecker, arg: Any, scope: Any, expect: Type | None, what: str) -> Any:
    if arg.is_text:
        return None
    if arg.expr is not None:  # parsed as part of a call string: positions are relative to that string
        checker.check_expr(arg.expr, arg.ypath, scope, expect, what)
        return arg.expr
    return checker.expr(arg.text, arg.ypath, scope, expect, what)


def _check_action(checker: DocChecker, action: Action, domain: ResolvedDomain, tools: dict[str, ResolvedTool],
                  slots: dict[str, Type], bindings: dict[str, Type], broken: Broken) -> None:
    scope = state_scope(domain.state, {**slots, **bindings}, library=domain.library)
    if action.kind != "call":
        for name, arg in action.args.items():
            if arg.is_text:
                extra = SAY_NAMES[action.kind] if name == "say" else ()
                checker.template(arg.text, arg.ypath, {*slots, *bindings, *extra})
            arg.expr = _arg_expr(checker, arg, scope, None, f"'{name}'")
        if action.kind == "inform_user" and "value" not in action.args:
            checker.report("AQ104", "inform_user needs the value the agent must tell", action.ypath)
        if action.kind == "transfer":
            _check_destination(checker, action, domain)
        return
    tool = tools.get(action.tool or "")
    if tool is None:
        if not broken.skip(("Tool", action.tool or "")):
            hint = did_you_mean(action.tool or "", tools)
            checker.report("AQ403", f"unknown tool '{action.tool}'", action.ypath, hint)
        for arg in action.args.values():
            _arg_expr(checker, arg, scope, None, "an argument")
        if action.bind:  # what it returns is unknown, not missing: later uses are not errors of their own
            bindings[action.bind] = ANY
        return
    if tool.domain != domain.name:
        checker.report("AQ403", f"tool '{tool.name}' belongs to domain '{tool.domain}', not '{domain.name}'",
                       action.ypath)
    for name, arg in action.args.items():
        param = tool.params.get(name)
        if param is None:
            hint = did_you_mean(name, tool.params) or "parameters: " + (", ".join(tool.params) or "none")
            checker.report("AQ408", f"tool '{tool.name}' has no parameter '{name}'", action.ypath, hint,
                           rel=arg.offset if arg.expr is not None else None)
            continue
        arg.expr = _arg_expr(checker, arg, scope, None, f"argument '{name}'")
        if arg.expr is not None:
            from aqwen_spec.expr import check_expr

            typ, problems = check_expr(arg.expr, scope)
            if not [p for p in problems if not p.warning] and not is_assignable(typ, param.type):
                checker.report("AQ408", f"argument '{name}' of '{tool.name}' should be {param.type.render()}, "
                               f"but it is {typ.render()}", action.ypath, rel=arg.offset)
    for name, param in tool.params.items():
        if param.required and name not in action.args:
            checker.report("AQ408", f"call of '{tool.name}' is missing required argument '{name}'", action.ypath)
    if action.bind:
        bindings[action.bind] = tool.returns_type if tool.returns_type is not None else ANY
