"""Compiled bundles in TRL's own tool loop (``GRPOTrainer(environment_factory=...)``): the tool schemas TRL renders,
gold trajectories replayed through the tool methods as TRL calls them, errors as observations, and a short GRPO run.

Needs the train extra (transformers, trl); skipped without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

from compiler import compile_specs, write_bundles
from runtime.episodes.bundle import Bundle
from runtime.training.trl_environment import TRLEnvironment

ROOT = Path(__file__).resolve().parents[1]
SPEC_TREES = [ROOT / "specs", *sorted(p / "specs" for p in (ROOT / "examples").iterdir() if (p / "specs").is_dir())]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Bundle]:
    out = []
    for specs in SPEC_TREES:
        folder = tmp_path_factory.mktemp(f"build-{specs.parent.name}")
        out += [Bundle.load(b) for b in write_bundles(compile_specs(specs), folder)]
    return out


@pytest.fixture(scope="module")
def plant(bundles: list[Bundle]) -> Bundle:
    return next(b for b in bundles if b.domain.name == "plant_maintenance")


def _gold_calls(task: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for m in task["gold"]["messages"] for c in m.get("tool_calls", [])]


def _as_transformers_renders(schema: dict[str, Any]) -> dict[str, Any]:
    """Our JSON schema of a parameter as transformers writes it from a type hint and a docstring line: a nullable
    type is ``nullable``, ``format`` has no Python type to come from."""
    out = {k: v for k, v in schema.items() if k != "format"}
    if isinstance(out.get("type"), list):
        kinds = [k for k in out["type"] if k != "null"]
        out["type"] = kinds[0]
        if len(kinds) < len(schema["type"]):
            out["nullable"] = True
    return out


def test_tool_methods_render_the_bundles_tool_schemas(bundles: list[Bundle]) -> None:
    from transformers.utils import get_json_schema

    assert len(bundles) >= 5
    for bundle in bundles:
        instance = TRLEnvironment(bundle).factory()
        for schema in bundle.tool_schemas:
            want = schema["function"]
            got = get_json_schema(getattr(instance, want["name"]))["function"]
            assert got["name"] == want["name"] and got["description"] == want["description"]
            assert got["parameters"].get("required", []) == want["parameters"].get("required", [])
            for param, spec in want["parameters"]["properties"].items():
                rendered = got["parameters"]["properties"][param]
                if "description" not in spec:  # a docstring needs one: the parameter's name stands in
                    assert rendered.pop("description") == param.replace("_", " ")
                assert rendered == _as_transformers_renders(spec), (bundle.domain.name, want["name"], param)


def test_gold_trajectories_score_full_marks_through_the_tool_methods(bundles: list[Bundle]) -> None:
    """Every task of every bundle: the gold's tool calls made as TRL makes them (``method(**arguments)``), the
    gold's assistant messages as the completion; the verifiers give 1.0, and the tool results are the gold's."""
    for bundle in bundles:
        env = TRLEnvironment(bundle)
        instance = env.factory()
        for task in bundle.tasks:
            instance.reset(task_id=task["id"])
            completion, results = [], []
            for message in task["gold"]["messages"]:
                if message["role"] == "assistant":
                    completion.append(message)
                    results += [getattr(instance, c["name"])(**c["arguments"]) for c in message.get("tool_calls", [])]
                elif message["role"] == "tool":
                    completion.append(message)
            gold_results = [m["content"] for m in task["gold"]["messages"] if m["role"] == "tool"]
            assert results == gold_results, task["id"]
            [result] = env.results([completion], [instance])
            assert (result.reward, result.success) == (1.0, True), (task["id"], result.score.failed())
            assert [c.name for c in instance.episode.calls] == [c["name"] for c in _gold_calls(task)]


def test_a_wrong_answer_scores_below_the_gold(plant: Bundle) -> None:
    env = TRLEnvironment(plant)
    instance = env.factory()
    task = next(t for t in plant.tasks
                if any(c["name"] != "transfer_to_human" and not c["name"].startswith("get_") for c in _gold_calls(t)))
    instance.reset(task_id=task["id"])
    assert env.reward([[{"role": "assistant", "content": "Done."}]], [instance]) == [
        instance.episode.result().reward]
    assert instance.episode.result().success is False
    assert instance.episode.result().reward < 1.0


def test_bad_calls_are_error_observations_and_counted(plant: Bundle) -> None:
    env = TRLEnvironment(plant)
    instance = env.factory()
    instance.reset(task_id=plant.tasks[0]["id"])
    missing = json.loads(instance.get_machine())
    assert "error" in missing
    wrong = json.loads(instance.get_machine(machine_id="M-000", colour="red"))
    assert "error" in wrong
    assert instance.episode.counts["malformed"] == 2
    assert json.loads(instance.transfer_to_human(reason="help"))["status"] == "transferred"
    assert json.loads(instance.get_machine(machine_id="M-104")) == {"error": "the episode is over"}
    [result] = env.results([[{"role": "assistant", "content": "Transferred you."}]], [instance])
    assert result.metrics["terminated_by"] == "transfer" and result.metrics["malformed"] == 2
    with pytest.raises(KeyError, match="no-such-task"):
        instance.reset(task_id="no-such-task")


def test_a_reset_starts_on_a_fresh_state(plant: Bundle) -> None:
    """An instance is reused across batches: a write in one episode is gone in the next."""
    env = TRLEnvironment(plant)
    instance = env.factory()
    task, call = next((t, c) for t in plant.tasks for c in _gold_calls(t) if c["name"] == "assign_technician")
    order = call["arguments"]["order_id"]
    instance.reset(task_id=task["id"])
    before = instance.get_work_order(order_id=order)
    instance.assign_technician(**call["arguments"])
    assert instance.get_work_order(order_id=order) != before
    instance.reset(task_id=task["id"])
    assert instance.get_work_order(order_id=order) == before


def test_grpo_trainer_trains_through_environment_factory(plant: Bundle, tmp_path: Path) -> None:
    """TRL's GRPOTrainer with the bundle as its environment_factory and the verifiers as its reward: two steps on
    the built-in tiny model; every rollout's episode is scored, and the logged reward is the verifiers' mean."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from trl import GRPOConfig, GRPOTrainer

    from runtime.training.models import domain_corpus, load, resolve_model

    torch.set_num_threads(1)
    model, tokenizer = load(resolve_model("builtin:tiny-qwen3", domain_corpus(plant)))
    env = TRLEnvironment(plant)
    scored: list[list[float]] = []

    def reward(completions: list[Any], environments: list[Any], **kwargs: Any) -> list[float]:
        rewards = env.reward(completions, environments, **kwargs)
        assert all(e.episode.done for e in environments)
        scored.append(rewards)
        return rewards

    config = GRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=4,
        num_generations=2, max_steps=2, learning_rate=1e-5, beta=0.0, max_completion_length=48, logging_steps=1,
        save_strategy="no", seed=0, disable_tqdm=True, max_tool_calling_iterations=2,
        chat_template_kwargs={"enable_thinking": False})
    trainer = GRPOTrainer(model=model, args=config, train_dataset=env.dataset(plant.tasks[:8]),
                          processing_class=tokenizer, environment_factory=env.factory, reward_funcs=[reward])
    trainer.train()
    logged = [row for row in trainer.state.log_history if "rewards/reward/mean" in row]
    assert len(scored) == len(logged) == 2
    for rewards, row in zip(scored, logged, strict=True):
        assert len(rewards) == 4
        assert row["rewards/reward/mean"] == pytest.approx(sum(rewards) / len(rewards), abs=1e-4)


@pytest.mark.parametrize("name", ["reset", "get_reward", "_hidden", "not-an-identifier"])
def test_tool_names_trl_cannot_offer_are_refused(plant: Bundle, name: str) -> None:
    import copy

    bundle = copy.copy(plant)
    bundle.tool_schemas = [{"type": "function", "function": {"name": name, "description": "A tool.",
                                                             "parameters": {"type": "object", "properties": {}}}}]
    with pytest.raises(ValueError, match=repr(name)):
        TRLEnvironment(bundle)
