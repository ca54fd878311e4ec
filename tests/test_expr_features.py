"""Slices, format specs, durations, soft parsing, strings as sequences and ``while`` loops: each compared with what
Python itself gives for the same values, and each misuse with the checker's diagnostic."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aqwen_spec.expr import (
    EffectFailed,
    EvalError,
    EvalLimitError,
    ExprSyntaxError,
    evaluate,
    execute,
    parse_expr,
    parse_program,
)
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.checker import Scope, check_expr, check_program
from aqwen_spec.expr.formatting import DIRECTIVES
from aqwen_spec.expr.serialize import from_json, to_json
from aqwen_spec.types import (
    BOOL,
    DATE,
    DATETIME,
    DURATION,
    FLOAT,
    INT,
    STR,
    ListT,
    MapT,
    OptionalT,
    Type,
    json_schema,
    parse_type_text,
)
from aqwen_spec.values import check_value, coerce_text

NAMES: dict[str, Type] = {
    "s": STR, "xs": ListT(INT), "x": FLOAT, "n": INT, "b": BOOL, "d": DATE, "t0": DATETIME, "t1": DATETIME,
    "o": OptionalT(STR), "on": OptionalT(INT), "dur": DURATION, "m": MapT(INT),
}
ENV: dict[str, Any] = {
    "s": "hello world", "xs": [1, 2, 3, 4, 5], "x": 1234.5678, "n": 42, "b": True, "d": "2024-05-01",
    "t0": "2024-05-01T08:00:00", "t1": "2024-05-02T21:30:00", "o": None, "on": None, "dur": 3600, "m": {"a": 1},
}


def run(text: str, env: dict[str, Any] | None = None) -> Any:
    return evaluate(parse_expr(text), {**ENV, **(env or {})})


def typed(text: str) -> tuple[str, list[tuple[str, str]]]:
    t, problems = check_expr(parse_expr(text), Scope(NAMES))
    return t.render(), [(p.code, p.message) for p in problems]


def problems(text: str) -> list[tuple[str, int, int, str | None]]:
    return [(p.code, p.pos.line, p.pos.col, p.hint) for p in check_expr(parse_expr(text), Scope(NAMES))[1]]


# ------------------------------------------------------------------------------------------------------- slices

BOUNDS = [None, 0, 1, 3, -1, -3, 10, -10]


@pytest.mark.parametrize("step", [None, 1, 2, 3, -1, -2])
def test_slices_are_pythons(step: int | None) -> None:
    for seq in ("hello world", [1, 2, 3, 4, 5], "", []):
        for start in BOUNDS:
            for stop in BOUNDS:
                text = f"v[{'' if start is None else start}:{'' if stop is None else stop}"
                text += "" if step is None else f":{step}"
                assert run(text + "]", {"v": seq}) == seq[start:stop:step], text


def test_slice_bounds_may_be_null_or_names() -> None:
    assert run("s[on:2]") == "he"
    assert run("xs[n - 41:]") == [2, 3, 4, 5]
    assert run("s[-3:]") == "rld" and run("xs[::-1]") == [5, 4, 3, 2, 1]


def test_slices_are_typed() -> None:
    assert typed("s[1:4]") == ("str", [])
    assert typed("xs[:2]") == ("list[int]", [])
    assert typed("s[o:]")[1] == [("AQ304", "slice bounds must be ints, not str")]
    assert typed("n[1:]")[1] == [("AQ304", "cannot slice a value of type int")]
    assert problems("xs[::0]") == [("AQ304", 1, 6, "step 1 takes every element, -1 reverses")]
    assert typed("o[1:]")[1][0][0] == "AQ313"


def test_slice_errors_at_run_time() -> None:
    with pytest.raises(EvalError, match="slice step cannot be zero"):
        run("xs[::k]", {"k": 0})
    with pytest.raises(EvalError, match="cannot slice int"):
        run("n[1:]")


# ------------------------------------------------------------------------------------------------ format specs

SPECS: list[tuple[Any, str]] = [
    (1234.5678, ".2f"), (1234.5678, ","), (1234.5678, ",.1f"), (0.256, ".1%"), (42, "05d"), (42, ">6"),
    (42, "x"), (42, "#b"), (-7, "+d"), (1234567, ","), (1234567, "_"), (3, ".2f"), (2.5, "e"), (1e21, "g"),
    ("ab", ">10"), ("ab", "<5"), ("ab", "^7"), ("ab", "*^7"), ("abcdef", ".3"), (float("inf"), ".1f"),
    (0.125, ".2f"), (-0.0, "z.1f"), (42, ""), (12.0, "n"),
]


@pytest.mark.parametrize(("value", "spec"), SPECS)
def test_format_specs_are_pythons(value: Any, spec: str) -> None:
    assert run(f'f"<{{v:{spec}}}>"', {"v": value}) == f"<{format(value, spec)}>"
    assert run(f'format("<{{:{spec}}}>", v)', {"v": value}) == f"<{format(value, spec)}>"


def test_an_int_stored_as_a_float_formats_as_the_float() -> None:
    assert run('f"{v:.1%}"', {"v": 1}) == "100.0%"


def test_format_code_c_out_of_range_is_a_run_time_error() -> None:
    assert run('f"{v:c}"', {"v": 65}) == "A"
    with pytest.raises(EvalError, match="not a character code"):
        run('f"{v:c}"', {"v": -1})


def test_format_keeps_plain_placeholders() -> None:
    assert run('format("{} and {:.1f} {{x}}", b, x)') == "true and 1234.6 {x}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('f"{s:.2f}"', "format spec '.2f' does not fit a str: Unknown format code 'f' for object of type 'str'"),
        ('f"{x:d}"', "format spec 'd' does not fit a float: Unknown format code 'd' for object of type 'float'"),
        ('f"{n:q}"', "format spec 'q' does not fit an int: Unknown format code 'q' for object of type 'int'"),
        ('f"{s:,}"', "format spec ',' does not fit a str: Cannot specify ',' with 's'."),
        ('f"{b:>5}"', "a bool takes no format spec"),
        ('f"{dur:.1f}"', "a duration takes no format spec"),
        ('f"{xs:>4}"', "a list[int] takes no format spec"),
        ('f"{d:>10}"', "format spec '>10' does not fit a date: a date's format spec is a strftime format with % "
                       "directives"),
        ('format("{:.2f}", s)', "format spec '.2f' does not fit a str: Unknown format code 'f' for object of type "
                                "'str'"),
        ('format("{} {}", x)', "format() has 2 placeholders and 1 value"),
        ('f"{n:99999999}"', "format spec '99999999' does not fit an int: the width in format spec '99999999' is "
                            "larger than 1,000,000"),
    ],
)
def test_format_specs_that_do_not_fit(text: str, message: str) -> None:
    assert typed(text) == ("str", [("AQ325" if "placeholders" not in message else "AQ306", message)])


def test_format_spec_positions() -> None:
    assert problems('f"x {s:.2f}"')[0][:3] == ("AQ325", 1, 8)
    assert problems('format("a {:.2f}", s)')[0][:3] == ("AQ325", 1, 13)
    assert problems('f"{o:>3}"')[0][0] == "AQ313"  # null has no format


def test_format_spec_syntax() -> None:
    part = parse_expr('f"{count(v in xs: v > 1):03d}"').parts[0]  # type: ignore[union-attr]
    assert isinstance(part, A.Formatted) and part.spec == "03d" and isinstance(part.value, A.Call)
    named = parse_expr('f"{xs where v: v > 1}"').parts[0]  # type: ignore[union-attr]
    assert isinstance(named, A.Where)  # the ':' of 'where v:' names the element, it starts no spec
    with pytest.raises(ExprSyntaxError, match="cannot hold"):
        parse_expr('f"{x:>{n}}"')
    with pytest.raises(ExprSyntaxError, match="conversions"):
        parse_expr('f"{s!r}"')
    assert parse_expr('f"{n != 1}"').parts[0] == parse_expr("n != 1")  # type: ignore[union-attr]


DATES = ["2024-05-01", "2024-02-29", "0999-12-31", "2023-01-01T09:05:07", "2024-07-14T23:59:59.123456",
         "2024-03-10T12:00:00+02:00"]


@pytest.mark.parametrize("text", DATES)
def test_strftime_is_pythons_in_the_c_locale(text: str) -> None:
    value: dt.date = dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
    for code in sorted(DIRECTIVES):
        assert run(f'format_date(v, "[%{code}]")', {"v": text}) == value.strftime(f"[%{code}]"), code
        assert run(f'f"{{v:%{code}!}}"', {"v": text}) == format(value, f"%{code}!"), code
    assert run('format_date(v, "%d %b %Y")', {"v": text}) == value.strftime("%d %b %Y")


def test_strftime_misuse() -> None:
    assert problems('format_date(d, "%Q")') == [("AQ325", 1, 16, 'e.g. "%d %b %Y", "%Y-%m-%d %H:%M"')]
    assert problems('format_date(d, "50%")')[0][0] == "AQ325"
    assert typed('format_date(s, "%d")')[1][0][0] == "AQ306"  # a str is not a date: date(s) checks it
    with pytest.raises(EvalError, match="unknown strftime directive"):
        run("format_date(d, f)", {"f": "%Q"})


# --------------------------------------------------------------------------------------------------- durations


def seconds(delta: dt.timedelta) -> int | float:
    total = delta.total_seconds()
    return int(total) if total.is_integer() else total


@pytest.mark.parametrize(
    ("a", "b"),
    [("2024-05-02T21:30:00", "2024-05-01T08:00:00"), ("2024-05-01T08:00:00", "2024-05-02T21:30:00"),
     ("2024-03-10T12:00:00.250000", "2024-03-10T12:00:00"), ("2024-05-01T00:00:00+02:00", "2024-04-30T23:00:00Z")],
)
def test_datetime_differences_are_pythons(a: str, b: str) -> None:
    delta = dt.datetime.fromisoformat(a) - dt.datetime.fromisoformat(b)
    assert run("p - q", {"p": a, "q": b}) == seconds(delta)
    assert run("total_hours(p - q)", {"p": a, "q": b}) == delta / dt.timedelta(hours=1)
    assert run("total_minutes(p - q)", {"p": a, "q": b}) == delta / dt.timedelta(minutes=1)
    assert run("total_days(p - q)", {"p": a, "q": b}) == delta / dt.timedelta(days=1)
    assert run("total_seconds(p - q)", {"p": a, "q": b}) == delta.total_seconds()


@pytest.mark.parametrize("hours", [-49, -25, -1, 0, 1, 23, 24, 36.5, 0.1])
def test_date_and_datetime_plus_duration_are_pythons(hours: float) -> None:
    delta = dt.timedelta(hours=hours)
    assert run("d + hours(h)", {"h": hours}) == (dt.date(2024, 5, 1) + delta).isoformat()
    assert run("d - hours(h)", {"h": hours}) == (dt.date(2024, 5, 1) - delta).isoformat()
    assert run("t0 + hours(h)", {"h": hours}) == (dt.datetime(2024, 5, 1, 8) + delta).isoformat()
    assert run("hours(h) + t0", {"h": hours}) == (delta + dt.datetime(2024, 5, 1, 8)).isoformat()
    assert run("hours(h)", {"h": hours}) == seconds(delta)


def test_duration_builders_and_comparisons() -> None:
    assert run("days(3)") == 259200 and run("minutes(1.5)") == 90 and run("seconds(0.25)") == 0.25
    assert run("t1 - t0 > hours(12)") is True and run("t1 - t0 > days(2)") is False
    assert run("date(\"2024-03-01\") - date(\"2024-02-01\")") == 29 * 86400
    assert run("(t1 - t0) / hours(1)") == 37.5 and run("-dur * 2") == -7200
    assert run("max(hours(1), minutes(90))") == 5400
    with pytest.raises(EvalError, match="duration out of range"):
        run("days(1e12)")
    with pytest.raises(EvalError, match="time zone"):
        run('t0 - datetime("2024-05-01T00:00:00Z")')


def test_durations_add_up() -> None:
    times = {"v": ["2024-05-01T08:00:00", "2024-05-01T10:30:00", "2024-05-02T00:00:00"]}
    assert run("sum(b - a for a, b in zip(v, v[1:]))", times) == 16 * 3600
    assert run("abs(v[0] - v[1])", times) == 9000
    assert typed("sum([hours(1), dur])") == ("duration", []) and typed("abs(-dur)") == ("duration", [])
    assert json_schema(DURATION) == {"type": "number", "description": "a duration in seconds"}


def test_durations_are_typed() -> None:
    assert typed("t1 - t0") == ("duration", [])
    assert typed("d - d") == ("duration", [])
    assert typed("d + days(3)") == ("date", [])
    assert typed("t0 - hours(2)") == ("datetime", [])
    assert typed("t1 - t0 > hours(12)") == ("bool", [])
    assert typed("total_hours(dur)") == ("float", [])
    assert typed("dur / dur") == ("float", [])
    assert problems("t1 - t0 > 12") == [("AQ304", 1, 1, "compare with a duration: hours(12), days(n)")]
    assert typed("dur == 5")[1] == [("AQ304", "comparing duration with int is never true")]
    assert typed("t0 - d")[1] == [("AQ304", "cannot apply '-' to datetime and date")]
    assert typed("dur + 1")[1] == [("AQ304", "cannot apply '+' to duration and int")]
    assert typed("d * 2")[1] == [("AQ304", "cannot apply '*' to date and int")]
    assert typed("total_hours(n)")[1][0][0] == "AQ306"


def test_durations_in_state_and_json_are_seconds() -> None:
    assert parse_type_text("duration?", {}) == OptionalT(DURATION)
    assert check_value(5400, DURATION) == [] and check_value(0.5, DURATION) == []
    assert check_value("PT1H", DURATION) and check_value(True, DURATION)
    assert coerce_text("5400", DURATION) == 5400 and coerce_text("0.5", DURATION) == 0.5


def test_datetime_of_a_date_shows_its_time() -> None:
    assert run('datetime("2024-05-01")') == "2024-05-01T00:00:00"
    assert run('datetime("2024-05-01") + hours(2)') == "2024-05-01T02:00:00"


# ------------------------------------------------------------------------------------------------ soft parsing

TEXTS = ["12", " 12 ", "-3", "+7", "1_000", "12.5", "1e3", "x", "", "0x1F", "inf", "nan", "٣", "9" * 30]


@pytest.mark.parametrize("text", TEXTS)
def test_try_int_and_try_float_are_pythons(text: str) -> None:
    def py(convert: Any) -> Any:
        try:
            return convert(text)
        except ValueError:
            return None

    want_int = py(int)
    assert run("try_int(v)", {"v": text}) == (want_int if want_int is None or abs(want_int) < 2**63 else None)
    want_float = py(float)
    got = run("try_float(v)", {"v": text})
    assert got == (want_float if want_float is not None and abs(want_float) != float("inf")
                   and want_float == want_float else None)


def test_try_date_and_datetime() -> None:
    assert run('try_date("2024-02-29")') == "2024-02-29" and run('try_date("2023-02-29")') is None
    assert run('try_date("31/05/2024")') is None and run("try_date(o)") is None
    assert run('try_datetime("2024-05-01T09:00:00")') == "2024-05-01T09:00:00"
    assert run('try_datetime("2024-05-01T25:00:00")') is None


def test_soft_parsing_is_typed_and_narrowed() -> None:
    assert typed("try_int(s)") == ("int?", [])
    assert typed("try_date(o)") == ("date?", [])  # null in, null out
    assert typed("try_int(s) + 1")[1][0][0] == "AQ313"
    program = parse_program('let qty = try_int(s)\nif qty == null { fail "not a number" }\nappend(xs, qty + 1)')
    assert check_program(program, Scope(NAMES)) == []
    env = {**ENV, "xs": []}
    with pytest.raises(EffectFailed, match="not a number"):
        execute(program, env, {})
    env = {**ENV, "s": "41", "xs": []}
    execute(program, env, {})
    assert env["xs"] == [42]


# ------------------------------------------------------------------------------------------ strings as sequences


def test_strings_are_iterable() -> None:
    assert run('all(c in "0123456789" for c in v)', {"v": "2024"}) is True
    assert run('all(c in "0123456789" for c in v)', {"v": "20x4"}) is False
    assert run('[c for c in s if c != "l"]') == [c for c in "hello world" if c != "l"]
    assert run("list(s)") == list("hello world") and run("list(xs)") == [1, 2, 3, 4, 5]
    assert run("sorted(s)") == sorted("hello world") and run('join(reversed(s), "")') == "dlrow olleh"
    assert run("count(s, it == \"o\")") == 2
    assert run("sum(int(c) for c in v)", {"v": "1234"}) == 10
    assert run("max(len(w) for w in split(s))") == 5
    assert typed("list(s)") == ("list[str]", [])
    assert typed("[c for c in s]") == ("list[str]", [])
    assert typed("list(m)")[1][0][0] == "AQ306"


def test_a_bare_comprehension_stops_where_pythons_does() -> None:
    assert run("any(int(c) > 0 for c in v)", {"v": "1x"}) is True  # Python never reads 'x'
    assert run("all(int(c) > 5 for c in v)", {"v": "1x"}) is False
    with pytest.raises(EvalError, match="int"):
        run("any([int(c) > 0 for c in v])", {"v": "1x"})  # a list is built whole first, as in Python
    with pytest.raises(ExprSyntaxError, match="len\\(\\) does not take a comprehension"):
        parse_expr("len(c for c in s)")


def test_for_over_a_string_in_effects() -> None:
    program = parse_program('let digits = 0\nfor c in s { if c in "0123456789" { digits += 1 } }\nappend(xs, digits)')
    assert check_program(program, Scope(NAMES)) == []
    env = {**ENV, "s": "a1b22", "xs": []}
    execute(program, env, {})
    assert env["xs"] == [3]


# --------------------------------------------------------------------------------------------------------- while


def effect(text: str, **values: Any) -> dict[str, Any]:
    program = parse_program(text)
    assert check_program(program, Scope(NAMES)) == []
    env = {**ENV, "xs": [], **values}
    execute(program, env, {})
    return env


def test_while_break_and_continue_are_pythons() -> None:
    env = effect(
        "let i = 0\nwhile i < 10 {\n  i += 1\n  if i % 2 == 0 { continue }\n  if i > 7 { break }\n  append(xs, i)\n}"
    )
    assert env["xs"] == [1, 3, 5, 7]
    env = effect("for v in [1, 2, 3, 4] {\n  if v == 2 { continue }\n  if v == 4 { break }\n  append(xs, v)\n}")
    assert env["xs"] == [1, 3]
    env = effect("for v in [1, 2] {\n  let j = 0\n  while true {\n    j += 1\n    if j > v { break }\n  }\n"
                 "  append(xs, j)\n}")
    assert env["xs"] == [2, 3]  # break leaves the inner loop only


def test_a_runaway_while_stops_at_the_step_limit() -> None:
    program = parse_program("let i = 0\nwhile true { i += 1 }")
    with pytest.raises(EvalLimitError, match="too many steps"):
        execute(program, dict(ENV), {})
    program = parse_program("let i = 0\nwhile i < 1000 { i += 1 }\nappend(xs, i)")
    env = {**ENV, "xs": []}
    execute(program, env, {}, max_steps=2000)
    assert env["xs"] == [1000]
    with pytest.raises(EvalLimitError):
        execute(program, {**ENV, "xs": []}, {}, max_steps=999)


def test_while_narrowing_stays_sound() -> None:
    def codes(text: str) -> list[str]:
        return [p.code for p in check_program(parse_program(text), Scope(NAMES))]

    assert codes("let v: str? = o\nwhile v != null { append(xs, len(v)); v = null }") == []
    assert codes("let v: str? = o\nwhile v != null { v = null; append(xs, len(v)) }") == ["AQ313"]
    # the condition is read again after each pass: what the body writes is not known at the top
    assert codes('let v: str? = "x"\nwhile len(xs) < 3 { append(xs, len(v)); v = null }') == ["AQ313"]
    assert codes("for k in keys(m) {\n  let v: int? = get(m, k)\n  if v == null { continue }\n  append(xs, v)\n}") == []
    assert codes("while 1 { }") == ["AQ304"]
    # after a loop that only its condition ends, the condition is false
    assert codes("let v: str? = o\nwhile v == null { v = s }\nappend(xs, len(v))") == []
    assert codes("let v: str? = o\nwhile v == null { if b { break }; v = s }\nappend(xs, len(v))") == ["AQ313"]
    assert codes("let v: str? = o\nwhile v == null or b { v = s }\nappend(xs, len(v))") == []
    assert codes("let v: str? = o\nwhile v == null and b { v = s }\nappend(xs, len(v))") == ["AQ313"]


def test_break_and_continue_only_in_loops() -> None:
    for text in ("break", "if true { continue }", "let i = 0; break"):
        with pytest.raises(ExprSyntaxError, match="outside a loop"):
            parse_program(text)


# -------------------------------------------------------------------------------------------------- serialization


def test_new_nodes_round_trip_through_json() -> None:
    program = parse_program(
        'let i = 0\nwhile i < 2 { i += 1; if i == 1 { continue }; break }\n'
        'append(xs, len(s[1:3]))\nappend(xs, len(f"{x:.1f}"))\nappend(xs, count(c for c in s if c == "l"))'
    )
    data = to_json(program)
    assert from_json(data) == program
    lazy = to_json(parse_expr("all(c == c for c in s)"))
    assert lazy["args"][0]["lazy"] is True
    assert "lazy" not in to_json(parse_expr("[c for c in s]"))  # older bundles keep their bytes


# ------------------------------------------------------------------------------------------------- in a spec

DOMAIN = """\
kind: Domain
name: outages
description: Service outages and the credits they earn.
types:
  Outage:
    id: str
    started: datetime
    restored: datetime?
    grace: duration
    note: str
