"""Running a Pipeline: evaluation and training stages on a bundle, written to ``runs/<name>/``.

A run folder holds ``config.json`` (the resolved pipeline and the bundle it ran on), ``metrics.jsonl`` (every
logged training step and evaluation), ``checkpoints/<stage>/``, ``eval/<stage>/`` (report and trajectories),
``state.json`` (stages done and the current model, for ``--resume``) and ``summary.json``. ``runs/latest`` points
at the newest run. Tasks split into training, validation and held-out tasks (:mod:`runtime.pipeline.split`);
evaluation uses held-out tasks, which are never trained on nor chosen on: a stage's ``select_every`` chooses its
checkpoint on the validation tasks (:mod:`runtime.training.select`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqwen_spec.documents.pipeline import Pipeline
from runtime.episodes.bundle import Bundle
from runtime.episodes.env import EpisodeConfig
from runtime.episodes.evaluate import EvalReport, Trial
from runtime.pipeline.split import split_tasks, split_three
from runtime.training.rollout import ChatFormat, HFPolicy, RolloutStats, run_rollouts

__all__ = ["PipelineRunner", "RunState", "eval_result", "format_summary", "split_tasks", "split_three"]

Tasks = list[dict[str, Any]]


def eval_result(report: EvalReport, model: str, split: str = "heldout") -> dict[str, Any]:
    """An eval stage's entry in ``state.json`` and ``summary.json``."""
    return {"stage": "eval", "split": split, "success_rate": report.success_rate, "mean_reward": report.mean_reward,
            "n_tasks": report.n_tasks, "pass_hat_k": {str(k): v for k, v in report.pass_hat().items()},
            "model": model}


def spread(tasks: Tasks, n: int | None) -> Tasks:
    """At most ``n`` tasks, spread over the list (over workflows and branches), not the first few."""
    if not n or len(tasks) <= n:
        return tasks
    stride = len(tasks) / n
    return [tasks[int(i * stride)] for i in range(n)]


@dataclass
class RunState:
    """What ``--resume`` needs: the stages finished and the model to continue from."""

    model: str
    done: list[str] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)  # stages begun: an interrupted one resumes from its checkpoint

    def save(self, folder: Path) -> None:
        tmp = folder / "state.json.tmp"
        tmp.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        os.replace(tmp, folder / "state.json")

    @classmethod
    def load(cls, folder: Path) -> RunState:
        return cls(**json.loads((folder / "state.json").read_text()))


# stages beyond eval/sft/grpo: "module:function", called as function(runner, model_path, stage, name, resume)
STAGE_RUNNERS: dict[str, str] = {
    "flywheel": "runtime.pipeline.flywheel:run_flywheel_stage",
    "distill": "runtime.pipeline.distill:run_distill_stage",
    "reasoning_flywheel": "runtime.reasoning.flywheel:run_reasoning_stage",
}


SPLIT_NAMES = {"heldout": "held-out", "grown_heldout": "held-out grown", "validation": "validation",
               "train": "training", "all": "all-task"}
"""How an eval stage's split reads in what the run prints."""


