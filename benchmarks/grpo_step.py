"""Wall time of one GRPO step through our environments against TRL's bare ``environment_factory`` GRPO.

- ours: ``runtime.training.run_grpo`` on the compiled plant-maintenance bundle (whole multi-turn episodes: tools,
  the simulated user, the verifier's reward) with ``rollout_func``;
- bare: TRL's ``GRPOTrainer(environment_factory=...)`` with a one-tool environment (``reset``, a tool method with a
  Google-style docstring, ``get_reward``): TRL's own tool loop, nothing of ours.

Same model (the built-in tiny Qwen3, random weights), same batch (completions per step), same group size, same
completion budget per episode, one torch thread, CPU. TRL's logged ``step_time`` is taken per step; the first steps
are warm-up and dropped; the median of the rest is reported, with the completion tokens of each step (the random
model's episodes differ in length between the two, so time per completion token is reported too). For ours, the
share of rollout time spent outside the model (``RolloutStats``: environment, parsing, user, reward) is reported.

Goal (issue: training at scale): ours at most 1.1x the bare step.
Run: python benchmarks/grpo_step.py [--steps 8] [--warmup 2] [--batch-size 8] [--num-generations 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class CounterEnv:
    """The bare environment: one tool, a target, a reward."""

    def reset(self, target: int = 3, **kwargs: Any) -> None:
        self.counter, self.target = 0, target

    def increment(self, step: int) -> int:
        """
        Increment the counter.

        Args:
            step: Value to add to the counter.

        Returns:
            The updated counter value.
        """
        self.counter += step
        return self.counter

    def get_reward(self) -> float:
        return float(self.counter == self.target)


def _steps(log: list[dict[str, Any]], warmup: int) -> list[dict[str, Any]]:
    rows = [r for r in log if "step_time" in r]
    return rows[warmup:]


def summarise(name: str, rows: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    times = [r["step_time"] for r in rows]
    tokens = [r["completions/mean_length"] * batch for r in rows]
    return {
        "name": name, "steps": len(rows), "step_s_median": statistics.median(times),
        "step_s_all": [round(t, 3) for t in times],
        "completion_tokens_per_step": statistics.median(tokens),
        "ms_per_completion_token": 1000 * statistics.median(t / max(n, 1) for t, n in zip(times, tokens, strict=True)),
    }


def run_ours(args: argparse.Namespace, model: str, bundle: Any, out: Path) -> dict[str, Any]:
    from aqwen_spec.documents.pipeline import GRPOStage
    from runtime.env import EpisodeConfig
    from runtime.pipeline import split_tasks
    from runtime.rollout import RolloutStats
    from runtime.training import run_grpo

    train, _ = split_tasks(bundle.tasks, 0.3, 0)
    stage = GRPOStage(stage="grpo", max_steps=args.steps + args.warmup, num_generations=args.num_generations,
                      batch_size=args.batch_size, learning_rate=1e-5, max_completion_length=args.max_tokens)
    config = EpisodeConfig(max_turns=args.max_turns, max_tokens=args.max_tokens)
    stats = RolloutStats()
    rows: list[dict[str, Any]] = []
    run_grpo(model, bundle, train, out, stage, config, args.max_new_tokens, rows.append, stats=stats)
    result = summarise("ours (run_grpo, rollout_func)", _steps(rows, args.warmup), args.batch_size)
    result["rollout"] = {"model_seconds": round(stats.model_seconds, 3), "env_seconds": round(stats.env_seconds, 4),
                         "outside_model_share": round(stats.outside_model_share, 4),
                         "generated_tokens": stats.generated_tokens}
    return result


def run_bare(args: argparse.Namespace, model: str, out: Path) -> dict[str, Any]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from runtime.models import load

    policy, tokenizer = load(model)
    n = 4 * args.batch_size
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": "Increment the counter to 3."}]] * n,
                                 "target": [1, 3] * (n // 2)})
    config = GRPOConfig(
        output_dir=str(out), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=args.batch_size,
        num_generations=args.num_generations, max_steps=args.steps + args.warmup, learning_rate=1e-5,
        beta=0.0, loss_type="dapo", max_completion_length=args.max_tokens, temperature=1.0, logging_steps=1,
        save_strategy="no", gradient_checkpointing=False, seed=0, disable_tqdm=True, log_completions=False,
        max_tool_calling_iterations=args.max_turns, chat_template_kwargs={"enable_thinking": False},
    )
    trainer = GRPOTrainer(model=policy, args=config, train_dataset=dataset, processing_class=tokenizer,
                          environment_factory=CounterEnv)
    trainer.train()
    return summarise("bare (TRL environment_factory)", _steps(trainer.state.log_history, args.warmup), args.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="measured steps (after the warm-up steps)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="completions per step")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256, help="completion tokens per episode (both)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per assistant turn (ours)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from compiler.cli import main as compile_main
    from runtime.bundle import Bundle
    from runtime.models import domain_corpus, resolve_model

    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "build"
        assert compile_main([str(ROOT / "specs"), "-o", str(build), "-q"]) == 0
        bundle = Bundle.load(build / "plant_maintenance")
        model = str(resolve_model("builtin:tiny-qwen3", domain_corpus(bundle)))
        bare = run_bare(args, model, Path(tmp) / "bare")
        ours = run_ours(args, model, bundle, Path(tmp) / "ours")
    ratio = ours["step_s_median"] / bare["step_s_median"]
    token_ratio = ours["ms_per_completion_token"] / bare["ms_per_completion_token"]
    if args.json:
        print(json.dumps({"ours": ours, "bare": bare, "ratio": ratio, "token_ratio": token_ratio}, indent=2))
        return
    print(f"threads 1, batch {args.batch_size}, group {args.num_generations}, {args.steps} steps after "
          f"{args.warmup} warm-up, {args.max_tokens} completion tokens per episode at most")
    for r in (bare, ours):
        print(f"{r['name']:<34} step {r['step_s_median']:.3f} s (median)  "
              f"{r['completion_tokens_per_step']:.0f} completion tokens/step  "
              f"{r['ms_per_completion_token']:.2f} ms/token")
    print(f"ours / bare: {ratio:.2f}x per step, {token_ratio:.2f}x per completion token")
    ro = ours["rollout"]
    print(f"ours, rollout time: model {ro['model_seconds']:.2f} s, outside the model {ro['env_seconds']:.3f} s "
          f"({100 * ro['outside_model_share']:.1f}%)")


if __name__ == "__main__":
    main()
