"""State and values: top-level state fields written by name, tool-level ``let:`` bindings, sets, int-keyed maps,
map comprehensions and ``group_by``; each checked by lint and run through :class:`ToolRunner`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.check import check_paths
from aqwen_spec.resolved import SpecSet
from aqwen_spec.semantics import ToolRunner
from aqwen_spec.serialize import tool_from_json, tool_to_json

DOMAIN = """\
kind: Domain
name: helpdesk
types:
  User: {id: str, name: str, zip: str, tickets: int}
  Ticket: {id: str, user_id: str, title: str, opened: date}
state:
  users: map[User]
  tickets: map[Ticket]
  ticket_counter: int
  opened: date?
"""


def _specs(tmp_path: Path, *docs: str) -> tuple[SpecSet, list[tuple[str, str, str | None]]]:
    (tmp_path / "specs").mkdir(exist_ok=True)
    (tmp_path / "specs" / "domain.yaml").write_text(DOMAIN + "".join("---\n" + d for d in docs), encoding="utf-8")
    result = check_paths([tmp_path / "specs"])
    found = [(d.code, f"{d.pos.line}:{d.pos.col}", d.hint) for d in result.diagnostics if d.code != "AQ501"]
    return result.specs, found


def _state() -> dict[str, Any]:
    return {
        "users": {"U1": {"id": "U1", "name": "ana", "zip": "1000", "tickets": 0},
                  "U2": {"id": "U2", "name": "ben", "zip": "2000", "tickets": 2}},
        "tickets": {},
        "ticket_counter": 7,
        "opened": None,
    }


def _runner(specs: SpecSet, state: dict[str, Any]) -> ToolRunner:
    return ToolRunner(specs.tools_of("helpdesk"), state)


# --- top-level state fields written by name ----------------------------------------------------------------------

OPEN_TICKET = """\
kind: Tool
name: open_ticket
domain: helpdesk
params:
  user_id: str
  title: str
requires:
  - when: user_id in users
    error: "no user {{ user_id }}"
effects: |
  ticket_counter += 1
  let id = f"T-{ticket_counter}"
  tickets[id] = {id: id, user_id: user_id, title: title, opened: "2024-06-01"}
  if opened == null { opened = date("2024-06-01") }
  if title == "boom" { fail "no booms" }
returns: "{id: id, counter: ticket_counter, opened: opened}"
"""


def test_a_top_level_field_is_written_by_name_and_undone_on_failure(tmp_path: Path) -> None:
    specs, found = _specs(tmp_path, OPEN_TICKET)
    assert found == []
    state = _state()
    runner = _runner(specs, state)
    outcome = runner.call("open_ticket", {"user_id": "U1", "title": "printer"})
    assert outcome.ok, outcome.error
    assert outcome.value == {"id": "T-8", "counter": 8, "opened": "2024-06-01"}
    assert state["ticket_counter"] == 8 and state["opened"] == "2024-06-01" and "T-8" in state["tickets"]
    failed = runner.call("open_ticket", {"user_id": "U1", "title": "boom"})
    assert not failed.ok and failed.error == "no booms"
    assert state["ticket_counter"] == 8 and "T-9" not in state["tickets"]  # rolled back


def test_writing_a_top_level_field_is_typed_and_parameters_stay_read_only(tmp_path: Path) -> None:
    bad = OPEN_TICKET.replace("ticket_counter += 1", 'ticket_counter = "T"').replace(
        "  if title", "  title = \"x\"\n  if title")
    _, found = _specs(tmp_path, bad)
    codes = [code for code, _, _ in found]
    assert "AQ304" in codes and "AQ307" in codes


def test_a_write_by_name_drops_what_was_known_of_the_field(tmp_path: Path) -> None:
    tool = OPEN_TICKET.replace("  if opened == null { opened = date(\"2024-06-01\") }\n",
                               "  if opened != null {\n    opened = null\n    let d: date = opened\n  }\n")
    _, found = _specs(tmp_path, tool)
    assert [code for code, _, _ in found] == ["AQ313"]


# --- tool-level bindings ------------------------------------------------------------------------------------------

BUMP_USER = """\
kind: Tool
name: bump_user
domain: helpdesk
params:
  name: str
  zip: str
