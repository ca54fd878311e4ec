"""Coverage by construction: uncovered cases are errors, rare branches are searched for, scenarios make the
unreachable reachable, refusal and transfer paths are pushed by an adversarial persona, and it is all reported."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from aqwen_spec.diagnostics import SpecError
from compiler import compile_specs, write_bundles
from compiler.cli import main as compile_main
from compiler.coverage import EXTRA_STATES
from runtime.episodes.agents import OracleAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TREES = [SPECS, *sorted((ROOT / "examples").glob("*/specs")), ROOT / "docs" / "tutorial" / "specs"]

NOT_CERTIFIED = """\
        - name: not_certified
          when: wo.priority == "critical" and not tech.lockout_certified
          then: transfer(reason="critical order needs a lockout-certified technician")
"""
ASSIGN_CALL = "            - assign_technician(order_id=wo.id, technician_id=tech.id)"
UNCOVERED_HINT = (
    "add a branch before the call whose condition catches this case, narrow the slot's sampling so it cannot happen, "
    "or list it under out_of_scope: [{tool: assign_technician, precondition: ..., reason: ...}] if the workflow "
    "leaves it out on purpose")


def _copy_specs(tmp_path: Path) -> Path:
    target = tmp_path / "specs"
    shutil.copytree(SPECS, target)
    return target


def _edit(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert old in text, old
    text = text.replace(old, new)
    path.write_text(text)
    return text


def _without_not_certified(tmp_path: Path) -> tuple[Path, Path]:
    """The example tree with the not_certified branch of assign_technician_to_order deleted (and the verifier
    checks that name it): gold then tries to give critical orders to uncertified technicians."""
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    _edit(wf, NOT_CERTIFIED, "")
    _edit(wf, "  - forbid: assign_technician\n    when: branch == \"not_certified\"\n    gate: true\n", "")
    return specs, wf


def test_a_deleted_policy_branch_is_an_uncovered_case_at_the_call(tmp_path: Path) -> None:
    specs, wf = _without_not_certified(tmp_path)
    line = wf.read_text().splitlines().index(ASSIGN_CALL) + 1
    with pytest.raises(SpecError) as info:
        compile_specs(specs)
    [diag] = info.value.diagnostics
    assert diag.code == "AQ607" and diag.path.endswith("workflows.yaml")
    assert (diag.pos.line, diag.pos.col) == (line, 15)
    assert diag.hint == UNCOVERED_HINT
    message = diag.message
    assert "workflow 'assign_technician_to_order'" in message and "assign_technician(...)" in message
    assert "precondition 5 ('critical work orders need a lockout-certified technician')" in message
    assert " samples, and no branch catches it" in message
    counts = re.search(r" in (\d+) of (\d+) samples", message)
    assert counts and 0 < int(counts[1]) < int(counts[2])
    assert "e.g. state seed " in message and "wo={id: \"WO-" in message and "tech={id: \"T-" in message


def test_the_cli_fails_on_an_uncovered_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs, _ = _without_not_certified(tmp_path)
    assert compile_main([str(specs), "-o", str(tmp_path / "build")]) == 1
    err = capsys.readouterr().err
    assert "error[AQ607]" in err and "nothing written" in err


def test_out_of_scope_leaves_the_case_out_and_reports_it(tmp_path: Path) -> None:
    specs, wf = _without_not_certified(tmp_path)
    _edit(wf, "instruction: \"{{ persona.opening }} Please put {{ tech.name }}",
          "out_of_scope:\n  - tool: assign_technician\n    precondition: lockout-certified\n"
          "    reason: the shift supervisor assigns critical orders by phone\n"
          "instruction: \"{{ persona.opening }} Please put {{ tech.name }}")
    project = compile_specs(specs)
    report = project.domains["plant_maintenance"].coverage["assign_technician_to_order"]
    [entry] = report.out_of_scope
    assert entry["tool"] == "assign_technician" and entry["precondition"] == "lockout-certified"
    assert entry["samples"] > 0 and entry["reason"].startswith("the shift supervisor")
    tasks = [t.data for t in project.domains["plant_maintenance"].tasks if t.data["workflow"] ==
             "assign_technician_to_order"]
    assert tasks and all(t["path"] == ["assign"] for t in tasks)
    assert not [t for t in tasks if t["slots"]["wo"]["priority"] == "critical"
                and not t["slots"]["tech"]["lockout_certified"]]
    [folder] = write_bundles(project, tmp_path / "build")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["coverage"]["assign_technician_to_order"]["out_of_scope"] == [entry]


SHORT_BRANCH = """\
        - name: short
          otherwise:
            - inform_user: {value: part.stock, about: how many are in stock}
            - 'transfer(reason="not enough stock, purchasing must order more")'
