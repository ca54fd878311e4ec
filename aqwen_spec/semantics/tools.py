"""Tool calls on a state: arguments checked against the schema, preconditions, effects all-or-nothing, a result.

Anything the model can get wrong (unknown tool, missing, extra or mistyped arguments, a failed precondition) gives a
:class:`ToolOutcome` with ``ok=False`` and a message meant for the model, never an exception.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr import EffectFailed, EvalError, compile_expr, evaluate, execute, rollback
from aqwen_spec.expr.episode import CURRENT, Episode
from aqwen_spec.expr.evaluator import DEFAULT_MAX_STEPS, _Budget, state_env
from aqwen_spec.resolved import ResolvedTool
from aqwen_spec.results import DEFAULT, ResultFormat, render_error, render_json, render_result
from aqwen_spec.semantics.state import copy_state
from aqwen_spec.semantics.toolcode import step_of
from aqwen_spec.types import BOOL, DATE, DATETIME, FLOAT, INT, STR, EnumT, OptionalT, Prim, Type
from aqwen_spec.values import check_value, from_json, has_json_form

ERROR_KINDS = ("unknown_tool", "bad_arguments", "precondition", "effect", "implementation", "spec_error")
"""Why a call failed. ``spec_error``: a precondition, an effect or ``returns`` hit a run-time error that is not a
declared ``fail`` (a missing key, a division by zero, a limit): a defect of the environment, not of the call."""


_UNSET: Any = object()
_DROPPED: Any = object()  # the value of an outcome of a runner that keeps no values (``keep_values`` off)


class SpecDefect:
    """Where a tool's own expressions failed at run time: ``part`` is ``let``, ``requires``, ``effects`` or
    ``returns``, ``index`` the binding's or precondition's (from 0), ``pos`` the position inside the expression
    (``None`` if unknown)."""

    __slots__ = ("index", "message", "part", "pos", "tool")

    def __init__(self, tool: str, part: str, index: int, pos: Pos | None, message: str) -> None:
        self.tool, self.part, self.index, self.pos, self.message = tool, part, index, pos, message

    def describe(self) -> str:
        where = {"requires": f"precondition {self.index + 1}", "let": f"binding {self.index + 1}"}.get(
            self.part, self.part)
        return f"{where} of {self.tool}: {self.message}"


class ToolOutcome:
    """The result of one call: a value, or an error message for the model and its kind (for metrics).

    A declarative result in the default JSON format is rendered at once (a snapshot of the state at call time);
    ``value`` is decoded from that text only when someone asks, which keeps the step path free of deep copies.
    ``defect`` is set when the call failed on a defect of the tool's spec (``error_kind == "spec_error"``);
    ``precondition`` is the index (from 0) of the precondition that did not hold (``error_kind ==
    "precondition"``). ``fmt`` is how the outcome is shown (:mod:`aqwen_spec.results`), ``tool`` the
    name called.
    """

    __slots__ = ("_text", "_value", "defect", "error", "error_kind", "fmt", "ok", "precondition", "tool")

    def __init__(self, ok: bool, value: Any = _UNSET, error: str | None = None, error_kind: str | None = None,
                 text: str | None = None, defect: SpecDefect | None = None, precondition: int | None = None,
                 fmt: ResultFormat = DEFAULT, tool: str = "") -> None:
        self.ok = ok
        self._value = None if value is _UNSET and text is None else value
        self._text = text
        self.error = error
        self.error_kind = error_kind
        self.defect = defect
        self.precondition = precondition
        self.fmt = fmt
        self.tool = tool

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            self._value = _decode(self._text or "null")
        elif self._value is _DROPPED:
            raise RuntimeError(f"the value of this call of {self.tool} was not kept (its runner has keep_values off)"
                               "; its text is render()")
        return self._value

    def render(self) -> str:
        """What the model sees: the value in the tool's result format, or the error in its error format."""
        if self._text is None:
            self._text = render_result(self._value, self.fmt) if self.ok else \
                render_error(self.error or "", self.fmt, self.tool, self.error_kind or "")
        return self._text

    def __repr__(self) -> str:
        return f"ToolOutcome(ok={self.ok}, {self.render()[:80]})"