let:
  user: "first(users where u: u.name == name and u.zip == zip)"
  before: ticket_counter
requires:
  - when: user != null
    error: "no user {{ name }} at {{ zip }}"
  - when: user.tickets < 2
    error: "{{ user.name }} has {{ user.tickets }} tickets already (counter {{ before }})"
effects:
  - user.tickets += 1
  - ticket_counter += 1
returns: "{id: user.id, tickets: user.tickets, before: before, now: ticket_counter}"
"""


def test_a_binding_is_computed_once_and_narrowed_by_a_precondition(tmp_path: Path) -> None:
    specs, found = _specs(tmp_path, BUMP_USER)
    assert found == []
    state = _state()
    runner = _runner(specs, state)
    outcome = runner.call("bump_user", {"name": "ana", "zip": "1000"})
    assert outcome.ok, outcome.error
    # 'before' was computed before the effects and is not computed again for returns
    assert outcome.value == {"id": "U1", "tickets": 1, "before": 7, "now": 8}
    assert state["users"]["U1"]["tickets"] == 1  # the binding names the stored record: writes reach the state
    missing = runner.call("bump_user", {"name": "ana", "zip": "9999"})
    assert missing.error_kind == "precondition" and missing.error == "no user ana at 9999"
    full = runner.call("bump_user", {"name": "ben", "zip": "2000"})
    assert full.error == "ben has 2 tickets already (counter 8)"  # error templates see the bindings


def test_bindings_reach_the_bundle(tmp_path: Path) -> None:
    specs, _ = _specs(tmp_path, BUMP_USER)
    tool = specs.tools_of("helpdesk")["bump_user"]
    again = tool_from_json(json.loads(json.dumps(tool_to_json(tool))), {})
    assert [n for n, _ in again.bindings] == ["user", "before"]
    outcome = ToolRunner({"bump_user": again}, _state()).call("bump_user", {"name": "ana", "zip": "1000"})
    assert outcome.ok and outcome.value["before"] == 7


def test_an_optional_binding_must_be_checked_before_use(tmp_path: Path) -> None:
    tool = BUMP_USER.replace("  - when: user != null\n    error: \"no user {{ name }} at {{ zip }}\"\n", "")
    _, found = _specs(tmp_path, tool)
    assert found and found[0][0] == "AQ313"


def test_a_binding_that_fails_is_a_spec_defect_and_lint_warns(tmp_path: Path) -> None:
    tool = """\
kind: Tool
name: user_tickets
domain: helpdesk
params:
  uid: str
let:
  user: users[uid]
returns: user.tickets
"""
    specs, found = _specs(tmp_path, tool)
    assert found == [("AQ506", "18:9", "bind get(users, uid) instead, and check user != null in a precondition")]
    outcome = _runner(specs, _state()).call("user_tickets", {"uid": "U9"})
    assert outcome.error_kind == "spec_error" and outcome.defect is not None
    assert outcome.defect.part == "let" and outcome.defect.describe().startswith("binding 1 of user_tickets")
    guarded = tool.replace("users[uid]", "get(users, uid)").replace(
        "returns:", "requires:\n  - when: user != null\n    error: \"no user {{ uid }}\"\nreturns:")
    specs, found = _specs(tmp_path, guarded)
    assert found == []
    assert _runner(specs, _state()).call("user_tickets", {"uid": "U9"}).error == "no user U9"


def test_a_binding_may_not_hide_a_parameter_or_state_field(tmp_path: Path) -> None:
    tool = BUMP_USER.replace("  before: ticket_counter", "  zip: ticket_counter\n  users: len(users)")
    _, found = _specs(tmp_path, tool)
    assert [code for code, _, _ in found][:2] == ["AQ330", "AQ330"]


# --- sets and int-keyed maps --------------------------------------------------------------------------------------

SHELF = """\
kind: Domain
name: shelf
types:
  Item: {id: int, name: str, tags: "set[str]"}
state:
  items: map[int, Item]
  seen: set[str]
  next_id: int
