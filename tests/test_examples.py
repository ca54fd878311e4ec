"""The example domains under examples/: each lints clean, compiles, and is solved by the oracle agent only."""

from __future__ import annotations

from pathlib import Path

import pytest

from aqwen_spec.check import check_paths
from compiler import compile_specs, write_bundles
from runtime.episodes.agents import NoopAgent, OracleAgent, RandomAgent
from runtime.episodes.bundle import Bundle
from runtime.episodes.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "specs").is_dir())


def test_there_are_example_domains() -> None:
    assert len(EXAMPLES) >= 2


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda p: p.name)
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Bundle]]:
    specs: Path = request.param / "specs"
    project = compile_specs(specs)
    out = tmp_path_factory.mktemp(f"build-{request.param.name}")
    return specs, [Bundle.load(folder) for folder in write_bundles(project, out)]


def test_lints_without_errors_or_warnings(example: tuple[Path, list[Bundle]]) -> None:
    specs, _ = example
    result = check_paths([specs])
    problems = [f"{d.path}:{d.pos.line}:{d.pos.col}: {d.code} {d.message}" for d in result.diagnostics.sorted()]
    assert not problems


def test_compiles_to_tasks_for_every_workflow(example: tuple[Path, list[Bundle]]) -> None:
    _, bundles = example
    assert bundles
    for bundle in bundles:
        workflows = {t["workflow"] for t in bundle.tasks}
        assert len(workflows) >= 3, bundle.name


def test_oracle_succeeds_on_every_task(example: tuple[Path, list[Bundle]]) -> None:
    _, bundles = example
    for bundle in bundles:
        report = evaluate(bundle, OracleAgent)
        failed = [(t.task["id"], t.result.score.failed()) for t in report.trials if not t.result.success]
        assert not failed, bundle.name
        assert report.success_rate == 1.0 and report.mean_reward == 1.0


def test_noop_and_random_agents_do_not_succeed(example: tuple[Path, list[Bundle]]) -> None:
    _, bundles = example
    for bundle in bundles:
        assert evaluate(bundle, NoopAgent).success_rate <= 0.05, bundle.name
        assert evaluate(bundle, lambda: RandomAgent(seed=1)).success_rate <= 0.05, bundle.name
