"""Reasoning problems: instances drawn and answers computed deterministically, answer checking, knobs, composition,
Self-Instruct with its consistency filter, and the reasoning flywheel end to end with the built-in tiny model."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from aqwen_spec.check import check_paths, load_specs
from aqwen_spec.resolved import ResolvedProblem
from compiler.problems import (
    DrawError,
    compose_targets,
    draw_instance,
    draw_instances,
    make_variant,
    problem_from_json,
    recompute,
    seed_variant,
    turn_up,
)
from runtime.reasoning.answers import check_answer, extract_answer, parse_number
from runtime.reasoning.flywheel import evaluate
from runtime.reasoning.selfinstruct import ParaphraseTeacher, consistency_filter
from runtime.reasoning.solvers import ParsingSolver

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

WORKSHOP = {
    "domain.yaml": """\
kind: Domain
name: workshop
description: A workshop desk with reasoning problems.
state:
  notes: list[str]
initial_state:
  data: {notes: []}
---
kind: Persona
name: foreman
role: foreman of the night shift
voice: terse
opening: "Quick one."
""",
    "problems.yaml": """\
kind: Problem
name: parity
domain: workshop
knobs:
  scale: {min: 1, max: 3}
params:
  n: randint(1, 9 * scale)
question: "Is {{ n }} odd? Say 1 for yes, 0 for no."
answer: n % 2
solution: "{{ n }} mod 2 = {{ answer }}."
---
kind: Problem
name: total
domain: workshop
knobs:
  steps: {min: 2, max: 5, default: 2}
  scale: {min: 1, max: 4}
params:
  xs: "[randint(1, 9 * scale) for i in range(steps)]"
question: "Add {{ xs | join(' + ') }}."
answer: sum(xs)
check: numeric
---
kind: Problem
name: bins
domain: workshop
knobs:
  scale: {min: 1, max: 3}
params:
  items: randint(2, 20 * scale)
  size: choice([2, 3, 4, 5])
question: "{{ items }} parts go into bins of {{ size }}. How many bins are needed?"
answer: (items + size - 1) // size
""",
}


@pytest.fixture(scope="module")
def plant() -> dict[str, ResolvedProblem]:
    return load_specs(SPECS).problems


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small spec tree (a domain, a persona, three problems) compiled into a bundle; returns the build folder."""
    from compiler.cli import main as compile_main

    root = tmp_path_factory.mktemp("workshop")
    folder = root / "specs" / "workshop"
    folder.mkdir(parents=True)
    for name, text in WORKSHOP.items():
        (folder / name).write_text(text, encoding="utf-8")
    assert compile_main([str(root / "specs"), "-o", str(root / "build"), "-q"]) == 0
    return root / "build"


# --- instances ------------------------------------------------------------------------------------------------------


def test_the_example_problems_lint_clean() -> None:
    result = check_paths([SPECS])
    assert [d.code for d in result.diagnostics] == []
    assert len(result.specs.problems) >= 3


def test_instances_are_deterministic_per_seed(plant: dict[str, ResolvedProblem]) -> None:
    for name, problem in plant.items():
        variant = seed_variant(problem)
        a = draw_instances(variant, plant, 6, seed=3)
        assert a == draw_instances(variant, plant, 6, seed=3), name
        assert a != draw_instances(variant, plant, 6, seed=4), name
        assert len({i["id"] for i in a}) == len(a)


