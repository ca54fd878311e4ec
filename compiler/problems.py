"""Problem instances: parameters sampled under a seeded generator, the question rendered, the answer computed.

An instance is drawn from a *variant* of a problem: the problem at some knob settings (its difficulty), optionally
fed the answer of another problem (``compose``) and worded by a persona. The answer always comes from the problem's
``answer`` expression (or its Python function) evaluated on the drawn parameters, never from a model, and the same
variant and seed always give the same instance.

The compiler draws instances at the default knob settings into each bundle (``problems.jsonl``) with the problem
definitions as expression IR (``problems.json``), so the runtime draws more without parsing YAML.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import TYPE_CHECKING, Any

from aqwen_spec.diagnostics import Diagnostic
from aqwen_spec.resolved import KnobIR, Origin, ResolvedPersona, ResolvedProblem

if TYPE_CHECKING:
    from compiler.project import CompiledProject

DEFAULT_INSTANCES = 8
"""Instances per problem in a bundle (at the default knob settings)."""
MAX_TRIES = 200
"""Draws tried before giving up on a variant whose constraints are never met."""
COMPOSE_SYMBOL = "X"
"""How the second part of a composed problem names the first part's answer."""


class DrawError(Exception):
    """No instance could be drawn: a constraint never held, or an expression or template failed."""


# --- definitions to and from JSON ---------------------------------------------------------------------------------


def problem_to_json(p: ResolvedProblem) -> dict[str, Any]:
    from aqwen_spec.expr.serialize import to_json
    from aqwen_spec.serialize import type_to_json

    return {
        "name": p.name, "domain": p.domain, "description": p.description,
        "knobs": {n: {"min": k.min, "max": k.max, "default": k.default, "step": k.step, "type": k.type.render(),
                      "description": k.description} for n, k in p.knobs.items()},
        "params": [[n, to_json(e)] for n, e in p.params.items()],  # a list: the order is data
        "param_types": {n: type_to_json(t) for n, t in p.param_types.items()},
        "constraints": [to_json(e) for e in p.constraints],
        "question": p.question,
        "answer": to_json(p.answer) if p.answer is not None else None,
        "answer_python": p.answer_python,
        "answer_type": type_to_json(p.answer_type),
        "check": p.check, "tolerance": p.tolerance, "solution": p.solution,
    }


def problem_from_json(d: dict[str, Any]) -> ResolvedProblem:
    from aqwen_spec.diagnostics import Pos
    from aqwen_spec.expr.serialize import from_json
    from aqwen_spec.serialize import type_from_json
    from aqwen_spec.types import Prim

    knobs = {n: KnobIR(n, k["min"], k["max"], k["default"], k["step"], Prim(k["type"]), k.get("description", ""))
             for n, k in d["knobs"].items()}
    return ResolvedProblem(
        d["name"], d.get("domain"), d.get("description", ""), knobs,
        {n: from_json(e) for n, e in d["params"]}, {n: type_from_json(t, {}) for n, t in d["param_types"].items()},
        [from_json(e) for e in d["constraints"]], d["question"],
        from_json(d["answer"]) if d.get("answer") is not None else None, d.get("answer_python"),
        type_from_json(d["answer_type"], {}), d["check"], d.get("tolerance"), d.get("solution"),
        Origin("<bundle>", Pos(1, 1)),
    )


# --- knobs and variants -------------------------------------------------------------------------------------------


def default_knobs(problem: ResolvedProblem) -> dict[str, Any]:
    return {n: k.default for n, k in problem.knobs.items()}


def clamp(knob: KnobIR, value: Any) -> Any:
    value = min(max(value, knob.min), knob.max)
    return int(value) if knob.type.render() == "int" else float(value)


def knob_settings(problem: ResolvedProblem, knobs: dict[str, Any] | None) -> dict[str, Any]:
    """Every knob of the problem: the given settings (clamped to their range), defaults for the rest."""
    given = knobs or {}
    return {n: clamp(k, given[n]) if n in given else k.default for n, k in problem.knobs.items()}


