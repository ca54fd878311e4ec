"""Scoring an episode with a verifier: each check passed or not, weights for partial credit, gates.

Reward = (sum of weights of passed checks) / (sum of weights of applicable checks); a failed gate makes it 0.
A check whose ``when`` is false does not apply. ``forbid`` counts every attempt to call the tool, successful or
not: trying a forbidden action is the violation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from aqwen_spec.expr import EvalError
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.evaluator import StateEnv
from aqwen_spec.expr.library import Library
from aqwen_spec.resolved import CheckIR, ResolvedVerifier
from aqwen_spec.semantics.frame import Frame


class CallRecord(NamedTuple):
    """One tool call of an episode (a tuple: made on every step, so it must be cheap)."""

    name: str
    arguments: dict[str, Any]
    ok: bool


@dataclass
class Evidence:
    """What a verifier looks at once an episode is over."""

    calls: list[CallRecord]
    assistant_text: str
    final_state: dict[str, Any]
    initial_state: dict[str, Any]
    slots: dict[str, Any]
    path: list[str]
    gold_final_state: dict[str, Any] | None = None
    outcome: str = "done"
    """How the episode ended: ``done``, ``refused`` (the agent declined) or ``transferred`` (to a human)."""
    gold_outcome: str = "done"
    same_final_state: Callable[[], bool] | None = None
    """Whether the final state equals the gold's, answered without comparing whole states (the runtime compares
    only what the episode's and the gold's journals touched); else ``final_state == gold_final_state``."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    weight: float
    applicable: bool
    passed: bool
    gate: bool = False
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "weight": self.weight, "applicable": self.applicable,
                "passed": self.passed, "gate": self.gate, "detail": self.detail}


@dataclass
class Score:
    reward: float
    success: bool
    checks: list[CheckResult] = field(default_factory=list)
    gate_failed: bool = False

    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.applicable and not c.passed]

    def to_json(self) -> dict[str, Any]:
        return {"reward": self.reward, "success": self.success, "gate_failed": self.gate_failed,
                "checks": [c.to_json() for c in self.checks]}


def initial_fields(verifiers: list[Any]) -> set[str]:
    """State fields verifiers read through ``initial.<field>``; ``{"*"}`` when they use ``initial`` otherwise."""
    from aqwen_spec.expr import ast as A

    found: set[str] = set()

    def visit(node: Any, parent: Any = None) -> None:
        if isinstance(node, A.Name) and node.id == "initial":
            if isinstance(parent, A.Field) and parent.obj is node:
                found.add(parent.name)
            else:
                found.add("*")
            return
        if isinstance(node, tuple):
            for item in node:
                visit(item, parent)
        elif hasattr(node, "__dataclass_fields__"):
            for name in node.__dataclass_fields__:
                visit(getattr(node, name), node)

    for verifier in verifiers:
        for check in verifier.checks:
            for expr in (check.expr, check.when, *check.args.values()):
                if expr is not None:
                    visit(expr)
    return found


def _env(ev: Evidence, library: Library | None = None) -> dict[str, Any]:
    """The names a verifier's checks read: the slots, then ``state``, ``initial``, ``branch`` and ``path`` over
    them; other names read the final state (through the library's env when there is one)."""
    # with a library, the domain's functions read the final state through the env
    env = {**ev.final_state, **ev.slots} if library is None else StateEnv(ev.final_state, ev.slots, library)
    env["state"] = ev.final_state
    env["initial"] = ev.initial_state
    env["branch"] = ev.path[-1] if ev.path else ""
    env["path"] = list(ev.path)
    return env


REFUSAL = re.compile(
    r"\b(can't|cannot|can not|unable to|not able to|won't|will not|not allowed|not permitted|must decline)\b", re.I
)


def outcome_of(calls: list[CallRecord], said: list[str], transfer_tool: str = "transfer_to_human") -> str:
    """How an episode ended: transferred (the transfer tool was called), refused (the agent declined), or done."""
    if any(c.name == transfer_tool and c.ok for c in calls):
        return "transferred"
    if any(REFUSAL.search(text) for text in said):
        return "refused"
    return "done"


# A number standing on its own: not part of a word or of an id such as WO-1042, P-11 or 2025-03-03 (a hyphen after a
# letter or digit joins, it is no minus sign), and not a piece of a longer number (3 is not stated by 3.5).
_NUMBER = re.compile(r"(?<![\w.])(?<![\w]-)-?\d[\d,]*(?:\.\d+)?(?![\w-]|\.\d)")


def mentions(text: str, value: Any) -> bool:
    """Whether the agent's text states ``value``: a number as a number standing on its own (``0`` is not stated by
    ``WO-1002``, ``3`` not by ``3.5``), with thousands separators allowed; a string case-insensitively as a whole
    token (``WO-100`` is not stated by ``WO-1002``, ``L1`` not by ``L10``); a bool as yes/true or no/false/not; a
    list or a record when each of its values is stated."""
    if value is None:
        return True
    if isinstance(value, bool):
        words = ("yes", "true") if value else ("no", "false", "not")
        return any(re.search(rf"\b{w}\b", text, re.IGNORECASE) for w in words)
    if isinstance(value, (int, float)):
        for match in _NUMBER.finditer(text):
            try:
                number = float(match.group().replace(",", ""))
            except ValueError:
                continue
            if math.isclose(number, float(value), rel_tol=1e-9, abs_tol=0.005):
                return True
        return False
    if isinstance(value, list):
        return all(mentions(text, v) for v in value)
    if isinstance(value, dict):
        return all(mentions(text, v) for v in value.values())
    needle = str(value).strip()
    if not needle:
        return True
    return _token(needle).search(text) is not None


