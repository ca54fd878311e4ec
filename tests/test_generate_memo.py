"""The generator's memos (tasks per sample and persona, draws by pool item, read outcomes per pooled state) change
nothing it generates: the same tasks, rejections and counts as a generator that memoises nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import compiler.generate as generate_module
from compiler import TaskGenerator, compile_specs
from compiler.expand import _reprs_exactly

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def specs() -> Any:
    return compile_specs(ROOT / "specs").specs


def _stream(generator: TaskGenerator, n: int, seed: int, adversarial: float = 0.0) -> list[str]:
    return [json.dumps(t.data, sort_keys=True) for t in generator.generate(n, seed=seed, adversarial=adversarial)]


def _counts(generator: TaskGenerator) -> str:
    return json.dumps({w: [a.tries, sorted(a.reasons.items())] for w, a in generator.attempts.items()})


class _Forgetful(TaskGenerator):
    """A generator whose per-sample memos are emptied before every draw: every task is built from scratch."""

    def _trim_memos(self) -> None:
        for memo in self._memos:
            memo.clear()
        for reads in self._reads.values():
            reads.clear()
        self._views.clear()
        self._copies.clear()


@pytest.mark.parametrize("adversarial", [0.0, 0.5])
def test_memoised_tasks_are_the_tasks_built_from_scratch(specs: Any, adversarial: float) -> None:
    memo = TaskGenerator(specs, "plant_maintenance", seed=3)
    fresh = _Forgetful(specs, "plant_maintenance", seed=3)
    first = _stream(memo, 600, seed=5, adversarial=adversarial)
    assert len(set(first)) < len(first)  # samples come again: the memos are used
    assert first == _stream(fresh, 600, seed=5, adversarial=adversarial)
    assert _counts(memo) == _counts(fresh)
    # drawn again on the same generator (everything memoised by now): still the same
    assert _stream(memo, 600, seed=5, adversarial=adversarial) == first


def test_memos_are_emptied_together_when_one_is_full(specs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate_module, "CACHE_SIZE", 7)
    small = TaskGenerator(specs, "plant_maintenance", seed=1)
    tasks = _stream(small, 300, seed=2)
    assert all(len(memo) <= 7 for memo in small._memos)  # emptied at the draw after one filled up
    assert tasks == _stream(TaskGenerator(specs, "plant_maintenance", seed=1), 300, seed=2)


def test_a_task_drawn_again_is_a_dict_of_its_own(specs: Any) -> None:
    generator = TaskGenerator(specs, "plant_maintenance", seed=0)
    tasks = generator.generate(400, seed=0)
    seen: dict[str, dict[str, Any]] = {}
    for task in tasks:
        first = seen.setdefault(task.id, task.data)
        assert task.data == first
        if task.data is not first:
            task.data["lineage"] = "added by a caller"
            assert "lineage" not in first
    assert len(seen) < len(tasks)


def test_slots_copied_once_give_the_json_of_the_whole(specs: Any) -> None:
    """The slots' JSON put together from each value's (cached) JSON is the JSON of the slots dict."""
    generator = TaskGenerator(specs, "plant_maintenance", seed=0)
    record = {"id": "WO-1", "tags": ["é", "\u2603"], "cost": 2.5, "z": {"b": None, "a": True}}
    drawn = {"zeta": record, "alpha": 3, "Mid": "x\"y", "b_2": [record, 1.0], "n": None, "f": 1e-9, "t": True,
             "o": 1, "u": 1.0, "s": (1, 2)}  # True, 1 and 1.0 are equal keys of a dict: their JSON is not
    for _ in range(2):  # the second time from the copies made the first
        slots, text = generator._copy_slots(drawn)
        assert text == generate_module._slots_json(slots) == generate_module._slots_json(drawn)
        assert slots == drawn and slots["zeta"] is not record
        assert '"o":1,' in text and '"t":true,' in text and '"u":1.0,' in text
    assert generator._copy_slots({}) == ({}, "{}")


@pytest.mark.parametrize(
    ("value", "exact"),
    [("a", True), (1, True), (1.0, True), (True, True), (None, True), ([1, "1", {"a": [2.5]}], True),
     ({"k": {"j": None}}, True), ((1, 2), False), ({1: "x"}, True), ({(1,): "x"}, False), (object(), False)],
)
def test_repr_keys_only_for_builtin_json_like_values(value: Any, exact: bool) -> None:
    assert _reprs_exactly(value) is exact


@pytest.mark.parametrize("adversarial", [0.0, 0.5])
def test_draws_leave_no_reference_cycles(specs: Any, adversarial: float) -> None:
    """generate() pauses the cyclic collector while it draws (collecting every 500 draws): sound because draws
    (fresh samples, repeats, rejections, uncovered cases) free what they drop by reference counting; the plant
    specs' draws make no cycles at all."""
    import gc

    generator = TaskGenerator(specs, "plant_maintenance", seed=0)
    gc.collect()
    gc.disable()
    try:
        generator.generate(20, seed=3)  # the pooled states, plans and compiled expressions: built to stay
        gc.collect()
        tasks = generator.generate(600, seed=4, adversarial=adversarial)
        assert len(tasks) == 600
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("enabled", [True, False])
def test_generate_restores_the_collector(specs: Any, enabled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    monkeypatch.setattr(generate_module, "_YOUNG_EVERY", 7)  # the periodic collections run too
    monkeypatch.setattr(generate_module, "_FULL_EVERY", 14)
    seen: list[bool] = []
    real = generate_module.TaskGenerator._draw

    def draw(self: TaskGenerator, *args: Any) -> Any:
        seen.append(gc.isenabled())
        return real(self, *args)

    monkeypatch.setattr(generate_module.TaskGenerator, "_draw", draw)
    (gc.enable if enabled else gc.disable)()
    try:
        assert len(TaskGenerator(specs, "plant_maintenance", seed=1).generate(30, seed=2)) == 30
        assert gc.isenabled() is enabled
        assert seen and not any(seen)
    finally:
        gc.enable()


def test_the_quick_constructors_make_what_the_dataclasses_make() -> None:
    """``GoldRun.start()`` and ``Sample``'s own ``__init__`` (made per distinct sample and per draw) give what the
    dataclass machinery gives: the same fields, equal, fresh containers, still frozen."""
    import dataclasses

    from compiler.expand import GoldRun

    fresh, made = GoldRun.start(), GoldRun()
    assert fresh == made
    assert all(getattr(fresh, f.name) is not getattr(GoldRun.start(), f.name)
               for f in dataclasses.fields(GoldRun) if isinstance(getattr(fresh, f.name), (list, dict)))
    sample = generate_module.Sample(3, {"a": 1}, "s", "why")
    assert (sample.state_seed, sample.slots, sample.scenario, sample.reason) == (3, {"a": 1}, "s", "why")
    assert generate_module.Sample(3, {}) == generate_module.Sample(3, {}, None, "")
    assert dataclasses.replace(sample, reason="") == generate_module.Sample(3, {"a": 1}, "s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.reason = "changed"  # type: ignore[misc]


def test_only_a_last_slot_of_literals_is_drawn_without_an_env(specs: Any) -> None:
    """``randint(1, 4)`` as the last slot reads no name and shares no budget: drawn in a bare env; a pool, a call
    on a name, or a slot with another after it keeps the env."""
    from dataclasses import replace

    from aqwen_spec.expr import parse_expr

    workflow = specs.workflows["reserve_spare_part"]
    assert list(workflow.slots)[-1] == "qty"
    closed = generate_module._closed_last
    assert closed(workflow, "qty", workflow.slots["qty"])
    assert not closed(workflow, "part", workflow.slots["part"])
    assert not closed(workflow, "qty", parse_expr("randint(1, part.stock)"))
    reordered = replace(workflow, slots={"qty": workflow.slots["qty"], "wo": workflow.slots["wo"]})
    assert not closed(reordered, "qty", workflow.slots["qty"])


@pytest.mark.parametrize("text", ["1 / 0", "x.missing", "x.n + 1", "len(x)", "[1, 2][5]", "x.n * 2", "x.n", "y.n",
                                  "z.n", "s.n", "w.n", "x.m.k"])
def test_a_compiled_argument_reads_and_fails_as_the_frame_evaluates(text: str) -> None:
    """A gold run's argument evaluates its expression as ``Frame.evaluate`` does (inlined there, and read directly
    for ``name.field`` of a record): the same value, or the same message in the rejection."""
    from aqwen_spec.diagnostics import Pos
    from aqwen_spec.expr import EvalError, parse_expr
    from aqwen_spec.expr.evaluator import StateEnv
    from aqwen_spec.semantics.frame import Frame
    from aqwen_spec.tree import Action, Arg
    from compiler.expand import Rejected, _value

    expr = parse_expr(text)
    action = Action("inform_user", Pos(1, 1), (), args={"value": Arg(text, False, (), expr=expr)})

    names = {"x": {"n": 3, "m": {"k": 1}}, "z": None, "s": "text"}

    class Runner:
        frame = Frame(StateEnv({"w": {"n": 4}}, names), own=True)  # `w` a state field, read through the env

    try:
        expected: Any = Frame(StateEnv({"w": {"n": 4}}, names)).evaluate(expr)
    except EvalError as exc:
        expected = f"inform_user value: {exc.message}"
    try:
        got: Any = _value(action, "value")(Runner())  # type: ignore[arg-type]
    except Rejected as exc:
        got = exc.reason
    assert got == expected