def turn_up(problem: ResolvedProblem, knobs: dict[str, Any], steps: int, start: int = 0) -> tuple[str, Any] | None:
    """(knob, new setting) for the first knob, from ``start`` round-robin, that can go ``steps`` steps up; None if
    every knob is at its maximum."""
    names = list(problem.knobs)
    for j in range(len(names)):
        name = names[(start + j) % len(names)]
        knob = problem.knobs[name]
        current = knobs.get(name, knob.default)
        if current < knob.max:
            return name, clamp(knob, current + steps * knob.step)
    return None


def variant_id(problem: str, knobs: dict[str, Any], persona: str | None = None,
               compose: dict[str, Any] | None = None) -> str:
    """A stable id: the problem name for its default variant, else the name and a hash of what differs."""
    if persona is None and compose is None and not knobs:
        return problem
    key = json.dumps([problem, knobs, persona, compose], sort_keys=True)
    return f"{problem}~{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def seed_variant(problem: ResolvedProblem) -> dict[str, Any]:
    """The problem as written: default knobs, no persona, not composed."""
    return {"id": problem.name, "problem": problem.name, "knobs": default_knobs(problem), "persona": None,
            "compose": None, "parent": None, "parent_instance": None, "operator": "seed", "round": 0}


def make_variant(problem: ResolvedProblem, knobs: dict[str, Any], *, persona: str | None = None,
                 compose: dict[str, Any] | None = None, parent: str | None = None,
                 parent_instance: str | None = None, operator: str = "seed", round: int = 0) -> dict[str, Any]:
    knobs = knob_settings(problem, knobs)
    differs = {} if knobs == default_knobs(problem) else knobs
    return {"id": variant_id(problem.name, differs, persona, compose), "problem": problem.name, "knobs": knobs,
            "persona": persona, "compose": compose, "parent": parent, "parent_instance": parent_instance,
            "operator": operator, "round": round}


# --- drawing -------------------------------------------------------------------------------------------------------