@lru_cache(maxsize=4096)
def _token(needle: str) -> re.Pattern[str]:
    """``needle`` as a whole token, case-insensitively: no letter or digit right before or after (what the value
    itself begins or ends with decides)."""
    before = r"(?<![^\W_])" if re.match(r"[^\W_]", needle) else ""
    after = r"(?![^\W_])" if re.search(r"[^\W_]$", needle) else ""
    return re.compile(before + re.escape(needle) + after, re.IGNORECASE)


def _matches(check: CheckIR, call: CallRecord, frame: Frame) -> bool:
    if call.name != check.tool:
        return False
    arguments = call.arguments
    for name, expr in check.args.items():  # noqa: SIM110 (a loop: no generator per call looked at)
        if arguments.get(name) != frame.evaluate(expr):  # JSON values: != is not ==
            return False
    return True


def _run_check(check: CheckIR, ev: Evidence, frame: Frame) -> tuple[bool, str]:
    kind = check.kind
    if kind == "assert":
        return bool(frame.evaluate(check.expr)), ""
    if kind == "tells_user":
        value = frame.evaluate(check.expr)
        ok = mentions(ev.assistant_text, value)
        return ok, "" if ok else f"the agent never said {value!r}"
    if kind == "require":
        ok = any(c.ok and _matches(check, c, frame) for c in ev.calls)
        return ok, "" if ok else f"no successful call of {check.tool}"
    if kind == "forbid":
        bad = [c for c in ev.calls if _matches(check, c, frame)]
        return not bad, f"{check.tool} was called {len(bad)} time(s)" if bad else ""
    if kind == "same_outcome_as_gold":
        ok = ev.outcome == ev.gold_outcome
        return ok, "" if ok else f"the episode ended {ev.outcome}, the gold {ev.gold_outcome}"
    if kind == "same_final_state_as_gold":
        if ev.same_final_state is not None:
            ok = ev.same_final_state()
        elif ev.gold_final_state is None:
            return False, "no gold final state to compare with"
        else:  # the gold's own state (the compiler's check of a gold) is equal without a look
            ok = ev.final_state is ev.gold_final_state or ev.final_state == ev.gold_final_state
        return ok, "" if ok else "the final state differs from the gold final state"
    raise ValueError(f"unknown check kind {kind}")


def score(verifier: ResolvedVerifier, ev: Evidence) -> Score:
    return _score(verifier, ev, [])


def reward(verifier: ResolvedVerifier, ev: Evidence) -> float:
    """``score(verifier, ev).reward``, without the per-check results (what the compiler asks of every gold)."""
    return _score(verifier, ev, None).reward


def _score(verifier: ResolvedVerifier, ev: Evidence, results: list[CheckResult] | None) -> Score:
    """The score, with each check's result appended to ``results`` unless it is None. Every expression is evaluated
    as ``evaluate(expr, env)`` would, in one frame (see :class:`~aqwen_spec.semantics.frame.Frame`)."""
    frame = Frame(_env(ev, verifier.library), own=True)
    total = earned = 0.0
    gate_failed = False
    path = tuple(ev.path)
    when_memo = _WHEN
    for check in verifier.checks:
        try:
            when = check.when
            if when is None:
                applicable = True
            else:  # _applies' memo read here (no call when the path decides the condition, the usual case)
                known = when_memo.get((id(when), path))
                applicable = known[1] if known is not None and known[0] is when else _applies(when, path, frame)
            if applicable:
                passed, detail = _run_check(check, ev, frame)
            elif results is None:
                continue  # what follows adds nothing for a check that does not apply, but its result
            else:
                passed, detail = True, ""
        except EvalError as exc:
            applicable, passed, detail = True, False, f"could not evaluate: {exc.message}"
        if results is not None:
            results.append(CheckResult(check.name, check.kind, check.weight, applicable, passed, check.gate, detail))
        if not applicable:
            continue
        total += check.weight
        if passed:
            earned += check.weight
        elif check.gate:
            gate_failed = True
    reward = 0.0 if gate_failed else (earned / total if total > 0 else 1.0)
    return Score(reward, reward >= verifier.success_threshold - 1e-12, results or [], gate_failed)


def _applies(when: Any, path: tuple[str, ...], frame: Frame) -> bool:
    """``bool(frame.evaluate(when))``; remembered per path when ``when`` reads nothing but ``branch`` and ``path``
    (``branch == "refuse"``, the usual condition), whose values the path alone gives."""
    key = (id(when), path)
    known = _WHEN.get(key)
    if known is not None and known[0] is when:
        return known[1]
    holds = bool(frame.evaluate(when))
    pathlike = _PATHLIKE.get(id(when))
    if pathlike is None or pathlike[0] is not when:
        if len(_PATHLIKE) >= 10_000:
            _PATHLIKE.clear()
        pathlike = _PATHLIKE[id(when)] = (when, _of_path(when))  # kept: its id names no other while here
    if pathlike[1]:
        if len(_WHEN) >= 10_000:
            _WHEN.clear()
        _WHEN[key] = (when, holds)
    return holds


_WHEN: dict[tuple[int, tuple[str, ...]], tuple[Any, bool]] = {}
_PATHLIKE: dict[int, tuple[Any, bool]] = {}


def _of_path(expr: Any) -> bool:
    """Whether ``expr`` reads nothing but ``branch`` and ``path``: names, literals, comparisons, and/or/not, lists."""
    t = type(expr)
    if t is A.Name:
        return expr.id in ("branch", "path")
    if t is A.Lit:
        return True
    if t is A.Compare or t is A.BoolOp:
        return _of_path(expr.left) and _of_path(expr.right)
    if t is A.Not:
        return _of_path(expr.operand)
    if t is A.ListLit:
        return all(_of_path(item) for item in expr.items)
    return False