initial_state:
  data:
    items:
      "1": {id: 1, name: bolt, tags: [steel, small, steel]}
      "2": {id: 2, name: nut, tags: []}
    seen: [bolt, anchor]
    next_id: 3
---
kind: Tool
name: add_item
domain: shelf
params:
  name: str
  tags: set[str]
effects: |
  let id = next_id
  next_id += 1
  items[id] = {id: id, name: name, tags: tags}
  add(seen, name)
  if name == "boom" { fail "no booms" }
returns: items[id]
---
kind: Tool
name: tag_item
domain: shelf
params:
  item_id: int
  tag: str
  drop: {type: bool, default: false}
requires:
  - when: item_id in items
    error: "no item {{ item_id }}"
effects: |
  if drop { discard(items[item_id].tags, tag) } else { add(items[item_id].tags, tag) }
returns: "{tags: items[item_id].tags, count: len(items[item_id].tags), steel: \\"steel\\" in items[item_id].tags}"
---
kind: Tool
name: compare_items
domain: shelf
access: read
params:
  a: int
  b: int
requires:
  - when: a in items and b in items
    error: no such items
returns: |
  {both: intersection(items[a].tags, items[b].tags), either: union(items[a].tags, items[b].tags),
   only_a: difference(items[a].tags, items[b].tags), ids: sorted(keys(items), desc=true)}
"""


def _shelf(tmp_path: Path) -> tuple[SpecSet, ToolRunner, dict[str, Any]]:
    from aqwen_spec.semantics import generate_state

    (tmp_path / "specs").mkdir(exist_ok=True)
    (tmp_path / "specs" / "shelf.yaml").write_text(SHELF, encoding="utf-8")
    result = check_paths([tmp_path / "specs"])
    errors = [(d.code, d.message) for d in result.diagnostics if d.code != "AQ501"]
    assert errors == []
    state = generate_state(result.specs.domains["shelf"], 0)
    return result.specs, ToolRunner(result.specs.tools_of("shelf"), state), state


def test_state_loads_int_keys_and_sorted_sets(tmp_path: Path) -> None:
    from aqwen_spec.values import check_value

    specs, _, state = _shelf(tmp_path)
    assert list(state["items"]) == [1, 2] and state["items"][1]["tags"] == ["small", "steel"]
    assert state["seen"] == ["anchor", "bolt"]
    assert check_value(state, specs.domains["shelf"].state) == []


def test_sets_change_in_place_stay_sorted_and_roll_back(tmp_path: Path) -> None:
    _, runner, state = _shelf(tmp_path)
    added = runner.call("add_item", {"name": "washer", "tags": ["zinc", "flat", "zinc"]})
    assert added.ok, added.error
    assert added.render() == '{"id": 3, "name": "washer", "tags": ["flat", "zinc"]}'
    assert state["items"][3]["tags"] == ["flat", "zinc"] and state["seen"] == ["anchor", "bolt", "washer"]
    tagged = runner.call("tag_item", {"item_id": 1, "tag": "m6"})
    assert tagged.value == {"tags": ["m6", "small", "steel"], "count": 3, "steel": True}
    again = runner.call("tag_item", {"item_id": 1, "tag": "m6"})  # adding what is there changes nothing
    assert again.value["count"] == 3
    dropped = runner.call("tag_item", {"item_id": 1, "tag": "steel", "drop": True})
    assert dropped.value == {"tags": ["m6", "small"], "count": 2, "steel": False}
    assert runner.call("tag_item", {"item_id": 1, "tag": "none", "drop": True}).value["count"] == 2
    before = json.dumps(state, sort_keys=True)
    failed = runner.call("add_item", {"name": "boom", "tags": []})
    assert failed.error == "no booms" and json.dumps(state, sort_keys=True) == before  # next_id, items, seen undone


def test_set_operations_and_int_keys_in_results(tmp_path: Path) -> None:
    _, runner, _ = _shelf(tmp_path)
    runner.call("tag_item", {"item_id": 2, "tag": "steel"})
    runner.call("tag_item", {"item_id": 2, "tag": "hex"})
    outcome = runner.call("compare_items", {"a": 1, "b": 2})
    assert outcome.value == {"both": ["steel"], "either": ["hex", "small", "steel"], "only_a": ["small"],
                             "ids": [2, 1]}
    assert runner.call("compare_items", {"a": 1, "b": 9}).error == "no such items"
    assert runner.call("tag_item", {"item_id": "1", "tag": "x"}).error_kind == "bad_arguments"


def test_set_and_int_key_types_reach_the_bundle(tmp_path: Path) -> None:
    from aqwen_spec.semantics import generate_state
    from aqwen_spec.serialize import domain_from_json, domain_to_json

    specs, _, state = _shelf(tmp_path)
    domain = specs.domains["shelf"]
    again = domain_from_json(json.loads(json.dumps(domain_to_json(domain))))
    assert again.state.fields["items"].render() == "map[int, Item]"
    assert again.state.fields["seen"].render() == "set[str]"
    assert generate_state(again, 0) == state
    tools = {n: tool_from_json(json.loads(json.dumps(tool_to_json(t))), {**again.types, "State": again.state})
             for n, t in specs.tools_of("shelf").items()}
    assert ToolRunner(tools, generate_state(again, 0)).call("tag_item", {"item_id": 1, "tag": "a"}).ok


def test_an_inline_task_state_is_read_in_the_form_tools_work_on(tmp_path: Path) -> None:
    from runtime.episodes.state_pool import StatePool

    specs, _, state = _shelf(tmp_path)
    pool = StatePool(lambda seed: state, specs.domains["shelf"].state)
    as_json = json.loads(json.dumps({**state, "seen": ["b", "a"]}))
    assert list(as_json["items"]) == ["1", "2"]
    inline = pool.inline(as_json)
    assert list(inline["items"]) == [1, 2] and inline["seen"] == ["a", "b"]


# --- map comprehensions and grouping ------------------------------------------------------------------------------

MAIL = """\
kind: Domain
name: mail
types:
  Message: {id: int, sender: str, receiver: str, body: str, read: bool}