_SCAN: Any = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009 (json.loads's scanner, its default settings)


def _decode(text: str) -> Any:
    """``json.loads(text)``: a result's text as render_json writes it (nothing around the value) is scanned at once,
    anything else goes through ``json.loads`` (its errors included)."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


class _Done(ToolOutcome):
    """A successful outcome, made with four stores (a generated step function makes one per call)."""

    __slots__ = ()
    ok = True
    error = error_kind = defect = precondition = None

    def __init__(self, value: Any, text: str, fmt: ResultFormat, tool: str) -> None:
        self._value, self._text, self.fmt, self.tool = value, text, fmt, tool


def _success(fmt: ResultFormat, tool: str, dropped: bool = False) -> type[_Done]:
    """The class of one tool's successful outcomes: its format and name are the class's, so a generated step function
    makes one with ``object.__new__`` and two stores (``_value``, ``_text``); ``dropped``: the class of those of a
    runner that keeps no values, whose value is the class's too (one store)."""
    return type("_Done", (_Done,), {"__slots__": (), "fmt": fmt, "tool": tool, "__module__": __name__,
                                    **({"_value": _DROPPED} if dropped else {})})


class _Refused(ToolOutcome):
    """A call refused by a precondition or a ``fail``, its text rendered."""

    __slots__ = ()
    ok = False
    defect = None
    _value = None

    def __init__(self, error: str, kind: str, text: str, precondition: int | None, fmt: ResultFormat, tool: str
                 ) -> None:
        self.error, self.error_kind, self._text, self.precondition, self.fmt, self.tool = \
            error, kind, text, precondition, fmt, tool


def _refusal(precondition: int, fmt: ResultFormat, tool: str) -> type[_Refused]:
    """The class of the refusals by one precondition of one tool: its kind, index, format and tool are the class's,
    so a generated step function makes one with ``object.__new__`` and two stores (``error``, ``_text``)."""
    return type("_Refused", (_Refused,), {"__slots__": (), "error_kind": "precondition",
                                          "precondition": precondition, "fmt": fmt, "tool": tool,
                                          "__module__": __name__})


class ToolError(Exception):
    """Raised by a ``python:`` tool implementation to return an error message to the model."""


def _fast_check(value: Any, t: Type) -> bool:
    """A quick check for the common scalar parameter types; falls back to the full check for the rest."""
    if t is STR or t == STR:
        return type(value) is str
    if t == INT:
        return type(value) is int
    if t == FLOAT:
        return type(value) in (int, float)
    if t == BOOL:
        return type(value) is bool
    if isinstance(t, EnumT):
        return type(value) is str and value in t.values
    if isinstance(t, Prim) and t in (DATE, DATETIME):
        return not check_value(value, t)
    return not check_value(value, t)


class ToolRunner:
    """Runs a domain's tools against one state (the state dict is changed in place by write tools)."""

    def __init__(
        self, tools: Mapping[str, ResolvedTool], state: dict[str, Any], journal: list[Any] | None = None,
        output: ResultFormat = DEFAULT,
    ) -> None:
        self.tools = tools
        self.output = output
        """How calls of no known tool are shown (the domain's ``result:``)."""
        self.episode: Episode | None = None
        """The episode's clock and generator, installed for each call; a failed call undoes its draws."""
        self.state = state
        self.journal = journal
        """When set, declarative effects append their changes here, to be undone with ``expr.rollback``."""
        self.dirty = False
        """Whether a python tool changed the state (such changes are not journaled)."""
        self._compiled: dict[str, list[tuple[Any, str]]] = {}
        self._steps: dict[str, Any] = {}
        """Tool name -> what runs its calls (made by :meth:`_step`)."""
        self.plain_steps: dict[str, Any] = {}
        """Those of :attr:`_steps` that read no episode (``step(runner, args)`` is then the whole call, as
        :meth:`call` makes it): the environment's step path calls them without :meth:`call`'s frame."""
        self.keep_values = True
        """Whether successful outcomes keep their value (a copy, for gold runs); off, only their text is kept, and
        results are never copied (the environment's step path shows the text and nothing else)."""
        self.generated = True
        """Whether declarative tools run as generated Python functions (:mod:`aqwen_spec.semantics.toolcode`);
        off, step by step with the closures (the reference the generated code is tested against)."""
        self.budget = _Budget(DEFAULT_MAX_STEPS)
        """The step budget of the call in progress (a generated step function fills it again for each call)."""
        self.version = 0  # bumped by every successful write: SQL views rebuild when it changes
        self._sql: tuple[tuple[int, Any, Any], sqlite3.Connection] | None = None

    def call(self, name: str, args: Any) -> ToolOutcome:
        step = self._steps.get(name)
        if step is None:
            step = self._step(name)
        episode = self.episode
        if episode is None or not step.episodic:  # a tool that neither draws nor reads the clock
            return step(self, args)
        token = CURRENT.set(episode)
        try:
            episode.begin()
            outcome: ToolOutcome = step(self, args)
            if not outcome.ok and len(episode._log) > episode._mark:  # it drew: Episode.undo()
                episode.undo()
            return outcome
        finally:
            CURRENT.reset(token)

    def _step(self, name: str) -> Any:
        """What runs a call of ``name``: the tool's generated function, or the step-by-step path."""
        tool = self.tools.get(name)
        step = step_of(tool, _KIT) if tool is not None and self.generated else None
        if step is None:
            def step(runner: ToolRunner, args: Any) -> ToolOutcome:
                return runner._call(name, args)

            step.episodic = True  # type: ignore[attr-defined]
        if tool is not None:  # unknown names are not remembered: the model may make up any number of them
            self._steps[name] = step
            if not getattr(step, "episodic", True):
                self.plain_steps[name] = step
        return step

    def _call(self, name: str, args: Any) -> ToolOutcome:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools))
            return ToolOutcome(False, error=f"unknown tool '{name}'; tools: {known}", error_kind="unknown_tool",
                               fmt=self.output, tool=name)
        fmt = tool.result
        checked = self._check_args(tool, args)
        if isinstance(checked, ToolOutcome):
            checked.fmt, checked.tool = fmt, name
            return checked
        state = self.state
        # one step budget for the whole call; names not given read the live state, so returns sees the effects
        env = state_env(state, checked, library=tool.library)
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = self._compiled[name] = [(compile_expr(pre.when), pre.error) for pre in tool.requires]
        bindings = tool.bindings
        if bindings:  # computed once, in order, before the preconditions: requires, effects and returns read them
            for i, (bname, bexpr) in enumerate(bindings):
                try:
                    env[bname] = evaluate(bexpr, env)
                except EvalError as exc:
                    return _spec_error(name, "let", i, exc, fmt)
        for i, (holds_fn, error) in enumerate(compiled):
            try:
                holds = holds_fn(env)
            except Exception as exc:  # never "condition not met": the spec cannot evaluate its own condition
                return _spec_error(name, "requires", i, exc, fmt)
            if not holds:
                shown = {**(tool.library.constants if tool.library else {}), **state, **checked,
                         **{b: env[b] for b, _ in bindings}}
                return ToolOutcome(False, error=_render_error(error, shown), error_kind="precondition",
                                   precondition=i, fmt=fmt, tool=name)
        if tool.implementation == "python":
            return self._call_python(tool, checked)
        if tool.implementation == "sql":
            return self._call_sql(tool, checked)
        changes: list[Any] = []
        if tool.effects is not None:
            bound: dict[str, Any] = {}
            try:
                execute(tool.effects, env, state, journal=changes, locals_out=bound)
            except EffectFailed as exc:
                return ToolOutcome(False, error=exc.message, error_kind="effect", fmt=fmt, tool=name)
            except EvalError as exc:
                return _spec_error(name, "effects", 0, exc, fmt)
            env.update(bound)  # returns may name the effects' locals (a new record's id)
        value: Any = None if fmt.format == "python" else {"ok": True}  # Python's None for a method without return
        if tool.returns is not None:
            try:
                value = evaluate(tool.returns, env)
            except EvalError as exc:
                rollback(changes)  # all or nothing: a call whose result cannot be computed changes nothing
                return _spec_error(name, "returns", 0, exc, fmt)
        if tool.effects is not None:
            if self.journal is not None:
                self.journal.extend(changes)
            self.version += 1
        if fmt is DEFAULT:
            return ToolOutcome(True, _UNSET, text=render_json(value), tool=name)
        # another format: its text is the snapshot the model sees, and the value a copy (read by gold runs)
        text = render_result(value, fmt)
        return ToolOutcome(True, copy_state(value) if self.keep_values else _DROPPED, text=text, fmt=fmt, tool=name)

    def _check_args(self, tool: ResolvedTool, args: Any) -> dict[str, Any] | ToolOutcome:
        if not isinstance(args, dict):
            return ToolOutcome(False, error=f"arguments of {tool.name} must be a JSON object",
                               error_kind="bad_arguments")
        params = tool.params
        for key in args:
            if key not in params:
                names = ", ".join(params) or "none"
                return ToolOutcome(False, error=f"{tool.name} has no argument '{key}' (arguments: {names})",
                                   error_kind="bad_arguments")
        checked: dict[str, Any] = {}
        for pname, param in params.items():
            if pname in args:
                value = args[pname]
                if value is None and isinstance(param.type, OptionalT):
                    checked[pname] = None
                    continue
                if has_json_form(param.type):  # a set sorted, an int-keyed map's "3" as 3
                    value = from_json(value, param.type)
                if not _fast_check(value, param.type):
                    return ToolOutcome(False, error=f"argument '{pname}' of {tool.name} must be "
                                       f"{_describe(param.type)}, got {json.dumps(value)[:60]}",
                                       error_kind="bad_arguments")
                checked[pname] = value
            elif param.required:
                return ToolOutcome(False, error=f"{tool.name} is missing argument '{pname}'",
                                   error_kind="bad_arguments")
            else:
                checked[pname] = copy_state(param.default)
        return checked

    def _call_python(self, tool: ResolvedTool, args: dict[str, Any]) -> ToolOutcome:
        fn = _import(tool.python or "")
        snapshot = copy_state(self.state)
        try:
            value = fn(self.state, **args)
        except ToolError as exc:
            self._restore(snapshot)
            return ToolOutcome(False, error=str(exc), error_kind="implementation", fmt=tool.result, tool=tool.name)
        except Exception as exc:  # the escape hatch is user code: its bugs are the tool's errors, never ours
            self._restore(snapshot)
            return ToolOutcome(False, error=f"{tool.name} failed: {type(exc).__name__}: {exc}",
                               error_kind="implementation", fmt=tool.result, tool=tool.name)
        if tool.access == "write" or self.state != snapshot:  # a read tool that wrote all the same: unjournaled too
            self.version += 1
            self.dirty = True
        return ToolOutcome(True, copy_state(value), fmt=tool.result, tool=tool.name)

    def _restore(self, snapshot: dict[str, Any]) -> None:
        """Undo what a failed python tool changed. Only when it changed something: restoring puts copies in place
        of the state's containers, behind the undo journal (which still names the old ones), so the state is then
        dirty. A tool that failed without touching the state (the usual case) leaves every container where it was,
        and the journal valid."""
        if self.state != snapshot:
            _restore(self.state, snapshot)
            self.dirty = True
            self.version += 1

    def _call_sql(self, tool: ResolvedTool, args: dict[str, Any]) -> ToolOutcome:
        key = (self.version, tool.fulltext, tool.tables)
        if self._sql is None or self._sql[0] != key:
            if self._sql is not None:  # the replaced view's database is closed now, not when a collection finds it
                self._sql[1].close()
            from aqwen_spec.semantics.sqlview import build_database

            self._sql = (key, build_database(self.state, tool.fulltext, tool.tables))
        conn = self._sql[1]
        try:
            cur = conn.execute(tool.sql or "", args)
            cols = [c[0] for c in cur.description or ()]
            rows = [dict(zip(cols, row, strict=True)) for row in cur.fetchmany(1000)]
        except sqlite3.Error as exc:
            return ToolOutcome(False, error=f"{tool.name} failed: {exc}", error_kind="implementation",
                               fmt=tool.result, tool=tool.name)
        return ToolOutcome(True, rows, fmt=tool.result, tool=tool.name)