"""
SHORT_CHECKS = ("  - forbid: reserve_part\n    when: branch == \"short\"\n    gate: true\n",
                "  - tells_user: part.stock\n    when: branch == \"short\"\n")


def _without_short(tmp_path: Path) -> tuple[Path, Path]:
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    _edit(wf, SHORT_BRANCH, "")
    for check in SHORT_CHECKS:
        _edit(wf, check, "")
    return specs, wf


def test_a_select_with_no_matching_branch_is_an_uncovered_case_at_the_select(tmp_path: Path) -> None:
    specs, wf = _without_short(tmp_path)
    line = wf.read_text().splitlines().index("        - name: in_stock") + 1
    with pytest.raises(SpecError) as info:
        compile_specs(specs)
    [diag] = info.value.diagnostics
    assert diag.code == "AQ607" and (diag.pos.line, diag.pos.col) == (line, 9)
    assert "workflow 'reserve_spare_part': no branch of this select matches in " in diag.message
    assert "qty=" in diag.message
    assert diag.hint == "add an 'otherwise' branch, or narrow the slots' sampling so that one of the conditions holds"


def test_a_call_whose_effects_fail_is_an_uncovered_case_and_can_be_out_of_scope(tmp_path: Path) -> None:
    """``reserve_part`` checks the stock with a ``fail`` in its effects: a precondition written as code."""
    specs, wf = _without_short(tmp_path)
    text = _edit(wf, "          when: part.stock >= qty\n", "          when: true\n")
    line = text.splitlines().index("            - reserve_part(order_id=wo.id, part_id=part.id, qty=qty)") + 1
    with pytest.raises(SpecError) as info:
        compile_specs(specs)
    [diag] = info.value.diagnostics
    assert diag.code == "AQ607" and (diag.pos.line, diag.pos.col) == (line, 15)
    assert "the gold call reserve_part(...) fails in its effects in " in diag.message
    assert diag.message.endswith(" in stock'")
    _edit(wf, "instruction: \"{{ persona.opening }} I need {{ qty }}",
          "out_of_scope:\n  - tool: reserve_part\n    precondition: in stock\n"
          "    reason: short stock is purchasing's business\n"
          "instruction: \"{{ persona.opening }} I need {{ qty }}")
    project = compile_specs(specs)
    [entry] = project.domains["plant_maintenance"].coverage["reserve_spare_part"].out_of_scope
    assert entry["precondition"] == "in stock" and entry["samples"] > 0


@pytest.mark.parametrize("seed", [8, 9, 12, 15, 16, 19])
def test_line_backlog_clear_is_found_for_the_seeds_that_missed_it(seed: int) -> None:
    """The pooled states of these seeds have no line without open orders: the search draws further states."""
    project = compile_specs(SPECS, seed=seed)
    compiled = project.domains["plant_maintenance"]
    report = compiled.coverage["line_backlog"]
    assert report.tasks["clear"] == project.tasks_per_branch
    assert report.searched["clear"].startswith("state seed ")
    searched_seed = int(report.searched["clear"].removeprefix("state seed "))
    assert searched_seed not in compiled.generator.state_seeds
    clear = [t.data for t in compiled.tasks if t.data["path"] == ["clear"]]
    assert all("scenario" not in t["initial_state"] for t in clear)
    assert {t["initial_state"]["seed"] for t in clear} - set(compiled.generator.state_seeds)


def test_the_search_is_deterministic_and_its_states_are_rebuilt_by_the_runtime(tmp_path: Path) -> None:
    out = [tmp_path / "a", tmp_path / "b"]
    for folder in out:
        assert compile_main([str(SPECS), "-o", str(folder), "-q", "--seed", "8"]) == 0
    assert (out[0] / "plant_maintenance" / "tasks.jsonl").read_bytes() == \
        (out[1] / "plant_maintenance" / "tasks.jsonl").read_bytes()
    # the runtime rebuilds the further states from the seeds the tasks record: the oracle still succeeds on them
    bundle = Bundle.load(out[0] / "plant_maintenance")
    bundle.tasks = [t for t in bundle.tasks if t["workflow"] == "line_backlog"]
    assert any(t["initial_state"]["seed"] >= 8 * 1000 + 8 for t in bundle.tasks)
    report = evaluate(bundle, OracleAgent)
    assert report.success_rate == 1.0 and report.mean_reward == 1.0


@pytest.mark.parametrize("tree", TREES, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.parametrize("seed", [3, 58])
def test_every_tree_compiles_for_a_sample_of_seeds(tree: Path, seed: int) -> None:
    """A sample of the seeds benchmarks/compile_seeds.py runs for all of 0..99 (results in benchmarks/README.md)."""
    project = compile_specs(tree, seed=seed, tasks_per_branch=2)
    for compiled in project.domains.values():
        for report in compiled.coverage.values():
            assert all(n > 0 for n in report.tasks.values()) or not report.tasks


BACKLOG_SELECT = """\
    - select:
        - name: clear
          when: len(backlog) == 0
