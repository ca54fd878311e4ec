"""The agentic flywheel: growth operators keep specs valid; rounds run end to end, deterministic, with lineage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.check import check_paths
from aqwen_spec.diagnostics import SpecError
from compiler import compile_specs, write_bundles
from compiler.growth import OPERATORS, GrowthContext, branch_names, load_raw, split_args, yaml_documents
from runtime.episodes.agents import OracleAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def specs(tmp_path: Path) -> Path:
    out = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", out)
    return out


# where each operator is tried: specs/, and a small refunds desk where a policy branch of one workflow guards a
# tool that another workflow calls unguarded
GROWTH_TREES = {op: ROOT / "specs" for op in OPERATORS} | {"policy_branch": ROOT / "tests" / "fixtures" / "refunds"}


def test_split_args_respects_brackets_and_quotes() -> None:
    assert split_args('a=x.id, b=f(y, z), c="p, q", d=[1, 2]') == {
        "a": "x.id", "b": "f(y, z)", "c": '"p, q"', "d": "[1, 2]"}


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_every_operator_grows_a_workflow_that_compiles_with_perfect_gold(operator: str, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(GROWTH_TREES[operator], specs)
    ctx = GrowthContext(check_paths([specs]).specs, load_raw(specs), round=1)
    workflows = sorted(n for (kind, n) in ctx.raw if kind == "Workflow")
    grown = None
    for workflow in workflows:  # the first workflow the operator applies to and that compiles
        growth = OPERATORS[operator](ctx, workflow)
        if growth is None:
            continue
        target = specs / "grown.yaml"
        target.write_text(yaml_documents(growth.documents), encoding="utf-8")
        try:  # raises on a lint error, an unreachable branch or a gold trajectory scoring below 1.0
            project = compile_specs(specs)
        except SpecError:
            target.unlink()
            continue
        grown = growth
        break
    assert grown is not None, f"{operator} grew no workflow that compiles"
    result = check_paths([specs])
    assert not result.diagnostics.has_errors(), "grown specs lint with errors"
    bundle = Bundle.load(write_bundles(project, tmp_path / "build")[0])
    new_tasks = [t for t in bundle.tasks if t["workflow"] == grown.workflow]
    assert new_tasks
    report = evaluate(bundle, OracleAgent, tasks=new_tasks)
    assert report.success_rate == 1.0 and report.mean_reward == 1.0
    assert grown.source in grown.documents[-1]["for"] or any(d.get("for") == grown.workflow for d in grown.documents)


def test_error_branch_adds_a_refusal_for_a_failing_precondition(specs: Path) -> None:
    ctx = GrowthContext(check_paths([specs]).specs, load_raw(specs), round=2)
    growth = OPERATORS["error_branch"](ctx, "close_after_repair")
    assert growth is not None
    workflow = next(d for d in growth.documents if d["kind"] == "Workflow")
    new = branch_names(workflow["tree"]) - branch_names(ctx.raw[("Workflow", "close_after_repair")].data["tree"])
    assert any(b.endswith("_fails") for b in new)
    verifier = next(d for d in growth.documents if d["kind"] == "Verifier")
    assert any(isinstance(c, dict) and c.get("gate") and "forbid" in c for c in verifier["checks"])


# --- rounds with the built-in model (train extra) ---------------------------------------------------------------


def _runner(tmp_path: Path, specs: Path, stage: dict[str, Any]) -> Any:
    from aqwen_spec.documents.pipeline import Pipeline
    from runtime.pipeline.runner import PipelineRunner

    build = tmp_path / "build"
    bundle = Bundle.load(write_bundles(compile_specs(specs), build)[0])
    pipeline = Pipeline.model_validate({
        "kind": "Pipeline", "name": "fw", "domain": "plant_maintenance", "model": {"name": "builtin:tiny-qwen3"},
        "budget": {"max_turns": 4, "max_new_tokens": 24, "max_tokens": 200}, "stages": [stage]})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return PipelineRunner(pipeline, bundle, run_dir, progress=False, echo=lambda s: None, specs=specs)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from runtime.pipeline.runner import split_tasks
    from runtime.training.models import domain_corpus, resolve_model

    torch.set_num_threads(1)
    bundle = Bundle.load(write_bundles(compile_specs(ROOT / "specs"), tmp_path_factory.mktemp("b"))[0])
    train, _ = split_tasks(bundle.tasks, 0.3, 0)
    return str(resolve_model("builtin:tiny-qwen3", domain_corpus(bundle, train)))


STAGE = {"stage": "flywheel", "rounds": 3, "tasks_per_round": 8, "k": 2, "grow_per_round": 3,
         "sft": {"max_steps": 1, "batch_size": 2}, "grpo": {"max_steps": 1, "num_generations": 2, "batch_size": 2,
                                                           "max_completion_length": 64}}


def test_three_rounds_end_to_end_with_lineage(tiny_path: str, specs: Path, tmp_path: Path) -> None:
    from runtime.pipeline.flywheel import run_flywheel_stage

    runner = _runner(tmp_path, specs, STAGE)
    stage = runner.pipeline.stages[0]
    result = run_flywheel_stage(runner, tiny_path, stage, "flywheel", resume=False)
    from runtime.pipeline.split import sample_key

    assert Path(result["checkpoint"]).exists() and result["checkpoint"] != tiny_path
    reports = [json.loads((runner.dir / "flywheel" / f"round_{k}" / "report.json").read_text()) for k in (1, 2, 3)]
    heldout = {t["id"] for t in runner.heldout}
    kept_out = {sample_key(t) for t in runner.heldout}  # no near-duplicate of a held-out task either
    grown_workflows: dict[str, dict[str, Any]] = {}
    for k, report in enumerate(reports, 1):
        for key in ("n_tasks", "pass_rate", "mean_difficulty", "new_branches", "lineage"):
            assert key in report
        assert report["round"] == k and report["n_tasks"] > 0
        assert 0.0 <= report["pass_rate"] <= 1.0
        assert report["kept"] + report["to_sft"] + report["retired"] == report["n_tasks"]
        grpo = report["grpo"]  # what the round's GRPO did, always said
        assert grpo["in_band"] == report["kept"] and grpo["note"]
        assert (grpo["steps"] > 0) == (report["kept"] > 0) and (grpo["carried_steps"] > 0) == (report["kept"] == 0)
        tasks = [json.loads(line) for line in (runner.dir / "flywheel" / f"round_{k}" / "tasks.jsonl").open()]
        assert not {t["id"] for t in tasks} & heldout and not {sample_key(t) for t in tasks} & kept_out
        rates = {t["id"]: t["pass_rate"] for t in tasks}
        for w in report["new_workflows"]:
            assert w["operator"] in OPERATORS
            assert rates[w["grown_from"]] < 1.0, "a workflow grows from a task the model failed"
            grown_workflows[w["workflow"]] = w
        for entry in report["lineage"]:
            assert entry["workflow"] in {w["workflow"] for w in report["new_workflows"]}
            assert entry["grown_from"] in rates and entry["operator"] in OPERATORS
        if k > 1:  # last round's new tasks are evaluated this round, with their lineage
            previous = {e["task"] for e in reports[k - 2]["lineage"]}
            carried = {t["id"] for t in tasks if t.get("lineage")}
            assert previous <= carried | {t["id"] for t in tasks}
    assert grown_workflows, "three rounds with an untrained model grow at least one workflow"
    # an interrupted stage resumes after its last finished round
    (runner.dir / "flywheel" / "round_3" / "report.json").unlink()
    said: list[str] = []
    runner.echo = said.append
    again = run_flywheel_stage(runner, tiny_path, stage, "flywheel", resume=True)
    assert [s for s in said if "already done" in s] == ["[flywheel] round 1 already done",
                                                        "[flywheel] round 2 already done"]
    assert (runner.dir / "flywheel" / "round_3" / "report.json").exists() and len(again["rounds"]) == 3
    # everything the flywheel wrote is a spec a person can keep: it lints clean and every gold scores 1.0
    work = runner.dir / "flywheel" / "specs"
    assert not check_paths([work]).diagnostics.has_errors()
    bundle = Bundle.load(write_bundles(compile_specs(work), tmp_path / "final")[0])
    grown_tasks = [t for t in bundle.tasks if t["workflow"] in grown_workflows]
    assert grown_tasks
    assert evaluate(bundle, OracleAgent, tasks=grown_tasks).success_rate == 1.0


def _strip(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("seconds", "model_before", "model_after")}


def test_a_round_is_deterministic_for_a_fixed_seed_and_model(tiny_path: str, tmp_path: Path) -> None:
    from runtime.pipeline.flywheel import run_flywheel_stage

    stage = {**STAGE, "rounds": 1, "sft": None, "grpo": None}
    reports = []
    for name in ("a", "b"):
        specs = tmp_path / name / "specs"
        shutil.copytree(ROOT / "specs", specs)
        runner = _runner(tmp_path / name, specs, stage)
        run_flywheel_stage(runner, tiny_path, runner.pipeline.stages[0], "flywheel", resume=False)
        reports.append(json.loads((runner.dir / "flywheel" / "round_1" / "report.json").read_text()))
        grown = runner.dir / "flywheel" / "specs" / "grown" / "round_1.yaml"
        reports[-1]["grown_yaml"] = grown.read_text() if grown.exists() else ""
    assert _strip(reports[0]) == _strip(reports[1])


# --- distillation ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher(tiny_path: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """The built-in model, fine-tuned until it solves four training tasks: a stand-in for a large teacher."""
    from aqwen_spec.documents.pipeline import SFTOptions
    from runtime.episodes.env import EpisodeConfig
    from runtime.training.sft_grpo import run_sft

    out = tmp_path_factory.mktemp("teacher")
    bundle = Bundle.load(write_bundles(compile_specs(ROOT / "specs"), out / "build")[0])
    tasks = [t for t in bundle.tasks if t["workflow"] == "line_backlog"][:4]
    options = SFTOptions(epochs=80, learning_rate=0.003, batch_size=4)
    result = run_sft(tiny_path, bundle, tasks, out / "sft", options, EpisodeConfig(max_turns=4), lambda row: None)
    return str(result.checkpoint), tasks


def test_distillation_keeps_only_perfect_teacher_episodes(teacher: tuple[str, list[dict[str, Any]]], tiny_path: str,
                                                          specs: Path, tmp_path: Path) -> None:
    from runtime.pipeline.distill import run_distill_stage

    checkpoint, tasks = teacher
    runner = _runner(tmp_path, specs, {"stage": "distill", "teacher": {"name": checkpoint}, "k": 2,
                                       "temperature": 0.0, "sft": {"max_steps": 2, "batch_size": 2}})
    runner.train_tasks = tasks + [t for t in runner.train_tasks if t["workflow"] == "reserve_spare_part"][:2]
    result = run_distill_stage(runner, tiny_path, runner.pipeline.stages[0], "distill", resume=False)
    report = json.loads((runner.dir / "distill" / "distill" / "report.json").read_text())
    episodes = [json.loads(line) for line in (runner.dir / "distill" / "distill" / "teacher.jsonl").open()]
    assert report["attempts"] == len(episodes) == 2 * len(runner.train_tasks)
    perfect = [e for e in episodes if e["success"] and e["reward"] >= 1.0]
    assert perfect, "the fine-tuned teacher solves the tasks it was trained on"
    assert report["teacher_success_rate"] == round(len(perfect) / len(episodes), 4)
    # greedy decoding twice gives the same episode: kept once
    assert report["kept_episodes"] == len({(e["task"], json.dumps(e["messages"])) for e in perfect})
    assert report["replay_failures"] == 0
    assert Path(result["checkpoint"]).exists() and result["checkpoint"] != tiny_path


@pytest.mark.parametrize(
    ("text", "value", "about", "reads"),
    [
        ("I'm Ana (R-1); please book I-13 for me on 2025-03-05.", "I-13", "the instrument id",
         "I'm Ana (R-1); please book the instrument for me on 2025-03-05. I'll tell you which instrument if you ask."),
        ("Please put Ben Okafor (T-2) on work order WO-1024.", "WO-1024", "the work order id",
         "Please put Ben Okafor (T-2) on the work order. I'll tell you which work order if you ask."),
        ("Put {{ tech.name }} on work order {{ wo.id }}", "{{ wo.id }}", "order id",
         "Put {{ tech.name }} on the work order. I'll tell you which work order if you ask."),
        ("Restart the service svc-api please", "svc-api", "the service name",
         "Restart the service please. I'll tell you which service if you ask."),
        ("I'm Ana (R-1), book it", "R-1", "your researcher id", "I'm Ana, book it"),
        ("I need {{ qty }} x {{ part.name }} now.", "{{ qty }}", "qty",
         "I need some {{ part.name }} now. I'll tell you how many if you ask."),
    ],
)
def test_a_held_back_value_reads_naturally(text: str, value: str, about: str, reads: str) -> None:
    from aqwen_spec.semantics.user import hold_back

    assert hold_back(text, value, about) == reads


def test_clarify_rewords_the_instruction(specs: Path) -> None:
    ctx = GrowthContext(check_paths([specs]).specs, load_raw(specs), round=1)
    grown = {n: g for n in sorted(n for k, n in ctx.raw if k == "Workflow") if (g := OPERATORS["clarify"](ctx, n))}
    assert grown
    for growth in grown.values():
        instruction = growth.documents[0]["instruction"]
        assert "ask me" not in instruction and "[" not in instruction, instruction
    # a value named inline becomes its kind, with an offer to tell it; one in parentheses is just left out
    assert grown["assign_technician_to_order"].documents[0]["instruction"] == (
        "{{ persona.opening }} Please put {{ tech.name }} on work order {{ wo.id }}.")
    assert grown["reserve_spare_part"].documents[0]["instruction"].endswith("I'll tell you how many if you ask.")


def _band_tasks(n: int) -> list[dict[str, Any]]:
    return [{"id": f"t{i}"} for i in range(n)]


def test_a_round_with_an_empty_band_carries_its_grpo_steps() -> None:
    from aqwen_spec.documents.pipeline import GRPOOptions
    from runtime.pipeline.flywheel import grpo_plan

    grpo = GRPOOptions(max_steps=4, num_generations=4, batch_size=8)
    empty = grpo_plan([], grpo, 0, (0.0, 1.0))
    assert (empty.tasks, empty.steps, empty.carried_steps) == ([], 0, 4) and "carried to the next round" in empty.note
    twice = grpo_plan([], grpo, empty.carried_steps, (0.0, 1.0))
    assert twice.carried_steps == 8  # two empty rounds in a row keep adding up
    spent = grpo_plan(_band_tasks(3), grpo, twice.carried_steps, (0.0, 1.0))
    assert (spent.steps, spent.carried_steps, len(spent.tasks)) == (12, 0, 3)
    assert "8 carried from earlier rounds" in spent.note


def test_a_band_thinner_than_a_step_is_repeated_to_fill_it() -> None:
    from aqwen_spec.documents.pipeline import GRPOOptions
    from runtime.pipeline.flywheel import grpo_plan

    grpo = GRPOOptions(max_steps=4, num_generations=2, batch_size=8)  # 4 prompts a step
    one = grpo_plan(_band_tasks(1), grpo, 0, (0.0, 1.0))
    assert [t["id"] for t in one.tasks] == ["t0"] * 4 and one.in_band == 1 and one.steps == 4
    assert "repeated to fill a step" in one.note
    three = grpo_plan(_band_tasks(3), grpo, 0, (0.0, 1.0))
    assert [t["id"] for t in three.tasks] == ["t0", "t1", "t2", "t0"]
    enough = grpo_plan(_band_tasks(5), grpo, 0, (0.0, 1.0))
    assert len(enough.tasks) == 5 and "repeated" not in enough.note


def test_one_in_band_task_trains_grpo_instead_of_stopping_at_step_0(tiny_path: str, tmp_path: Path) -> None:
    """TRL found no batch in a one-prompt dataset (batch_size 8 over groups of 4) and stopped at step 0; the
    repeated task fills the step, and the optimiser really steps."""
    from aqwen_spec.documents.pipeline import GRPOOptions
    from runtime.episodes.env import EpisodeConfig
    from runtime.pipeline.flywheel import grpo_plan
    from runtime.training.sft_grpo import run_grpo

    build = tmp_path / "build"
    write_bundles(compile_specs(ROOT / "specs"), build)
    bundle = Bundle.load(build / "plant_maintenance")
    grpo = GRPOOptions(max_steps=1, num_generations=2, batch_size=4)
    plan = grpo_plan(bundle.tasks[:1], grpo, 0, (0.0, 1.0))
    rows: list[dict[str, Any]] = []
    run_grpo(tiny_path, bundle, plan.tasks, tmp_path / "grpo", grpo.model_copy(update={"max_steps": plan.steps}),
             EpisodeConfig(max_turns=2, max_tokens=32), 8, rows.append)
    assert [r for r in rows if "rewards/reward/mean" in r], "GRPO logged a step"
