"""What the equal-compute comparison needs: stages that start from an earlier stage's model (``from:``), held-out
grown tasks (grown from held-out samples, never trained on), and the split of grown tasks by their source sample.

No training here: the stages are stood in for, and the grown tasks are built with one growth operator.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.documents.pipeline import Pipeline
from compiler import compile_specs, write_bundles
from runtime.episodes.agents import OracleAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.evaluate import evaluate
from runtime.pipeline.runner import PipelineRunner, RunState
from runtime.pipeline.split import sample_key, side, source_key, split_three

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return Bundle.load(write_bundles(compile_specs(ROOT / "specs"), tmp_path_factory.mktemp("build"))[0])


def _pipeline(stages: list[dict[str, Any]], **extra: Any) -> Pipeline:
    return Pipeline.model_validate({"kind": "Pipeline", "name": "cmp", "domain": "plant_maintenance",
                                    "model": {"name": "builtin:tiny-qwen3"}, "heldout_fraction": 0.3,
                                    "validation_fraction": 0.15, "stages": stages, **extra})


def test_a_task_of_the_domain_is_its_own_source_sample_and_splits_as_the_pipeline_does(bundle: Bundle) -> None:
    split = split_three(bundle.tasks, 0.3, 0.15, 0)
    for name, tasks in (("train", split.train), ("validation", split.validation), ("heldout", split.heldout)):
        assert tasks
        for task in tasks:
            assert source_key(task, {}) == sample_key(task)
            assert side(source_key(task, {}), 0.3, 0.15, 0) == name


def test_a_grown_task_splits_with_the_sample_it_was_grown_from() -> None:
    original = {"workflow": "close_after_repair", "slots": {"wo": "WO-1"}}
    chained = {"workflow": "close_after_repair_chn1", "slots": {"wo": "WO-1", "b_part": "P-9"}}
    regrown = {"workflow": "close_after_repair_chn1_hp2", "slots": {"wo": "WO-1", "b_part": "P-3"}}
    roots = {"close_after_repair_chn1": ("close_after_repair", ["wo"]),
             "close_after_repair_chn1_hp2": ("close_after_repair", ["wo"])}
    assert source_key(chained, roots) == source_key(regrown, roots) == sample_key(original)
    assert source_key(chained, {}) != sample_key(original)  # unknown root: the grown task is its own sample
    assert len({side(source_key(t, roots), 0.3, 0.15, 0) for t in (original, chained, regrown)}) == 1


def test_from_starts_a_stage_from_an_earlier_stages_model(bundle: Bundle, tmp_path: Path) -> None:
    pipeline = _pipeline([
        {"stage": "sft", "name": "warmup", "max_steps": 1},
        {"stage": "grpo", "name": "arm_a", "from": "warmup", "max_steps": 1, "num_generations": 2, "batch_size": 2},
        {"stage": "grpo", "name": "arm_b", "from": "warmup", "max_steps": 1, "num_generations": 2, "batch_size": 2},
        {"stage": "sft", "name": "after_b", "max_steps": 1},
    ])
    runner = PipelineRunner(pipeline, bundle, tmp_path, progress=False, echo=lambda s: None)
    started: dict[str, str] = {}

    def stand_in(model_path: str, stage: Any, name: str, resume: bool) -> dict[str, Any]:
        started[name] = model_path
        return {"checkpoint": f"{name}-model"}

    runner.run_stage = stand_in  # type: ignore[method-assign]
    runner.run(RunState("start-model"))
    assert started == {"warmup": "start-model", "arm_a": "warmup-model", "arm_b": "warmup-model",
                       "after_b": "arm_b-model"}
    bad = PipelineRunner(_pipeline([{"stage": "sft", "name": "arm", "from": "warmup", "max_steps": 1}]), bundle,
                         tmp_path / "bad", progress=False, echo=lambda s: None)
    (tmp_path / "bad").mkdir()
    from runtime.training.sft_grpo import TrainingError

    with pytest.raises(TrainingError, match="starts from 'warmup', which is no earlier training stage"):
        bad.run(RunState("start-model"))


def test_held_out_grown_tasks_grow_from_held_out_samples_and_a_flywheel_never_draws_them(tmp_path: Path) -> None:
    from runtime.pipeline.flywheel import Flywheel

    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs, ignore=shutil.ignore_patterns(".*"))
    bundle = Bundle.load(write_bundles(compile_specs(specs), tmp_path / "build")[0])
    pipeline = _pipeline([{"stage": "eval", "split": "grown_heldout"}],
                         grown_heldout={"grow": ["confirm_write"], "tasks_per_workflow": 2})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    said: list[str] = []
    runner = PipelineRunner(pipeline, bundle, run_dir, progress=False, echo=said.append, specs=specs)
    grown_bundle, tasks = runner.grown_heldout()
    info = json.loads(next((tmp_path / "build" / "grown_heldout").glob("*/tasks.json")).read_text())
    grown = {g["workflow"] for g in info["growths"]}
    assert tasks and len(tasks) <= 2 * len(grown)
    assert {t["workflow"] for t in tasks} <= grown and all(w.endswith("_cnf0") for w in grown)
    trained_samples = {sample_key(t) for t in [*runner.train_tasks, *runner.validation]}
    for task, row in zip(tasks, info["tasks"], strict=True):
        assert task["id"] == row["id"]
        assert side(row["source_sample"], 0.3, 0.15, 0) == "heldout"  # grown from a held-out sample
        assert row["source_sample"] not in trained_samples
    assert evaluate(grown_bundle, OracleAgent, tasks=tasks).success_rate == 1.0  # they run, and their gold is 1.0
    # a flywheel that grew the same workflows would never train on these tasks (their source sample is held out)
    flywheel = Flywheel(runner, _pipeline([{"stage": "flywheel"}]).stages[0], "flywheel")
    flywheel.add_roots([(g["workflow"], g["source_workflow"]) for g in info["growths"]])
    assert not any(flywheel.trainable(t) for t in tasks)
    assert all(flywheel.trainable(t) for t in runner.train_tasks)
    # built once: a second runner reads the same tasks back
    again = PipelineRunner(pipeline, bundle, run_dir, progress=False, echo=said.append, specs=specs)
    assert [t["id"] for t in again.grown_heldout()[1]] == [t["id"] for t in tasks]
    assert said[-1].startswith(f"held-out grown tasks: {len(tasks)} (")


def test_unspent_training_spends_the_steps_the_bands_left_on_the_training_tasks(
        bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime.training.sft_grpo as sft_grpo
    from runtime.pipeline.flywheel import Flywheel
    from runtime.training.sft_grpo import StageResult

    calls: list[tuple[str, int, int]] = []

    def stand_in(model_path: str, bundle: Any, tasks: list[Any], out: Path, stage: Any, *args: Any,
                 **kwargs: Any) -> StageResult:
        calls.append((model_path, len(tasks), stage.max_steps))
        return StageResult(out / "model", [{"step": 1}, {"step": stage.max_steps}])

    monkeypatch.setattr(sft_grpo, "run_grpo", stand_in)
    pipeline = _pipeline([{"stage": "flywheel", "unspent": "training", "grpo": {"max_steps": 20}}])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runner = PipelineRunner(pipeline, bundle, run_dir, progress=False, echo=lambda s: None, specs=ROOT / "specs")
    flywheel = Flywheel(runner, pipeline.stages[0], "flywheel")
    # two flywheel stages of one pipeline (arms of a comparison) write to folders of their own
    assert flywheel.folder == run_dir / "flywheel"
    assert Flywheel(runner, pipeline.stages[0], "flywheel_r96").folder == run_dir / "flywheel-flywheel_r96"
    flywheel.folder.mkdir(parents=True)
    flywheel.carried_steps = 40  # two rounds' steps that found no task in the band, after the last round
    model, steps = flywheel.spend_unspent("after-round-3", resume=False)
    assert calls == [("after-round-3", len(runner.train_tasks), 40)] and steps == 40
    assert model == str(flywheel.folder / "unspent" / "grpo" / "model") and flywheel.carried_steps == 0
    # resumed after it ran: read back, not trained again
    assert flywheel.spend_unspent("after-round-3", resume=True) == (model, 40) and len(calls) == 1


def test_seeds_aggregate_says_what_each_training_stage_spent() -> None:
    from runtime.pipeline.seeds import aggregate, format_seeds

    def summary(seed: int, grpo_steps: int) -> dict[str, Any]:
        return {"pipeline": "cmp", "heldout_tasks": 100, "stages": [
            {"name": "warmup", "stage": "sft", "seconds": 300.0 + seed, "compute": {"sft_steps": 192}},
            {"name": "sft_heldout", "stage": "eval", "success_rate": 0.1 * seed, "mean_reward": 0.2, "n_tasks": 100},
            {"name": "flywheel", "stage": "flywheel", "seconds": 400.0, "compute": {"grpo_steps": grpo_steps}}]}

    result = aggregate({0: summary(0, 60), 1: summary(1, 60), 2: summary(2, 20)})
    assert result["training"]["warmup"]["seconds"] == {"mean": 301.0, "std": 1.0, "min": 300.0, "max": 302.0}
    assert result["training"]["flywheel"]["compute"] == {"0": {"grpo_steps": 60}, "1": {"grpo_steps": 60},
                                                         "2": {"grpo_steps": 20}}
    text = format_seeds(result)
    assert "warmup: 301 s [300, 302]; sft_steps 192" in text
    assert "flywheel: 400 s [400, 400]; by seed: 0: grpo_steps 60; 1: grpo_steps 60; 2: grpo_steps 20" in text


def test_the_grown_cache_key_ignores_pipeline_files_and_nothing_else(bundle: Bundle, tmp_path: Path) -> None:
    from runtime.pipeline.grown import cache_key

    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs, ignore=shutil.ignore_patterns(".*"))
    runner = PipelineRunner(_pipeline([{"stage": "eval"}]), bundle, tmp_path, progress=False, echo=lambda s: None,
                            specs=specs)
    key = cache_key(runner)
    (specs / "plant_maintenance" / "pipeline_more.yaml").write_text(
        "kind: Pipeline\nname: more\ndomain: plant_maintenance\nmodel: {name: builtin:tiny-qwen3}\n"
        "stages: [{stage: eval}]\n")
    assert cache_key(runner) == key
    personas = specs / "plant_maintenance" / "personas.yaml"
    personas.write_text(personas.read_text() + "\n# an edit\n")
    assert cache_key(runner) != key
    other = PipelineRunner(_pipeline([{"stage": "eval"}], grown_heldout={"tasks_per_workflow": 4}), bundle, tmp_path,
                           progress=False, echo=lambda s: None, specs=specs)
    assert cache_key(other) != cache_key(runner)

