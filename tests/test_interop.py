"""Importing tool skeletons (OpenAI, MCP, BFCL) and exporting bundles (OpenAI tools, datasets, chat JSONL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aqwen_spec.check import check_paths, load_specs
from aqwen_spec.interop import ImportResult, InteropError, import_file, import_text, load_functions
from aqwen_spec.interop.__main__ import main as interop_main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "interop"
MINIMAL_DOMAIN = "kind: Domain\nname: {name}\nstate: {{}}\n"


def _params(result: ImportResult, tool: str) -> dict[str, tuple[str, bool]]:
    t = next(t for t in result.tools if t.name == tool)
    return {n: (p.type.render(), p.required) for n, p in t.params.items()}


def _docs(text: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_openai_types_enums_optional_defaults_and_odd_names() -> None:
    result = import_file(FIXTURES / "openai_tools.json", "d")
    assert [t.name for t in result.tools] == ["get_weather_v2", "plan_route", "ping"]
    assert _params(result, "get_weather_v2") == {
        "city": ("str", True),
        "unit": ("enum[celsius, fahrenheit]", False),
        "days": ("int?", False),  # its default "3" is not an int: left out, with a note
        "on": ("date?", False),
        "since": ("datetime?", True),  # nullable but required
        "in_": ("bool", True),  # a keyword of the expression language
        "max_results": ("float", False),
    }
    weather = result.tools[0]
    assert weather.params["unit"].default == "celsius"
    assert weather.params["max_results"].default == 2.5
    assert not weather.params["days"].has_default
    assert any("'3'" in n for n in weather.params["days"].notes)
    assert result.renamed == {"get-weather.v2": "get_weather_v2", "get-weather.v2.in": "get_weather_v2.in_",
                              "get-weather.v2.max-results": "get_weather_v2.max_results"}
    assert _params(result, "plan_route") == {
        "grid": ("list[list[int]]", True),
        "modes": ("list[enum[walk, bike]]?", False),
        "origin": ("any", True),
        "tags": ("map[str]?", False),
        "extra": ("any", False),
        "note": ("str?", False),
    }
    assert set(result.records["PlanRouteOrigin"].fields) == {"lat", "lon", "label"}
    assert _params(result, "ping") == {}
    text = result.text
    assert "# TODO(import): original name 'get-weather.v2'" in text
    assert "#   PlanRouteOrigin:" in text  # the record type, commented, for the domain's types:
    assert text.count("# TODO(import): effects:") == 3
    docs = _docs(text)
    assert docs[0]["params"]["city"] == {"type": "str", "description": "The city, e.g. Lisbon."}  # type: ignore[index]


def test_records_as_types_start_with_a_domain() -> None:
    result = import_file(FIXTURES / "openai_tools.json", "d", records_as_types=True)
    docs = _docs(result.text)
    assert docs[0]["kind"] == "Domain"
    assert docs[0]["types"] == {"PlanRouteOrigin": {"lat": "float", "lon": "float", "label": "str?"}}
    assert _params(result, "plan_route")["origin"] == ("PlanRouteOrigin", True)


def test_mcp_envelope_annotations_and_missing_description() -> None:
    fmt, docs = load_functions((FIXTURES / "mcp_tools_list.json").read_text())
    assert fmt == "mcp" and [d.name for d in docs] == ["search_issues", "close issue"]
    result = import_file(FIXTURES / "mcp_tools_list.json", "d")
    assert _params(result, "search_issues") == {"query": ("str", True), "state": ("enum[open, closed, all]", False),
                                                "limit": ("int", False)}
    assert _params(result, "close_issue") == {"issue_number": ("int", True), "labels": ("list[str]?", False)}
    search, close = _docs(result.text)
    assert search["access"] == "read"
    assert close["description"] == "" and "access" not in close
    plain = json.dumps({"tools": [{"name": "x", "inputSchema": {"type": "object"}}]})
    assert load_functions(plain)[0] == "mcp"


def test_bfcl_json_lines() -> None:
    result = import_file(FIXTURES / "bfcl_docs.json", "d")
    assert [t.name for t in result.tools] == ["math_add", "mkdir", "sort_values"]
    assert _params(result, "math_add") == {"a": ("float", True), "b": ("float", True)}
    assert _params(result, "mkdir") == {"dir_name": ("str", True), "parents": ("bool", False), "mode": ("int", False)}
    assert result.tools[1].params["parents"].default is False
    assert _params(result, "sort_values") == {"values": ("list[float]", True), "order": ("enum[asc, desc]", False),
                                              "key": ("any", False), "options": ("any", False)}
    assert "the source documents the result as {result: float}" in result.text


@pytest.mark.parametrize("records_as_types", [False, True])
@pytest.mark.parametrize("fixture", ["openai_tools.json", "mcp_tools_list.json", "bfcl_docs.json"])
def test_skeletons_lint_clean(tmp_path: Path, fixture: str, records_as_types: bool) -> None:
    result = import_file(FIXTURES / fixture, "imported", records_as_types=records_as_types)
    (tmp_path / "tools.yaml").write_text(result.text, encoding="utf-8")
    if not records_as_types:
        (tmp_path / "domain.yaml").write_text(MINIMAL_DOMAIN.format(name="imported"), encoding="utf-8")
    checked = check_paths([tmp_path])
    assert not checked.diagnostics.has_errors(), [str(d) for d in checked.diagnostics.errors]
    assert sorted(checked.specs.tools) == sorted(t.name for t in result.tools)


def test_bad_input() -> None:
    with pytest.raises(InteropError):
        import_text("this is not json", "d")
    with pytest.raises(InteropError):
        import_text(json.dumps([{"description": "no name"}]), "d")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tools.yaml"
    assert interop_main(["import", str(FIXTURES / "bfcl_docs.json"), "--domain", "d", "--format", "bfcl",
                         "-o", str(out)]) == 0
    assert "kind: Tool" in out.read_text()
    assert "3 tools" in capsys.readouterr().err
    assert interop_main(["import", str(FIXTURES / "bfcl_docs.json"), "--domain", "not a name"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert interop_main(["import", str(bad), "--domain", "d"]) == 1


# --- export -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from compiler.cli import main as compile_main

    build = tmp_path_factory.mktemp("build")
    assert compile_main([str(ROOT / "specs"), "-o", str(build), "-q"]) == 0
    return build / "plant_maintenance"


def test_export_tools_and_round_trip(bundle: Path, tmp_path: Path) -> None:
    from compiler.export import main as export_main

    out = tmp_path / "tools.json"
    assert export_main([str(bundle), "--tools", str(out)]) == 0
    schemas = json.loads(out.read_text())
    assert schemas == json.loads((bundle / "bundle.json").read_text())["tool_schemas"]
    result = import_file(out, "plant_maintenance")
    assert result.skipped == [("transfer_to_human", "the compiler adds this tool to every bundle")]
    specs = load_specs(ROOT / "specs")
    original = {name: {p: (param.type.render(), param.required) for p, param in tool.params.items()}
                for name, tool in specs.tools_of("plant_maintenance").items()}
    imported = {t.name: {p: (param.type.render(), param.required) for p, param in t.params.items()}
                for t in result.tools}
    assert imported == original
    descriptions = {t.name: t.description for t in result.tools}
    assert descriptions == {n: t.description for n, t in specs.tools_of("plant_maintenance").items()}


def test_export_chat_and_dataset(bundle: Path, tmp_path: Path) -> None:
    import datasets

    from compiler.export import main as export_main

    tasks = [json.loads(line) for line in (bundle / "tasks.jsonl").read_text().splitlines() if line.strip()]
    chat, ds_dir = tmp_path / "chat.jsonl", tmp_path / "ds"
    assert export_main([str(bundle), "--chat", str(chat), "--dataset", str(ds_dir)]) == 0
    examples = [json.loads(line) for line in chat.read_text().splitlines()]
    assert len(examples) == len(tasks)
    tool_names = {s["function"]["name"] for s in examples[0]["tools"]}
    for ex, task in zip(examples, tasks, strict=True):
        messages = ex["messages"]
        assert [m["role"] for m in messages[:2]] == ["system", "user"]
        assert len(messages) == len(task["gold"]["messages"]) + 2
        open_ids: set[str] = set()
        for m in messages:
            for call in m.get("tool_calls", []):
                assert call["type"] == "function" and call["function"]["name"] in tool_names
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                open_ids.add(call["id"])
            if m["role"] == "tool":
                assert m["tool_call_id"] in open_ids
                open_ids.remove(m["tool_call_id"])
    dataset = datasets.load_from_disk(str(ds_dir))
    assert dataset.num_rows == len(tasks)
    assert dataset["id"] == [t["id"] for t in tasks]
    assert {"workflow", "path", "persona", "instruction", "gold_messages", "verifiers", "request",
            "difficulty_depth", "difficulty_calls"} <= set(dataset.column_names)
    row = dataset[0]
    assert json.loads(row["gold_messages"]) == tasks[0]["gold"]["messages"]
    assert row["path"] == tasks[0]["path"] and row["difficulty_depth"] == tasks[0]["difficulty"]["depth"]


def test_export_errors(tmp_path: Path, bundle: Path) -> None:
    from compiler.export import main as export_main

    assert export_main([str(bundle)]) == 2
    assert export_main([str(tmp_path), "--tools", str(tmp_path / "t.json")]) == 1
