"""The pipeline's task split (training, validation, held-out: disjoint by workflow sample) and the aggregation of
runs over seeds. No torch needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler import compile_specs, write_bundles
from runtime.pipeline.seeds import aggregate, format_seeds
from runtime.pipeline.split import sample_key, split_tasks, split_three

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    [folder] = write_bundles(compile_specs(ROOT / "specs"), tmp_path_factory.mktemp("build"))
    return [json.loads(line) for line in (Path(folder) / "tasks.jsonl").read_text().splitlines()]


def test_the_three_sides_are_disjoint_by_sample_and_cover_every_task(tasks: list[dict[str, Any]]) -> None:
    split = split_three(tasks, 0.3, 0.15, 0)
    sides = {"train": split.train, "validation": split.validation, "heldout": split.heldout}
    assert all(sides.values())
    ids = [t["id"] for side in sides.values() for t in side]
    assert sorted(ids) == sorted(t["id"] for t in tasks)  # every task once
    samples = {name: {sample_key(t) for t in side} for name, side in sides.items()}
    assert not samples["train"] & samples["validation"]
    assert not samples["train"] & samples["heldout"]
    assert not samples["validation"] & samples["heldout"]
    # a sample's tasks (personas, adversarial variants) outnumber the samples: the grouping is not by task
    assert len(samples["heldout"]) < len(split.heldout)
    side_of = {t["id"]: name for name, side in sides.items() for t in side}
    variants = [t for t in tasks if "/adv-" in t["id"]]
    assert variants and all(side_of[t["id"]] == side_of[t["id"].replace("/adv-", "/")] for t in variants)


def test_validation_is_carved_out_of_training_and_never_moves_held_out_tasks(tasks: list[dict[str, Any]]) -> None:
    train, heldout = split_tasks(tasks, 0.3, 0)
    for fraction in (0.1, 0.15, 0.3):
        split = split_three(tasks, 0.3, fraction, 0)
        assert split.heldout == heldout
        assert {t["id"] for t in split.train} | {t["id"] for t in split.validation} == {t["id"] for t in train}
    assert len(split_three(tasks, 0.3, 0.3, 0).validation) > len(split_three(tasks, 0.3, 0.1, 0).validation)


def test_the_split_is_deterministic_and_split_seed_redraws_it(tasks: list[dict[str, Any]]) -> None:
    a, b = split_three(tasks, 0.3, 0.15, 0), split_three(list(reversed(tasks)), 0.3, 0.15, 0)
    assert {t["id"] for t in a.heldout} == {t["id"] for t in b.heldout}
    assert {t["id"] for t in a.validation} == {t["id"] for t in b.validation}
    assert {t["id"] for t in split_three(tasks, 0.3, 0.15, 1).heldout} != {t["id"] for t in a.heldout}


def test_the_split_describes_itself(tasks: list[dict[str, Any]]) -> None:
    split = split_three(tasks, 0.3, 0.15, 7)
    described = split.describe()
    assert described["tasks"] == {"train": len(split.train), "validation": len(split.validation),
                                  "heldout": len(split.heldout)}
    assert described["samples"]["heldout"] == len({sample_key(t) for t in split.heldout})
    assert (described["split_seed"], described["heldout_fraction"], described["validation_fraction"]) == (7, 0.3, 0.15)
    assert "workflow sample" in described["by"]
    json.dumps(described)  # goes into config.json and summary.json


def _summary(seed: int, sft: float, after: float, step: int) -> dict[str, Any]:
    def ev(name: str, success: float) -> dict[str, Any]:
        return {"name": name, "stage": "eval", "success_rate": success, "mean_reward": success / 2, "n_tasks": 10}

    return {"pipeline": "default", "heldout_tasks": 10, "split": {"split_seed": 0},
            "stages": [ev("before", 0.0), {"name": "warmup", "stage": "sft"}, ev("after_sft", sft),
                       {"name": "grpo", "stage": "grpo"}, ev("after", after)],
            "selected": {"grpo": {"step": step, "on": "4 validation tasks",
                                  "validation": {"success_rate": 0.25, "mean_reward": 0.2}}}}


def test_seeds_aggregate_to_mean_spread_and_each_seeds_values() -> None:
    result = aggregate({2: _summary(2, 0.1, 0.4, 30), 0: _summary(0, 0.1, 0.1, 0), 1: _summary(1, 0.1, 0.1, 60)})
    assert result["seeds"] == [0, 1, 2] and list(result["evals"]) == ["before", "after_sft", "after"]
    after = result["evals"]["after"]["success_rate"]
    assert after["mean"] == pytest.approx(0.2) and (after["min"], after["max"]) == (0.1, 0.4)
    assert after["std"] == pytest.approx(0.3 / 3 ** 0.5)  # sample standard deviation of 0.1, 0.1, 0.4
    assert after["by_seed"] == {"0": 0.1, "1": 0.1, "2": 0.4}
    assert result["evals"]["after"]["mean_reward"]["mean"] == pytest.approx(0.1)
    assert result["evals"]["after_sft"]["success_rate"]["std"] == 0.0
    assert {s: c["grpo"]["step"] for s, c in result["selected"].items()} == {"0": 0, "1": 60, "2": 30}
    table = format_seeds(result)
    assert "3 seeds (0, 1, 2), 10 held-out tasks" in table
    assert "0.200 ± 0.173 [0.100, 0.400]" in table and "seed 1: grpo kept step 60" in table
