"""Generated step functions (``aqwen_spec.semantics.toolcode``) against the step-by-step path, on what the random
tools of ``test_soundness_properties.py`` leave out: optional parameters with defaults, enums, floats, sets, bad
arguments of every kind, error templates that read the state or a constant or need Jinja, and result formats."""

from __future__ import annotations

from typing import Any

import pytest

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr import parse_expr, parse_program
from aqwen_spec.expr.library import Library
from aqwen_spec.resolved import Origin, ParamIR, PreconditionIR, ResolvedTool
from aqwen_spec.results import ResultFormat
from aqwen_spec.semantics import ToolRunner, copy_state
from aqwen_spec.semantics.toolcode import source_of, step_of
from aqwen_spec.semantics.tools import _KIT
from aqwen_spec.types import BOOL, FLOAT, INT, STR, EnumT, ListT, OptionalT, SetT

AT = Origin("x", Pos(1, 1))
LIBRARY = Library(constants={"LIMIT": 3})
PARAMS = {
    "ticket_id": ParamIR("ticket_id", STR, True, None, ""),
    "level": ParamIR("level", EnumT(("low", "high")), False, "low", ""),
    "ratio": ParamIR("ratio", FLOAT, False, 0.5, ""),
    "note": ParamIR("note", OptionalT(STR), False, None, ""),
    "tags": ParamIR("tags", ListT(STR), False, ["a"], ""),
    "picks": ParamIR("picks", SetT(INT), False, [], ""),
    "n": ParamIR("n", INT, False, 1, ""),
}
REQUIRES = [
    ("ticket_id in tickets", "no ticket {{ ticket_id }}"),
    ("n <= LIMIT", "at most {{ LIMIT }}, not {{ n }}"),  # a constant: the runner's shown context
    ("tickets[ticket_id].status == \"open\"", "{{ ticket_id }} is {{ tickets[ticket_id].status }}"),  # steps
    ("level != \"high\" or note != null", "{{ level | upper }} needs a note"),  # Jinja itself
]
EFFECTS = """
tickets[ticket_id].level = level
tickets[ticket_id].tags = tags + [f"{ratio:.1f}"]
for p in picks {
  add(tickets[ticket_id].seen, p)
}
"""
RETURNS = "{id: ticket_id, level: level, note: note, seen: tickets[ticket_id].seen, n: n}"
CALLS: list[Any] = [
    {"ticket_id": "T-1"}, {"ticket_id": "T-2"}, {"ticket_id": "T-9"}, {"ticket_id": "T-1", "n": 4},
    {"ticket_id": "T-1", "level": "high"}, {"ticket_id": "T-1", "level": "high", "note": "urgent"},
    {"ticket_id": "T-1", "level": "mid"}, {"ticket_id": "T-1", "ratio": 2}, {"ticket_id": "T-1", "ratio": "2"},
    {"ticket_id": "T-1", "picks": [3, 1, 3]}, {"ticket_id": "T-1", "picks": ["x"]}, {"ticket_id": "T-1", "x": 1},
    {"ticket_id": 7}, {}, [], None, {"ticket_id": "T-1", "note": None}, {"ticket_id": "T-1", "n": True},
    {"ticket_id": "T-1", "tags": ["b", 2]}, {"ticket_id": "T-1", "tags": None},
]


def _tool(fmt: ResultFormat) -> ResolvedTool:
    requires = [PreconditionIR(parse_expr(w), e, AT) for w, e in REQUIRES]
    return ResolvedTool("t", "d", "", "write", PARAMS, requires, parse_program(EFFECTS), parse_expr(RETURNS), STR,
                        "declarative", None, None, AT, result=fmt, library=LIBRARY)


def _state() -> dict[str, Any]:
    return {"tickets": {"T-1": {"status": "open", "level": "low", "tags": [], "seen": [2]},
                        "T-2": {"status": "closed", "level": "low", "tags": [], "seen": []}}}


@pytest.mark.parametrize("fmt", [ResultFormat(), ResultFormat(format="python", error="Error: {{ message }}"),
                                 ResultFormat(format="text", sort_keys=True, separators=(",", ":"),
                                              error={"status": "error", "detail": "{{ message }}"})])
