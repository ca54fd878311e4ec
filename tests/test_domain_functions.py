"""Domain functions and constants: recursion over a directory tree, the call depth and step limits, constants that
stay out of the state and cannot be written, and a bundle that carries them once (format 2.0)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.check import check_paths, load_specs
from aqwen_spec.diagnostics import Severity
from aqwen_spec.expr import EvalError, EvalLimitError, evaluate, execute, parse_expr, parse_program
from aqwen_spec.expr.evaluator import state_env
from aqwen_spec.expr.library import MAX_CALL_DEPTH, FunctionDef, Library
from aqwen_spec.resolved import SpecSet
from aqwen_spec.semantics import ToolRunner, generate_state
from aqwen_spec.types import INT
from compiler import compile_specs, write_bundles
from compiler.bundle import BASE_FORMAT_VERSION

SPECS = Path(__file__).parent / "fixtures" / "functions" / "specs"
EXAMPLE = Path(__file__).parents[1] / "specs"


@pytest.fixture(scope="module")
def specs() -> SpecSet:
    return load_specs(SPECS)


def _runner(specs: SpecSet, state: dict[str, Any] | None = None) -> ToolRunner:
    return ToolRunner(specs.tools_of("files"), state or generate_state(specs.domains["files"], 0))


def _nest(state: dict[str, Any], depth: int) -> None:
    node = state["root"]
    for _ in range(depth):
        node["children"]["d"] = {"name": "d", "size": 1, "children": {}}
        node = node["children"]["d"]


def test_return_types_are_declared_or_inferred(specs: SpecSet) -> None:
    functions = specs.domains["files"].library.functions
    assert {n: f.returns.render() for n, f in functions.items()} == {
        "du": "int", "walk": "Node?", "resolve": "Node?", "usage": "int", "du_of": "int", "find": "list[str]",
        "find_in": "list[str]", "lookup": "Node?", "sizes": "list[int]", "sizes_at": "list[int]", "forever": "int",
        "rate_of": "Price",
    }


def test_recursive_walk_and_disk_usage(specs: SpecSet) -> None:
    runner = _runner(specs)
    assert runner.call("disk_usage", {"path": "/home"}).value == {"path": "/home", "bytes": 112, "over_quota": False}
    assert runner.call("disk_usage", {"path": "/"}).value["bytes"] == 113
    assert runner.call("disk_usage", {"path": "home/docs/"}).value["bytes"] == 101
    missing = runner.call("disk_usage", {"path": "/home/nope"})
    assert (missing.error_kind, missing.error) == ("precondition", "no such directory /home/nope")


def test_a_statement_body_walks_a_path_in_a_loop(specs: SpecSet) -> None:
    runner = _runner(specs)
    assert runner.call("child_sizes", {"path": "/"}).value == [1, 112]
    assert runner.call("child_sizes", {"path": "home/"}).value == [10, 101]
    assert runner.call("child_sizes", {"path": "/home/a.txt"}).value == []
    assert runner.call("child_sizes", {"path": "/home/nope"}).error == "no such directory /home/nope"
    state = generate_state(specs.domains["files"], 0)
    lookup = parse_expr('lookup("/home/docs")')
    node = evaluate(lookup, state_env(state, library=specs.domains["files"].library))
    assert node is state["root"]["children"]["home"]["children"]["docs"]  # the state's own record, not a copy


def test_mutual_recursion_finds_every_entry(specs: SpecSet) -> None:
    runner = _runner(specs)
    assert runner.call("find_files", {"name": "a.txt"}).value == ["/home/a.txt", "/home/docs/a.txt"]
    assert runner.call("find_files", {"name": "zzz"}).value == []


def test_a_function_result_is_written_through_into_the_state(specs: SpecSet) -> None:
    state = generate_state(specs.domains["files"], 0)
    journal: list[Any] = []
    runner = ToolRunner(specs.tools_of("files"), state, journal)
    made = runner.call("make_dir", {"path": "/home/docs", "name": "x"})
    assert made.ok, made.error
    assert state["root"]["children"]["home"]["children"]["docs"]["children"]["x"]["size"] == 1
    assert runner.call("disk_usage", {"path": "/home/docs/x"}).value["bytes"] == 1
    # the quota check runs after the write: a failing effect undoes it
    state["root"]["children"]["tmp"]["size"] = 199
    over = runner.call("make_dir", {"path": "/tmp", "name": "y"})
    assert (over.error_kind, over.error) == ("effect", "over the quota")
    assert "y" not in state["root"]["children"]["tmp"]["children"]


def test_recursion_deeper_than_the_limit_is_a_spec_error(specs: SpecSet) -> None:
    spin = _runner(specs).call("spin", {})
    assert spin.error_kind == "spec_error"
    assert spin.defect is not None and spin.defect.part == "returns"
    assert f"nest more than {MAX_CALL_DEPTH} deep (at forever()" in spin.defect.message
    state = generate_state(specs.domains["files"], 0)
    _nest(state, MAX_CALL_DEPTH - 5)  # usage -> du_of -> du per level: within the limit
    assert _runner(specs, state).call("disk_usage", {"path": "/"}).ok
    _nest(state, MAX_CALL_DEPTH + 5)
    deep = _runner(specs, state).call("disk_usage", {"path": "/"})
    assert deep.error_kind == "spec_error" and "nest more than" in deep.error


def test_calls_are_charged_to_the_step_budget() -> None:
    fib = FunctionDef("fib", {"n": INT}, parse_expr("n if n < 2 else fib(n - 1) + fib(n - 2)"), INT, True)
    library = Library({"fib": fib})
    assert evaluate(parse_expr("fib(15)"), state_env({}, library=library)) == 610
    with pytest.raises(EvalLimitError, match="too many steps"):
        evaluate(parse_expr("fib(30)"), state_env({}, library=library))


def test_constants_are_read_from_the_bundle_not_the_state(specs: SpecSet) -> None:
    library = specs.domains["files"].library
    assert library.constants["QUOTA"] == 200
    assert library.constants["PRICES"]["disk-m"] == {"sku": "disk-m", "price": 4.0}  # CSV cells typed
    state = generate_state(specs.domains["files"], 0)
    assert set(state) == {"root"}
    runner = _runner(specs, state)
    assert runner.call("disk_price", {"sku": "disk-m"}).value == 4.0
    assert runner.call("disk_price", {"sku": "disk-x"}).error == "no disk disk-x (we sell disk-s, disk-m)"


def test_a_write_into_a_constant_fails_at_run_time_too() -> None:
    """The checker rejects it (AQ341); a program run without checking still cannot change shared data."""
    library = Library(constants={"RATES": {"a": {"price": 1.0}}})
    library.freeze()
    state: dict[str, Any] = {"x": 0}
    for text in ('let r = RATES["a"]\nr.price = 2.0', "let t = RATES\ndelete t[\"a\"]"):
        with pytest.raises(EvalError, match="constants are read-only"):
            execute(parse_program(text), state_env(state, library=library), state)
    assert library.constants["RATES"] == {"a": {"price": 1.0}}


def _lint(tmp_path: Path, domain: str, tools: str = "") -> list[tuple[str, int, int, str]]:
    root = tmp_path / "specs" / "d"
    root.mkdir(parents=True)
    (root / "domain.yaml").write_text(domain, encoding="utf-8")
    if tools:
        (root / "tools.yaml").write_text(tools, encoding="utf-8")
    return [(d.code, d.pos.line, d.pos.col, d.message) for d in check_paths([tmp_path / "specs"]).diagnostics.sorted()
            if d.severity is Severity.ERROR]


_DOMAIN = """\
kind: Domain
name: d
state:
  counts: map[int]