def _spec_error(tool: str, part: str, index: int, exc: Exception, fmt: ResultFormat = DEFAULT) -> ToolOutcome:
    """A call that failed on the spec's own mistake: the agent is told it is the environment's defect."""
    message = exc.message if isinstance(exc, EvalError) else f"{type(exc).__name__}: {exc}"
    defect = SpecDefect(tool, part, index, getattr(exc, "pos", None), message)
    error = (f"environment defect: {defect.describe()}. This is a fault of the environment, not of your call; "
             "nothing was changed.")
    return ToolOutcome(False, error=error, error_kind="spec_error", defect=defect, fmt=fmt, tool=tool)


def _describe(t: Type) -> str:
    if isinstance(t, EnumT):
        return "one of " + ", ".join(t.values)
    return {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}.get(
        t.render(), t.render()
    )


def _render_error(template: str, env: dict[str, Any]) -> str:
    from aqwen_spec.templates import render

    try:
        return render(template, env)
    except Exception:  # a template that cannot render still tells the model the call was refused
        return template


def _checked(runner: ToolRunner, tool: ResolvedTool, args: Any) -> dict[str, Any] | ToolOutcome:
    checked = runner._check_args(tool, args)
    if isinstance(checked, ToolOutcome):
        checked.fmt, checked.tool = tool.result, tool.name
    return checked


_KIT: dict[str, Any] = {
    "REFUSED": _Refused, "REFUSAL": _refusal, "SUCCESS": _success,
    "UNSET": _UNSET, "DROPPED": _DROPPED, "SPEC": _spec_error,
    "COPY": copy_state,
    "CHECK": _checked, "RENDER_ERROR": _render_error, "FAST_CHECK": _fast_check, "FROM_JSON": from_json,
}
"""What generated step functions call from here (:func:`aqwen_spec.semantics.toolcode.step_of`)."""

_IMPORTED: dict[str, Callable[..., Any]] = {}


def _import(ref: str) -> Callable[..., Any]:
    fn = _IMPORTED.get(ref)
    if fn is None:
        module, _, attr = ref.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        _IMPORTED[ref] = fn
    return fn


def _restore(state: dict[str, Any], snapshot: dict[str, Any]) -> None:
    state.clear()
    state.update(snapshot)