def test_generated_and_step_by_step_calls_agree(fmt: ResultFormat) -> None:
    tool = _tool(fmt)
    assert step_of(tool, _KIT) is not None, source_of(tool, _KIT)
    generated, reference = _state(), _state()
    runners = ToolRunner({"t": tool}, generated, []), ToolRunner({"t": tool}, reference, [])
    runners[1].generated = False
    for args in CALLS:
        got, want = (r.call("t", copy_state(args)) for r in runners)
        assert (got.ok, got.error, got.error_kind, got.precondition, got.render()) == \
            (want.ok, want.error, want.error_kind, want.precondition, want.render()), args
        if got.ok:
            assert got.value == want.value
        assert generated == reference, args
    assert runners[0].journal == runners[1].journal and runners[0].version == runners[1].version


def test_a_runner_that_keeps_no_values_copies_nothing() -> None:
    tool = _tool(ResultFormat(format="python"))
    state = _state()
    runner = ToolRunner({"t": tool}, state)
    runner.keep_values = False
    outcome = runner.call("t", {"ticket_id": "T-1"})
    assert outcome.ok and outcome.render().startswith("{'id': 'T-1'")
    with pytest.raises(RuntimeError, match="not kept"):
        _ = outcome.value


def test_spec_text_never_becomes_source() -> None:
    """A string a spec wrote reaches the generated source only as its repr (or a constant), whatever it holds."""
    nasty = "x'); import os; os.system('true'); ('"
    tool = ResolvedTool("t", "d", "", "read", {}, [PreconditionIR(parse_expr(f"{nasty!r} != \"\""), nasty, AT)],
                        None, parse_expr(repr(nasty)), STR, "declarative", None, None, AT)
    source = source_of(tool, _KIT)
    assert "import os" not in source.replace(repr(nasty), "")
    assert ToolRunner({"t": tool}, {}).call("t", {}).value == nasty


REQUIRED = {
    "who": ParamIR("who", STR, True, None, ""),
    "n": ParamIR("n", INT, True, None, ""),
    "flag": ParamIR("flag", BOOL, True, None, ""),
    "ratio": ParamIR("ratio", FLOAT, True, None, ""),
    "level": ParamIR("level", EnumT(("low", "high")), True, None, ""),
    "note": ParamIR("note", OptionalT(STR), True, None, ""),
}
REQUIRED_CALLS: list[Any] = [
    {"who": "T-1", "n": 1, "flag": True, "ratio": 0.5, "level": "low", "note": None},
    {"who": "T-9", "n": 1, "flag": True, "ratio": 1, "level": "high", "note": "x"},
    {"who": "T-2", "n": 2, "flag": False, "ratio": 2.0, "level": "low", "note": "y"},
    {"who": "T-1", "n": 9, "flag": False, "ratio": 2.0, "level": "low", "note": "y"},
    {"who": "T-1", "n": True, "flag": True, "ratio": 0.5, "level": "low", "note": None},
    {"who": "T-1", "n": 1, "flag": 1, "ratio": 0.5, "level": "low", "note": None},
    {"who": "T-1", "n": 1, "flag": True, "ratio": True, "level": "low", "note": None},
    {"who": "T-1", "n": 1, "flag": True, "ratio": "0.5", "level": "low", "note": None},
    {"who": "T-1", "n": 1, "flag": True, "ratio": 0.5, "level": "mid", "note": None},
    {"who": "T-1", "n": 1, "flag": True, "ratio": 0.5, "level": "low", "note": 3},
    {"who": "T-1", "n": 1, "flag": True, "ratio": 0.5, "level": "low"},
    {"who": "T-1", "n": 1, "flag": True, "ratio": 0.5, "level": "low", "note": None, "x": 1},
    {"who": "T-1", "n": 1, "flag": True, "ratio": 0.5, "level": "low", "x": 1},
    {"who": 7, "n": 1, "flag": True, "ratio": 0.5, "level": "low", "note": None}, {}, [], None, "who",
]


