"""Behaviour trees of workflows: the IR and its parser from YAML data (with positions).

A node is one of:

- ``sequence: [node, ...]`` (a plain list is a sequence too);
- ``select: [{name?, when: expr, then: node}, ..., {name?, otherwise: node}]``: the first branch whose condition
  holds is taken;
- an action: ``call: tool(arg=expr, ...)`` (with ``as: name`` to bind the result), ``ask_user``, ``inform_user``,
  ``confirm``, ``refuse``, ``transfer``; written as a mapping (``refuse: safety check missing``) or as a call string
  (``refuse(reason="safety check missing")``, ``close_work_order(order_id=wo.id)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from aqwen_spec.diagnostics import Pos
from aqwen_spec.source import YamlDoc, YPath

ActionKind = Literal["call", "ask_user", "inform_user", "confirm", "refuse", "transfer"]
USER_ACTIONS: tuple[str, ...] = ("ask_user", "inform_user", "confirm", "refuse", "transfer")
# the argument that a short form (``refuse: some text``) fills, and whether it is text or an expression
SHORT_ARG: dict[str, tuple[str, bool]] = {
    "ask_user": ("about", True),
    "inform_user": ("value", False),
    "confirm": ("about", True),
    "refuse": ("reason", True),
    "transfer": ("reason", True),
}
ACTION_ARGS: dict[str, dict[str, bool]] = {  # argument -> is text (True) or an expression (False)
    "ask_user": {"about": True, "reveals": False, "say": True},
    "inform_user": {"value": False, "about": True, "say": True},
    "confirm": {"about": True, "say": True},
    "refuse": {"reason": True, "say": True},
    "transfer": {"reason": True, "to": True, "say": True},
}
TRANSFER_TOOL = "transfer_to_human"
"""The agent's built-in transfer tool (``reason``, and a ``destination`` where the domain declares ``transfers``)."""


def destination_of(arg: Arg) -> str:
    """The destination a transfer's ``to:`` names: plain text, or a string literal in the call-string form."""
    from aqwen_spec.expr.ast import Lit

    if isinstance(arg.expr, Lit) and isinstance(arg.expr.value, str):
        return arg.expr.value
    return arg.text.strip()
SAY_NAMES: dict[str, tuple[str, ...]] = {  # what a ``say:`` template can name besides slots and bound results
    "ask_user": ("about",),
    "inform_user": ("value", "about"),
    "confirm": ("about",),
    "refuse": ("reason",),
    "transfer": ("reason", "to"),
}


@dataclass
class Arg:
    """An action argument: an expression (parsed later by the checker) or plain text."""

    text: str  # the source text; empty when the argument was parsed as part of a call string
    is_text: bool
    ypath: YPath
    # where the argument starts inside the YAML string (for call-string forms)
    offset: Pos = field(default_factory=lambda: Pos(1, 1))
    expr: Any = None  # the parsed expression (call strings are parsed at once; other forms by the checker)


@dataclass
class Action:
    kind: ActionKind
    pos: Pos
    ypath: YPath
    tool: str | None = None
    args: dict[str, Arg] = field(default_factory=dict)
    bind: str | None = None

    @property
    def label(self) -> str:
        return self.tool if self.kind == "call" and self.tool else self.kind


@dataclass
class Branch:
    name: str
    when: Arg | None  # None: otherwise
    body: Node
    pos: Pos
    ypath: YPath
    personas: list[str] = field(default_factory=list)
    """The personas this branch's tasks are drawn with (``personas:``); empty: the workflow's."""
    scenario: Arg | None = None
    """A state edit (effects language) that makes the branch reachable where the state generator cannot
    (``scenario:``); ``scenario.expr`` holds the checked program."""


@dataclass
class Select:
    branches: list[Branch]
    pos: Pos
    ypath: YPath


@dataclass
class Sequence:
    children: list[Node]
    pos: Pos
    ypath: YPath


Node = Action | Select | Sequence


@dataclass(frozen=True)
class TreeProblem:
    code: str
    message: str
    pos: Pos
    hint: str | None = None