state:
  messages: list[Message]
  unread: map[int]
initial_state:
  data:
    messages:
      - {id: 1, sender: ana, receiver: bob, body: hi, read: false}
      - {id: 2, sender: bob, receiver: ana, body: yo, read: true}
      - {id: 3, sender: cy, receiver: bob, body: lunch?, read: false}
    unread: {}
---
kind: Tool
name: inbox_summary
domain: mail
access: read
returns: |
  {by_receiver: {r: [m.id for m in ms] for r, ms in items(group_by(messages, by=receiver))},
   by_id: {m.id: m.body for m in messages if not m.read},
   senders: group_by(m in messages: m.sender)}
---
kind: Tool
name: count_unread
domain: mail
effects: |
  unread = {r: count(ms, not read) for r, ms in items(group_by(messages, by=receiver))}
  for r, n in items(unread) {
    if n == 0 { delete unread[r] }
  }
returns: unread
"""


def test_grouping_and_map_comprehensions(tmp_path: Path) -> None:
    from aqwen_spec.semantics import generate_state

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mail.yaml").write_text(MAIL, encoding="utf-8")
    result = check_paths([tmp_path / "specs"])
    assert [(d.code, d.message) for d in result.diagnostics if d.code != "AQ501"] == []
    state = generate_state(result.specs.domains["mail"], 0)
    runner = ToolRunner(result.specs.tools_of("mail"), state)
    summary = runner.call("inbox_summary", {})
    assert summary.ok, summary.error
    shown = summary.render()
    assert shown.startswith('{"by_receiver": {"bob": [1, 3], "ana": [2]}, "by_id": {"1": "hi", "3": "lunch?"}')
    assert list(summary.value["senders"]) == ["ana", "bob", "cy"]
    assert summary.value["senders"]["cy"][0]["body"] == "lunch?"
    counted = runner.call("count_unread", {})
    assert counted.value == {"bob": 2} and state["unread"] == {"bob": 2}


def test_map_comprehension_keys_are_typed(tmp_path: Path) -> None:
    bad = MAIL.replace("by_id: {m.id: m.body", "by_id: {m: m.body")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mail.yaml").write_text(bad, encoding="utf-8")
    found = [(d.code, d.message) for d in check_paths([tmp_path / "specs"]).diagnostics if d.code != "AQ501"]
    assert found == [("AQ304", "a map's keys are str or int, not Message")]


def test_generated_records_of_an_int_keyed_map_have_int_keys(tmp_path: Path) -> None:
    from aqwen_spec.semantics import generate_state

    spec = SHELF.split("---")[0].replace("    next_id: 3\n", "    next_id: 3\n  generate:\n    items:\n      count: 2\n"
                                          "      key: i + 10\n      fields:\n        id: i + 10\n"
                                          "        name: f\"part {i}\"\n        tags: 'set([\"b\", \"a\", \"b\"])'\n")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "shelf.yaml").write_text(spec, encoding="utf-8")
    result = check_paths([tmp_path / "specs"])
    assert [(d.code, d.message) for d in result.diagnostics if d.code != "AQ501"] == []
    state = generate_state(result.specs.domains["shelf"], 0)
    assert list(state["items"]) == [1, 2, 10, 11] and state["items"][10]["tags"] == ["a", "b"]


@pytest.mark.parametrize(("effect", "codes"), [
    ('modes = set(["a", "b"])', []),  # enum values written in place are checked one by one
    ('modes = set(["a", "z"])', ["AQ304"]),
    ("modes = set(names)", ["AQ304"]),  # any text is not always an enum value
    ('add(modes, "b"); discard(modes, "a")', []),
    ('add(modes, "z")', ["AQ304"]),
    ("if by_no == {} { by_no[1] = \"one\" }", []),  # the empty map literal fits an int-keyed map
    ('by_no = {n: "x" for n in range(3)}', []),
    ('by_no = {"1": "x"}', ["AQ304"]),
    ("let pairs = items(by_no)\nlet first_key: int = pairs[0][0]", []),
])
def test_sets_of_enums_and_int_keyed_literals_are_checked(effect: str, codes: list[str]) -> None:
    from aqwen_spec.check.scopes import state_scope
    from aqwen_spec.expr import parse_program
    from aqwen_spec.expr.checker import check_program
    from aqwen_spec.types import INT, STR, EnumT, ListT, MapT, RecordT, SetT

    state = RecordT("State", {"modes": SetT(EnumT(("a", "b"))), "names": ListT(STR), "by_no": MapT(STR, INT)})
    problems = check_program(parse_program(effect), state_scope(state, strict=True))
    assert [p.code for p in problems] == codes


def test_a_gold_call_that_fails_in_a_binding_is_reported_at_the_binding(tmp_path: Path) -> None:
    from compiler import compile_specs
    from compiler.project import SpecError

    tree = tmp_path / "specs"
    tree.mkdir()
    (tree / "desk.yaml").write_text("""\