@pytest.mark.parametrize("fmt", [ResultFormat(), ResultFormat(format="python", error="Error: {{ message }}!"),
                                 ResultFormat(format="text", error="{{ tool }} says {{ message }} ({{ kind }})"),
                                 ResultFormat(format="text", error="{{ message }}: {{ message }}")])
def test_required_plain_parameters_are_checked_and_known(fmt: ResultFormat) -> None:
    """Every parameter required and of a plain type: the arguments checked by one length test and a type test
    each, a str parameter used in 'in', an index, an f-string and a message without its type tests; a refusal made
    by its precondition's class, its text filled in place (or by the format's function)."""
    requires = [PreconditionIR(parse_expr("who in tickets"), "no ticket {{ who }}", AT),
                PreconditionIR(parse_expr("tickets[who].status == \"open\""), "{{ who }} is not open ({{ n }})", AT),
                PreconditionIR(parse_expr("n < 5"), "{{ who }}: {{ n }} {{ flag }} {{ ratio }} {{ note }}", AT)]
    returns = parse_expr('f"{who}/{n}/{flag}/{ratio}/{level}/{note}" + tickets[who].status')
    tool = ResolvedTool("t", "d", "", "read", REQUIRED, requires, None, returns, STR, "declarative", None, None, AT,
                        result=fmt, library=LIBRARY)
    source = source_of(tool, _KIT)
    assert "len(args) == 6" in source and "type(v_who) is str and" not in source.split("if not ok:")[-1]
    assert "'no ticket ' + v_who" in source
    runners = ToolRunner({"t": tool}, _state()), ToolRunner({"t": tool}, _state())
    runners[1].generated = False
    for args in REQUIRED_CALLS:
        got, want = (r.call("t", copy_state(args)) for r in runners)
        assert (got.ok, got.error, got.error_kind, got.precondition, got.render(), got.fmt, got.tool) == \
            (want.ok, want.error, want.error_kind, want.precondition, want.render(), want.fmt, want.tool), args
    empty = ResolvedTool("e", "d", "", "read", {}, [], None, parse_expr("1"), INT, "declarative", None, None, AT)
    runners = ToolRunner({"e": empty}, {}), ToolRunner({"e": empty}, {})
    runners[1].generated = False
    for args in [{}, {"x": 1}, [], None]:
        got, want = (r.call("e", args) for r in runners)
        assert (got.ok, got.error, got.render()) == (want.ok, want.error, want.render()), args