class PipelineRunner:
    def __init__(self, pipeline: Pipeline, bundle: Bundle, run_dir: Path, progress: bool = True,
                 echo: Callable[[str], None] = print, specs: Path | None = None) -> None:
        self.pipeline = pipeline
        self.bundle = bundle
        self.specs = specs  # the spec tree the bundle was compiled from (flywheels grow it)
        self.dir = run_dir
        self.progress = progress
        self.trainer_args: dict[str, Any] = {"disable_tqdm": not progress}
        """Merged into every training stage's TRL config (no bars and no printed rows with ``progress=False``)."""
        self.echo = echo
        budget = pipeline.budget
        self.config = EpisodeConfig(max_turns=budget.max_turns, max_tokens=budget.max_tokens)
        self.split = split_three(bundle.tasks, pipeline.heldout_fraction, pipeline.validation_fraction,
                                 pipeline.split_seed)
        self.train_tasks, self.validation, self.heldout = self.split.train, self.split.validation, self.split.heldout
        self.stats = RolloutStats()

    # --- bookkeeping -----------------------------------------------------------------------------------------

    def _metric(self, row: dict[str, Any]) -> None:
        with (self.dir / "metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **row}) + "\n")

    def _stage_names(self) -> list[str]:
        names, seen = [], set()
        for i, stage in enumerate(self.pipeline.stages):
            name = stage.name or f"{stage.stage}_{i}"
            while name in seen:
                name += "_"
            seen.add(name)
            names.append(name)
        return names

    # --- running ---------------------------------------------------------------------------------------------

    def run(self, state: RunState) -> dict[str, Any]:
        import torch

        torch.set_num_threads(self.pipeline.model.threads or 1)
        if not self.progress:
            no_library_bars()
        for name, stage in zip(self._stage_names(), self.pipeline.stages, strict=True):
            if name in state.done:
                self.echo(f"[{name}] already done, skipping")
                continue
            start = time.perf_counter()
            if stage.stage == "eval":
                report = self.evaluate(state.model, stage, name)
                state.results[name] = eval_result(report, state.model, stage.split)
                split = SPLIT_NAMES.get(stage.split, stage.split)
                self.echo(f"[{name}] {split} success {report.success_rate:.3f}, mean reward "
                          f"{report.mean_reward:.3f} on {report.n_tasks} tasks")
            else:
                resume = name in state.started
                if not resume:
                    state.started.append(name)
                    state.save(self.dir)
                model = self.start_model(state, stage, name)
                result = self.run_stage(model, stage, name, resume=resume)
                state.results[name] = {"stage": stage.stage, **result}
                if result.get("checkpoint"):
                    state.model = str(result["checkpoint"])
            state.results[name]["seconds"] = round(time.perf_counter() - start, 1)
            state.done.append(name)
            state.save(self.dir)
            self._metric({"stage": name, "event": "done", **{k: v for k, v in state.results[name].items()
                                                               if isinstance(v, (int, float))}})
        summary = self.summary(state)
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def start_model(self, state: RunState, stage: Any, name: str) -> str:
        """The model a training stage starts from: the current one, or with ``from:`` the checkpoint the named earlier
        stage handed on."""
        start = getattr(stage, "start_from", None)
        if start is None:
            return state.model
        from runtime.training.sft_grpo import TrainingError

        checkpoint = state.results.get(start, {}).get("checkpoint")
        if not checkpoint:
            raise TrainingError(f"stage '{name}' starts from '{start}', which is no earlier training stage of this "
                                "pipeline")
        self.echo(f"[{name}] starts from {start}'s model")
        return str(checkpoint)

    def grown_heldout(self) -> tuple[Bundle, Tasks]:
        """The held-out grown tasks and the bundle they run on (:mod:`runtime.pipeline.grown`)."""
        if getattr(self, "_grown", None) is None:
            from runtime.pipeline.grown import grown_heldout

            self._grown = grown_heldout(self)
        bundle, tasks = self._grown
        return bundle, tasks

    def evaluate(self, model_path: str, stage: Any, name: str) -> EvalReport:
        bundle = self.bundle
        if stage.split == "grown_heldout":
            bundle, tasks = self.grown_heldout()
        else:
            tasks = {"heldout": self.heldout, "validation": self.validation, "train": self.train_tasks,
                     "all": self.bundle.tasks}[stage.split]
        if not tasks:
            from runtime.training.sft_grpo import TrainingError

            raise TrainingError(f"eval stage '{name}' has no {stage.split} tasks (validation_fraction "
                                f"{self.pipeline.validation_fraction})")
        tasks = spread(tasks, stage.max_tasks)
        bar = _progress(len(tasks) * stage.k, f"eval {name}", self.progress)
        report = self.play(model_path, tasks, stage.k, stage.temperature, name=name, bundle=bundle,
                           on_done=lambda: bar.update(1))
        bar.close()
        self.record_eval(name, report)
        return report

    def record_eval(self, name: str, report: EvalReport) -> None:
        """An eval stage's files: ``eval/<name>/`` (trajectories, report) and its row in ``metrics.jsonl``."""
        folder = self.dir / "eval" / name
        folder.mkdir(parents=True, exist_ok=True)
        report.write_trajectories(folder / "trajectories.jsonl")
        (folder / "report.json").write_text(json.dumps(report.summary(), indent=2) + "\n")
        self._metric({"stage": name, "event": "eval", "success_rate": report.success_rate,
                      "mean_reward": report.mean_reward})

    def play(self, model_path: str, tasks: Tasks, k: int, temperature: float, *, name: str = "play",
             backend: str | None = None, server: Any = None, bundle: Bundle | None = None, seed: int | None = None,
             on_done: Callable[[], None] | None = None) -> EvalReport:
        """``k`` episodes of each task with a model on any backend: ``hf`` (transformers) and ``vllm`` (GPU) on a
        checkpoint at ``model_path``, ``openai`` against the server ``server`` describes (``endpoint``,
        ``served_name`` or ``name``, ``api_key_env``, ``workers``). Defaults: the pipeline's backend and model, its
        bundle and its seed."""
        backend = backend or self.pipeline.backend
        bundle = bundle or self.bundle
        seed = self.pipeline.seed if seed is None else seed
        done = on_done or (lambda: None)
        if backend == "openai":
            from runtime.backends.concurrent import evaluate_concurrent
            from runtime.backends.openai import OpenAIAgent

            spec = server or self.pipeline.model
            key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
            served = getattr(spec, "served_name", None) or spec.name

            def make_agent() -> OpenAIAgent:
                return OpenAIAgent(spec.endpoint or "", served, api_key=key, temperature=temperature,
                                   max_tokens=self.pipeline.budget.max_new_tokens)

            return evaluate_concurrent(bundle, tasks, make_agent, k=k, workers=spec.workers, config=self.config,
                                       on_done=lambda t: done())
        from runtime.training.models import load

        policy: Any
        if backend == "vllm":  # GPU only
            from transformers import AutoTokenizer

            from runtime.backends.vllm import VLLMPolicy

            tokenizer = AutoTokenizer.from_pretrained(model_path)
            policy = VLLMPolicy(model_path, temperature=temperature, seed=seed)
        else:
            model, tokenizer = load(model_path)
            policy = HFPolicy(model, tokenizer, temperature=temperature, seed=seed)
        fmt = ChatFormat(tokenizer, bundle.tool_schemas)
        rollouts = run_rollouts(bundle, [t for t in tasks for _ in range(k)], policy, fmt, self.config,
                                max_new_tokens=self.pipeline.budget.max_new_tokens, batch_size=8, stats=self.stats,
                                on_done=lambda r: done())
        report = EvalReport(name, bundle.name, k)
        counts: dict[str, int] = {}
        for r in rollouts:
            trial = counts.get(r.task["id"], 0)
            counts[r.task["id"]] = trial + 1
            report.trials.append(Trial(r.task, trial, r.result))
        return report

    def run_stage(self, model_path: str, stage: Any, name: str, resume: bool) -> dict[str, Any]:
        """Run a training-side stage; the result's ``checkpoint`` (if any) is the model the next stage starts from."""
        if stage.stage in ("sft", "grpo"):
            return self.train(model_path, stage, name, resume)
        from importlib import import_module

        module, func = STAGE_RUNNERS[stage.stage].split(":")
        result: dict[str, Any] = getattr(import_module(module), func)(self, model_path, stage, name, resume)
        return result

    def train(self, model_path: str, stage: Any, name: str, resume: bool) -> dict[str, Any]:
        """An SFT or GRPO stage; with ``select_every``, the checkpoint handed on is the one chosen on validation."""
        from runtime.training.select import selector_callback
        from runtime.training.sft_grpo import run_grpo, run_sft

        out = self.dir / "checkpoints" / name
        out.mkdir(parents=True, exist_ok=True)

        def sink(row: dict[str, Any]) -> None:
            self._metric({"stage": name, **row})

        selector = self.selector(stage, out, sink)
        callbacks = [] if selector is None else [selector_callback(selector)]
        self.echo(f"[{name}] {stage.stage} on {len(self.train_tasks)} training tasks")
        seed = self.pipeline.seed
        if stage.stage == "sft":
            result = run_sft(model_path, self.bundle, self.train_tasks, out, stage, self.config, sink, resume=resume,
                             trainer_args=self.trainer_args, seed=seed, callbacks=callbacks)
        else:
            result = run_grpo(model_path, self.bundle, self.train_tasks, out, stage, self.config,
                              self.pipeline.budget.max_new_tokens, sink, resume=resume, stats=self.stats,
                              trainer_args=self.trainer_args, seed=seed, callbacks=callbacks)
        from runtime.pipeline.flywheel import last_step

        steps = last_step(result.metrics)
        compute = {"sft_steps": steps} if stage.stage == "sft" else \
            {"grpo_steps": steps, "grpo_rollouts": steps * stage.batch_size}
        if selector is None:
            return {"checkpoint": str(result.checkpoint), "compute": compute}
        chosen = selector.result()
        self.echo(f"[{name}] selected step {chosen['step']} on {chosen['on']}: success "
                  f"{chosen['validation']['success_rate']:.3f}, mean reward {chosen['validation']['mean_reward']:.3f}")
        compute["selection_rollouts"] = len(chosen.get("candidates", [])) * len(self.validation)
        return {"checkpoint": str(selector.best_model), "selected": chosen, "compute": compute}

    def selector(self, stage: Any, out: Path, sink: Callable[[dict[str, Any]], None]) -> Any:
        """The stage's checkpoint selector on the validation tasks, or None without ``select_every``."""
        if not getattr(stage, "select_every", None):
            return None
        from runtime.training.select import CheckpointSelector
        from runtime.training.sft_grpo import TrainingError

        if not self.validation:
            raise TrainingError(f"select_every needs validation tasks, and there are none (validation_fraction "
                                f"{self.pipeline.validation_fraction} of {len(self.bundle.tasks)} tasks)")
        if stage.lora:
            raise TrainingError("select_every does not keep LoRA checkpoints: train without lora, or drop it")
        tasks = self.validation

        def score(model: Any, tokenizer: Any) -> tuple[float, float]:
            policy = HFPolicy(model, tokenizer, temperature=0.0, seed=self.pipeline.seed)
            fmt = ChatFormat(tokenizer, self.bundle.tool_schemas)
            rollouts = run_rollouts(self.bundle, tasks, policy, fmt, self.config,
                                    max_new_tokens=self.pipeline.budget.max_new_tokens, batch_size=8)
            n = len(rollouts)
            return sum(r.result.success for r in rollouts) / n, sum(r.result.reward for r in rollouts) / n

        return CheckpointSelector(score, stage.select_every, out / "select", f"{len(tasks)} validation tasks", sink)

    def summary(self, state: RunState) -> dict[str, Any]:
        evals = [(n, r) for n, r in state.results.items() if r.get("stage") == "eval"]
        before = evals[0][1] if evals else {}
        after = evals[-1][1] if evals else {}
        return {
            "pipeline": self.pipeline.name,
            "domain": self.bundle.name,
            "model": self.pipeline.model.name,
            "seed": self.pipeline.seed,
            "heldout_tasks": len(self.heldout),
            "validation_tasks": len(self.validation),
            "train_tasks": len(self.train_tasks),
            "split": self.split.describe(),
            "selected": {n: r["selected"] for n, r in state.results.items() if "selected" in r},
            "before": {k: before.get(k) for k in ("success_rate", "mean_reward")},
            "after": {k: after.get(k) for k in ("success_rate", "mean_reward")},
            "stages": [{"name": n, **r} for n, r in state.results.items()],
            "rollout_time": {"model_seconds": round(self.stats.model_seconds, 2),
                             "env_seconds": round(self.stats.env_seconds, 3),
                             "outside_model_share": round(self.stats.outside_model_share, 4)},
        }


def no_library_bars() -> None:
    """Turn off the progress bars transformers (loading weights) and datasets (preparing training data) draw."""
    import datasets
    from transformers.utils import logging

    logging.disable_progress_bar()
    datasets.disable_progress_bars()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        class _Null:
            def update(self, n: int) -> None: ...

            def close(self) -> None: ...

        return _Null()


def format_summary(summary: dict[str, Any]) -> str:
    """The run's evals as a table: stage, split, success, mean reward, and the change from the first eval to the
    last when both played the same split (a validation score is no baseline for a held-out one)."""
    evals = [s for s in summary["stages"] if s.get("stage") == "eval"]
    lines = [f"{'stage':<16}{'split':<18}{'success':>9}{'mean reward':>14}", "-" * 57]
    for stage in evals:
        split = SPLIT_NAMES.get(stage.get("split", "heldout"), stage.get("split", ""))
        lines.append(f"{stage['name']:<16}{split:<18}{stage['success_rate']:>9.3f}{stage['mean_reward']:>14.3f}")
    b, a = summary["before"], summary["after"]
    same_split = len(evals) > 1 and evals[0].get("split", "heldout") == evals[-1].get("split", "heldout")
    if same_split and b.get("success_rate") is not None and a.get("success_rate") is not None:
        lines.append("-" * 57)
        lines.append(f"{'change':<34}{a['success_rate'] - b['success_rate']:>+9.3f}"
                     f"{a['mean_reward'] - b['mean_reward']:>+14.3f}")
    return "\n".join(lines)
