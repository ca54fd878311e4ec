"""The agentic data flywheel: evaluate the current model, keep what it fails, grow harder workflows, train; N rounds.

One round (``runs/<name>/flywheel/round_<k>/``; a stage named other than ``flywheel``, ``flywheel-<stage name>/``):

1. compile the working spec tree (``flywheel/specs/``: the pipeline's specs plus every growth kept so far) and draw
   tasks: the tasks carried over from the previous round first (failed, in the band, or newly grown), then fresh
   draws from the generators; no task of a held-out or validation sample (workflow and slots) is drawn;
2. roll out the current model ``k`` times per task and compute pass rates per task, workflow, branch and persona;
3. sort the tasks by pass rate: inside the band (``low < p < high``) they go to GRPO (their groups carry signal),
   at or below ``low`` (all fail) to SFT on their gold trajectories, at or above ``high`` (all pass) they retire;
   a round with no task in the band carries its GRPO steps to the next round that has one, and a band smaller than
   one step's prompts is repeated to fill a step (:func:`grpo_plan`; the report's ``grpo`` says which);
4. grow the workflows the model fails most with the growth operators (:mod:`compiler.growth`), written as YAML under
   ``flywheel/specs/grown/``; a growth is kept only if the grown tree lints, compiles and every task of the new
   workflow has a gold trajectory scoring 1.0 (the compiler's own checks), else it is dropped with the reason;
5. draw tasks from every new workflow (their lineage names the failed task they grew from), train, and write
   ``report.json`` and ``tasks.jsonl``.

Everything is seeded: a round's report is the same for the same seed and the same model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.growth import OPERATORS, Growth, GrowthContext, branch_names, load_raw, yaml_documents
from runtime.pipeline.split import sample_key, side, source_key

Task = dict[str, Any]


class FlywheelError(Exception):
    """A flywheel cannot run (no spec tree to grow, or the working tree stopped compiling)."""


def difficulty_score(task: Task) -> int:
    """One number per task: tree depth + tool calls + extra user turns + 2 if the user is adversarial."""
    d = task.get("difficulty") or {}
    return int(d.get("depth", 0)) + int(d.get("calls", 0)) + max(0, int(d.get("user_turns", 1)) - 1) \
        + 2 * bool(d.get("adversarial"))


def _seed(*parts: Any) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


@dataclass
class RoundData:
    tasks: list[Task]
    pass_rate: dict[str, float]


class Flywheel:
    def __init__(self, runner: Any, stage: Any, name: str) -> None:
        if runner.specs is None:
            raise FlywheelError("a flywheel stage needs the spec tree the bundle came from (aqwen-run --specs)")
        self.runner = runner
        self.stage = stage
        self.name = name
        self.domain = runner.bundle.name
        # a stage named other than "flywheel" gets a folder of its own: two flywheel stages of one pipeline (arms
        # of a comparison) must not overwrite each other's rounds
        self.folder = runner.dir / ("flywheel" if name == "flywheel" else f"flywheel-{name}")
        self.work = self.folder / "specs"
        self.seed = runner.pipeline.seed
        # compile with the bundle's seed: the same initial states as the held-out tasks, which are then excluded
        self.compile_seed = int(runner.bundle.manifest.get("seed", self.seed))
        # the samples of held-out and validation tasks (workflow and slots): a drawn task of one is never trained on
        self.kept_out = {sample_key(t) for t in [*runner.heldout, *runner.validation]}
        # grown workflow -> (the domain's workflow it grew from, that workflow's slots): a grown task whose source
        # sample falls in held-out or validation is never trained on either (runtime/pipeline/grown.py's held-out
        # grown tasks are such tasks)
        self.roots: dict[str, tuple[str, list[str]]] = {}
        self.original = load_raw(runner.specs)

    def trainable(self, task: Task) -> bool:
        """Whether a drawn task may be trained on: neither it nor the sample it was grown from is held out or
        kept for validation."""
        p = self.runner.pipeline
        return sample_key(task) not in self.kept_out and \
            side(source_key(task, self.roots), p.heldout_fraction, p.validation_fraction, p.split_seed) == "train"

    def add_roots(self, grown: list[tuple[str, str]]) -> None:
        """Record (grown workflow, the workflow it grew from) pairs, in the order they were grown."""
        for workflow, source in grown:
            root = self.roots[source][0] if source in self.roots else source
            self.roots[workflow] = (root, list(workflow_slots(self.original, root)))

    # --- the spec tree -----------------------------------------------------------------------------------------

    def _try_compile(self) -> tuple[Any, Any]:
        """(the compiled working tree, None), or (None, the SpecError saying why it does not compile)."""
        from aqwen_spec.diagnostics import SpecError
        from compiler import compile_specs

        try:
            return compile_specs(self.work, seed=self.compile_seed, tasks_per_branch=2), None
        except SpecError as exc:
            return None, exc

    def _compile(self) -> Any:
        project, error = self._try_compile()
        if project is None:
            first = error.diagnostics[0] if error.diagnostics else None
            where = f"{first.path}:{first.pos.line}:{first.pos.col}: {first.code} {first.message}" if first else ""
            raise FlywheelError(f"the grown spec tree does not compile: {where}")
        return project

    def _bundle(self, project: Any, folder: Path) -> Any:
        from compiler import write_bundles
        from runtime.episodes.bundle import Bundle

        if folder.exists():
            shutil.rmtree(folder)
        for path in write_bundles(project, folder):
            if path.name == self.domain:
                return Bundle.load(path)
        raise FlywheelError(f"the grown spec tree has no domain {self.domain}")

    def _try_growths(self, candidates: list[Growth], round_no: int) -> tuple[list[Growth], list[dict[str, Any]], Any]:
        return keep_growths(self.work, candidates, round_no, self._try_compile)

    # --- rounds -------------------------------------------------------------------------------------------------

    def run(self, model_path: str, resume: bool) -> dict[str, Any]:
        if not resume:  # a fresh start: nothing grown by an earlier attempt may leak in
            for old in [self.work, *self.folder.glob("round_*")]:
                shutil.rmtree(old, ignore_errors=True)
        if not self.work.exists():
            shutil.copytree(self.runner.specs, self.work, ignore=shutil.ignore_patterns(".*"))
        carried: list[Task] = []
        rounds = []
        self.carried_steps = 0  # GRPO steps of rounds whose band was empty, spent by the next round that trains
        for k in range(1, self.stage.rounds + 1):
            rdir = self.folder / f"round_{k}"
            report_file = rdir / "report.json"
            if resume and report_file.exists():
                report = json.loads(report_file.read_text())
                model_path = report["model_after"]
                carried = [json.loads(line) for line in (rdir / "carry.jsonl").read_text().splitlines() if line]
                self.carried_steps = int(report.get("grpo", {}).get("carried_steps", 0))
                rounds.append(report)
                self.add_roots([(w["workflow"], w["source_workflow"]) for w in report.get("new_workflows", [])])
                self.runner.echo(f"[{self.name}] round {k} already done")
                continue
            rdir.mkdir(parents=True, exist_ok=True)
            (self.work / "grown" / f"round_{k}.yaml").unlink(missing_ok=True)  # an interrupted try of this round
            report, carried, model_path = self.round(k, model_path, carried, rdir)
            rounds.append(report)
        compute = {key: sum(int(r.get("compute", {}).get(key, 0)) for r in rounds)
                   for key in ("sft_steps", "grpo_steps", "grpo_rollouts", "sorting_rollouts")}
        if self.stage.unspent == "training" and self.carried_steps > 0 and self.stage.grpo is not None:
            model_path, spent = self.spend_unspent(model_path, resume)
            compute["grpo_steps"] += spent
            compute["grpo_rollouts"] += spent * self.stage.grpo.batch_size
            compute["unspent_grpo_steps_on_training"] = spent
        return {
            "checkpoint": model_path,
            "rounds": [{key: r[key] for key in ("round", "n_tasks", "pass_rate", "mean_difficulty", "kept",
                                                 "to_sft", "retired", "new_workflows", "new_tasks")}
                       for r in rounds],
            "compute": compute,
        }

    def spend_unspent(self, model_path: str, resume: bool) -> tuple[str, int]:
        """``unspent: training``: the GRPO steps still carried after the last round, on the pipeline's training
        tasks (``flywheel/unspent/``); the model after and the steps taken."""
        from runtime.training.sft_grpo import run_grpo

        folder = self.folder / "unspent"
        done = folder / "report.json"
        if resume and done.exists():
            report = json.loads(done.read_text())
            return str(report["model_after"]), int(report["steps"])
        assert self.stage.grpo is not None
        steps = self.carried_steps
        self.runner.echo(f"[{self.name}] {steps} GRPO steps the bands left unspent, on the "
                         f"{len(self.runner.train_tasks)} training tasks")
        grpo = self.stage.grpo.model_copy(update={"max_steps": steps})

        def sink(row: dict[str, Any]) -> None:
            self.runner._metric({"stage": self.name, "round": "unspent", **row})

        result = run_grpo(model_path, self.runner.bundle, self.runner.train_tasks, folder / "grpo", grpo,
                          self.runner.config, self.runner.pipeline.budget.max_new_tokens, sink,
                          stats=self.runner.stats, trainer_args=self.runner.trainer_args,
                          seed=self.seed + 1000 * (self.stage.rounds + 1))
        taken = last_step(result.metrics)
        folder.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps({"steps": taken, "model_before": model_path,
                                    "model_after": str(result.checkpoint)}, indent=2) + "\n")
        self.carried_steps = 0
        return str(result.checkpoint), taken

    def draw(self, generator: Any, n: int, round_no: int, exclude: set[str],
             workflows: list[str] | None = None) -> list[Task]:
        if n <= 0:
            return []
        out: list[Task] = []
        for attempt in range(4):
            drawn = generator.generate(n * 2, seed=_seed(self.seed, self.name, round_no, attempt, workflows),
                                       workflows=workflows)
            for task in drawn:
                if task.id in exclude or not self.trainable(task.data):
                    continue
                exclude.add(task.id)
                out.append(task.data)
                if len(out) >= n:
                    return out
        return out

    def round(self, k: int, model_path: str, carried: list[Task], rdir: Path) -> tuple[dict[str, Any], list[Task], str]:
        stage, start = self.stage, time.perf_counter()
        project = self._compile()
        bundle = self._bundle(project, rdir / "build")
        generator = project.domains[self.domain].generator
        seen = {t["id"] for t in carried}
        tasks = carried[: stage.tasks_per_round]
        tasks += self.draw(generator, stage.tasks_per_round - len(tasks), k, seen)
        self.runner.echo(f"[{self.name}] round {k}: {len(tasks)} tasks ({len(carried)} carried), "
                         f"{stage.k} rollouts each")
        pass_rate = self.evaluate(bundle, model_path, tasks, k)

        low, high = stage.band
        to_grpo = [t for t in tasks if low < pass_rate[t["id"]] < high]
        to_sft = [t for t in tasks if pass_rate[t["id"]] <= low]
        retired = [t for t in tasks if pass_rate[t["id"]] >= high]

        growths, rejected, grown = self.grow(k, project, tasks, pass_rate)
        self.add_roots([(g.workflow, g.source) for g in growths])
        lineage: list[dict[str, Any]] = []
        new_tasks: list[Task] = []
        if grown is not None:
            generator = grown.domains[self.domain].generator
            per = max(1, stage.tasks_per_round // (2 * len(growths)))
            for g in growths:
                for task in self.draw(generator, per, k, seen, workflows=[g.workflow]):
                    task["lineage"] = {"grown_from": g.failed_task, "operator": g.operator,
                                       "source_workflow": g.source, "round": k}
                    new_tasks.append(task)
                    lineage.append({"task": task["id"], "workflow": g.workflow, **task["lineage"]})

        model_before = model_path
        plan = grpo_plan(to_grpo, stage.grpo, self.carried_steps, stage.band) if stage.grpo is not None else None
        if plan is not None:
            self.carried_steps = plan.carried_steps
            self.runner.echo(f"[{self.name}] round {k}: {plan.note}")
        model_path, compute = self.train(k, model_path, bundle, to_sft, plan, rdir)
        compute["sorting_rollouts"] = len(tasks) * stage.k

        by = _groups(tasks, pass_rate)
        difficulties = [difficulty_score(t) for t in tasks]
        new_branches = [f"{g.workflow}:{b}" for g in growths for b in g.new_branches]
        report = {
            "round": k,
            "n_tasks": len(tasks),
            "k": stage.k,
            "pass_rate": round(sum(pass_rate.values()) / len(tasks), 4) if tasks else 0.0,
            "mean_difficulty": round(sum(difficulties) / len(difficulties), 3) if difficulties else 0.0,
            "difficulty_histogram": {str(d): c for d, c in sorted(Counter(difficulties).items())},
            "kept": len(to_grpo),
            "grpo": plan.to_json() if plan is not None else None,
            "to_sft": len(to_sft),
            "retired": len(retired),
            "retired_tasks": sorted(t["id"] for t in retired),
            "by_workflow": by["workflow"],
            "by_branch": by["branch"],
            "by_persona": by["persona"],
            "new_workflows": [{"workflow": g.workflow, "operator": g.operator, "source_workflow": g.source,
                               "grown_from": g.failed_task, "note": g.note} for g in growths],
            "new_branches": new_branches,
            "rejected_growths": rejected,
            "new_tasks": len(new_tasks),
            "lineage": lineage,
            "compute": compute,
            "model_before": model_before,
            "model_after": model_path,
            "seconds": round(time.perf_counter() - start, 1),
        }
        with (rdir / "tasks.jsonl").open("w", encoding="utf-8") as f:
            for t in tasks:
                f.write(json.dumps({"id": t["id"], "workflow": t["workflow"], "branch": t["branch"],
                                    "persona": t["persona"], "pass_rate": pass_rate[t["id"]],
                                    "difficulty": difficulty_score(t), "lineage": t.get("lineage")}) + "\n")
        # next round: the new tasks first, then the in-band ones (the all-fail ones were just trained on their gold);
        # at most half a round, so fresh draws keep measuring the generators as they grow
        in_band = sorted(to_grpo, key=lambda t: (pass_rate[t["id"]], t["id"]))
        carry = (new_tasks + in_band)[: max(1, stage.tasks_per_round // 2)]
        with (rdir / "carry.jsonl").open("w", encoding="utf-8") as f:
            for t in carry:
                f.write(json.dumps(t) + "\n")
        (rdir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        self.runner._metric({"stage": self.name, "event": "flywheel_round", "round": k,
                             "pass_rate": report["pass_rate"], "mean_difficulty": report["mean_difficulty"],
                             "n_tasks": len(tasks), "new_workflows": len(growths), "retired": len(retired)})
        self.runner.echo(f"[{self.name}] round {k}: pass rate {report['pass_rate']:.3f}, {len(to_grpo)} in band, "
                         f"{len(to_sft)} all-fail, {len(retired)} retired, {len(growths)} workflows grown "
                         f"({len(rejected)} growths rejected), {len(new_tasks)} new tasks")
        return report, carry, model_path

    def evaluate(self, bundle: Any, model_path: str, tasks: list[Task], k: int) -> dict[str, float]:
        """Pass rate per task over ``stage.k`` rollouts of the current model (transformers, on the round's bundle)."""
        report = self.runner.play(model_path, tasks, self.stage.k, self.stage.temperature, name=f"round_{k}",
                                  backend="hf", bundle=bundle, seed=_seed(self.seed, "eval", k))
        wins: dict[str, int] = defaultdict(int)
        for trial in report.trials:
            wins[trial.task["id"]] += int(trial.result.success)
        return {t["id"]: wins[t["id"]] / self.stage.k for t in tasks}

    def grow(self, k: int, project: Any, tasks: list[Task],
             pass_rate: dict[str, float]) -> tuple[list[Growth], list[Any], Any]:
        """Grow the workflows with the lowest pass rates, rotating through the operators; keep what compiles.
        ``project`` is the round's compiled tree; the result's is the grown one (None: nothing grown)."""
        stage = self.stage
        worst: dict[str, tuple[float, str]] = {}
        for t in sorted(tasks, key=lambda t: t["id"]):
            p = pass_rate[t["id"]]
            if p < 1.0 and (t["workflow"] not in worst or p < worst[t["workflow"]][0]):
                worst[t["workflow"]] = (p, t["id"])
        order = sorted(worst, key=lambda w: (worst[w][0], w))[: stage.grow_per_round]
        if not order or not stage.grow:
            return [], [], None
        ctx = GrowthContext(project.specs, load_raw(self.work), k)
        candidates: list[Growth] = []
        ops = list(stage.grow)
        for i, workflow in enumerate(order):
            for j in range(len(ops)):
                op = ops[(i + k + j) % len(ops)]
                growth = OPERATORS[op](ctx, workflow)
                if growth is not None:
                    growth.failed_task = worst[workflow][1]
                    before = branch_names(ctx.raw[("Workflow", workflow)].data.get("tree"))
                    after = {b for d in growth.documents if d.get("kind") == "Workflow"
                             for b in branch_names(d.get("tree"))}
                    growth.new_branches = sorted(after - before)
                    candidates.append(growth)
                    break
        return self._try_growths(candidates, k)

    def train(self, k: int, model_path: str, bundle: Any, to_sft: list[Task], plan: GRPOPlan | None,
              rdir: Path) -> tuple[str, dict[str, int]]:
        """Train on the round's tasks; the model after, and the optimizer steps and training rollouts spent."""
        from runtime.training.sft_grpo import run_grpo, run_sft

        def sink(row: dict[str, Any]) -> None:
            self.runner._metric({"stage": self.name, "round": k, **row})

        config = self.runner.config
        compute = {"sft_steps": 0, "grpo_steps": 0, "grpo_rollouts": 0}
        if self.stage.sft is not None and to_sft:
            pool = sorted(self.runner.train_tasks, key=lambda t: _seed(self.seed, k, t["id"]))
            replay = pool[: self.stage.replay]
            self.runner.echo(f"[{self.name}] round {k}: SFT on the gold of {len(to_sft)} all-fail tasks "
                             f"and {len(replay)} replayed training tasks")
            result = run_sft(model_path, bundle, to_sft + replay, rdir / "sft", self.stage.sft, config, sink,
                             trainer_args=self.runner.trainer_args, seed=self.seed + 1000 * k)
            model_path = str(result.checkpoint)
            compute["sft_steps"] = last_step(result.metrics)
        if self.stage.grpo is not None and plan is not None and plan.steps > 0:
            prompts = len(plan.tasks)
            self.runner.echo(f"[{self.name}] round {k}: GRPO training, {plan.steps} steps on {prompts} "
                             f"prompt{'s' * (prompts > 1)}")
            grpo = self.stage.grpo.model_copy(update={"max_steps": plan.steps})
            result = run_grpo(model_path, bundle, plan.tasks, rdir / "grpo", grpo, config,
                              self.runner.pipeline.budget.max_new_tokens, sink, stats=self.runner.stats,
                              trainer_args=self.runner.trainer_args, seed=self.seed + 1000 * k)
            model_path = str(result.checkpoint)
            steps = last_step(result.metrics)
            compute.update(grpo_steps=steps, grpo_rollouts=steps * grpo.batch_size)
        return model_path, compute


def last_step(metrics: list[dict[str, Any]]) -> int:
    """The optimizer steps a training run took: the last logged step (TRL logs the run's totals at its end)."""
    return max((int(row.get("step", 0)) for row in metrics), default=0)


def workflow_slots(raw: dict[tuple[str, str], Any], workflow: str) -> list[str]:
    """The slot names of a workflow as written."""
    doc = raw.get(("Workflow", workflow))
    slots = doc.data.get("slots") if doc is not None else None
    return sorted(slots) if isinstance(slots, dict) else []


def keep_growths(work: Path, candidates: list[Growth], round_no: int,
                 try_compile: Any) -> tuple[list[Growth], list[dict[str, Any]], Any]:
    """Keep each candidate whose spec tree (``work``, with the growths written to ``grown/round_<n>.yaml``) still
    compiles with every gold at 1.0, one at a time, in order. ``try_compile()`` gives (the compiled tree, None) or
    (None, the SpecError). Returns the kept growths, the rejected ones with their diagnostic codes, and the compiled
    tree with the kept growths (None when none was kept: the tree is as it was)."""
    grown = work / "grown" / f"round_{round_no}.yaml"
    grown.parent.mkdir(parents=True, exist_ok=True)
    kept: list[Growth] = []
    rejected: list[dict[str, Any]] = []
    project = None  # always the tree of exactly the growths kept so far
    for growth in candidates:
        grown.write_text(grown_text([*kept, growth], round_no), encoding="utf-8")
        compiled, error = try_compile()
        if compiled is None:
            codes = Counter(d.code for d in error.diagnostics)
            first = error.diagnostics[0]
            rejected.append({"operator": growth.operator, "workflow": growth.source,
                             "codes": dict(sorted(codes.items())), "first": f"{first.code} {first.message}"})
            continue
        kept.append(growth)
        project = compiled
    if kept:
        grown.write_text(grown_text(kept, round_no), encoding="utf-8")
    else:
        grown.unlink(missing_ok=True)
    return kept, rejected, project


def grown_text(growths: list[Growth], round_no: int) -> str:
    head = [f"# Workflows grown in flywheel round {round_no}; each compiles and its gold trajectories score 1.0."]
    head += [f"# {g.workflow}: {g.operator} from {g.source} ({g.note})" for g in growths]
    return "\n".join(head) + "\n" + yaml_documents([d for g in growths for d in g.documents])


@dataclass
class GRPOPlan:
    """What a round's GRPO trains on and for how many steps, and what was done when the band was thin."""

    tasks: list[Task]
    in_band: int
    steps: int
    carried_steps: int
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"in_band": self.in_band, "trained_prompts": len(self.tasks), "steps": self.steps,
                "carried_steps": self.carried_steps, "note": self.note}