BUILTIN_STATE: dict[str, Any] = {
    "ints": [3, -1, 7], "floats": [0.1, 0.2, 0.3], "mixed": [1, 0.5, 2], "bools": [1, True], "empty": [],
    "words": ["b", "a"], "m": {"x": 1, "y": 2.5}, "pairs": [["k", 1], ["j", 2]], "bad_pairs": [["k", 1, 2]],
    "orders": {"O-1": {"c": "ana", "n": 1}, "O-2": {"c": "ben", "n": 2}, "O-3": {"c": "ana", "n": 3}},
    "bad_keys": [{"c": 1.5}], "nothing": None, "text": "hello",
    "big": list(range(60_000)), "bigmap": {str(i): i for i in range(40_000)},
    "midmap": {str(i): i for i in range(15_000)},
    "recmap": {str(i): {"c": "a"} for i in range(45_000)}, "recmid": {str(i): {"c": i} for i in range(6_000)},
}
BUILTIN_EXPRS = [
    # sum(xs): a list of numbers added in order, anything else as the generic built-in does it
    "sum(ints)", "sum(floats)", "sum(mixed)", "sum(bools)", "sum(empty)", "sum(m)", "sum(text)", "sum(nothing)",
    "sum([x * 2 for x in ints])", "sum(big) + sum(big)",
    # group_by with by= or a positional key
    "group_by(values(orders), by=c)", "group_by(values(orders), c)", "group_by(orders, by=n)",
    "group_by(bad_keys, by=c)", "group_by(nothing, by=c)", "group_by(text, by=it)", "len(group_by(big, by=it))",
    "len(group_by(big, by=it)) + len(group_by(big, by=it))",
    # a comprehension over items(m) with two names
    "[f\"{k}={v}\" for k, v in items(m)]", "{k: v for k, v in items(orders) if v.n > 1}",
    "[k for k, v in items(pairs)]", "[k for k, v in items(bad_pairs)]", "[k for k, v in items(nothing)]",
    "len([k for k, v in items(bigmap)]) + len([k for k, v in items(bigmap)])",
    "len([k for k, v in items(bigmap)]) + len([k for k, v in items(midmap)])",  # out of steps in the loop
    # join: a list of str joined at once, anything else shown as to_str shows it
    'join(words, ", ")', 'join(ints, "-")', 'join([nothing, true, 1.5, "x", [1]], "")', 'join(empty, ",")',
    'join(m, ",")', 'join(text, nothing)',
    # f-string parts that are str already (join, a format spec, an f-string)
    "f\"{join(words, ',')}|{m.y:.1f}|{f'{text}'}|{ints[0]:>4}\"", "f\"{join(m, '')}\"",
    # constant indexes, bounds and number comparisons
    "ints[0]", "ints[-1]", "ints[-3]", "ints[3]", "ints[-4]", "empty[0]", "text[1]", "m[0]", "nothing[0]",
    "words[1:]", "words[-1:0:-1]", "text[-3:]", "nothing[1:]", "big[1:][-1]",
    "len(ints) > 0", "ints[0] <= 3.5", "len(empty) > 0", "text > 0", "nothing < 1", "m.y >= 2.5",
    # a comprehension over keys(m) or values(m) (its names a map's keys: looked up without a type test)
    "[m[k] for k in keys(m)]", "[k in orders for k in keys(m)]", "[orders[k].c for k in keys(orders)]",
    "[k for k in keys(nothing)]", "[k for k in keys(words)]", "[v.n for v in values(orders)]",
    "[v for v in values(text)]", "len([k for k in keys(bigmap)]) + len([k for k in keys(bigmap)])",
    "len([k for k in keys(bigmap)]) + len([k for k in keys(midmap)])",  # out of steps in the loop
    "len([v for v in values(bigmap)]) + len([v for v in values(midmap)])",
    # group_by(xs, by=name): a record's field, else the name outside (an element that is no record)
    'group_by([{"c": "a"}, {"n": 1}], by=c)', "group_by(ints, by=text)", "group_by(ints, by=ints)",
    'group_by([{"c": "a"}, {"c": [1]}], by=c)', "group_by(values(orders), by=\"n\")",
    "group_by(values(nothing), by=c)", "group_by(values(ints), by=c)", "group_by(values(m), by=text)",
    "len(group_by(values(recmap), by=c)) + len(group_by(values(recmap), by=c))",  # out of steps in values()
    "len(group_by(values(recmap), by=c)) + len(group_by(values(recmid), by=c))",  # ... in group_by()
    # + - * of two numbers: a float as Python gives it, an int within 64 bits, anything else the checked helper
    "[x * 2.5 for x in ints]", "[x * 3 for x in mixed]", "[x - 0.5 for x in bools]", "[x + 1 for x in words]",
    "[x * 4611686018427387904 for x in ints]", "[x * 1e308 * 10 for x in floats]", "[x < 2.5 for x in mixed]",
    "[ints[0] < x for x in mixed]", "[x < ints[0] for x in words]", "sum(x * 0.5 for x in ints)",
    # state entries read once before the expression (read twice, or in a comprehension)
    "[m[k] + len(m) for k in keys(m)]", "[nope for x in empty]", "[nope for x in ints]", "len(nope) + len(nope)",
    "len(ints) + len(ints) + len(state.ints)", "[x for x in values(orders) where x.n > len(ints)]",
    "[len(m) + len(text) for x in ints]", 'f"{len(m)}/{len(text)}/{len(m)}"', "[len(nothing) for x in ints]",
    "[x in m for x in words]", "[x in text for x in words]", "[x in nothing for x in words]",
    "[x not in m for x in ints]", "[m[x] for x in pairs]", "[text[x] for x in ints]", "[nothing[x] for x in ints]",
    # sum() and join() of a comprehension, made in its loop
    'join([w for w in words], "-")', 'join([x for x in ints if x > 0], ",")', 'join([x for x in big], "")',
    'join([w for w in words], "")', "sum([x for x in mixed])", "sum(x for x in bools)", "sum([x for x in big])",
    'sum([x for x in words if x > "a"])', "sum([x * 0.1 for x in floats]) + sum(x for x in ints if x > 0)",
    "sum(x * 4611686018427387904 for x in ints)", 'sum(w + "a" for w in words)', "sum(x - 1 for x in bools)",
    "sum(x * 2 for x in mixed if x > 0)", "sum(x + 0.5 for x in big)", "sum(x * 2 + 1 for x in ints)",
    "[orders[k] for k in keys(m)]", "[[m[k] for k in keys(orders)] for k in keys(m)]",
    "[[m[k] for j in keys(orders)] for k in keys(m)]", "sum(m[k] * m[k] for k in keys(m))",
    "[w for w in words if len(w) > 0]", "ints where it > 1", "ints where x: x > 1", "values(orders) where n > 1",
    "values(orders) where o: o.c == \"ana\"", "nothing where it > 1",
    # a comprehension's source taken in its own function: a list (or a map) there, anything else by the helper
    "[x for x in m]", "[x for x in text]", "[x for x in nothing]", "m where it > 1", 'text where it > "g"',
    "len([x for x in big]) + len([x for x in big])", "len(words) >= 2.5", "len(nothing) > 0",
    "[len(w) < 2 for w in words]", "len(big where it > 0) + len(big where it > 0)",
    "len(big where x: x > 0) + len(big where x: x > 0)", "[k for k, v in items(text)]",
    # sum() in its loop: past the first element that is no number, the rest still computed (their errors first)
    "sum([x for x in bools if x != 7])", "sum(x * 2 for x in [1, true, \"a\", 2.5])", "sum([ints[x] for x in bools])",
    "sum(m[k] for k in keys(m)) + sum(v for k, v in items(m))", "sum([k for k in keys(orders)])",
    "sum(x for x in [1, true, 3] if x > 0)", "sum([x for x in big] + [true]) + sum(x * 1 for x in big if x >= 0)",
    "sum([x * 1 for x in [true] + big]) + sum(x for x in big)", "sum(v.n * 2 for k, v in items(orders))",
]


