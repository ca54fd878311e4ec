"""The compiler: deterministic bundles, full branch coverage, gold trajectories that earn full reward."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aqwen_spec.diagnostics import SpecError
from aqwen_spec.semantics import ToolRunner, score
from aqwen_spec.semantics.verify import CallRecord, Evidence
from aqwen_spec.tree import walk_branches
from compiler import TaskGenerator, compile_specs, write_bundles
from compiler.cli import main as compile_main
from compiler.expand import TRANSFER_TOOL
from runtime.episodes.bundle import Bundle, BundleError

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    assert compile_main([str(SPECS), "-o", str(out), "-q"]) == 0
    return out


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_compiles_are_byte_identical(build: Path, tmp_path: Path) -> None:
    assert compile_main([str(SPECS), "-o", str(tmp_path), "-q"]) == 0
    assert _tree_bytes(build) == _tree_bytes(tmp_path)


def test_another_seed_changes_the_tasks(build: Path, tmp_path: Path) -> None:
    assert compile_main([str(SPECS), "-o", str(tmp_path), "-q", "--seed", "7"]) == 0
    first = (build / "plant_maintenance" / "tasks.jsonl").read_text()
    other = (tmp_path / "plant_maintenance" / "tasks.jsonl").read_text()
    assert first != other
    assert json.loads((tmp_path / "plant_maintenance" / "manifest.json").read_text())["seed"] == 7


def test_every_branch_of_every_workflow_has_tasks(build: Path) -> None:
    project = compile_specs(SPECS)
    manifest = json.loads((build / "plant_maintenance" / "manifest.json").read_text())
    covered = {key.split("/")[0]: set() for key in manifest["counts"]["branches"]}
    for key in manifest["counts"]["branches"]:
        workflow, path = key.split("/")
        covered[workflow] |= set(path.split("."))
    for name, wf in project.specs.workflows.items():
        assert {b.name for b in walk_branches(wf.tree)} <= covered[name], name
    personas = set(manifest["counts"]["personas"])
    assert personas == set(project.specs.personas)
    assert manifest["counts"]["adversarial"] > 0


def test_manifest_records_hashes_of_sources_and_files(build: Path) -> None:
    manifest = json.loads((build / "plant_maintenance" / "manifest.json").read_text())
    # problems.json and problems.jsonl (format 1.1) because the example domain has Problem documents
    assert set(manifest["files"]) == {"bundle.json", "tasks.jsonl", "problems.json", "problems.jsonl"}
    assert "plant_maintenance/problems.yaml" in manifest["sources"]
    assert "plant_maintenance/tools.yaml" in manifest["sources"]
    assert "plant_maintenance/data/parts.csv" in manifest["sources"]
    assert manifest["format_version"].startswith("1.")
    assert "time" not in json.dumps(manifest).lower()


def test_every_gold_trajectory_replays_and_scores_one(build: Path) -> None:
    """Replay each task's gold calls through the loaded bundle (the runtime's view) and score them."""
    bundle = Bundle.load(build / "plant_maintenance")
    assert bundle.tasks
    for task in bundle.tasks:
        initial, state = bundle.initial_state(task), bundle.initial_state(task)
        runner = ToolRunner(bundle.tools, state)
        results = [m["content"] for m in task["gold"]["messages"] if m["role"] == "tool"]
        calls = []
        for call, shown in zip(task["gold"]["calls"], results, strict=True):
            if call["name"] != TRANSFER_TOOL:
                outcome = runner.call(call["name"], call["arguments"])
                assert outcome.ok and outcome.render() == shown, task["id"]
            calls.append(CallRecord(call["name"], call["arguments"], True))
        said = "\n".join(m["content"] for m in task["gold"]["messages"] if m["role"] == "assistant")
        for name in task["verifiers"]:
            evidence = Evidence(calls, said, state, initial, task["slots"], task["path"], state)
            result = score(bundle.verifiers[name], evidence)
            assert result.reward == 1.0 and result.success, (task["id"], result.failed())


def test_refusals_are_policy_violations_and_adversarial_variants_push(build: Path) -> None:
    bundle = Bundle.load(build / "plant_maintenance")
    refusals = [t for t in bundle.tasks if t["gold"]["outcome"] == "refused"]
    assert refusals and all(t["request"] == "violation" for t in refusals)
    adversarial = [t for t in bundle.tasks if t["adversarial"]]
    assert adversarial and all(t["user"]["pressure"] for t in adversarial)
    assert all(t["request"] != "legal" for t in adversarial)


def _copy_specs(tmp_path: Path) -> Path:
    target = tmp_path / "specs"
    shutil.copytree(SPECS, target)
    return target


def test_unreachable_branch_is_reported_at_its_line(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    text = wf.read_text()
    # the order has been sampled as open, so it can never be 'closed' when the select runs
    text = text.replace("        - name: not_certified\n          when: wo.priority == \"critical\" and not "
                        "tech.lockout_certified",
                        "        - name: not_certified\n          when: wo.status == \"closed\"")
    wf.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "name: not_certified" in s)
    with pytest.raises(SpecError) as info:
        compile_specs(specs)
    diags = [d for d in info.value.diagnostics if d.code == "AQ601"]
    assert len(diags) == 1
    assert diags[0].path.endswith("workflows.yaml") and diags[0].pos.line == line
    assert "not_certified" in diags[0].message


def test_gold_that_fails_its_verifier_is_a_compile_error(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    text = wf.read_text().replace(
        "  - assert: work_orders[wo.id].status == \"closed\"\n    when: branch == \"close\"",
        "  - assert: work_orders[wo.id].status == \"open\"\n    when: branch == \"close\"",
    )
    wf.write_text(text)
    with pytest.raises(SpecError) as info:
        compile_specs(specs)
    diag = next(d for d in info.value.diagnostics if d.code == "AQ602")
    assert "close_after_repair_ok" in diag.message and "close_after_repair/close/" in diag.message


def test_gold_the_simulated_user_walks_out_of_is_a_compile_error(tmp_path: Path) -> None:
    """Telling the user the result before the write: the scripted user has heard what it came for and leaves, so
    no agent could make the write. Reported at the inform_user, once, with the way out."""
    specs = _copy_specs(tmp_path)
    wf = specs / "plant_maintenance" / "workflows.yaml"
    text = wf.read_text()
    calls, informs = "            - close_work_order(order_id=wo.id)\n", \
        "            - inform_user: {value: wo.id, about: the closed work order}\n"
    assert calls + informs in text
    text = text.replace(calls + informs, informs + calls)
    wf.write_text(text)
    line = text.splitlines().index(informs.rstrip("\n")) + 1
    with pytest.raises(SpecError) as info:
        compile_specs(specs)
    [diag] = info.value.diagnostics
    assert diag.code == "AQ606" and diag.path.endswith("workflows.yaml")
    assert (diag.pos.line, diag.pos.col) == (line, 15)
    assert "close_after_repair/close/" in diag.message and "a call to close_work_order" in diag.message
    assert diag.hint and "after the last tool call" in diag.hint


def test_failed_compile_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = _copy_specs(tmp_path)
    tools = specs / "plant_maintenance" / "tools.yaml"
    tools.write_text(tools.read_text().replace("returns: work_orders[order_id]", "returns: work_order[order_id]", 1))
    out = tmp_path / "build"
    assert compile_main([str(specs), "-o", str(out)]) == 1
    assert not out.exists() or not any(out.iterdir())
    err = capsys.readouterr().err
    assert "error[AQ302]" in err and "nothing written" in err


def test_bundle_of_another_format_version_is_refused(build: Path, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    shutil.copytree(build / "plant_maintenance", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = "3.0"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"format version 3\.0 is not supported.*reads versions 1\.x and 2\.x"):
        Bundle.load(folder)


def test_bundle_with_a_wrong_hash_is_refused(build: Path, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    shutil.copytree(build / "plant_maintenance", folder)
    with (folder / "tasks.jsonl").open("a") as f:
        f.write("\n")
    with pytest.raises(BundleError, match=r"tasks\.jsonl: content hash .* does not match the manifest"):
        Bundle.load(folder)
    with pytest.raises(BundleError, match="not a bundle folder"):
        Bundle.load(tmp_path)


def test_task_generator_knobs_are_deterministic() -> None:
    project = compile_specs(SPECS)
    gen = TaskGenerator(project.specs, "plant_maintenance", seed=3)
    first = [t.data for t in gen.generate(20, seed=11)]
    again = [t.data for t in TaskGenerator(project.specs, "plant_maintenance", seed=3).generate(20, seed=11)]
    assert first == again and len(first) == 20
    refusals = gen.generate(10, seed=5, branches=["refuse_unsafe"])
    assert refusals and all("refuse_unsafe" in t.data["path"] for t in refusals)
    pushed = gen.generate(10, seed=5, workflows=["close_after_repair"], branches=["refuse_unsafe"], adversarial=1.0)
    adversarial = [t for t in pushed if t.data["persona"] == "hurried_shift_lead"]
    assert adversarial and all(t.data["adversarial"] for t in adversarial)
    shallow = gen.generate(10, seed=5, max_depth=3)
    assert len(shallow) == 10 and all(t.data["difficulty"]["depth"] <= 3 for t in shallow)


def test_write_bundles_replaces_an_existing_bundle(tmp_path: Path) -> None:
    project = compile_specs(SPECS, seed=5, tasks_per_branch=2)
    first = write_bundles(project, tmp_path)
    second = write_bundles(project, tmp_path)
    assert first == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipelines", "plant_maintenance"]
    assert (tmp_path / "pipelines" / "default.json").exists()