def grpo_plan(in_band: list[Task], grpo: Any, carried_steps: int, band: tuple[float, float]) -> GRPOPlan:
    """A round's GRPO never stops silently: with no task in the band its steps are carried to the next round that
    has one; with fewer in-band tasks than one step's prompts (``batch_size // num_generations``), each is repeated
    until a step is full (TRL would otherwise find no batch and stop at step 0)."""
    steps = grpo.max_steps + carried_steps
    per_step = max(1, grpo.batch_size // grpo.num_generations)
    n = len(in_band)
    if n == 0:
        return GRPOPlan([], 0, 0, steps, f"no task in the band {band[0]} < pass rate < {band[1]}: GRPO skipped, "
                                          f"its {steps} steps carried to the next round")
    carried = f" ({carried_steps} carried from earlier rounds)" if carried_steps else ""
    if n < per_step:
        tasks = [in_band[i % n] for i in range(per_step)]
        return GRPOPlan(tasks, n, steps, 0, f"{n} in-band task{'s' * (n > 1)}, fewer than the {per_step} prompts a "
                                            f"GRPO step takes: each repeated to fill a step; {steps} steps{carried}")
    return GRPOPlan(list(in_band), n, steps, 0, f"GRPO on {n} in-band tasks, {steps} steps{carried}")


def _groups(tasks: list[Task], pass_rate: dict[str, float]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in ("workflow", "branch", "persona"):
        acc: dict[str, list[float]] = defaultdict(list)
        for t in tasks:
            acc[str(t.get(key))].append(pass_rate[t["id"]])
        out[key] = {name: {"n": len(v), "pass_rate": round(sum(v) / len(v), 4)} for name, v in sorted(acc.items())}
    return out


def run_flywheel_stage(runner: Any, model_path: str, stage: Any, name: str, resume: bool) -> dict[str, Any]:
    """The ``flywheel`` pipeline stage (see the module docstring)."""
    return Flywheel(runner, stage, name).run(model_path, resume)