@pytest.mark.parametrize("expr", BUILTIN_EXPRS)
def test_specialised_builtins_agree_with_the_closures(expr: str) -> None:
    """sum, join, group_by, a comprehension over items(), constant indexes and bounds and comparisons with a number
    constant have code of their own: the same values, errors, positions and step charges (the last one of each
    group runs out of steps) as the closures."""
    tool = ResolvedTool("t", "d", "", "read", {}, [], None, parse_expr(expr), STR, "declarative", None, None, AT)
    runners = ToolRunner({"t": tool}, BUILTIN_STATE), ToolRunner({"t": tool}, BUILTIN_STATE)
    runners[1].generated = False
    got, want = (r.call("t", {}) for r in runners)
    assert (got.ok, got.error, got.error_kind, got.render()) == (want.ok, want.error, want.error_kind, want.render())
    assert (got.defect and got.defect.pos) == (want.defect and want.defect.pos)
    assert step_of(tool, _KIT) is not None


TABLES = Library(constants={"TABLE": {"x": 1.5, "y": 2}, "LIMIT": 3, "NAMES": ["x", "y", "z"]})
TABLE_EXPRS = [
    "sum(TABLE[k] * m[k] for k in keys(m))", "[TABLE[k] for k in keys(TABLE)]", "[TABLE[k] for k in NAMES]",
    "len(group_by(values(orders), by=LIMIT)) + LIMIT", "[o for o in values(orders) where o.n < LIMIT]", "LIMIT + LIMIT",
    "[LIMIT * x for x in ints]", "[o.n * LIMIT for o in values(orders)]",
]