constants:
  LIMIT: {type: int, value: 3}
functions:
"""


def test_lint_of_functions(tmp_path: Path) -> None:
    errors = _lint(tmp_path, _DOMAIN + """\
  twice: {params: {x: int}, body: x * 2}
  bad_return: {params: {x: int}, returns: str, body: x + 1}
  uses_state: {params: {k: str}, returns: int, body: 'counts[k] if k in counts else 0'}
  hides: {params: {counts: int}, body: counts}
  range: {params: {x: int}, body: x}
  LIMIT: {params: {}, body: 1}
""", """\
kind: Tool
name: t
domain: d
params:
  k: str
effects: |
  counts[k] = twice(LIMIT) + twice("a") + twice(1, 2) + twice(y=1)
  LIMIT = 4
""")
    codes = [(code, line) for code, line, _, _ in errors]
    assert ("AQ304", 9) in codes  # bad_return: an int is not a str
    assert ("AQ111", 11) in codes and ("AQ111", 12) in codes and ("AQ111", 13) in codes
    messages = [m for _, _, _, m in errors]
    assert "cannot store a str in parameter 'x' of twice() of type int" in messages
    assert "twice() takes 1 arguments, got 2" in messages
    assert "twice() has no parameter 'y'" in messages
    assert "'LIMIT' is a constant: constants are read-only" in messages


def test_lint_of_statement_bodies(tmp_path: Path) -> None:
    errors = _lint(tmp_path, _DOMAIN + """\
  no_type:
    params: {k: str}
    body: |
      return 1
  total:
    params: {xs: "list[int]"}
    returns: int
    body: |
      let t = 0
      for x in xs {
        t += x
      }
      if t > LIMIT {
        fail "too much"
      }
      return str(t)
  keeps:
    params: {k: str}
    returns: "list[int]"
    body: |
      let seen: list[int] = []
      append(seen, counts[k])
      let all = [counts[k]]
      append(all, 1)
      return seen
