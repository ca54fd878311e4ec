"""The tables of the SQL view of ``sql:`` tools: from the declared state, so empty fields still have theirs; lint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sql_specs import lint_errors, runner_of, write_tree

from aqwen_spec.check import check_paths, load_specs
from aqwen_spec.resolved import SpecSet, sql_tables
from aqwen_spec.semantics import ToolRunner, generate_state
from aqwen_spec.semantics.sqlview import build_database
from aqwen_spec.serialize import domain_from_json, domain_to_json, tool_from_json, tool_to_json

ROOT = Path(__file__).resolve().parents[1]

DOMAIN = """\
kind: Domain
name: line_quality
description: Lines, and the quality holds put on them.
types:
  Line:
    id: str
    name: str
    supervisor: str?
  Hold:
    id: str
    line_id: str
    reason: str
    note: str?
state:
  lines: map[Line]
  holds: map[Hold]
  log: list[Hold]
  motd: str
  targets: map[int]
initial_state:
  data:
    lines:
      L1: {name: Press line, id: L1}
      L2: {id: L2, name: Paint line}
    holds: {}
    log: []
    motd: hello
    targets: {L1: 10}
"""

TOOLS = """\
kind: Tool
name: holds_of_line
domain: line_quality
description: Every hold on a line.
access: read
params:
  line_id: str
implementation:
  sql: SELECT id, reason, note FROM holds WHERE line_id = :line_id ORDER BY id
---
kind: Tool
name: line_supervisors
domain: line_quality
description: Every line and its supervisor.
access: read
implementation:
  sql: SELECT id, supervisor FROM lines ORDER BY id
---
kind: Tool
name: put_on_hold
domain: line_quality
description: Put a line on hold.
params:
  hold_id: str
  line_id: str
  reason: str
effects: 'holds[hold_id] = {id: hold_id, line_id: line_id, reason: reason}'
---
kind: Tool
name: lift_hold
domain: line_quality
description: Lift a hold.
params:
  hold_id: str
