"""Checking a Problem: knob ranges, parameter and constraint expressions, the question, the answer and its check."""

from __future__ import annotations

from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.check.tool import _PYTHON_REF
from aqwen_spec.documents.problem import AnswerPython, Knob, Problem
from aqwen_spec.resolved import KnobIR, Origin, ResolvedProblem
from aqwen_spec.types import ANY, BOOL, FLOAT, INT, ListT, Type, is_assignable, unwrap_optional

RESERVED = ("answer",)
"""Names the solution template gives a meaning of their own."""


def _knob(checker: DocChecker, name: str, knob: Knob) -> KnobIR | None:
    path = ("knobs", name)
    if knob.range is not None:
        if knob.min is not None or knob.max is not None:
            checker.report("AQ108", f"knob '{name}' has both 'range' and 'min'/'max'", (*path, "range"),
                           "write either range: [min, max] or min: and max:")
            return None
        low, high = knob.range
        where = (*path, "range")
    else:
        if knob.min is None or knob.max is None:
            missing = "min" if knob.min is None else "max"
            checker.report("AQ104", f"knob '{name}' needs '{missing}' (or range: [min, max])", path)
            return None
        low, high = knob.min, knob.max
        where = (*path, "max")
    if low > high:
        checker.report("AQ108", f"knob '{name}': min {low} is larger than max {high}", where)
        return None
    default = low if knob.default is None else knob.default
    if not low <= default <= high:
        checker.report("AQ108", f"knob '{name}': default {default} is outside its range [{low}, {high}]",
                       (*path, "default"))
        return None
    if knob.step <= 0:
        checker.report("AQ108", f"knob '{name}': step must be positive, not {knob.step}", (*path, "step"))
        return None
    numbers = (low, high, default, knob.step)
    typ = INT if all(isinstance(v, int) and not isinstance(v, bool) for v in numbers) else FLOAT
    return KnobIR(name, low, high, default, knob.step, typ, knob.description)


def _answer_fits(check: str, typ: Type) -> str | None:
    """Why an answer of type ``typ`` cannot be compared by ``check`` (None: it can)."""
    t = unwrap_optional(typ)
    if t == ANY:
        return None
    if check == "numeric" and not is_assignable(t, FLOAT):
        return f"a numeric check needs a number, but the answer is {typ.render()}"
    if check in ("set", "list") and not isinstance(t, ListT):
        return f"a {check} check needs a list, but the answer is {typ.render()}"
    return None


def check_problem(checker: DocChecker, doc: Problem) -> ResolvedProblem:
    from aqwen_spec.expr import Scope, check_expr

    knobs: dict[str, KnobIR] = {}
    for name, knob in doc.knobs.items():
        ir = _knob(checker, name, knob)
        knobs[name] = ir if ir is not None else KnobIR(name, 0, 0, 0, 1, INT)
    base: dict[str, Type] = {name: k.type for name, k in knobs.items()}
    params: dict[str, Any] = {}
    param_types: dict[str, Type] = {}
    for name, text in doc.params.items():
        if name in knobs or name in RESERVED:
            what = "a knob" if name in knobs else "the solution's answer"
            checker.report("AQ106", f"param '{name}' has the name of {what}", ("params", name), key=True,
                           hint="rename the param")
        scope = Scope({**base, **param_types}, sampling=True)
        expr = checker.expr(text, ("params", name), scope)
        if expr is not None:
            params[name] = expr
            param_types[name] = check_expr(expr, scope)[0]
        else:
            param_types[name] = ANY
    names = {**base, **param_types}
    constraints = []
    for i, text in enumerate(doc.constraints):
        expr = checker.expr(text, ("constraints", i), Scope(names), BOOL, "a constraint")
        if expr is not None:
            constraints.append(expr)
    checker.template(doc.question, ("question",), set(names))
    answer: Any = None
    answer_python = None
    answer_type: Type = ANY
    if isinstance(doc.answer, AnswerPython):
        answer_python = doc.answer.python
        if not _PYTHON_REF.match(answer_python):
            checker.report("AQ310", f"'{answer_python}' is not a 'package.module:function' reference",
                           ("answer", "python"))
    else:
        answer = checker.parse_expr(doc.answer, ("answer",))
        if answer is not None:
            answer_type = checker.check_expr(answer, ("answer",), Scope(names), None, "the answer")
            why = _answer_fits(doc.check, answer_type)
            if why is not None:
                checker.report("AQ312", why, ("check",), f"use check: {_suggest(answer_type)}")
    if doc.tolerance is not None and doc.check != "numeric":
        checker.report("AQ312", f"'tolerance' applies to check: numeric, not check: {doc.check}", ("tolerance",))
    if doc.solution is not None:
        checker.template(doc.solution, ("solution",), {*names, *RESERVED})
    return ResolvedProblem(
        doc.name, doc.domain, doc.description, knobs, params, param_types, constraints, doc.question, answer,
        answer_python, answer_type, doc.check, doc.tolerance, doc.solution, Origin(checker.path, checker.pos(())),
    )


def _suggest(typ: Type) -> str:
    t = unwrap_optional(typ)
    if isinstance(t, ListT):
        return "list or set"
    if is_assignable(t, FLOAT):
        return "numeric"
    return "exact"