class TreeParser:
    """Parse a workflow's ``tree`` into IR, collecting problems (never raising on bad input)."""

    def __init__(self, ydoc: YamlDoc) -> None:
        self.ydoc = ydoc
        self.problems: list[TreeProblem] = []
        self.max_depth = 64

    def error(self, code: str, message: str, ypath: YPath, hint: str | None = None, key: bool = False) -> None:
        pos = self.ydoc.key_pos(ypath) if key else self.ydoc.value_pos(ypath)
        self.problems.append(TreeProblem(code, message, pos, hint))

    def parse(self, data: Any, ypath: YPath, depth: int = 0) -> Node | None:
        pos = self.ydoc.value_pos(ypath)
        if depth > self.max_depth:
            self.error("AQ106", "the tree is nested too deeply", ypath)
            return None
        if isinstance(data, list):
            return self._sequence(data, ypath, depth)
        if isinstance(data, str):
            return self._call_string(data, ypath)
        if not isinstance(data, dict) or not data:
            self.error("AQ105", "a tree node should be an action, a sequence or a select", ypath)
            return None
        if "sequence" in data:
            self._only(data, {"sequence"}, ypath)
            seq = data["sequence"]
            if not isinstance(seq, list):
                self.error("AQ105", "'sequence' should be a list of nodes", (*ypath, "sequence"))
                return None
            return self._sequence(seq, (*ypath, "sequence"), depth)
        if "select" in data:
            self._only(data, {"select"}, ypath)
            return self._select(data["select"], (*ypath, "select"), depth)
        kinds = [k for k in data if k in ("call", *USER_ACTIONS)]
        if len(kinds) != 1:
            from aqwen_spec.diagnostics import did_you_mean

            unknown = next((k for k in data if k not in ("call", *USER_ACTIONS, "as")), None)
            if unknown is not None:
                hint = did_you_mean(str(unknown), ["sequence", "select", "call", *USER_ACTIONS])
                self.error("AQ103", f"unknown node key '{unknown}'", (*ypath, unknown), hint, key=True)
            else:
                self.error("AQ106", "a node holds exactly one action", ypath)
            return None
        kind = kinds[0]
        allowed = {kind, "as"} if kind == "call" else {kind}
        self._only(data, allowed, ypath)
        value = data[kind]
        vpath = (*ypath, kind)
        if kind == "call":
            if not isinstance(value, str):
                self.error("AQ105", "'call' should be a string like tool(arg=expr)", vpath)
                return None
            action = self._call_string(value, vpath, force_tool=True)
            if action is not None and "as" in data:
                bind = data["as"]
                if not isinstance(bind, str) or not bind.isidentifier():
                    self.error("AQ107", "'as' should be a name", (*ypath, "as"))
                else:
                    action.bind = bind
            return action
        return self._user_action(kind, value, vpath, pos)

    def _only(self, data: dict[str, Any], allowed: set[str], ypath: YPath) -> None:
        for key in data:
            if key not in allowed:
                from aqwen_spec.diagnostics import did_you_mean

                hint = did_you_mean(str(key), sorted(allowed))
                self.error("AQ103", f"unknown key '{key}' in this node", (*ypath, key), hint, key=True)

    def _sequence(self, items: list[Any], ypath: YPath, depth: int) -> Sequence:
        children = []
        for i, item in enumerate(items):
            node = self.parse(item, (*ypath, i), depth + 1)
            if node is not None:
                children.append(node)
        if not items:
            self.error("AQ106", "an empty sequence does nothing", ypath)
        return Sequence(children, self.ydoc.value_pos(ypath), ypath)

    def _select(self, items: Any, ypath: YPath, depth: int) -> Select | None:
        if not isinstance(items, list) or not items:
            self.error("AQ105", "'select' should be a non-empty list of branches", ypath)
            return None
        branches: list[Branch] = []
        names: set[str] = set()
        for i, item in enumerate(items):
            bpath = (*ypath, i)
            if not isinstance(item, dict):
                self.error("AQ105", "a branch should be a mapping with 'when' and 'then', or 'otherwise'", bpath)
                continue
            self._only(item, {"name", "when", "then", "otherwise", "personas", "scenario"}, bpath)
            if "otherwise" in item:
                if "when" in item or "then" in item:
                    self.error("AQ106", "an 'otherwise' branch has no 'when' or 'then'", bpath)
                if i != len(items) - 1:
                    self.error("AQ106", "'otherwise' must be the last branch", bpath)
                body_key, when = "otherwise", None
            else:
                if "when" not in item:
                    self.error("AQ104", "missing required key 'when'", bpath)
                    continue
                if "then" not in item:
                    self.error("AQ104", "missing required key 'then'", bpath)
                    continue
                cond = item["when"]
                if not isinstance(cond, (str, bool)):
                    self.error("AQ105", "'when' should be an expression", (*bpath, "when"))
                    continue
                when = Arg(str(cond).lower() if isinstance(cond, bool) else cond, False, (*bpath, "when"))
                body_key = "then"
            body = self.parse(item[body_key], (*bpath, body_key), depth + 1)
            if body is None:
                continue
            name = item.get("name")
            if name is not None and (not isinstance(name, str) or not name.isidentifier()):
                self.error("AQ107", "a branch name should be an identifier", (*bpath, "name"))
                name = None
            if name is None:
                name = _default_branch_name(body, names)
            elif name in names:
                self.error("AQ401", f"two branches are named '{name}'", (*bpath, "name"))
            names.add(name)
            branch = Branch(name, when, body, self.ydoc.value_pos(bpath), bpath)
            self._branch_extras(branch, item, bpath)
            branches.append(branch)
        return Select(branches, self.ydoc.value_pos(ypath), ypath)

    def _branch_extras(self, branch: Branch, item: dict[str, Any], bpath: YPath) -> None:
        """``personas: [name, ...]`` and ``scenario: <effects>`` of a branch (names are checked against the
        personas later, the scenario against the state)."""
        personas = item.get("personas")
        if personas is not None:
            if not isinstance(personas, list) or not all(isinstance(p, str) for p in personas):
                self.error("AQ105", "'personas' should be a list of persona names", (*bpath, "personas"))
            else:
                branch.personas = list(personas)
        scenario = item.get("scenario")
        if scenario is not None:
            if not isinstance(scenario, str) or not scenario.strip():
                self.error("AQ105", "'scenario' should be statements in the effects language, as a string",
                           (*bpath, "scenario"))
            else:
                branch.scenario = Arg(scenario, False, (*bpath, "scenario"))

    def _user_action(self, kind: str, value: Any, vpath: YPath, pos: Pos) -> Action | None:
        spec = ACTION_ARGS[kind]
        if isinstance(value, (str, int, float, bool)):
            arg, is_text = SHORT_ARG[kind]
            return Action(kind, pos, vpath, args={arg: Arg(str(value), is_text, vpath)})  # type: ignore[arg-type]
        if value is None and kind in ("refuse", "transfer"):
            return Action(kind, pos, vpath)  # type: ignore[arg-type]
        if not isinstance(value, dict):
            self.error("AQ105", f"'{kind}' should be text or a mapping of arguments", vpath)
            return None
        args: dict[str, Arg] = {}
        for key, v in value.items():
            if key not in spec:
                from aqwen_spec.diagnostics import did_you_mean

                hint = did_you_mean(str(key), spec) or "arguments: " + ", ".join(spec)
                self.error("AQ103", f"unknown argument '{key}' of {kind}", (*vpath, key), hint, key=True)
                continue
            args[key] = Arg(str(v), spec[key], (*vpath, key))
        return Action(kind, pos, vpath, args=args)  # type: ignore[arg-type]

    def _call_string(self, text: str, ypath: YPath, force_tool: bool = False) -> Action | None:
        """``tool(a=expr)`` or ``refuse(reason="...")``: parsed with the expression parser."""
        from aqwen_spec.expr import ExprSyntaxError, parse_expr
        from aqwen_spec.expr.ast import Call

        stripped = text.strip()
        if stripped.isidentifier():
            stripped += "()"
        try:
            expr = parse_expr(stripped)
        except ExprSyntaxError as exc:
            self.problems.append(TreeProblem("AQ301", exc.message, self.ydoc.text_pos(ypath, exc.pos), exc.hint))
            return None
        if not isinstance(expr, Call):
            self.error("AQ106", "an action should be a call like tool(arg=expr) or refuse(reason=...)", ypath)
            return None
        name, positional, keywords = expr.func, expr.args, dict(expr.kwargs)
        pos = self.ydoc.value_pos(ypath)
        if positional:
            self.error("AQ408", f"arguments of '{name}' must be named (name=value)", ypath)
        if name in USER_ACTIONS and not force_tool:
            spec = ACTION_ARGS[name]
            args = {}
            for key, arg_expr in keywords.items():
                if key not in spec:
                    hint = "arguments: " + ", ".join(spec)
                    self.error("AQ408", f"unknown argument '{key}' of {name}", ypath, hint)
                    continue
                args[key] = Arg("", False, ypath, offset=arg_expr.pos, expr=arg_expr)
            return Action(name, pos, ypath, args=args)  # type: ignore[arg-type]
        args = {}
        for key, arg_expr in keywords.items():
            args[key] = Arg("", False, ypath, offset=arg_expr.pos, expr=arg_expr)
        return Action("call", pos, ypath, tool=name, args=args)