def test_answers_are_computed_from_the_params(plant: dict[str, ResolvedProblem]) -> None:
    by_hand = {
        "oee": lambda p: round(100 * p["good"] * p["cycle"] / (p["planned"] * 60), 1),
        "mtbf": lambda p: round(sum(p["uptimes"]) / len(p["uptimes"]), 1),
        "technician_shifts": lambda p: -(-sum(p["hours"]) // p["shift"]),
        "reorder_quantity": lambda p: [max(0, u * p["lead"] + p["safety"] - h)
                                       for u, h in zip(p["usage"], p["on_hand"], strict=True)],
        "service_due": lambda p: [m for m, h in zip(p["ids"], p["run_hours"], strict=False) if h >= p["interval"]],
    }
    for name, compute in by_hand.items():
        for inst in draw_instances(seed_variant(plant[name]), plant, 5, seed=11):
            assert inst["answer"] == compute(inst["params"]), (name, inst["params"])
            assert recompute(inst, plant) == inst["answer"]
            assert inst["solution"].endswith(f"Answer: {extract_answer(inst['solution'])}")
            assert check_answer(inst["solution"], inst["answer"], inst["check"], inst["tolerance"]).correct


def test_constraints_are_met(plant: dict[str, ResolvedProblem]) -> None:
    for inst in draw_instances(seed_variant(plant["service_due"]), plant, 20, seed=1):
        assert inst["answer"], "the constraint keeps at least one machine due"


def test_bundle_carries_problem_definitions_and_instances(tmp_path: Path, plant: dict[str, ResolvedProblem]) -> None:
    from compiler.cli import main as compile_main
    from compiler.reader import read_bundle

    assert compile_main([str(SPECS), "-o", str(tmp_path), "-q"]) == 0
    files = read_bundle(tmp_path / "plant_maintenance")
    assert set(files.problem_defs) == set(plant)
    counts = files.manifest["counts"]
    assert counts["problems"] == len(plant)
    assert sum(counts["problem_instances"].values()) == len(files.problems)
    loaded = {n: problem_from_json(d) for n, d in files.problem_defs.items()}
    for inst in files.problems:  # definitions read back from the bundle draw exactly the compiled instances
        assert draw_instance(seed_variant(loaded[inst["problem"]]), loaded, seed=inst["seed"]) == inst
        assert recompute(inst, loaded) == inst["answer"]


def test_a_bundle_without_problems_has_no_problem_files(tmp_path: Path) -> None:
    from compiler.cli import main as compile_main
    from compiler.reader import read_bundle

    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    (specs / "plant_maintenance" / "problems.yaml").unlink()
    (specs / "plant_maintenance" / "pipeline_reasoning.yaml").unlink(missing_ok=True)
    assert compile_main([str(specs), "-o", str(tmp_path / "build"), "-q"]) == 0
    folder = tmp_path / "build" / "plant_maintenance"
    assert not (folder / "problems.jsonl").exists() and not (folder / "problems.json").exists()
    files = read_bundle(folder)
    assert files.problems == [] and files.problem_defs == {} and "problems" not in files.manifest["counts"]


def test_unsatisfiable_constraints_fail_the_compile(tmp_path: Path) -> None:
    from aqwen_spec.diagnostics import SpecError
    from compiler.project import compile_specs

    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    (specs / "plant_maintenance" / "zz_bad.yaml").write_text(
        "kind: Problem\nname: never\ndomain: plant_maintenance\nparams:\n  n: randint(1, 5)\n"
        "constraints:\n  - n > 10\nquestion: \"{{ n }}?\"\nanswer: n\n", encoding="utf-8")
    with pytest.raises(SpecError) as err:
        compile_specs(specs)
    assert [d.code for d in err.value.diagnostics] == ["AQ605"]
    assert "constraint 1 does not hold" in err.value.diagnostics[0].message


# --- knobs, composition, personas -----------------------------------------------------------------------------------


def test_knobs_turn_harder(plant: dict[str, ResolvedProblem]) -> None:
    mtbf = plant["mtbf"]
    easy = make_variant(mtbf, {"steps": 2, "scale": 1})
    hard = make_variant(mtbf, {"steps": 8, "scale": 10})
    easy_i = draw_instances(easy, plant, 8, seed=0)
    hard_i = draw_instances(hard, plant, 8, seed=0)
    assert all(len(i["params"]["uptimes"]) == 2 for i in easy_i)
    assert all(len(i["params"]["uptimes"]) == 8 for i in hard_i)
    assert max(max(i["params"]["uptimes"]) for i in easy_i) <= 200 < max(max(i["params"]["uptimes"]) for i in hard_i)
    # one 'harder' step turns one knob up by its step, the next round another knob; at the top there is no step
    assert turn_up(mtbf, {"steps": 3, "scale": 1}, 1, start=0) == ("steps", 4)
    assert turn_up(mtbf, {"steps": 3, "scale": 1}, 2, start=1) == ("scale", 3)
    assert turn_up(mtbf, {"steps": 8, "scale": 1}, 1, start=0) == ("scale", 2)
    assert turn_up(mtbf, {"steps": 8, "scale": 10}, 1) is None
    assert make_variant(mtbf, {"steps": 99})["knobs"]["steps"] == 8  # clamped to the range
    oee = plant["oee"]
    noisy = draw_instance(make_variant(oee, {"distractors": 3}), plant, seed=2)
    assert len(noisy["params"]["noise"]) == 3 and noisy["question"].count("Also,") == 3


def test_composed_problem_feeds_one_answer_into_the_next(plant: dict[str, ResolvedProblem]) -> None:
    first, second = plant["technician_shifts"], plant["reorder_quantity"]
    assert "lead" in compose_targets(first, second)
    assert compose_targets(plant["mtbf"], second) == []  # a float answer fits no int parameter
    variant = make_variant(second, {}, compose={"problem": first.name, "knobs": {"steps": 3}, "into": "lead"})
    inst = draw_instance(variant, plant, seed=5)
    part = inst["compose"]
    assert part["answer"] == recompute({"problem": first.name, "knobs": part["knobs"], "params": part["params"]}, plant)
    assert inst["params"]["lead"] == part["answer"]
    assert inst["answer"] == [max(0, u * part["answer"] + inst["params"]["safety"] - h)
                              for u, h in zip(inst["params"]["usage"], inst["params"]["on_hand"], strict=True)]
    assert inst["question"].startswith("Part 1: ") and "X-day" in inst["question"]
    assert recompute(inst, plant) == inst["answer"]


def test_persona_wording(plant: dict[str, ResolvedProblem]) -> None:
    specs = load_specs(SPECS)
    variant = make_variant(plant["mtbf"], {}, persona="hurried_shift_lead")
    inst = draw_instance(variant, plant, specs.personas, seed=1)
    plain = draw_instance(seed_variant(plant["mtbf"]), plant, specs.personas, seed=1)
    assert inst["question"].startswith("Need this sorted before shift change. I'm the shift lead on the night shift.")
    assert inst["params"] != plain["params"] or inst["question"] != plain["question"]
    with pytest.raises(DrawError):
        draw_instance(make_variant(plant["mtbf"], {}, persona="nobody"), plant, specs.personas, seed=1)


# --- answers --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected", "check", "tolerance", "status"), [
    ("Work: 6 x 7.\nAnswer: 42", 42, "exact", None, "correct"),
    ("Answer: 42 shifts", 42, "exact", None, "correct"),
    ("answer = 41", 42, "exact", None, "wrong"),
    ("**Final answer:** M-404", "m-404", "exact", None, "correct"),
    ("The answer is 7.", 7, "exact", None, "correct"),
    ("Answer: 47.45", 47.4, "numeric", 0.1, "correct"),
    ("Answer: 47.6", 47.4, "numeric", 0.1, "wrong"),
    ("Answer: 1,250.0", 1250, "numeric", None, "correct"),
    ("Answer: 62.5%", 62.5, "numeric", 0.01, "correct"),
    ("so it is \\boxed{\\frac12}", 0.5, "numeric", 0.01, "correct"),
    ("Answer: \\frac{3}{4}", 0.75, "numeric", 0.01, "correct"),
    ("Answer: 3/4", 0.75, "numeric", 1e-9, "correct"),
    ("Answer: 2 or 3", 2, "numeric", None, "unparseable"),
    ("Answer: 27, 0, 14", [27, 0, 14], "list", None, "correct"),
    ("Answer: [27, 0, 14]", [27, 0, 14], "list", None, "correct"),
    ("Answer: 0, 27, 14", [27, 0, 14], "list", None, "wrong"),
    ("Answer: 27, 0", [27, 0, 14], "list", None, "wrong"),
    ("Answer: M-205 and M-101", ["M-101", "M-205"], "set", None, "correct"),
    ("Answer: M-101, M-205, M-310", ["M-101", "M-205"], "set", None, "wrong"),
    ("Answer: P-101", ["M-101"], "set", None, "wrong"),
    ("$\\boxed{12}$ is it.\nAnswer: 13", 13, "exact", None, "correct"),
    ("So \\boxed{12}. Answer: 13 (not on a line of its own)", 12, "exact", None, "correct"),
    ("Answer: 13\nActually \\boxed{12}", 12, "exact", None, "correct"),
    ("<think>Answer: 5</think>", 5, "exact", None, "no_answer"),
    ("<think>scratch: Answer: 5</think>\nAnswer: 6", 6, "exact", None, "correct"),
    ("I am not sure.", 5, "exact", None, "no_answer"),
    ("Answer:", 5, "exact", None, "no_answer"),
    ("Answer: five", 5, "exact", None, "unparseable"),
    ("Answer: [1, 2", [1, 2], "list", None, "correct"),  # an unclosed bracket is forgiven
    ("Answer: {1, 2}", [2, 1], "set", None, "correct"),
    ("\\boxed{1, 2", [1, 2], "list", None, "no_answer"),
])
def test_check_kinds(text: str, expected: Any, check: str, tolerance: float | None, status: str) -> None:
    assert check_answer(text, expected, check, tolerance).status == status


