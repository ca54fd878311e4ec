"""Pipelines lint as they run: every problem of a pipeline file is reported, each at its key, with the hint of the
stage it is in; what TRL's GRPOConfig rejects is a lint error (checked against TRL itself where it is installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aqwen_spec.diagnostics import Severity
from aqwen_spec.lint import lint_paths

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "specs" / "plant_maintenance"


def lint_pipeline(tmp_path: Path, text: str) -> list[tuple[int, int, str, str, str | None]]:
    root = tmp_path / "specs"
    shutil.copytree(EXAMPLE, root / EXAMPLE.name)
    target = root / EXAMPLE.name / "zz_pipeline.yaml"
    target.write_text(text, encoding="utf-8")
    found = [d for d in lint_paths([root]).diagnostics if Path(d.path).name == target.name]
    return [(d.pos.line, d.pos.col, d.code, d.message, d.hint) for d in found if d.severity is Severity.ERROR]


def test_an_unknown_key_gets_the_keys_of_its_own_stage(tmp_path: Path) -> None:
    text = """\
kind: Pipeline
name: odd_key
domain: plant_maintenance
model: {name: "builtin:tiny-qwen3"}
stages:
  - {stage: eval}
  - {stage: grpo, warmup: 3}
"""
    [(line, col, code, message, hint)] = lint_pipeline(tmp_path, text)
    assert (line, col, code, message) == (7, 19, "AQ103", "unknown key 'warmup'")
    assert hint is not None and hint.startswith("allowed keys: ")
    assert "num_generations" in hint and "split" not in hint  # the grpo stage's keys, not the eval stage's


def test_every_problem_of_a_pipeline_file_is_reported(tmp_path: Path) -> None:
    # a schema error (a typo in one stage) used to hide the checks of everything else in the document
    text = """\
kind: Pipeline
name: many_mistakes
domain: plant_maintenanse
model: {name: "builtin:tiny-qwen"}
stages:
  - stage: grpo
    max_step: 3
  - stage: grpo
    num_generations: 3
    batch_size: 4
  - stage: flywheel
    grpo: {num_generations: 3, vllm_mode: colocate}
  - stage: distill
    teacher: {name: big-model, backend: openai}
"""
    found = lint_pipeline(tmp_path, text)
    assert [(line, col, code) for line, col, code, _, _ in found] == [
        (3, 9, "AQ402"),  # unknown domain
        (4, 15, "AQ106"),  # unknown built-in model
        (7, 5, "AQ103"),  # max_step
        (9, 5, "AQ110"),  # 4 completions are not whole groups of 3
        (12, 12, "AQ110"),  # the default batch_size 8 is not either
        (12, 43, "AQ106"),  # vllm_mode without backend vllm
        (14, 14, "AQ104"),  # a teacher on openai without an endpoint
    ]
    messages = {code_at[:2]: code_at[3] for code_at in found}
    assert messages[(9, 5)] == (
        "batch_size (4) must be a multiple of num_generations (3): TRL's GRPO trains on whole groups of completions "
        "per prompt"
    )
    assert messages[(12, 12)].startswith("batch_size (8, the default) must be a multiple of num_generations (3)")


@pytest.mark.parametrize(("num_generations", "batch_size"), [(2, 4), (3, 4), (4, 8), (3, 8), (6, 6), (4, 2)])
def test_grpo_batch_lints_as_trl_accepts_it(tmp_path: Path, num_generations: int, batch_size: int) -> None:
    trl = pytest.importorskip("trl")
    text = f"""\
kind: Pipeline
name: groups
domain: plant_maintenance
model: {{name: "builtin:tiny-qwen3"}}
stages:
  - {{stage: grpo, num_generations: {num_generations}, batch_size: {batch_size}}}
"""
    lint_error = [code for _, _, code, _, _ in lint_pipeline(tmp_path, text)] == ["AQ110"]
    try:  # the arguments runtime/training/sft_grpo.py gives GRPOConfig for the stage's batch
        trl.GRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none",
                       per_device_train_batch_size=batch_size, num_generations=num_generations)
        trl_error = False
    except ValueError as exc:
        assert "divisible by num_generations" in str(exc)
        trl_error = True
    assert lint_error == trl_error


def test_tiny_model_options_are_for_the_tiny_model_only(tmp_path: Path) -> None:
    tiny = """\
kind: Pipeline
name: tiny_options
domain: plant_maintenance
model:
  name: {name}
  id_prefixes: true
  copy_pretraining: {{short_steps: 300, long_steps: 50}}
stages:
  - {{stage: eval}}
"""
    assert lint_pipeline(tmp_path / "a", tiny.format(name='"builtin:tiny-qwen3"')) == []
    found = lint_pipeline(tmp_path / "b", tiny.format(name='"builtin:smollm2-135m"'))
    assert [(line, col, code) for line, col, code, _, _ in found] == [(6, 16, "AQ106"), (7, 21, "AQ106")]
    assert found[1][3] == ("model.copy_pretraining is an option of builtin:tiny-qwen3 only (the model is "
                           "'builtin:smollm2-135m')")
