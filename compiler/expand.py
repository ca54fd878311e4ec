"""Running a workflow's behaviour tree on a sampled state: the path it takes and its gold trajectory.

The tree is executed, not simulated: tool calls run through :class:`aqwen_spec.semantics.ToolRunner` on the real
state, branch conditions are evaluated on the state as it is at that point, and a sample whose tool calls fail is
rejected (it does not fit the path it would take).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aqwen_spec.expr import EvalError
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.episode import Episode, episode_context
from aqwen_spec.expr.evaluator import DEFAULT_MAX_STEPS, StateEnv, compile_expr
from aqwen_spec.resolved import ResolvedTool, ResolvedWorkflow
from aqwen_spec.results import TRANSFERRED, ResultFormat, render_result
from aqwen_spec.semantics import ToolRunner, copy_state
from aqwen_spec.semantics.frame import Frame
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


@dataclass(slots=True)
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

    @classmethod
    def start(cls) -> GoldRun:
        """``GoldRun()``, made without the default factories' calls (one is made per distinct sample)."""
        run = cls.__new__(cls)
        run.path, run.messages, run.calls, run.knows, run.informs = [], [], [], [], []
        run.outcome, run.depth, run.said_at, run.say_problems = "done", 0, {}, []
        return run


class TreeRunner:
    """Executes one workflow tree against one state (changed in place) with given slot values.

    The tree runs as a :class:`Plan` compiled once per workflow (closures per node, expressions compiled, arguments
    sorted into text, templates and expressions), evaluated in one frame per run that gets a fresh step budget for
    each expression, as :func:`aqwen_spec.expr.evaluate` gives each call.

    ``reads``, when given, memoises the outcomes of calls made while the state is still the one the run began on
    (no write yet): a declarative tool without effects gives the same outcome for the same arguments on the same
    state, so runs on a pooled state share them (the caller keeps one dict per pooled state, and rolls the state
    back after every run)."""

    __slots__ = ("env", "episode", "frame", "reads", "run", "runner", "slots", "state", "version", "workflow")

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
        # what expressions run in: the env itself, with their step budget under a key no template can name
        self.frame = Frame(self.env, own=True)
        self.slots = slots
        self.run = GoldRun.start()

    def execute(self) -> GoldRun:
        try:
            if self.episode is None:  # nothing to install (episode_context(None) changes nothing)
                plan_of(self.workflow)(self)
            else:
                with episode_context(self.episode):
                    plan_of(self.workflow)(self)
        except Rejected as exc:
            exc.path = list(self.run.path)
            raise
        return self.run

    def bind(self, name: str, value: Any) -> None:
        self.env[name] = value  # the frame's names too

    def _say(self, text: str) -> None:
        self.run.messages.append({"role": "assistant", "content": text})

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
                or not _reprs_exactly_args(args):
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
        messages = self.run.messages
        messages.append({"role": "assistant", "content": "", "tool_calls": [{"name": tool, "arguments": args}]})
        messages.append({"role": "tool", "name": tool, "content": outcome.render()})
        if value is _UNREAD:
            value = outcome.value
        self.run.calls.append({"name": tool, "arguments": args, "ok": True, "result": value})
        if bind:
            self.bind(bind, value)


Step = Callable[[TreeRunner], bool]
"""A compiled node: runs on a :class:`TreeRunner`; False once the episode has ended (a refusal or a transfer)."""
Value = Callable[[TreeRunner], Any]


def plan_of(workflow: ResolvedWorkflow) -> Step:
    """The workflow's tree compiled (once per tree) into a :data:`Step`."""
    tree = workflow.tree
    entry = _PLANS.get(id(tree))
    if entry is not None and entry[0] is tree:
        return entry[1]
    step = _node(tree, 1)
    if len(_PLANS) >= 1000:
        _PLANS.clear()
    _PLANS[id(tree)] = (tree, step)  # the tree is kept alive: its id names no other while here
    return step