@pytest.mark.parametrize("shadowed", [False, True])
@pytest.mark.parametrize("expr", TABLE_EXPRS)
def test_constants_read_once_agree_with_the_closures(expr: str, shadowed: bool) -> None:
    """A constant read more than once is looked up once before the expression (the state's entry of that name,
    else the constant, as the closures read it, in an element's scope too)."""
    state = {**BUILTIN_STATE, **({"TABLE": {"x": 10, "y": 1, "z": 0.5}, "LIMIT": 2} if shadowed else {})}
    tool = ResolvedTool("t", "d", "", "read", {}, [], None, parse_expr(expr), STR, "declarative", None, None, AT,
                        library=TABLES)
    assert "S.get(" in source_of(tool, _KIT)
    runners = ToolRunner({"t": tool}, state), ToolRunner({"t": tool}, state)
    runners[1].generated = False
    got, want = (r.call("t", {}) for r in runners)
    assert (got.ok, got.error, got.error_kind, got.render()) == (want.ok, want.error, want.error_kind, want.render())
    assert (got.defect and got.defect.pos) == (want.defect and want.defect.pos)


@pytest.mark.parametrize("expr", ["[rng_choice(words), rng_choice(text), rng_randint(1, 5), rng_random()]",
                                  "rng_choice(empty)", "rng_choice(nothing)", "rng_choice(\"\")", "rng_choice(m)",
                                  "rng_randint(5, 1)", "rng_randint(1, true)", "rng_randint(1.5, 2)",
                                  "[rng_random(), rng_choice(words), rng_choice(empty)]"])
def test_draws_agree_with_the_closures(expr: str) -> None:
    """rng_choice, rng_randint and rng_random have helpers of their own: the same values, errors, logged draws and
    undo (a failed call's draws never happened), and without a generator the same error."""
    from aqwen_spec.expr.episode import Episode

    tool = ResolvedTool("t", "d", "", "read", {}, [], None, parse_expr(expr), STR, "declarative", None, None, AT)
    assert "R.rng_" in source_of(tool, _KIT)
    for seed in (7, None):
        runners = ToolRunner({"t": tool}, BUILTIN_STATE), ToolRunner({"t": tool}, BUILTIN_STATE)
        runners[1].generated = False
        for r in runners:
            r.episode = Episode("2024-01-01", None, seed)
        for _ in range(3):
            got, want = (r.call("t", {}) for r in runners)
            assert (got.ok, got.error, got.render()) == (want.ok, want.error, want.render())
        episodes = [r.episode for r in runners]
        assert episodes[0]._log == episodes[1]._log  # type: ignore[union-attr]
        if seed is not None:  # the generators where the calls that stood left them
            assert episodes[0].rng.random() == episodes[1].rng.random()  # type: ignore[union-attr]


@pytest.mark.parametrize("expr", ["[rng_choice(words), rng_randint(1, 5), rng_random()]", "rng_choice(empty)",
                                  "[rng_random() for x in ints]", "[rng_random(), today()]"])
def test_draws_without_the_runners_episode(expr: str) -> None:
    """A tool whose only reads of the episode are draws of its own takes the runner's episode as a parameter (none
    installed per call); without one it draws from the episode installed around the call, or fails as the closures
    do. A draw inside a comprehension, or the clock, keeps the installed episode."""
    from aqwen_spec.expr.episode import Episode, episode_context

    tool = ResolvedTool("t", "d", "", "read", {}, [], None, parse_expr(expr), STR, "declarative", None, None, AT)
    direct = "[rng_random() " not in expr and "today" not in expr
    assert ("_in(E, " in source_of(tool, _KIT)) == direct
    for seed in (None, 3):
        runners = ToolRunner({"t": tool}, BUILTIN_STATE), ToolRunner({"t": tool}, BUILTIN_STATE)
        runners[1].generated = False
        outcomes, logs = [], []
        for r in runners:
            outer = Episode("2024-01-01", None, seed) if seed is not None else None
            with episode_context(outer):
                outcomes.append(r.call("t", {}))
            logs.append(outer and outer._log)
        got, want = outcomes
        assert (got.ok, got.error, got.render()) == (want.ok, want.error, want.render())
        assert logs[0] == logs[1]
        assert ("t" in runners[0].plain_steps) == direct
