"""Running a workflow's behaviour tree on a sampled state: the path it takes and its gold trajectory.

The tree is executed, not simulated: tool calls run through :class:`aqwen_spec.semantics.ToolRunner` on the real
state, branch conditions are evaluated on the state as it is at that point, and a sample whose tool calls fail is
rejected (it does not fit the path it would take).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aqwen_spec.expr import EvalError, evaluate
from aqwen_spec.expr.episode import Episode, episode_context
from aqwen_spec.expr.evaluator import StateEnv
from aqwen_spec.resolved import ResolvedTool, ResolvedWorkflow
from aqwen_spec.results import TRANSFERRED, render_result
from aqwen_spec.semantics import ToolRunner, copy_state
from aqwen_spec.semantics.user import say, say_problem
from aqwen_spec.templates import render
from aqwen_spec.tree import Action, Node, Select, Sequence

TRANSFER_TOOL = "transfer_to_human"
EFFECTS = -1
"""The "precondition index" of a call whose effects failed (a ``fail`` statement, or an error in them)."""
NO_BRANCH = -2
"""The "precondition index" of a select none of whose conditions held (``pos`` is the select's)."""


class SpecDefectHit(Exception):
    """A gold call failed on a defect of the tool's own spec (a run-time error that is not a declared ``fail``)."""

    def __init__(self, defect: Any, workflow: str) -> None:
        super().__init__(defect.describe())
        self.defect = defect
        self.workflow = workflow


class Rejected(Exception):
    """The sample cannot produce a valid gold trajectory; ``reason`` says why (for unreachable-branch hints), and
    ``path`` holds the branches taken before it was rejected (set by :meth:`TreeRunner.execute`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


class Uncovered(Rejected):
    """A gold call failed on a precondition: a case the tree has no branch for (unless it is out of scope).

    ``precondition`` is the index of the first failing precondition in the tool's ``requires`` (``EFFECTS`` when
    its effects failed); ``error`` the message the model would see; ``pos`` the call's position in the workflow."""

    def __init__(self, reason: str, tool: str, precondition: int, error: str, pos: Any) -> None:
        super().__init__(reason)
        self.tool = tool
        self.precondition = precondition
        self.error = error
        self.pos = pos


@dataclass
class GoldRun:
    """The result of executing a tree: the branches taken, the gold messages and calls, what the user knows."""

    path: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    knows: list[dict[str, Any]] = field(default_factory=list)
    informs: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "done"  # done | refused | transferred
    depth: int = 0
    said_at: dict[int, Any] = field(default_factory=dict)
    """The tree position (``Pos``) of the action behind each assistant statement, by message index."""
    say_problems: list[tuple[Action, str]] = field(default_factory=list)
    """``say:`` texts that would not work with the simulated user (AQ623), with the reason."""