effects: delete holds[hold_id]
"""


def _tree(tmp_path: Path, tools: str = TOOLS) -> Path:
    return write_tree(tmp_path, "line_quality", DOMAIN, tools)


def _specs(tmp_path: Path) -> SpecSet:
    return load_specs(_tree(tmp_path))


def _runner(specs: SpecSet) -> ToolRunner:
    return runner_of(specs, "line_quality")


# --- the tables ----------------------------------------------------------------------------------------------------


def test_the_sql_tools_carry_the_tables_of_the_declared_state(tmp_path: Path) -> None:
    specs = _specs(tmp_path)
    tables = (("lines", ("id", "name", "supervisor")), ("holds", ("id", "line_id", "reason", "note")),
              ("log", ("id", "line_id", "reason", "note")))
    assert sql_tables(specs.domains["line_quality"].state) == tables  # not motd (str) nor targets (map of int)
    assert specs.tools["holds_of_line"].tables == tables
    assert specs.tools["put_on_hold"].tables == ()  # declarative tools have no SQL view


def test_an_empty_map_is_a_table_with_no_rows_and_its_declared_columns(tmp_path: Path) -> None:
    specs = _specs(tmp_path)
    state = generate_state(specs.domains["line_quality"], 0)
    conn = build_database(state, (), specs.tools["holds_of_line"].tables)
    for table in ("holds", "log"):
        cur = conn.execute(f"SELECT * FROM {table}")
        assert cur.fetchall() == []
        assert [c[0] for c in cur.description] == ["id", "line_id", "reason", "note"]
    outcome = _runner(specs).call("holds_of_line", {"line_id": "L1"})
    assert outcome.ok, outcome.error
    assert outcome.value == []


def test_a_field_no_row_has_is_a_column_of_nulls(tmp_path: Path) -> None:
    outcome = _runner(_specs(tmp_path)).call("line_supervisors", {})
    assert outcome.ok, outcome.error
    assert outcome.value == [{"id": "L1", "supervisor": None}, {"id": "L2", "supervisor": None}]


def test_columns_are_in_declaration_order_then_the_fields_the_data_adds() -> None:
    state = {"lines": {"L1": {"name": "Press", "id": "L1", "colour": "red"}}}
    conn = build_database(state, (), [("lines", ("id", "name", "supervisor"))])
    cur = conn.execute("SELECT * FROM lines")
    assert [c[0] for c in cur.description] == ["id", "name", "supervisor", "colour"]
    assert cur.fetchall() == [("L1", "Press", None, "red")]


def test_without_declared_tables_the_view_follows_the_data() -> None:
    conn = build_database({"holds": {}, "lines": [{"id": "L1"}], "motd": "hi"})
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == {"lines"}


def test_the_table_stays_after_its_last_record_is_deleted(tmp_path: Path) -> None:
    runner = _runner(_specs(tmp_path))
    assert runner.call("put_on_hold", {"hold_id": "H-1", "line_id": "L1", "reason": "scratches"}).ok
    assert runner.call("holds_of_line", {"line_id": "L1"}).value == [{"id": "H-1", "reason": "scratches",
                                                                      "note": None}]
    assert runner.call("lift_hold", {"hold_id": "H-1"}).ok
    outcome = runner.call("holds_of_line", {"line_id": "L1"})
    assert outcome.ok, outcome.error
    assert outcome.value == []


# --- bundles -------------------------------------------------------------------------------------------------------


def test_bundles_carry_the_tables(tmp_path: Path) -> None:
    specs = _specs(tmp_path)
    again = domain_from_json(json.loads(json.dumps(domain_to_json(specs.domains["line_quality"]))))
    named = {**again.types, "State": again.state}
    tools = {n: tool_from_json(json.loads(json.dumps(tool_to_json(t))), named)
             for n, t in specs.tools_of("line_quality").items()}
    assert tools["holds_of_line"].tables == specs.tools["holds_of_line"].tables
    outcome = ToolRunner(tools, generate_state(again, 0)).call("holds_of_line", {"line_id": "L1"})
    assert outcome.ok and outcome.value == [], outcome.error
    assert "tables" not in tool_to_json(specs.tools["put_on_hold"])  # nothing new where there is no SQL view


def test_a_domain_without_sql_tools_has_no_tables_in_its_bundle() -> None:
    specs = check_paths([ROOT / "specs"]).specs
    assert specs.tools and all(t.implementation != "sql" for t in specs.tools.values())
    assert all("tables" not in tool_to_json(t) for t in specs.tools.values())


def test_a_bundle_without_tables_still_runs_its_sql_tools(tmp_path: Path) -> None:
    specs = _specs(tmp_path)
    data = tool_to_json(specs.tools["line_supervisors"])
    del data["tables"]
    data["sql"] = "SELECT id, name FROM lines ORDER BY id"
    domain = specs.domains["line_quality"]
    tool = tool_from_json(data, {**domain.types, "State": domain.state})
    assert tool.tables == ()  # the view follows the data, as it did before bundles carried tables
    outcome = ToolRunner({"line_supervisors": tool}, generate_state(domain, 0)).call("line_supervisors", {})
    assert outcome.ok, outcome.error
    assert outcome.value == [{"id": "L1", "name": "Press line"}, {"id": "L2", "name": "Paint line"}]


# --- lint ----------------------------------------------------------------------------------------------------------


def _errors(tmp_path: Path, sql: str) -> list[tuple[str, int, int, str, str | None]]:
    tools = TOOLS.replace("SELECT id, supervisor FROM lines ORDER BY id", sql)
    return lint_errors(_tree(tmp_path, tools))


def test_lint_reports_an_unknown_table_where_it_is(tmp_path: Path) -> None:
    found = _errors(tmp_path, "SELECT h.id FROM lines AS l JOIN hold AS h ON h.line_id = l.id")
    assert found == [("AQ311", 17, 41, "the query reads a table 'hold' that the SQL view does not have",
                      "did you mean 'holds'?")]


def test_lint_finds_the_table_in_a_folded_block(tmp_path: Path) -> None:
    found = _errors(tmp_path, ">-\n    SELECT id FROM lines\n    WHERE id IN (SELECT line_id FROM hold)")
    assert [f[:3] for f in found] == [("AQ311", 19, 38)]


def test_lint_reports_a_field_that_is_no_table(tmp_path: Path) -> None:
    found = _errors(tmp_path, "SELECT * FROM targets")
    assert found == [("AQ311", 17, 22, "the query reads 'targets', but targets is map[int]: the SQL view has a "
                      "table for each map or list of records", None)]


@pytest.mark.parametrize("sql", [
    "WITH open_holds AS (SELECT * FROM holds) SELECT o.id FROM open_holds AS o JOIN Lines AS l ON l.id = o.line_id",
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3) SELECT x FROM n",
    "SELECT l.id FROM lines AS l, json_each(l.name) AS j",
    "SELECT id FROM (SELECT id FROM log) WHERE id IS NOT DISTINCT FROM 'x'",
    "|-\n    SELECT 'FROM nowhere' AS s -- FROM nowhere\n    FROM lines /* JOIN nowhere */",
    "SELECT name FROM sqlite_master",
], ids=["cte", "recursive_cte", "table_function", "subquery_distinct_from", "strings_and_comments", "sqlite_master"])
def test_lint_accepts_what_is_not_a_missing_table(tmp_path: Path, sql: str) -> None:
    assert _errors(tmp_path, sql) == []