def _default_branch_name(body: Node, taken: set[str]) -> str:
    first = first_action(body)
    base = first.label if first else "branch"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def first_action(node: Node) -> Action | None:
    if isinstance(node, Action):
        return node
    if isinstance(node, Sequence):
        for child in node.children:
            found = first_action(child)
            if found:
                return found
        return None
    return None


def walk_actions(node: Node) -> list[Action]:
    """Every action in the tree, in document order."""
    if isinstance(node, Action):
        return [node]
    if isinstance(node, Sequence):
        return [a for child in node.children for a in walk_actions(child)]
    return [a for b in node.branches for a in walk_actions(b.body)]


def walk_branches(node: Node) -> list[Branch]:
    if isinstance(node, Action):
        return []
    if isinstance(node, Sequence):
        return [b for child in node.children for b in walk_branches(child)]
    return [x for b in node.branches for x in (b, *walk_branches(b.body))]


def paths(node: Node) -> list[list[Branch]]:
    """Every path through the tree, as the branches taken (the empty path for a tree with no select)."""
    if isinstance(node, Action):
        return [[]]
    if isinstance(node, Sequence):
        result: list[list[Branch]] = [[]]
        for child in node.children:
            result = [p + q for p in result for q in paths(child)]
        return result
    return [[b, *q] for b in node.branches for q in paths(b.body)]