""")
    found = [(code, line, message) for code, line, _, message in errors]
    assert found[0][:2] == ("AQ340", 8)  # a statement body declares its return type
    assert ("AQ343", 21, "a function cannot fail: it has a value wherever it is called (a precondition, a check)") \
        in found
    assert ("AQ304", 23) in [(c, line) for c, line, _ in found]  # return str(t) in a function returning int
    assert not [f for f in found if f[1] > 23], found  # a fresh list of plain values is the body's own to fill


def test_lint_of_constants(tmp_path: Path) -> None:
    errors = _lint(tmp_path, """\
kind: Domain
name: d
state:
  counts: map[int]
constants:
  counts: {type: int, value: 1}
  NO_VALUE: {type: int}
  WRONG: {type: "list[int]", value: [1, two]}
  MISSING: {type: "map[int]", file: data/none.csv}
""")
    assert [(c, line) for c, line, _, _ in errors] == [("AQ111", 6), ("AQ104", 7), ("AQ203", 8), ("AQ204", 9)]


def test_bundle_carries_functions_and_constants_once(tmp_path: Path) -> None:
    from runtime.episodes.agents import OracleAgent
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.evaluate import evaluate as run_tasks

    project = compile_specs(SPECS, tasks_per_branch=2)
    [folder] = write_bundles(project, tmp_path / "build")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format_version"] == "2.0"
    assert "prices.csv" in " ".join(manifest["sources"])
    body = (folder / "bundle.json").read_text()
    assert body.count('"sku":"disk-m"') == 1  # the table is stored once, not per task or per tool
    assert '"disk-m"' not in (folder / "tasks.jsonl").read_text()
    bundle = Bundle.load(folder)
    assert bundle.tools["disk_usage"].library is bundle.domain.library
    report = run_tasks(bundle, OracleAgent)
    assert report.n_tasks > 0 and report.success_rate == 1.0


def test_bundles_without_functions_keep_their_format(tmp_path: Path) -> None:
    project = compile_specs(EXAMPLE, tasks_per_branch=1)
    folders = write_bundles(project, tmp_path / "build")
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["format_version"] == BASE_FORMAT_VERSION
        assert '"functions"' not in (folder / "bundle.json").read_text()


def test_calls_the_checker_would_reject_fail_cleanly() -> None:
    """A bundle built without checking: wrong calls are run-time errors, never internal ones."""
    twice = FunctionDef("twice", {"x": INT}, parse_expr("x * 2"), INT, True)
    env = state_env({}, library=Library({"twice": twice}))
    for text, message in (("twice(1, 2)", "twice() takes 1 arguments, got 2"), ("twice()", "takes 1 arguments, got 0"),
                          ("twice(1, x=2)", "takes 1 arguments"), ("thrice(1)", "unknown function 'thrice'")):
        with pytest.raises(EvalError, match=re.escape(message)):
            evaluate(parse_expr(text), env)
    with pytest.raises(EvalError, match="unknown function 'twice'"):
        evaluate(parse_expr("twice(1)"), state_env({}))  # no library in the env


def test_an_unguarded_lookup_in_a_constant_table_is_warned_about(tmp_path: Path) -> None:
    root = tmp_path / "specs" / "d"
    root.mkdir(parents=True)
    rates = '  RATES: {type: "map[float]", value: {a: 1.0}}\n'
    tool = "---\nkind: Tool\nname: rate\ndomain: d\nparams:\n  zone: str\nreturns: RATES[zone]\n"
    (root / "domain.yaml").write_text(_DOMAIN.replace("functions:\n", rates) + tool, encoding="utf-8")
    found = [(d.code, d.pos.line) for d in check_paths([tmp_path / "specs"]).diagnostics.sorted()]
    assert ("AQ506", 14) in found and not any(code.startswith("AQ3") for code, _ in found), found
