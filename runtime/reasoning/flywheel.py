"""The reasoning data flywheel: problems that get harder as the model improves.

Each round:

1. the round's instances (drawn from the active problems at the end of the round before) are answered ``k`` times
   by the current model and checked against their computed answers: a pass rate per instance;
2. instances at or below the band's low end (all fail) become SFT data (their computed solutions), instances inside
   the band become GRPO prompts (the checked answer is the reward); the model is trained on them;
3. problems whose instances the model always solves (pass rate at or above the band's high end) are retired;
   instances the model does not always solve spawn new problems, all-fail first, by an operator each: ``harder``
   (a knob turned up), ``compose`` (its answer feeds a parameter of another problem), ``persona`` (asked in a
   persona's words);
4. the next round's instances are drawn, their questions optionally rewritten by a teacher and kept only where a
   solver agrees with the recomputed answer k of k times (:mod:`runtime.reasoning.selfinstruct`).

Every round writes ``RUN/flywheel/reasoning_round_<k>/``: ``report.json``, ``instances.jsonl`` (what was
evaluated, with pass rates), ``new_instances.jsonl`` (instances of the problems added this round) and
``next_instances.jsonl`` (all of the next round's instances). ``RUN/flywheel/reasoning_state.json`` lets ``--resume``
continue after the last finished round.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqwen_spec.resolved import ResolvedPersona, ResolvedProblem
from compiler.problems import (
    DrawError,
    compose_targets,
    default_knobs,
    draw_instance,
    make_variant,
    seed_variant,
    turn_up,
)
from runtime.reasoning.answers import check_answer
from runtime.reasoning.selfinstruct import Teacher, consistency_filter
from runtime.reasoning.solvers import Instance, Solver

Variant = dict[str, Any]


def _hash(*parts: Any) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Evaluated:
    """One instance after ``k`` samples."""

    instance: Instance
    samples: list[dict[str, Any]]  # text, extracted, status

    @property
    def pass_rate(self) -> float:
        return sum(s["status"] == "correct" for s in self.samples) / len(self.samples) if self.samples else 0.0

    def to_json(self, bucket: str) -> dict[str, Any]:
        return {**self.instance, "pass_rate": round(self.pass_rate, 4), "bucket": bucket,
                "statuses": dict(sorted(Counter(s["status"] for s in self.samples).items())), "samples": self.samples}


def evaluate(solver: Solver, instances: list[Instance], k: int) -> list[Evaluated]:
    """Answer every instance ``k`` times and check each answer; malformed output is counted, never raised."""
    outputs = solver.solve(instances, k) if instances else []
    out = []
    for inst, texts in zip(instances, outputs, strict=True):
        samples = []
        for text in texts:
            verdict = check_answer(text, inst["answer"], inst["check"], inst.get("tolerance"))
            samples.append({"text": text, "extracted": verdict.extracted, "status": verdict.status})
        out.append(Evaluated(inst, samples))
    return out


def difficulty(instances: list[Instance], problems: dict[str, ResolvedProblem]) -> dict[str, Any]:
    """Knob histogram (``knob -> setting -> instances``; a composed instance counts both parts' knobs), parts per
    question (2: composed), personas, and the mean knob level (0: every knob at its minimum, 1: at its maximum)."""
    knobs: dict[str, Counter[str]] = {}
    levels: list[float] = []

    def count(problem: str, settings: dict[str, Any]) -> None:
        spec = problems.get(problem)
        for name, value in settings.items():
            knobs.setdefault(name, Counter())[json.dumps(value)] += 1
            knob = spec.knobs.get(name) if spec else None
            if knob is not None and knob.max > knob.min:
                levels.append((value - knob.min) / (knob.max - knob.min))

    for inst in instances:
        count(inst["problem"], inst["knobs"])
        if inst.get("compose"):
            count(inst["compose"]["problem"], inst["compose"]["knobs"])
    return {
        "knobs": {n: dict(sorted(c.items(), key=lambda kv: float(kv[0]))) for n, c in sorted(knobs.items())},
        "parts_per_question": dict(sorted(Counter(str(2 if i.get("compose") else 1) for i in instances).items())),
        "personas": dict(sorted(Counter(i.get("persona") or "none" for i in instances).items())),
        "mean_knob_level": round(sum(levels) / len(levels), 4) if levels else 0.0,
    }


@dataclass
class Population:
    """Every problem variant ever made (in order), which are active, which retired, which are new."""

    variants: dict[str, Variant] = field(default_factory=dict)
    active: list[str] = field(default_factory=list)
    retired: dict[str, str] = field(default_factory=dict)  # id -> why
    fresh: list[str] = field(default_factory=list)  # added in the last round

    def add(self, variant: Variant) -> None:
        self.variants[variant["id"]] = variant
        self.active.append(variant["id"])

    def retire(self, vid: str, why: str) -> None:
        if vid in self.active:
            self.active.remove(vid)
            self.retired[vid] = why

    def to_json(self) -> dict[str, Any]:
        return {"variants": self.variants, "active": self.active, "retired": self.retired, "fresh": self.fresh}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Population:
        return cls(dict(d["variants"]), list(d["active"]), dict(d["retired"]), list(d["fresh"]))


Trainer = Callable[[str, str, list[Instance], Path], Path]
"""(kind 'sft' or 'grpo', model path, instances, output folder) -> the trained model's folder."""


class ReasoningFlywheel:
    def __init__(self, problems: dict[str, ResolvedProblem], personas: dict[str, ResolvedPersona], stage: Any,
                 seed: int, folder: Path, start: list[str] | None = None,
                 metric: Callable[[dict[str, Any]], None] | None = None, relative_to: Path | None = None) -> None:
        self.problems = problems
        self.pool = sorted(start or problems)  # the problems this flywheel starts from and composes with
        self.personas = dict(sorted(personas.items()))
        self.stage = stage
        self.seed = seed
        self.folder = folder
        self.metric = metric or (lambda row: None)
        self.relative_to = relative_to
        self.population = Population()
        for name in self.pool:
            self.population.add(seed_variant(problems[name]))
        self.population.fresh = list(self.population.active)

    # --- drawing ------------------------------------------------------------------------------------------------

    def _rel(self, path: Path | str) -> str:
        if self.relative_to is not None:
            try:
                return Path(path).resolve().relative_to(self.relative_to.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    def allocate(self, round_no: int) -> list[tuple[str, int]]:
        """(variant, draw index) for each of the round's instances: new problems first, then the others in turn."""
        fresh = [v for v in self.population.active if v in self.population.fresh]
        rest = [v for v in self.population.active if v not in self.population.fresh]
        if rest:
            shift = round_no % len(rest)
            rest = rest[shift:] + rest[:shift]
        order = fresh + rest
        slots: list[tuple[str, int]] = []
        drawn: Counter[str] = Counter()
        while order and len(slots) < self.stage.problems_per_round:
            for vid in order:
                if len(slots) == self.stage.problems_per_round:
                    break
                slots.append((vid, drawn[vid]))
                drawn[vid] += 1
        return slots

    def draw_round(self, round_no: int) -> list[Instance]:
        instances: list[Instance] = []
        seen: set[str] = set()
        for vid, j in self.allocate(round_no):
            if vid not in self.population.active:
                continue
            try:
                inst = draw_instance(self.population.variants[vid], self.problems, self.personas,
                                     seed=_hash(self.seed, round_no, vid, j))
            except DrawError as exc:
                self.population.retire(vid, f"cannot be drawn: {exc}")
                continue
            if inst["id"] not in seen:
                seen.add(inst["id"])
                instances.append({**inst, "round": round_no})
        return instances

    # --- growing ------------------------------------------------------------------------------------------------

    def _valid(self, child: Variant, round_no: int) -> bool:
        """A new variant that can be drawn."""
        if child["id"] in self.population.variants:
            return False
        try:
            draw_instance(child, self.problems, self.personas, seed=_hash(self.seed, round_no, child["id"], "check"))
        except DrawError:
            return False
        return True

    # each operator yields its candidate children in order of preference; the first valid one is taken

    def _harder(self, v: Variant, parent: dict[str, Any], round_no: int) -> Iterator[Variant]:
        problem = self.problems[v["problem"]]
        turned = turn_up(problem, v["knobs"], self.stage.knob_step, start=round_no)
        compose = v.get("compose")
        if turned is None and compose:
            inner = self.problems[compose["problem"]]
            inner_turned = turn_up(inner, compose["knobs"], self.stage.knob_step, start=round_no)
            if inner_turned is None:
                return
            compose = {**compose, "knobs": {**compose["knobs"], inner_turned[0]: inner_turned[1]}}
            knobs = v["knobs"]
        elif turned is None:
            return
        else:
            knobs = {**v["knobs"], turned[0]: turned[1]}
        yield make_variant(problem, knobs, persona=v.get("persona"), compose=compose, **parent)

    def _compose(self, v: Variant, parent: dict[str, Any], round_no: int) -> Iterator[Variant]:
        """Two parts: the failed problem's answer feeds a parameter of another problem or, when it cannot, another
        problem's answer feeds one of the failed problem's parameters."""
        if v.get("compose"):
            return
        failed = self.problems[v["problem"]]
        partners = [n for n in self.pool if n != failed.name]
        if not partners:
            return
        shift = _hash(v["id"], round_no) % len(partners)
        partners = partners[shift:] + partners[:shift]
        pairs: list[tuple[ResolvedProblem, dict[str, Any] | None, ResolvedProblem, dict[str, Any] | None]]
        pairs = [(failed, dict(v["knobs"]), self.problems[n], None) for n in partners]
        pairs += [(self.problems[n], None, failed, dict(v["knobs"])) for n in partners]
        for first, first_knobs, second, second_knobs in pairs:
            for into in compose_targets(first, second):
                compose = {"problem": first.name, "knobs": first_knobs or default_knobs(first), "into": into}
                yield make_variant(second, second_knobs or default_knobs(second), persona=v.get("persona"),
                                   compose=compose, **parent)

    def _persona(self, v: Variant, parent: dict[str, Any], round_no: int) -> Iterator[Variant]:
        if v.get("persona") or not self.personas:
            return
        names = list(self.personas)
        name = names[_hash(v["id"], round_no) % len(names)]
        yield make_variant(self.problems[v["problem"]], v["knobs"], persona=name, compose=v.get("compose"), **parent)

    def grow(self, evaluated: list[Evaluated], round_no: int) -> list[dict[str, Any]]:
        """New problems from the instances the model does not always solve; returns their lineage."""
        high = self.stage.band[1]
        failed = sorted((e for e in evaluated if e.pass_rate < high),  # all-fail first, problems mixed
                        key=lambda e: (e.pass_rate, _hash(self.seed, round_no, e.instance["id"])))
        operators = list(self.stage.operators)
        lineage: list[dict[str, Any]] = []
        turn = round_no - 1  # each round starts with the next operator
        apply = {"harder": self._harder, "compose": self._compose, "persona": self._persona}
        for e in failed:
            if len(lineage) >= self.stage.grow_per_round or not operators:
                break
            v = self.population.variants[e.instance["variant"]]
            parent = {"parent": v["id"], "parent_instance": e.instance["id"], "round": round_no}
            for t in range(len(operators)):
                op = operators[(turn + t) % len(operators)]
                candidates = apply[op](v, {**parent, "operator": op}, round_no)
                child = next((c for c in candidates if self._valid(c, round_no)), None)
                if child is not None:
                    self.population.add(child)
                    lineage.append({"problem": child["id"], "base": child["problem"], "operator": op,
                                    "parent": v["id"], "parent_instance": e.instance["id"],
                                    "parent_pass_rate": round_(e.pass_rate), "knobs": child["knobs"],
                                    "persona": child["persona"], "compose": child["compose"]})
                    turn += 1
                    break
        return lineage

    # --- the loop -----------------------------------------------------------------------------------------------

    def prepare(self, round_no: int, teacher: Teacher | None, solver: Callable[[], Solver] | None
                ) -> tuple[list[Instance], dict[str, Any] | None]:
        """The round's instances, rewritten by the teacher where the consistency filter agrees."""
        instances = self.draw_round(round_no)
        if teacher is None or solver is None:
            return instances, None
        instances, stats = consistency_filter(instances, teacher, solver(), self.stage.consistency_k, self.problems)
        return instances, stats.to_json()

    def run_round(self, round_no: int, instances: list[Instance], model_path: str, make_solver: Callable[[str], Solver],
                  train: Trainer, teacher: Teacher | None = None,
                  consistency_solver: Callable[[str], Solver] | None = None,
                  rewrites: dict[str, Any] | None = None) -> tuple[str, list[Instance], dict[str, Any]]:
        """Evaluate, train, grow, retire, draw the next round; returns (model, next instances, report)."""
        stage = self.stage
        low, high = stage.band
        timings: dict[str, float] = {}
        start = time.perf_counter()
        evaluated = evaluate(make_solver(model_path), instances, stage.k)
        timings["evaluate_s"] = round_(time.perf_counter() - start, 2)

        def bucket(e: Evaluated) -> str:
            return "sft" if e.pass_rate <= low else "solved" if e.pass_rate >= high else "grpo"

        buckets = {e.instance["id"]: bucket(e) for e in evaluated}
        per_variant: dict[str, list[Evaluated]] = {}
        for e in evaluated:
            per_variant.setdefault(e.instance["variant"], []).append(e)
        evaluated_variants = sorted(per_variant)

        folder = self.folder / f"reasoning_round_{round_no}"
        folder.mkdir(parents=True, exist_ok=True)
        training: dict[str, Any] = {}
        model = model_path
        for kind, options in (("sft", stage.sft), ("grpo", stage.grpo)):
            items = [e.instance for e in evaluated if buckets[e.instance["id"]] == kind]
            if options is None or not items:
                training[kind] = {"examples": len(items), "trained": False}
                continue
            start = time.perf_counter()
            model = str(train(kind, model, items, folder / kind))
            timings[f"{kind}_s"] = round_(time.perf_counter() - start, 2)
            training[kind] = {"examples": len(items), "trained": True, "checkpoint": self._rel(model)}

        retired = []
        for vid in evaluated_variants:
            if all(buckets[e.instance["id"]] == "solved" for e in per_variant[vid]):
                self.population.retire(vid, f"always solved in round {round_no}")
                retired.append(vid)
        lineage = self.grow(evaluated, round_no)
        added = [entry["problem"] for entry in lineage]
        added_ids = set(added)
        self.population.fresh = list(added)

        start = time.perf_counter()
        solver_factory = (lambda: consistency_solver(model)) if consistency_solver is not None else None
        next_instances, next_rewrites = self.prepare(round_no + 1, teacher, solver_factory)
        timings["draw_s"] = round_(time.perf_counter() - start, 2)

        statuses = Counter(s["status"] for e in evaluated for s in e.samples)
        n_samples = sum(statuses.values())
        malformed = statuses["no_answer"] + statuses["unparseable"]
        variants = self.population.variants
        report = {
            "round": round_no,
            "n_problems": len(evaluated_variants),
            "n_instances": len(evaluated),
            "k": stage.k,
            "pass_rate": round_(sum(e.pass_rate for e in evaluated) / len(evaluated)) if evaluated else 0.0,
            "malformed": malformed,
            "malformed_rate": round_(malformed / n_samples) if n_samples else 0.0,
            "statuses": dict(sorted(statuses.items())),
            "buckets": dict(sorted(Counter(buckets.values()).items())),
            "difficulty": difficulty([e.instance for e in evaluated], self.problems),
            "per_problem": {vid: {"problem": variants[vid]["problem"],
                                  "knobs": variants[vid]["knobs"],
                                  "persona": variants[vid]["persona"],
                                  "composed_with": (variants[vid]["compose"] or {}).get("problem"),
                                  "instances": len(per_variant[vid]),
                                  "pass_rate": round_(sum(e.pass_rate for e in per_variant[vid])
                                                      / len(per_variant[vid]))}
                            for vid in evaluated_variants},
            "added": added,
            "retired": retired,
            "lineage": lineage,
            "active_problems": len(self.population.active),
            "rewrites": rewrites,
            "training": training,
            "model": self._rel(model_path),
            "next": {"n_instances": len(next_instances), "rewrites": next_rewrites,
                     "difficulty": difficulty(next_instances, self.problems)},
            "timings": timings,
        }
        _write_jsonl(folder / "instances.jsonl", [e.to_json(buckets[e.instance["id"]]) for e in evaluated])
        _write_jsonl(folder / "new_instances.jsonl", [i for i in next_instances if i["variant"] in added_ids])
        _write_jsonl(folder / "next_instances.jsonl", next_instances)
        (folder / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
        return model, next_instances, report


def round_(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


# --- the pipeline stage ---------------------------------------------------------------------------------------------


def _teacher(spec: str | None) -> Teacher | None:
    if spec is None:
        return None
    from runtime.reasoning.selfinstruct import ModelTeacher, ParaphraseTeacher

    if spec == "builtin:paraphrase":
        return ParaphraseTeacher()
    from runtime.training.models import load, resolve_model

    model, tokenizer = load(resolve_model(spec))
    return ModelTeacher(model, tokenizer)


def run_reasoning_stage(runner: Any, model_path: str, stage: Any, name: str, resume: bool) -> dict[str, Any]:
    """The ``reasoning_flywheel`` pipeline stage (``runtime.pipeline.runner.STAGE_RUNNERS``)."""
    from compiler.problems import problem_from_json
    from compiler.reader import read_bundle
    from runtime.reasoning.solvers import ModelSolver, ParsingSolver
    from runtime.reasoning.training import run_problem_grpo, run_problem_sft
    from runtime.training.models import load, resolve_model

    files = read_bundle(runner.bundle.path)
    problems = {n: problem_from_json(d) for n, d in files.problem_defs.items()}
    if not problems:
        raise RuntimeError(f"bundle {runner.bundle.path} has no problems: add kind: Problem documents and recompile")
    missing = [p for p in stage.problems if p not in problems]
    if missing:
        raise RuntimeError(f"problems not in the bundle: {', '.join(missing)}")
    seed = runner.pipeline.seed
    folder = runner.dir / "flywheel"
    state_file = folder / "reasoning_state.json"
    fly = ReasoningFlywheel(problems, runner.bundle.personas, stage, seed, folder, stage.problems or None,
                            metric=lambda row: runner._metric({"stage": name, **row}),
                            relative_to=runner.dir)
    ckpt = runner.dir / "checkpoints" / name

    def make_solver(path: str) -> Solver:
        model, tokenizer = load(path)
        return ModelSolver(model, tokenizer, temperature=stage.temperature, seed=seed,
                           max_new_tokens=stage.max_new_tokens)

    def train(kind: str, path: str, items: list[Instance], out: Path) -> Path:
        target = ckpt / out.parent.name / kind
        target.mkdir(parents=True, exist_ok=True)
        sink = lambda row: runner._metric({"stage": name, "round_part": f"{out.parent.name}/{kind}", **row})  # noqa: E731
        if kind == "sft":
            return run_problem_sft(path, items, target, stage.sft, sink, resume=resume, seed=seed).checkpoint
        return run_problem_grpo(path, items, target, stage.grpo, sink, max_new_tokens=stage.max_new_tokens,
                                resume=resume, seed=seed).checkpoint

    teacher = _teacher(stage.teacher)
    consistency: Callable[[str], Solver] | None = None
    if teacher is not None:
        if stage.solver == "builtin:parser":
            consistency = lambda path: ParsingSolver(problems)  # noqa: E731
        elif stage.solver == "model":
            consistency = make_solver
        else:
            fixed = str(resolve_model(stage.solver))
            consistency = lambda path: make_solver(fixed)  # noqa: E731

    first, model, trained = 1, model_path, False
    if resume and state_file.exists():
        saved = json.loads(state_file.read_text())
        if saved.get("stage") == name:
            first, model, trained = saved["round"] + 1, saved["model"], saved["trained"]
            fly.population = Population.from_json(saved["population"])
            instances = _read_jsonl(folder / f"reasoning_round_{saved['round']}" / "next_instances.jsonl")
            rewrites = saved.get("rewrites")
            runner.echo(f"[{name}] resuming after round {saved['round']}")
    if first == 1:
        instances, rewrites = fly.prepare(1, teacher, (lambda: consistency(model)) if consistency else None)
    summary = []
    for r in range(first, stage.rounds + 1):
        if not instances:
            runner.echo(f"[{name}] round {r}: no problem left to draw (all retired); stopping")
            break
        new_model, instances, report = fly.run_round(r, instances, model, make_solver, train, teacher, consistency,
                                                     rewrites)
        trained = trained or new_model != model
        model = new_model
        rewrites = report["next"]["rewrites"]
        summary.append({k: report[k] for k in ("round", "pass_rate", "n_problems", "n_instances", "malformed")})
        runner.echo(f"[{name}] round {r}: pass rate {report['pass_rate']:.3f} on {report['n_instances']} instances "
                    f"of {report['n_problems']} problems (malformed {report['malformed']}); "
                    f"sft {report['training']['sft']['examples']}, grpo {report['training']['grpo']['examples']}; "
                    f"+{len(report['added'])} problems, -{len(report['retired'])} retired")
        fly.metric({"event": "reasoning_round", "round": r, "pass_rate": report["pass_rate"],
                    "n_instances": report["n_instances"], "malformed": report["malformed"],
                    "added": len(report["added"]), "retired": len(report["retired"])})
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stage": name, "round": r, "model": model, "trained": trained,
                                   "population": fly.population.to_json(), "rewrites": rewrites}, indent=2) + "\n")
        os.replace(tmp, state_file)
    result: dict[str, Any] = {"rounds": first - 1 + len(summary), "active_problems": len(fly.population.active),
                              "retired_problems": len(fly.population.retired),
                              "problems_made": len(fly.population.variants), "per_round": summary}
    if summary:
        result["final_pass_rate"] = summary[-1]["pass_rate"]
    if trained:
        result["checkpoint"] = model
    return result