_PLANS: dict[int, tuple[Node, Step]] = {}


def _node(node: Node, depth: int) -> Step:
    if isinstance(node, Sequence):
        return _sequence([_node(child, depth + 1) for child in node.children], depth)
    if isinstance(node, Select):
        return _select(node, depth)
    return _action(node, depth)


def _sequence(children: list[Step], depth: int) -> Step:
    def sequence_step(r: TreeRunner) -> bool:
        run = r.run
        if depth > run.depth:
            run.depth = depth
        for child in children:  # noqa: SIM110 (a loop: no generator per sequence run)
            if not child(r):
                return False
        return True

    return sequence_step


def _select(node: Select, depth: int) -> Step:
    branches = [(b.name, None if b.when is None else (b.when.expr, compile_expr(b.when.expr)),
                 _node(b.body, depth + 1)) for b in node.branches]
    pos = node.pos

    def select_step(r: TreeRunner) -> bool:
        run = r.run
        if depth > run.depth:
            run.depth = depth
        for name, when, body in branches:
            if when is not None:
                try:
                    holds = bool(r.frame.evaluate(*when))
                except EvalError as exc:
                    raise Rejected(f"a branch condition failed: {exc.message}") from None
                if not holds:
                    continue
            run.path.append(name)
            return body(r)
        raise Uncovered("no branch of a select matched (add an 'otherwise')", "", NO_BRANCH, "", pos)

    return select_step


def _value(action: Action, name: str) -> Value:
    """What an argument of ``action`` reads as, compiled: None when absent, plain text as it is, a template
    rendered over the state and the run's names, an expression evaluated."""
    arg = action.args.get(name)
    if arg is None:
        return _none
    if arg.is_text:
        text = arg.text
        if "{" not in text:  # plain text (what render gives it back as, without the context)
            return lambda r: text
        kind = action.kind

        def template(r: TreeRunner) -> Any:
            try:
                return render(text, {**r.state, **r.env})
            except Exception as exc:  # an undefined name in a text template: report, don't crash
                raise Rejected(f"{kind}: cannot render '{text}': {exc}") from None

        return template
    fn, what = compile_expr(arg.expr), f"{action.kind} {name}"

    def expression(r: TreeRunner) -> Any:
        # Frame.evaluate inlined (a fresh step budget, its errors as EvalError's messages): one call less per value
        frame = r.frame
        budget = frame.budget
        budget.left = DEFAULT_MAX_STEPS
        budget.depth = 0
        try:
            return fn(frame.names)
        except EvalError as exc:
            raise Rejected(f"{what}: {exc.message}") from None
        except RecursionError:
            raise Rejected(f"{what}: value nested too deeply") from None
        except Exception as exc:  # as Frame.evaluate words it
            raise Rejected(f"{what}: internal error: {type(exc).__name__}: {exc}") from None

    node = arg.expr
    if type(node) is A.Field and type(node.obj) is A.Name:  # `wo.id`, the usual argument: no frame call when
        var, field_name = node.obj.id, node.name           # the name is the run's own and holds a record

        def name_field(r: TreeRunner) -> Any:
            o = r.frame.names.get(var)  # the run's own names only (no state field read through the env)
            if type(o) is dict:
                return o.get(field_name)  # what the closure gives (reading a field charges no step)
            return expression(r)  # anything else, errors included, as the closure does it

        return name_field
    return expression


def _none(r: TreeRunner) -> Any:
    return None