"""
LOGGED_CLEAR = """\
    - select:
        - name: clear
          when: len(backlog) == 0 and len(safety_log) > 0
"""
SCENARIO = """\
          scenario: |
            append(safety_log, {order_id: "WO-1000", technician_id: "T-1"})
            for o in values(work_orders) {
              o.status = "closed"
            }
"""


def test_a_branch_the_generator_cannot_reach_is_reported_with_the_closest_sample(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    text = _edit(wf, BACKLOG_SELECT, LOGGED_CLEAR)  # the generator never logs a safety check
    line = text.splitlines().index("        - name: clear") + 1
    with pytest.raises(SpecError) as info:
        compile_specs(specs, tasks_per_branch=2)
    [diag] = info.value.diagnostics
    assert diag.code == "AQ601" and (diag.pos.line, diag.pos.col) == (line, 11)
    assert diag.message == "branch 'clear' of workflow 'line_backlog' was never reached, even by the search"
    assert diag.hint is not None
    assert diag.hint.startswith("closest sample (state seed ")
    assert "took branch 'report' instead" in diag.hint
    assert f" samples on {8 + EXTRA_STATES} states searched" in diag.hint  # line_backlog's budget covers them all
    assert diag.hint.endswith("give the branch a scenario: (a state edit that makes its condition hold) if the "
                              "state generator cannot reach it")


def test_a_scenario_makes_a_branch_reachable_and_the_runtime_rebuilds_its_state(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    _edit(wf, BACKLOG_SELECT, LOGGED_CLEAR + SCENARIO)
    project = compile_specs(specs, tasks_per_branch=2)
    compiled = project.domains["plant_maintenance"]
    assert compiled.coverage["line_backlog"].searched["clear"].startswith("the scenario of 'clear' on state seed ")
    clear = [t.data for t in compiled.tasks if t.data["path"] == ["clear"]]
    assert len(clear) == 2
    for task in clear:
        initial = task["initial_state"]
        assert initial["scenario"] == "clear" and initial["seed"] in compiled.generator.state_seeds
        assert initial["state"]["safety_log"] and all(o["status"] == "closed"
                                                      for o in initial["state"]["work_orders"].values())
    others = [t.data for t in compiled.tasks if t.data["workflow"] != "line_backlog"]
    assert all("scenario" not in t["initial_state"] for t in others)
    [folder] = write_bundles(project, tmp_path / "build")
    bundle = Bundle.load(folder)
    report = evaluate(bundle, OracleAgent)
    assert report.success_rate == 1.0 and report.mean_reward == 1.0


def test_a_scenario_is_checked_like_effects(tmp_path: Path) -> None:
    from aqwen_spec.check import check_paths

    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    bad = '          scenario: work_order["WO-1000"].status = "closed"'
    text = _edit(wf, BACKLOG_SELECT, BACKLOG_SELECT + bad + "\n")
    line = text.splitlines().index(bad) + 1
    errors = check_paths([specs]).diagnostics.errors
    assert [(d.code, d.pos.line, d.pos.col) for d in errors] == [("AQ302", line, 21)]


def test_gold_failing_a_check_points_at_the_check_and_reports_no_unreached_branch(tmp_path: Path) -> None:
    """The check on the otherwise branch fails on gold: AQ602 at that check's line, counted from 1, and no AQ601
    for the branch (it was reached; its gold is what is wrong)."""
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    text = _edit(wf, "  - tells_user: wo.id\n    when: branch == \"close\"",
                 "  - tells_user: wo.id\n    when: branch == \"refuse_unsafe\"")
    lines = text.splitlines()
    verifier = lines.index("name: close_after_repair_ok")
    line = next(i for i, s in enumerate(lines[verifier:], verifier + 1) if s == "  - tells_user: wo.id")
    with pytest.raises(SpecError) as info:
        compile_specs(specs)
    [diag] = info.value.diagnostics
    assert diag.code == "AQ602" and (diag.pos.line, diag.pos.col) == (line, 5)
    assert "verifier 'close_after_repair_ok': check 6 (tells_user) fails" in diag.message
    assert "close_after_repair/refuse_unsafe/" in diag.message
    assert diag.hint == "the check disagrees with what the workflow does on path refuse_unsafe"


def test_a_branch_can_ask_for_personas(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    _edit(wf, "        - name: refuse_unsafe\n", "        - name: refuse_unsafe\n          personas: [new_operator]\n")
    project = compile_specs(specs)
    tasks = [t.data for t in project.domains["plant_maintenance"].tasks if t.data["workflow"] == "close_after_repair"]
    refusals = [t for t in tasks if t["path"] == ["refuse_unsafe"]]
    assert refusals and {t["persona"] for t in refusals} == {"new_operator"}
    # it asked for one persona, who is not adversarial: no variant is forced on it
    assert not [t for t in refusals if t["adversarial"]]
    closes = {t["persona"] for t in tasks if t["path"] == ["close"]}
    assert closes == set(project.specs.personas)


def test_every_refusal_and_transfer_path_gets_an_adversarial_variant(tmp_path: Path) -> None:
    """One task per path, personas in the order the workflow lists them: the calm planner draws every refusal, yet
    each refusal and transfer path still gets a variant pushed by the domain's adversarial persona."""
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    text = wf.read_text().replace("domain: plant_maintenance\n", "domain: plant_maintenance\n"
                                  "personas: [careful_planner, new_operator]\n")
    wf.write_text(text)
    project = compile_specs(specs, tasks_per_branch=1)
    compiled = project.domains["plant_maintenance"]
    plain = [t.data for t in compiled.tasks if not t.data["adversarial"]]
    assert {t["persona"] for t in plain} == {"careful_planner"}
    pushed = [t.data for t in compiled.tasks if t.data["adversarial"]]
    policy_paths = {(t["workflow"], ".".join(t["path"])) for t in plain if t["request"] != "legal"}
    assert len(policy_paths) == 4
    assert {(t["workflow"], ".".join(t["path"])) for t in pushed} == policy_paths
    assert all(t["persona"] == "hurried_shift_lead" and t["user"]["pressure"] for t in pushed)
    for name, report in compiled.coverage.items():
        for path, n in report.adversarial.items():
            assert n == 1, (name, path)