class TreeRunner:
    """Executes one workflow tree against one state (changed in place) with given slot values.

    ``reads``, when given, memoises the outcomes of calls made while the state is still the one the run began on
    (no write yet): a declarative tool without effects gives the same outcome for the same arguments on the same
    state, so runs on a pooled state share them (the caller keeps one dict per pooled state, and rolls the state
    back after every run)."""

    def __init__(self, workflow: ResolvedWorkflow, tools: dict[str, ResolvedTool], state: dict[str, Any],
                 slots: dict[str, Any], journal: list[Any] | None = None, runner: ToolRunner | None = None,
                 episode: Episode | None = None, reads: dict[tuple[str, str], Any] | None = None) -> None:
        self.workflow = workflow
        # a runner reused across runs on the same state keeps its SQL view while the state is unchanged
        self.runner = runner if runner is not None else ToolRunner(tools, state, journal)
        self.runner.episode = self.episode = episode  # the task's clock and generator, as its episodes will have
        self.reads = reads
        self.version = self.runner.version  # every write bumps it: while unchanged, the state is the initial one
        self.state = state
        self.env: dict[str, Any] = StateEnv(state, slots, workflow.library)  # reads the live state, and `state` itself
        self.slots = slots
        self.run = GoldRun()

    def execute(self) -> GoldRun:
        try:
            with episode_context(self.episode):
                self._node(self.workflow.tree, 1)
        except Rejected as exc:
            exc.path = list(self.run.path)
            raise
        return self.run

    def _node(self, node: Node, depth: int) -> bool:
        """Run a node; False once the episode has ended (a refusal or a transfer)."""
        if depth > self.run.depth:
            self.run.depth = depth
        if isinstance(node, Sequence):
            return all(self._node(child, depth + 1) for child in node.children)
        if isinstance(node, Select):
            for branch in node.branches:
                if branch.when is None or self._truthy(branch.when.expr):
                    self.run.path.append(branch.name)
                    return self._node(branch.body, depth + 1)
            raise Uncovered("no branch of a select matched (add an 'otherwise')", "", NO_BRANCH, "", node.pos)
        return self._action(node)

    def _truthy(self, expr: Any) -> bool:
        try:
            return bool(evaluate(expr, self.env))
        except EvalError as exc:
            raise Rejected(f"a branch condition failed: {exc.message}") from None

    def _value(self, action: Action, name: str) -> Any:
        arg = action.args.get(name)
        if arg is None:
            return None
        if arg.is_text:
            if "{" not in arg.text:  # plain text (what render gives it back as, without the context)
                return arg.text
            try:
                return render(arg.text, {**self.state, **self.env})
            except Exception as exc:  # an undefined name in a text template: report, don't crash
                raise Rejected(f"{action.kind}: cannot render '{arg.text}': {exc}") from None
        try:
            return evaluate(arg.expr, self.env)
        except EvalError as exc:
            raise Rejected(f"{action.kind} {name}: {exc.message}") from None

    def _say(self, text: str) -> None:
        self.run.messages.append({"role": "assistant", "content": text})

    def _action(self, action: Action) -> bool:
        kind = action.kind
        if kind == "call":
            # copies: the gold trajectory must not share containers with the state it ran on
            args = {}
            for name in action.args:
                value = self._value(action, name)
                args[name] = value if type(value) in _EXACT else copy_state(value)
            self._call(action, args)
            return True
        if kind == "ask_user":
            about = self._value(action, "about") or "the details"
            reveals = self._value(action, "reveals")
            self._say(self._spoken(action, f"Could you tell me {about}?", about=about))
            self.run.knows.append({"about": about, "value": copy_state(reveals)})
            self.run.messages.append({"role": "user", "content": "" if reveals is None else say(reveals)})
            return True
        if kind == "inform_user":
            value = self._value(action, "value")
            about = self._value(action, "about")
            self.run.informs.append({"about": about, "value": copy_state(value)})
            self.run.said_at[len(self.run.messages)] = action.pos
            default = f"{about}: {say(value)}" if about else say(value)
            self._say(self._spoken(action, default, value=say(value), about=about or "", told=value))
            return True
        if kind == "confirm":
            about = self._value(action, "about") or "this action"
            self._say(self._spoken(action, f"Please confirm: {about}. Shall I go ahead?", about=about))
            self.run.messages.append({"role": "user", "content": "Yes, go ahead."})
            return True
        if kind == "refuse":
            reason = self._value(action, "reason") or "it is against the policy"
            self._say(self._spoken(action, f"I'm sorry, I can't do that: {reason}.", reason=reason))
            self.run.outcome = "refused"
            return False
        if kind == "transfer":
            reason = self._value(action, "reason") or "this needs a person"
            to = self._value(action, "to")
            spoken = self._spoken(action, "", reason=reason, to=to or "")
            arguments = {"reason": reason} if to is None else {"reason": reason, "destination": to}
            self.run.messages.append({"role": "assistant", "content": spoken,
                                      "tool_calls": [{"name": TRANSFER_TOOL, "arguments": arguments}]})
            self.run.messages.append({"role": "tool", "name": TRANSFER_TOOL,
                                      "content": render_result(TRANSFERRED, self.runner.output)})
            self.run.calls.append({"name": TRANSFER_TOOL, "arguments": dict(arguments), "ok": True,
                                   "result": dict(TRANSFERRED)})
            self.run.outcome = "transferred"
            return False
        raise Rejected(f"unknown action {kind}")

    def _spoken(self, action: Action, default: str, told: Any = None, **names: Any) -> str:
        """The gold message of a user action: its ``say:`` template rendered (with the action's own values as
        ``names``), checked to read as what the action is; else ``default``."""
        template = action.args.get("say")
        if template is None:
            return default
        try:
            text = render(template.text, {**self.env, **names}).strip()
        except Exception as exc:  # an undefined name for this sample: report, don't crash
            raise Rejected(f"{action.kind}: cannot render its say text '{template.text}': {exc}") from None
        problem = say_problem(action.kind, text, told)
        if problem is not None:
            self.run.say_problems.append((action, problem))
        return text

    def _outcome(self, tool: str, args: dict[str, Any]) -> tuple[Any, Any]:
        """The call's outcome, and its value (decoded once) when it came from or went into the ``reads`` memo,
        else ``_UNREAD``. Runs on a pooled state share such values: the gold only reads them."""
        reads = self.reads
        if reads is None or self.runner.version != self.version:
            return self.runner.call(tool, args), _UNREAD
        spec = self.runner.tools.get(tool)
        if spec is None or spec.effects is not None or spec.implementation != "declarative" \
                or not _reprs_exactly(args):
            return self.runner.call(tool, args), _UNREAD
        key = (tool, repr(args))
        known = reads.get(key)
        if known is None:
            if len(reads) >= READS_SIZE:
                reads.clear()
            outcome = self.runner.call(tool, args)
            known = reads[key] = (outcome, outcome.value if outcome.ok else None)
        return known

    def _call(self, action: Action, args: dict[str, Any]) -> None:
        tool, bind = action.tool or "", action.bind
        outcome, value = self._outcome(tool, args)
        if outcome.defect is not None:
            raise SpecDefectHit(outcome.defect, self.workflow.name)
        if not outcome.ok:
            reason = f"the call {tool}({_args_text(args)}) failed: {outcome.error}"
            if outcome.precondition is not None:
                raise Uncovered(reason, tool, outcome.precondition, outcome.error or "", action.pos)
            if outcome.error_kind == "effect":  # a `fail` in its effects: a precondition written as code
                raise Uncovered(reason, tool, EFFECTS, outcome.error or "", action.pos)
            raise Rejected(reason)
        self.run.messages.append({"role": "assistant", "content": "",
                                  "tool_calls": [{"name": tool, "arguments": args}]})
        text = outcome.render()
        self.run.messages.append({"role": "tool", "name": tool, "content": text})
        if value is _UNREAD:
            value = outcome.value
        self.run.calls.append({"name": tool, "arguments": args, "ok": True, "result": value})
        if bind:
            self.env[bind] = value


_EXACT = (str, int, float, bool, type(None))
_UNREAD: Any = object()
READS_SIZE = 20_000
"""Outcomes kept per pooled state (the memo is emptied when full)."""


def _reprs_exactly(value: Any) -> bool:
    """Whether equal ``repr`` means equal value (types included) for ``value``: JSON-like data of builtin types."""
    t = type(value)
    if t in _EXACT:
        return True
    if t is list:
        return all(_reprs_exactly(v) for v in value)
    if t is dict:
        return all(type(k) in _EXACT and _reprs_exactly(v) for k, v in value.items())
    return False


def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())