def _action(action: Action, depth: int) -> Step:
    """The action compiled; each closure first records the depth it runs at (as a sequence or select does)."""
    kind = action.kind
    spoken = "say" in action.args  # a say: template to render (else the default text, as _spoken gives it)
    if kind == "call":
        values = [(name, _value(action, name)) for name in action.args]

        def call(r: TreeRunner) -> bool:
            if depth > r.run.depth:
                r.run.depth = depth
            # copies: the gold trajectory must not share containers with the state it ran on
            args = {}
            for name, get in values:
                value = get(r)
                args[name] = value if type(value) in _EXACT else copy_state(value)
            r._call(action, args)
            return True

        return call
    if kind == "ask_user":
        about_of, reveals_of = _value(action, "about"), _value(action, "reveals")

        def ask_user(r: TreeRunner) -> bool:
            if depth > r.run.depth:
                r.run.depth = depth
            about = about_of(r) or "the details"
            reveals = reveals_of(r)
            default = f"Could you tell me {about}?"
            r._say(r._spoken(action, default, about=about) if spoken else default)
            r.run.knows.append({"about": about, "value": reveals if type(reveals) in _EXACT else copy_state(reveals)})
            r.run.messages.append({"role": "user", "content": "" if reveals is None else say(reveals)})
            return True

        return ask_user
    if kind == "inform_user":
        value_of, about_of = _value(action, "value"), _value(action, "about")

        def inform_user(r: TreeRunner) -> bool:
            if depth > r.run.depth:
                r.run.depth = depth
            value = value_of(r)
            about = about_of(r)
            run = r.run
            run.informs.append({"about": about, "value": value if type(value) in _EXACT else copy_state(value)})
            run.said_at[len(run.messages)] = action.pos
            said = say(value)
            default = f"{about}: {said}" if about else said
            r._say(r._spoken(action, default, value=said, about=about or "", told=value) if spoken else default)
            return True

        return inform_user
    if kind == "confirm":
        about_of = _value(action, "about")

        def confirm(r: TreeRunner) -> bool:
            if depth > r.run.depth:
                r.run.depth = depth
            about = about_of(r) or "this action"
            default = f"Please confirm: {about}. Shall I go ahead?"
            r._say(r._spoken(action, default, about=about) if spoken else default)
            r.run.messages.append({"role": "user", "content": "Yes, go ahead."})
            return True

        return confirm
    if kind == "refuse":
        reason_of = _value(action, "reason")

        def refuse(r: TreeRunner) -> bool:
            if depth > r.run.depth:
                r.run.depth = depth
            reason = reason_of(r) or "it is against the policy"
            r._say(r._spoken(action, f"I'm sorry, I can't do that: {reason}.", reason=reason))
            r.run.outcome = "refused"
            return False

        return refuse
    if kind == "transfer":
        reason_of, to_of = _value(action, "reason"), _value(action, "to")

        def transfer(r: TreeRunner) -> bool:
            if depth > r.run.depth:
                r.run.depth = depth
            reason = reason_of(r) or "this needs a person"
            to = to_of(r)
            spoken = r._spoken(action, "", reason=reason, to=to or "")
            arguments = {"reason": reason} if to is None else {"reason": reason, "destination": to}
            run = r.run
            run.messages.append({"role": "assistant", "content": spoken,
                                 "tool_calls": [{"name": TRANSFER_TOOL, "arguments": arguments}]})
            run.messages.append({"role": "tool", "name": TRANSFER_TOOL, "content": _transferred(r.runner.output)})
            run.calls.append({"name": TRANSFER_TOOL, "arguments": dict(arguments), "ok": True,
                              "result": dict(TRANSFERRED)})
            run.outcome = "transferred"
            return False

        return transfer

    def unknown(r: TreeRunner) -> bool:
        if depth > r.run.depth:
            r.run.depth = depth
        raise Rejected(f"unknown action {kind}")

    return unknown


@lru_cache(maxsize=64)
def _transferred(fmt: ResultFormat) -> str:
    """What the transfer tool's result shows as in ``fmt`` (the same text for every transfer)."""
    return render_result(TRANSFERRED, fmt)


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


def _reprs_exactly_args(args: dict[str, Any]) -> bool:
    """``_reprs_exactly(args)`` for a call's arguments (names are strings), scalars checked without a call."""
    for value in args.values():  # noqa: SIM110 (a loop: no generator per call)
        if type(value) not in _EXACT and not _reprs_exactly(value):
            return False
    return True


def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())