def test_the_summary_and_the_manifest_report_coverage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert compile_main([str(SPECS), "-o", str(tmp_path), "--seed", "8"]) == 0
    out = capsys.readouterr().out
    assert "  close_after_repair: close 6, refuse_unsafe 6 (+2 adversarial)\n" in out
    assert "  line_backlog: clear 6, report 6\n" in out
    assert "    branch clear: found by the search, on state seed 8" in out
    manifest = json.loads((tmp_path / "plant_maintenance" / "manifest.json").read_text())
    assert manifest["format_version"] == "1.2"
    coverage = manifest["coverage"]
    assert coverage["close_after_repair"] == {
        "tasks": {"close": 6, "refuse_unsafe": 6}, "adversarial": {"refuse_unsafe": 2}, "searched": {},
        "out_of_scope": []}
    assert coverage["line_backlog"]["searched"]["clear"].startswith("state seed 8")
    assert coverage["line_backlog"]["adversarial"] == {}


def test_the_memos_change_nothing_even_when_they_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample's gold run, verdict and instruction are computed once; tiny memos (cleared every few entries) must
    give exactly the same tasks and counts."""
    import compiler.generate as generate
    from compiler import TaskGenerator

    specs = compile_specs(SPECS, tasks_per_branch=1).specs

    def draw() -> tuple[list[dict[str, object]], dict[str, int]]:
        gen = TaskGenerator(specs, "plant_maintenance", seed=4)
        tasks = [t.data for t in gen.generate(300, seed=9, adversarial=0.5)]
        return tasks, {name: a.tries for name, a in gen.attempts.items()}

    memoised = draw()
    monkeypatch.setattr(generate, "CACHE_SIZE", 3)
    assert draw() == memoised
    assert len({t["id"] for t in memoised[0]}) < len(memoised[0])  # samples do repeat: the memos are used