kind: Domain
name: desk
types:
  User: {id: str, name: str}
state:
  users: map[User]
initial_state:
  data:
    users: {U1: {id: U1, name: ana}}
---
kind: Tool
name: user_name
domain: desk
access: read
params:
  uid: str
let:
  user: users[uid]
returns: user.name
---
kind: Persona
name: plain
---
kind: Workflow
name: ask_name
domain: desk
slots:
  uid: '"U9"'
tree: [user_name(uid=uid)]
instruction: "What is the name of {{ uid }}?"
---
kind: Verifier
name: ask_name_ok
for: ask_name
checks:
  - same_final_state_as_gold
""", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        compile_specs(tree)
    found = [d for d in info.value.diagnostics if d.code == "AQ620"]
    assert [(d.pos.line, d.pos.col) for d in found] == [(18, 9)]
    assert found[0].message.startswith("binding 1 of user_name: no entry 'U9' in the map")
    assert found[0].hint is not None and "bind get(map, key)" in found[0].hint


def test_set_and_int_keyed_parameters_export_to_json_schema() -> None:
    from aqwen_spec.types import INT, STR, MapT, SetT, json_schema

    assert json_schema(SetT(STR)) == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert json_schema(MapT(STR, INT)) == {"type": "object", "propertyNames": {"pattern": "^-?[0-9]+$"},
                                          "additionalProperties": {"type": "string"}}