def _call_python(ref: str, values: dict[str, Any]) -> Any:
    from importlib import import_module

    module, func = ref.split(":")
    try:
        fn = getattr(import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise DrawError(f"answer: cannot load {ref}: {exc}") from None
    try:
        return fn(dict(values))
    except Exception as exc:  # the escape hatch is user code: any failure is a failed draw, not a crash
        raise DrawError(f"answer: {ref} failed: {type(exc).__name__}: {exc}") from None


def _sample_values(problem: ResolvedProblem, knobs: dict[str, Any], rng: random.Random,
                   overrides: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(knobs and params, None), or (partial values, why the draw is rejected)."""
    from aqwen_spec.expr import EvalError, evaluate, make_env, sampling_rng

    values: dict[str, Any] = dict(knobs)
    with sampling_rng(rng):
        for name, expr in problem.params.items():
            if name in overrides:
                values[name] = overrides[name]
                continue
            try:
                values[name] = evaluate(expr, make_env(values))
            except EvalError as exc:
                return values, f"param '{name}': {exc.message}"
    for i, expr in enumerate(problem.constraints):
        try:
            ok = evaluate(expr, make_env(values))
        except EvalError as exc:
            return values, f"constraint {i + 1}: {exc.message}"
        if ok is not True:
            return values, f"constraint {i + 1} does not hold"
    return values, None


def compute_answer(problem: ResolvedProblem, values: dict[str, Any]) -> Any:
    """The answer for drawn values: the problem's expression (or Python function), never a model."""
    from aqwen_spec.expr import EvalError, evaluate, make_env

    if problem.answer_python is not None:
        return _call_python(problem.answer_python, values)
    try:
        return evaluate(problem.answer, make_env(values))
    except EvalError as exc:
        raise DrawError(f"answer: {exc.message}") from None


def _render(template: str, values: dict[str, Any], what: str) -> str:
    from aqwen_spec.templates import render

    try:
        return render(template, values).strip()
    except Exception as exc:  # jinja2 errors (an undefined name, a type error in a filter)
        raise DrawError(f"{what}: {type(exc).__name__}: {exc}") from None


def format_answer(value: Any) -> str:
    """How the answer is written in solutions and shown to people: numbers plainly, lists comma-separated."""
    from aqwen_spec.expr.functions import to_str

    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(format_answer(v) for v in value)
    return to_str(value)


def _draw_one(problem: ResolvedProblem, knobs: dict[str, Any], rng: random.Random,
              overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    """(values, answer) of the first draw that meets every constraint."""
    reasons: dict[str, int] = {}
    for _ in range(MAX_TRIES):
        values, why = _sample_values(problem, knobs, rng, overrides or {})
        if why is None:
            return values, compute_answer(problem, values)
        reasons[why] = reasons.get(why, 0) + 1
        if why.startswith("param") and not problem.constraints:
            break  # no constraint to resample for: the same error again
    top = max(reasons.items(), key=lambda kv: kv[1])[0] if reasons else "no draw"
    raise DrawError(f"no instance of '{problem.name}' at {knobs}: {top}")


def _solution(problem: ResolvedProblem, values: dict[str, Any], answer: Any) -> str:
    return _render(problem.solution, {**values, "answer": answer}, "solution") if problem.solution else ""


def _params(problem: ResolvedProblem, values: dict[str, Any]) -> dict[str, Any]:
    return {n: values[n] for n in problem.params if n in values}


def persona_wording(question: str, persona: ResolvedPersona) -> str:
    """The question as the persona would ask it: their opening and their role around the plain question."""
    from aqwen_spec.templates import render

    opening = render(persona.opening, {}).strip() if persona.opening else ""
    role = f"I'm the {persona.role}." if persona.role else ""
    lead = " ".join(x for x in (opening, role) if x)
    return f"{lead}\n{question}" if lead else question


def draw_instance(variant: dict[str, Any], problems: dict[str, ResolvedProblem],
                  personas: dict[str, ResolvedPersona] | None = None, seed: int = 0) -> dict[str, Any]:
    """One instance of ``variant`` (see :func:`make_variant`); the same variant and seed give the same instance.
    Raises :class:`DrawError`."""
    problem = problems.get(variant["problem"])
    if problem is None:
        raise DrawError(f"unknown problem '{variant['problem']}'")
    rng = random.Random(f"problem:{variant['id']}:{seed}")
    knobs = knob_settings(problem, variant.get("knobs"))
    compose = variant.get("compose")
    first: dict[str, Any] | None = None
    overrides: dict[str, Any] = {}
    if compose:
        inner = problems.get(compose["problem"])
        if inner is None:
            raise DrawError(f"unknown problem '{compose['problem']}'")
        inner_knobs = knob_settings(inner, compose.get("knobs"))
        inner_values, inner_answer = _draw_one(inner, inner_knobs, rng)
        first = {"problem": inner.name, "knobs": inner_knobs, "params": _params(inner, inner_values),
                 "answer": inner_answer, "question": _render(inner.question, inner_values, "question"),
                 "solution": _solution(inner, inner_values, inner_answer)}
        overrides[compose["into"]] = inner_answer
    values, answer = _draw_one(problem, knobs, rng, overrides)
    if first is not None:
        shown = {**values, compose["into"]: COMPOSE_SYMBOL}  # type: ignore[index]
        second = _render(problem.question, shown, "question")
        question = (f"Part 1: {first['question']}\nLet {COMPOSE_SYMBOL} be the answer to part 1.\n"
                    f"Part 2: {second}")
        body = _solution(problem, values, answer)
        solution = "\n".join(x for x in (first["solution"], f"{COMPOSE_SYMBOL} = {format_answer(first['answer'])}.",
                                          body) if x)
    else:
        question = _render(problem.question, values, "question")
        solution = _solution(problem, values, answer)
    persona = variant.get("persona")
    if persona:
        known = (personas or {}).get(persona)
        if known is None:
            raise DrawError(f"unknown persona '{persona}'")
        question = persona_wording(question, known)
    solution = (solution + "\n" if solution else "") + f"Answer: {format_answer(answer)}"
    params = _params(problem, values)
    key = json.dumps([variant["id"], params, first and first["params"], question], sort_keys=True, default=str)
    out: dict[str, Any] = {
        "id": f"{variant['id']}#{hashlib.sha256(key.encode()).hexdigest()[:10]}",
        "variant": variant["id"], "problem": problem.name, "knobs": knobs, "params": params, "question": question,
        "answer": answer, "check": problem.check, "tolerance": problem.tolerance, "solution": solution,
        "persona": persona, "seed": seed,
    }
    if first is not None:
        out["compose"] = {"into": compose["into"], **{k: first[k] for k in ("problem", "knobs", "params", "answer")}}  # type: ignore[index]
    return out


def draw_instances(variant: dict[str, Any], problems: dict[str, ResolvedProblem], n: int, seed: int,
                   personas: dict[str, ResolvedPersona] | None = None) -> list[dict[str, Any]]:
    """``n`` distinct instances (fewer if the variant has fewer), seeds derived from ``seed``."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for j in range(n * 4):
        if len(out) == n:
            break
        inst = draw_instance(variant, problems, personas, seed=seed * 1000 + j)
        if inst["id"] not in seen:
            seen.add(inst["id"])
            out.append(inst)
    return out


def recompute(instance: dict[str, Any], problems: dict[str, ResolvedProblem],
              params: dict[str, Any] | None = None) -> Any:
    """The answer of ``instance`` computed again from its knobs and ``params`` (default: its own params), never
    from its question's wording. Raises :class:`DrawError`."""
    problem = problems.get(instance["problem"])
    if problem is None:
        raise DrawError(f"unknown problem '{instance['problem']}'")
    values = {**instance["knobs"], **(instance["params"] if params is None else params)}
    compose = instance.get("compose")
    if compose:
        inner = problems.get(compose["problem"])
        if inner is None:
            raise DrawError(f"unknown problem '{compose['problem']}'")
        values[compose["into"]] = compute_answer(inner, {**compose["knobs"], **compose["params"]})
    return compute_answer(problem, values)


def compose_targets(first: ResolvedProblem, second: ResolvedProblem) -> list[str]:
    """Params of ``second`` that can take ``first``'s answer: numbers used by its question, of a fitting type."""
    from aqwen_spec.templates import names_used
    from aqwen_spec.types import ANY, is_assignable

    if first.answer_type == ANY or first.name == second.name:
        return []
    used = names_used(second.question)  # a checked problem's question parses
    return [n for n, t in second.param_types.items()
            if n in used and t != ANY and is_assignable(first.answer_type, t) and t.render() in ("int", "float")]


# --- the compiler's part -------------------------------------------------------------------------------------------


def compile_problems(project: CompiledProject, per_problem: int = DEFAULT_INSTANCES) -> None:
    """Draw every domain's problems into ``project.problems``; a problem that cannot be drawn at its default, lowest
    or highest knob settings is ``AQ605``."""
    specs = project.specs
    failed: set[str] = set()  # a problem of every domain fails the same way in each: reported and tried once
    for domain in sorted(project.domains):
        problems = specs.problems_of(domain)
        instances: list[dict[str, Any]] = []
        for name in sorted(problems):
            if name in failed:
                continue
            problem = problems[name]
            try:
                for extreme in ("min", "max"):
                    knobs = {n: getattr(k, extreme) for n, k in problem.knobs.items()}
                    draw_instance(make_variant(problem, knobs), problems, seed=project.seed)
                instances.extend(draw_instances(seed_variant(problem), problems, per_problem, project.seed))
            except DrawError as exc:
                failed.add(name)
                project.diagnostics.add(Diagnostic("AQ605", str(exc), problem.origin.path, problem.origin.pos,
                                                   hint="loosen the constraints or the knob range"))
        project.problems[domain] = instances