state:
  outages: map[Outage]
  credits: list[str]
initial_state:
  data:
    outages:
      O-1: {id: O-1, started: "2024-05-01T08:00:00", restored: "2024-05-01T21:30:00", grace: 43200, note: "disk 42"}
      O-2: {id: O-2, started: "2024-05-02T08:00:00", restored: null, grace: 3600, note: "x"}
    credits: []
"""
TOOL = """\
kind: Tool
name: credit_outage
domain: outages
description: Credit an outage that lasted longer than its grace period.
params:
  outage_id: str
  amount_text: str
requires:
  - when: outage_id in outages
    error: "no outage {{ outage_id }}"
effects: |
  let o = outages[outage_id]
  let amount = try_float(amount_text)
  if amount == null { fail f"'{amount_text}' is not an amount" }
  if o.restored == null { fail f"outage {o.id} is still going on" }
  let lasted = o.restored - o.started
  if lasted <= o.grace { fail f"lasted only {total_hours(lasted):.1f} h" }
  let digits = 0
  let i = 0
  while i < len(o.note) {
    if o.note[i] in "0123456789" { digits += 1 }
    i += 1
  }
  let head = f"{o.id[-1:]}: {amount:,.2f} for {total_hours(lasted):.1f} h from {o.started:%d %b %Y %H:%M}"
  append(credits, head + f", {digits} digits, due {o.started + days(30):%Y-%m-%d}")
returns: last(credits)
"""


def test_a_tool_with_durations_formats_and_a_while_loop(tmp_path: Any) -> None:
    from aqwen_spec.check import load_specs
    from aqwen_spec.semantics import ToolRunner, generate_state

    (tmp_path / "domain.yaml").write_text(DOMAIN, encoding="utf-8")
    (tmp_path / "tools.yaml").write_text(TOOL, encoding="utf-8")
    specs = load_specs(tmp_path)
    runner = ToolRunner(specs.tools_of("outages"), generate_state(specs.domains["outages"], 0))
    ok = runner.call("credit_outage", {"outage_id": "O-1", "amount_text": " 1234.5 "})
    assert ok.ok and ok.value == "1: 1,234.50 for 13.5 h from 01 May 2024 08:00, 2 digits, due 2024-05-31"
    assert runner.call("credit_outage", {"outage_id": "O-1", "amount_text": "x"}).error == "'x' is not an amount"
    assert runner.call("credit_outage", {"outage_id": "O-2", "amount_text": "1"}).error == (
        "outage O-2 is still going on"
    )
