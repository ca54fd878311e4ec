"""Model selection on validation tasks (``select_every``) and runs over several seeds, on the built-in tiny model.

Needs the train extra (torch, transformers, trl); skipped without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from compiler.cli import main as compile_main  # noqa: E402
from runtime.episodes.bundle import Bundle  # noqa: E402
from runtime.episodes.env import EpisodeConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("build")
    assert compile_main([str(ROOT / "specs"), "-o", str(out), "-q"]) == 0
    return Bundle.load(out / "plant_maintenance")


@pytest.fixture(scope="module")
def start(bundle: Bundle) -> Path:
    from runtime.training.models import domain_corpus, resolve_model

    torch.set_num_threads(1)
    return Path(resolve_model("builtin:tiny-qwen3", domain_corpus(bundle)))


def _weights(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _saved(folder: Path) -> dict[str, Any]:
    from runtime.training.models import load

    return _weights(load(folder)[0])


def _sft(bundle: Bundle, start: Path, out: Path, callbacks: list[Any]) -> Path:
    from aqwen_spec.documents.pipeline import SFTStage
    from runtime.training.sft_grpo import run_sft

    stage = SFTStage(stage="sft", max_steps=3, batch_size=2, learning_rate=0.003)
    return run_sft(start, bundle, bundle.tasks[:6], out, stage, EpisodeConfig(), lambda row: None,
                   trainer_args={"disable_tqdm": True}, callbacks=callbacks).checkpoint


def test_selection_keeps_the_best_checkpoint_on_validation_and_leaves_training_alone(
        bundle: Bundle, start: Path, tmp_path: Path) -> None:
    """Validation prefers step 2, a held-out score would prefer step 3 (the last): step 2's weights are handed on;
    the held-out score is never consulted; training ends where it ends without selection."""
    from runtime.training.select import CheckpointSelector, selector_callback

    validation = {0: 0.1, 1: 0.3, 2: 0.5, 3: 0.4}
    heldout = {0: 0.0, 1: 0.1, 2: 0.2, 3: 0.6}
    seen: dict[int, dict[str, Any]] = {}
    consulted: list[str] = []

    def score(model: Any, tokenizer: Any) -> tuple[float, float]:
        step = len(seen)
        seen[step] = _weights(model)
        assert not model.training  # scored as evaluated: in eval mode
        consulted.append("validation")
        torch.rand(5)  # scoring draws random numbers (sampling): training must not see it
        return validation[step], 0.0

    selector = CheckpointSelector(score, 1, tmp_path / "sel" / "select", "scripted validation")
    final = _sft(bundle, start, tmp_path / "sel", [selector_callback(selector)])
    assert sorted(seen) == [0, 1, 2, 3] and consulted == ["validation"] * 4
    chosen = selector.result()
    assert chosen["step"] == 2 == max(validation, key=validation.__getitem__)
    assert chosen["step"] != max(heldout, key=heldout.__getitem__)
    assert chosen["validation"] == {"success_rate": 0.5, "mean_reward": 0.0}
    assert [c["step"] for c in chosen["candidates"]] == [0, 1, 2, 3]
    assert _same(_saved(selector.best_model), seen[2])
    assert not _same(seen[2], seen[3]) and _same(_saved(final), seen[3])
    saved = json.loads((tmp_path / "sel" / "select" / "selection.json").read_text())
    assert saved["candidates"] == chosen["candidates"] and saved["on"] == "scripted validation"
    # the same stage without selection trains to the same weights
    plain = _sft(bundle, start, tmp_path / "plain", [])
    assert _same(_saved(plain), seen[3])


def test_a_tie_keeps_the_earlier_checkpoint(bundle: Bundle, start: Path, tmp_path: Path) -> None:
    from runtime.training.select import CheckpointSelector, selector_callback

    def score(model: Any, tokenizer: Any) -> tuple[float, float]:
        return 0.25, 0.5

    selector = CheckpointSelector(score, 2, tmp_path / "select", "flat")
    _sft(bundle, start, tmp_path, [selector_callback(selector)])
    assert [c["step"] for c in selector.candidates] == [0, 2, 3]  # before, every 2 steps, after the last
    assert selector.result()["step"] == 0
    assert _same(_saved(selector.best_model), _saved(start))  # the stage's own starting model is handed on


def test_runner_scores_checkpoints_on_the_validation_tasks_only(bundle: Bundle, start: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime.pipeline.runner as runner_module
    from aqwen_spec.documents.pipeline import GRPOStage, Pipeline
    from runtime.training.models import load

    pipeline = Pipeline.model_validate({"name": "p", "domain": "plant_maintenance", "validation_fraction": 0.2,
                                        "model": {"name": "builtin:tiny-qwen3"}, "stages": [{"stage": "eval"}]})
    runner = runner_module.PipelineRunner(pipeline, bundle, tmp_path, progress=False, echo=lambda s: None)
    played: list[list[str]] = []
    real = runner_module.run_rollouts

    def recording(bundle: Bundle, tasks: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        played.append([t["id"] for t in tasks])
        return real(bundle, tasks[:2], *args, **kwargs)

    monkeypatch.setattr(runner_module, "run_rollouts", recording)
    stage = GRPOStage(stage="grpo", select_every=5)
    selector = runner.selector(stage, tmp_path / "grpo", lambda row: None)
    model, tokenizer = load(start)
    selector.consider(0, model, tokenizer)
    assert played == [[t["id"] for t in runner.validation]]
    assert not set(played[0]) & {t["id"] for t in runner.heldout}
    assert not set(played[0]) & {t["id"] for t in runner.train_tasks}
    assert selector.on == f"{len(runner.validation)} validation tasks"
    empty = pipeline.model_copy(update={"validation_fraction": 0.0})
    from runtime.training.sft_grpo import TrainingError

    with pytest.raises(TrainingError, match="select_every needs validation tasks"):
        runner_module.PipelineRunner(empty, bundle, tmp_path).selector(stage, tmp_path / "g", lambda row: None)


def _specs(tmp_path: Path, *stages: str) -> Path:
    import shutil

    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs)
    (specs / "plant_maintenance" / "pipeline.yaml").write_text(
        "kind: Pipeline\nname: default\ndomain: plant_maintenance\nmodel: {name: 'builtin:tiny-qwen3'}\n"
        "validation_fraction: 0.15\nbudget: {max_turns: 3, max_new_tokens: 16, max_tokens: 64}\nstages:\n"
        + "".join(f"{line}\n" for line in stages))
    return specs


def test_seeds_run_the_pipeline_per_seed_on_one_split_and_record_the_choice(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from runtime.cli import main as run_main

    specs = _specs(tmp_path, "  - {stage: eval, name: before, max_tasks: 2}",
                   "  - {stage: grpo, name: grpo, max_steps: 2, num_generations: 2, batch_size: 2, select_every: 1}",
                   "  - {stage: eval, name: valid, split: validation, max_tasks: 2}",
                   "  - {stage: eval, name: after, max_tasks: 2}")
    args = ["--specs", str(specs), "--build", str(tmp_path / "build"), "--runs", str(tmp_path / "runs"),
            "--no-progress", "--name", "m"]
    capsys.readouterr()
    assert run_main([*args, "--seeds", "0,1"]) == 0
    out = capsys.readouterr().out
    base = tmp_path / "runs" / "m"
    summaries = {s: json.loads((base / f"seed-{s}" / "summary.json").read_text()) for s in (0, 1)}
    configs = {s: json.loads((base / f"seed-{s}" / "config.json").read_text()) for s in (0, 1)}
    assert [summaries[s]["seed"] for s in (0, 1)] == [0, 1]
    assert configs[0]["split"] == configs[1]["split"] == summaries[0]["split"]  # one split for every seed
    assert configs[0]["model_path"] != configs[1]["model_path"]  # the seed draws the tiny model's weights
    split = summaries[0]["split"]
    assert split["tasks"]["validation"] == summaries[0]["validation_tasks"] > 0
    assert split["validation_fraction"] == 0.15 and split["heldout_fraction"] == 0.3
    for s in (0, 1):
        chosen = summaries[s]["selected"]["grpo"]
        assert [c["step"] for c in chosen["candidates"]] == [0, 1, 2]
        assert chosen["on"] == f"{split['tasks']['validation']} validation tasks"
        stage = next(x for x in summaries[s]["stages"] if x["name"] == "grpo")
        assert stage["checkpoint"].endswith("checkpoints/grpo/select/best") and stage["selected"] == chosen
        after = next(x for x in summaries[s]["stages"] if x["name"] == "after")
        assert after["model"] == stage["checkpoint"]  # the held-out evaluation ran on the chosen model
    seeds = json.loads((base / "seeds.json").read_text())
    assert seeds["seeds"] == [0, 1] and list(seeds["evals"]) == ["before", "valid", "after"]
    after = seeds["evals"]["after"]["success_rate"]
    values = [next(x for x in summaries[s]["stages"] if x["name"] == "after")["success_rate"] for s in (0, 1)]
    assert after["by_seed"] == {"0": values[0], "1": values[1]} and after["mean"] == pytest.approx(sum(values) / 2)
    assert "2 seeds (0, 1)" in out and "seed 1: grpo kept step" in out
    assert (tmp_path / "runs" / "latest").resolve() == (base / "seed-1").resolve()
    # a finished measurement resumes without training again
    capsys.readouterr()
    assert run_main([*args, "--seeds", "0,1", "--resume"]) == 0
    resumed = capsys.readouterr().out
    assert "grpo on" not in resumed and "2 seeds (0, 1)" in resumed
    assert run_main([*args, "--seeds", "0,1"]) == 1  # the folder exists
    assert "exists" in capsys.readouterr().err