def test_parse_number() -> None:
    assert parse_number("1,250") == 1250 and parse_number("$40") == 40 and parse_number("-3.5 h") == -3.5
    assert parse_number("M-101 and M-102") is None and parse_number("") is None


@pytest.mark.parametrize("text", ["", "\x00\xff", "Answer: " + "9" * 400, "Answer: nan", "Answer: inf", "}}}{{{",
                                  "\\boxed{" * 50, "Answer: \u2212\u2212", "<|im_end|>Answer: 4", None])
def test_malformed_output_is_counted_not_raised(text: Any) -> None:
    for check, expected in [("exact", 4), ("numeric", 4.0), ("list", [4]), ("set", ["a"])]:
        verdict = check_answer(text, expected, check, 0.1)
        assert verdict.status in ("correct", "wrong", "no_answer", "unparseable")


class Scripted:
    """A solver with fixed replies, cycling."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies

    def solve(self, items: list[dict[str, Any]], k: int) -> list[list[str]]:
        return [[self.replies[(i * k + j) % len(self.replies)] for j in range(k)] for i in range(len(items))]


def test_evaluation_counts_malformed_answers(plant: dict[str, ResolvedProblem]) -> None:
    instances = draw_instances(seed_variant(plant["technician_shifts"]), plant, 3, seed=0)
    right = f"Answer: {instances[0]['answer']}"
    evaluated = evaluate(Scripted([right, "no idea", "Answer: lots", "Answer: 999"]), instances[:1], 4)
    statuses = [s["status"] for s in evaluated[0].samples]
    assert statuses == ["correct", "no_answer", "unparseable", "wrong"]
    assert evaluated[0].pass_rate == 0.25


# --- Self-Instruct and the consistency filter -----------------------------------------------------------------------


class DropsANumber:
    """A teacher that loses a given on every other question (the filter must catch it)."""

    def __init__(self) -> None:
        self.calls = 0

    def rewrite(self, question: str, params: dict[str, Any]) -> str:
        self.calls += 1
        if self.calls % 2:
            return "Rephrased: " + question
        import re

        return re.sub(r"\d+", "some", question, count=1)


class WrongOnMarked:
    """A policy-like solver: answers by parsing, except that it gets rewrites containing 'Rephrased' wrong once."""

    def __init__(self, problems: dict[str, ResolvedProblem]) -> None:
        self.parser = ParsingSolver(problems)

    def solve(self, items: list[dict[str, Any]], k: int) -> list[list[str]]:
        out = self.parser.solve(items, k)
        return [["Answer: -1", *texts[1:]] if "Rephrased" in item["question"] else texts
                for item, texts in zip(items, out, strict=True)]


def test_consistency_filter_keeps_faithful_rewrites(plant: dict[str, ResolvedProblem]) -> None:
    instances = [i for name in sorted(plant) for i in draw_instances(seed_variant(plant[name]), plant, 2, seed=0)]
    out, stats = consistency_filter(instances, ParaphraseTeacher(), ParsingSolver(plant), 2, plant)
    assert (stats.tried, stats.kept, stats.dropped) == (len(instances), len(instances), 0)
    for before, after in zip(instances, out, strict=True):
        assert after["rewritten"] and after["original_question"] == before["question"] != after["question"]
        assert after["answer"] == before["answer"] == recompute(after, plant)
        assert after["id"] == before["id"] and after["params"] == before["params"]


def test_consistency_filter_drops_unfaithful_rewrites(plant: dict[str, ResolvedProblem]) -> None:
    instances = draw_instances(seed_variant(plant["mtbf"]), plant, 4, seed=0)
    out, stats = consistency_filter(instances, DropsANumber(), ParsingSolver(plant), 3, plant)
    assert (stats.kept, stats.dropped) == (2, 2)
    assert stats.reasons == {"solver disagreed": 2}
    assert [bool(i.get("rewritten")) for i in out] == [True, False, True, False]
    assert out[1] == instances[1] and out[3] == instances[3]  # a dropped rewrite leaves the template's question
    # a solver that fails 1 of k samples on some rewrites: those are dropped too (k of k must agree)
    out, stats = consistency_filter(instances, DropsANumber(), WrongOnMarked(plant), 3, plant)
    assert (stats.kept, stats.dropped) == (0, 4)
    assert out == instances


def test_the_answer_never_comes_from_the_rewrite(plant: dict[str, ResolvedProblem]) -> None:
    class ChangesTheNumbers:
        def rewrite(self, question: str, params: dict[str, Any]) -> str:
            return question.replace(str(params["shift"]), str(params["shift"] + 1))

    class Agreeable:  # agrees with whatever the question now says: computed from the rewrite it would be wrong
        def solve(self, items: list[dict[str, Any]], k: int) -> list[list[str]]:
            return [[f"Answer: {i['answer']}"] * k for i in items]

    instances = draw_instances(seed_variant(plant["technician_shifts"]), plant, 3, seed=2)
    out, _ = consistency_filter(instances, ChangesTheNumbers(), Agreeable(), 2, plant)
    for inst in out:
        assert inst["answer"] == recompute({**inst, "question": "ignored"}, plant)
    _, strict = consistency_filter(instances, ChangesTheNumbers(), ParsingSolver(plant), 2, plant)
    assert strict.kept == 0 and strict.dropped == 3


# --- the flywheel ---------------------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

STAGE = {"stage": "reasoning_flywheel", "name": "reasoning", "rounds": 3, "problems_per_round": 6, "k": 2,
         "grow_per_round": 3, "max_new_tokens": 12, "teacher": "builtin:paraphrase", "solver": "builtin:parser",
         "consistency_k": 2, "sft": {"max_steps": 2, "batch_size": 6, "learning_rate": 0.01},
         "grpo": {"max_steps": 1, "batch_size": 4, "num_generations": 2, "max_completion_length": 12}}


def _runner(build: Path, run: Path, stage: dict[str, Any]) -> Any:
    from aqwen_spec.documents.pipeline import Pipeline
    from runtime.episodes.bundle import Bundle
    from runtime.pipeline.runner import PipelineRunner

    torch.set_num_threads(1)
    pipeline = Pipeline.model_validate({"kind": "Pipeline", "name": "reasoning", "domain": "workshop", "seed": 0,
                                        "model": {"name": "builtin:tiny-qwen3"}, "stages": [stage]})
    run.mkdir(parents=True, exist_ok=True)
    return PipelineRunner(pipeline, Bundle.load(build / "workshop"), run, progress=False, echo=lambda s: None)


@pytest.fixture(scope="module")
def tiny(workshop: Path) -> str:
    from runtime.episodes.bundle import Bundle
    from runtime.training.models import domain_corpus, resolve_model

    return str(resolve_model("builtin:tiny-qwen3", domain_corpus(Bundle.load(workshop / "workshop"))))


def _run_stage(workshop: Path, run: Path, model: str, stage: dict[str, Any]) -> dict[str, Any]:
    from runtime.pipeline.runner import RunState

    runner = _runner(workshop, run, stage)
    summary = runner.run(RunState(model))
    return summary["stages"][0]


def _reports(run: Path) -> list[dict[str, Any]]:
    folders = sorted((run / "flywheel").glob("reasoning_round_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    return [json.loads((f / "report.json").read_text()) for f in folders]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def flywheel_run(workshop: Path, tiny: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    run = tmp_path_factory.mktemp("run_a")
    return run, _run_stage(workshop, run, tiny, STAGE)


def test_three_rounds_end_to_end(flywheel_run: tuple[Path, dict[str, Any]],
                                workshop_problems: dict[str, ResolvedProblem]) -> None:
    run, result = flywheel_run
    reports = _reports(run)
    assert [r["round"] for r in reports] == [1, 2, 3]
    assert result["rounds"] == 3 and Path(result["checkpoint"]).is_dir()
    for r in reports:
        folder = run / "flywheel" / f"reasoning_round_{r['round']}"
        evaluated = _jsonl(folder / "instances.jsonl")
        assert r["n_instances"] == len(evaluated) == 6
        assert r["n_problems"] == len({i["variant"] for i in evaluated})
        assert 0.0 <= r["pass_rate"] <= 1.0
        assert sum(r["statuses"].values()) == 6 * 2 and r["malformed"] <= 12
        assert sum(r["buckets"].values()) == 6
        assert {"knobs", "parts_per_question", "personas", "mean_knob_level"} <= set(r["difficulty"])
        assert sum(r["difficulty"]["parts_per_question"].values()) == 6
        # SFT trains on the all-fail instances' computed solutions
        assert r["training"]["sft"]["examples"] == r["buckets"].get("sft", 0)
        assert r["training"]["sft"]["trained"] == bool(r["buckets"].get("sft"))
        assert r["rewrites"]["tried"] == 6 and r["rewrites"]["kept"] + r["rewrites"]["dropped"] == 6
        # lineage: every new problem names its parent problem, the failed instance it grew from and the operator
        ids = {i["id"]: i for i in evaluated}
        assert [entry["problem"] for entry in r["lineage"]] == r["added"]
        assert len(r["added"]) <= 3
        for entry in r["lineage"]:
            assert entry["operator"] in ("harder", "compose", "persona")
            assert entry["parent_instance"] in ids
            assert ids[entry["parent_instance"]]["variant"] == entry["parent"]
            assert ids[entry["parent_instance"]]["pass_rate"] < 1.0
        new = _jsonl(folder / "new_instances.jsonl")
        assert {i["variant"] for i in new} <= set(r["added"])
        assert all(recompute(i, workshop_problems) == i["answer"] for i in new)  # computed, never a model's
    assert sum(len(r["added"]) for r in reports) > 0
    assert result["problems_made"] == 3 + sum(len(r["added"]) for r in reports)
    # the next round evaluates what the round before drew
    for before, after in itertools.pairwise(reports):
        drawn = _jsonl(run / "flywheel" / f"reasoning_round_{before['round']}" / "next_instances.jsonl")
        evaluated = _jsonl(run / "flywheel" / f"reasoning_round_{after['round']}" / "instances.jsonl")
        assert [i["id"] for i in drawn] == [i["id"] for i in evaluated]


def test_new_problems_are_harder_or_more_varied(flywheel_run: tuple[Path, dict[str, Any]],
                                                workshop_problems: dict[str, ResolvedProblem]) -> None:
    run, _ = flywheel_run
    state = json.loads((run / "flywheel" / "reasoning_state.json").read_text())
    variants = state["population"]["variants"]
    grown = [v for v in variants.values() if v["operator"] != "seed"]
    assert grown
    for v in grown:
        parent = variants[v["parent"]]
        if v["operator"] == "harder":
            up = [n for n in workshop_problems[v["problem"]].knobs if v["knobs"][n] > parent["knobs"][n]]
            inner_up = v["compose"] and v["compose"]["knobs"] != parent["compose"]["knobs"]
            assert up or inner_up, v["id"]
        elif v["operator"] == "compose":
            assert v["compose"] and not parent["compose"]
        else:
            assert v["persona"] == "foreman" and not parent["persona"]


@pytest.fixture(scope="module")
def workshop_problems(workshop: Path) -> dict[str, ResolvedProblem]:
    from compiler.reader import read_bundle

    files = read_bundle(workshop / "workshop")
    return {n: problem_from_json(d) for n, d in files.problem_defs.items()}


def test_a_round_is_identical_for_a_fixed_seed_and_model(flywheel_run: tuple[Path, dict[str, Any]], workshop: Path,
                                                         tiny: str, tmp_path: Path) -> None:
    run_a, _ = flywheel_run
    run_b = tmp_path / "run_b"
    _run_stage(workshop, run_b, tiny, STAGE)
    for a, b in zip(_reports(run_a), _reports(run_b), strict=True):
        a.pop("timings")
        b.pop("timings")
        assert a == b
    for name in ("instances.jsonl", "next_instances.jsonl"):
        assert (run_a / "flywheel" / "reasoning_round_3" / name).read_text() == \
            (run_b / "flywheel" / "reasoning_round_3" / name).read_text()


def test_in_band_instances_train_with_grpo_and_solved_problems_retire(
        workshop_problems: dict[str, ResolvedProblem], tiny: str, tmp_path: Path) -> None:
    """A scripted solver gets parity always right, total half the time and bins never: GRPO, retirement, SFT."""
    from aqwen_spec.documents.pipeline import ReasoningFlywheelStage
    from runtime.reasoning.flywheel import ReasoningFlywheel
    from runtime.reasoning.training import run_problem_grpo, run_problem_sft

    stage = ReasoningFlywheelStage.model_validate({**STAGE, "k": 2, "teacher": None})
    fly = ReasoningFlywheel(workshop_problems, {}, stage, seed=0, folder=tmp_path / "flywheel", relative_to=tmp_path)
    instances, _ = fly.prepare(1, None, None)

    class ByProblem:
        def solve(self, items: list[dict[str, Any]], k: int) -> list[list[str]]:
            out = []
            for item in items:
                right, wrong = f"Answer: {item['answer']}", "Answer: -7"
                out.append({"parity": [right] * k, "total": [right, wrong] * (k // 2)}.get(item["problem"],
                                                                                         ["garbage"] * k))
            return out

    trained: list[tuple[str, int]] = []

    def train(kind: str, model: str, items: list[dict[str, Any]], out: Path) -> Path:
        trained.append((kind, len(items)))
        run = run_problem_sft if kind == "sft" else run_problem_grpo
        options = stage.sft if kind == "sft" else stage.grpo
        return run(model, items, out, options, lambda row: None, seed=0).checkpoint

    model, _, report = fly.run_round(1, instances, tiny, lambda path: ByProblem(), train)
    by_problem = {p: [i for i in instances if i["problem"] == p] for p in ("parity", "total", "bins")}
    assert report["buckets"] == {"grpo": len(by_problem["total"]), "sft": len(by_problem["bins"]),
                                 "solved": len(by_problem["parity"])}
    assert trained == [("sft", len(by_problem["bins"])), ("grpo", len(by_problem["total"]))]
    assert report["training"]["grpo"]["trained"] and Path(model).is_dir() and model.endswith("grpo/model")
    assert report["retired"] == ["parity"] and "parity" not in fly.population.active
    assert {e["parent"] for e in report["lineage"]} <= {"total", "bins"}
    assert report["pass_rate"] == pytest.approx((len(by_problem["parity"]) + 0.5 * len(by_problem["total"])) / 6,
                                                 abs=1e-4)


def test_resume_continues_after_the_last_round(workshop: Path, tiny: str, tmp_path: Path) -> None:
    quick = {**STAGE, "rounds": 1, "sft": None, "grpo": None, "teacher": None}
    run = tmp_path / "run"
    first = _run_stage(workshop, run, tiny, quick)
    assert "checkpoint" not in first  # nothing trained: the next stage keeps the model
    report_1 = (run / "flywheel" / "reasoning_round_1" / "report.json").read_text()
    runner = _runner(workshop, run, {**quick, "rounds": 2})
    result = runner.run_stage(tiny, runner.pipeline.stages[0], "reasoning", resume=True)
    assert result["per_round"][0]["round"] == 2
    assert (run / "flywheel" / "reasoning_round_1" / "report.json").read_text() == report_1
    fresh = tmp_path / "fresh"
    _run_stage(workshop, fresh, tiny, {**quick, "rounds": 2})
    resumed, straight = _reports(run)[1], _reports(fresh)[1]
    resumed.pop("timings")
    straight.pop("timings")
    assert resumed == straight


def test_pipeline_lint_wants_problems(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    (specs / "plant_maintenance" / "problems.yaml").unlink()
    codes = [d.code for d in check_paths([specs]).diagnostics.errors]
    assert "AQ410" in codes
