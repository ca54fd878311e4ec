"""GRPO on a compiled bundle under ``accelerate launch`` with DeepSpeed: the project's GRPO stage, run at scale.

    accelerate launch --config_file examples/deepspeed/zero2_cpu.yaml examples/deepspeed/train_grpo.py \\
        --bundle build/plant_maintenance --model builtin:tiny-qwen3 --out runs/ds-cpu --max-steps 2

    accelerate launch --config_file examples/deepspeed/zero3.yaml examples/deepspeed/train_grpo.py \\
        --bundle build/plant_maintenance --model Qwen/Qwen3-8B --out runs/qwen3-8b-grpo --gpu \\
        --max-steps 200 --batch-size 8 --num-generations 8 --learning-rate 1e-6 --lora

It runs ``runtime.training.sft_grpo.run_grpo`` (whole multi-turn episodes through our environments, the verifier's
reward) on the training split of the bundle (``runtime.pipeline.runner.split_tasks``: held-out tasks are never trained
on), writes ``metrics.jsonl`` (rank 0) and the final model to ``OUT/model``, and TRL checkpoints under ``OUT/trainer``.

DeepSpeed settings come from the accelerate config file alone. The GRPOConfig that ``run_grpo`` builds must agree
with it (DeepSpeed refuses a ``gradient_accumulation_steps`` or bf16 mismatch), so this script copies them from the
launcher's environment (``ACCELERATE_GRADIENT_ACCUMULATION_STEPS``, ``ACCELERATE_MIXED_PRECISION``) into the
GRPOConfig, through ``run_grpo(trainer_args=...)``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, required=True, help="a bundle folder written by aqwen-compile")
    p.add_argument("--model", default="builtin:tiny-qwen3", help="builtin:..., a checkpoint folder or a hub id")
    p.add_argument("--out", type=Path, required=True, help="output folder (metrics.jsonl, model/, trainer/)")
    p.add_argument("--gpu", action="store_true", help="train on GPUs (default: CPU, use_cpu=True)")
    p.add_argument("--max-steps", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4, help="completions per device per micro-batch")
    p.add_argument("--num-generations", type=int, default=2, help="completions per task (the GRPO group)")
    p.add_argument("--learning-rate", type=float, default=1e-5)
    p.add_argument("--beta", type=float, default=0.0)
    p.add_argument("--loss-type", default="dapo", choices=["grpo", "dr_grpo", "dapo", "bnpo"])
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-completion-length", type=int, default=768)
    p.add_argument("--lora", action="store_true")
    p.add_argument("--max-turns", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=768, help="completion tokens per episode")
    p.add_argument("--max-new-tokens", type=int, default=96, help="tokens per assistant turn")
    p.add_argument("--max-tasks", type=int, default=None, help="train on the first N training tasks only")
    p.add_argument("--heldout-fraction", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--trainer-arg", action="append", default=[], metavar="KEY=JSON",
                   help="extra GRPOConfig field, e.g. --trainer-arg save_steps=50 (value parsed as JSON if it can be)")
    return p.parse_args(argv)


def launcher_trainer_args(gpu: bool) -> dict[str, Any]:
    """GRPOConfig fields that must match the accelerate/DeepSpeed config this process was launched with."""
    out: dict[str, Any] = {}
    steps = os.environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "")
    if steps.isdigit():
        out["gradient_accumulation_steps"] = int(steps)
    precision = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if gpu and precision in ("bf16", "fp16"):
        out[precision] = True
    clip = os.environ.get("ACCELERATE_GRADIENT_CLIPPING", "")
    with contextlib.suppress(ValueError):
        out["max_grad_norm"] = float(clip)
    return out


def resolve(name: str, bundle: Any) -> str:
    """The model folder; built-in models are built by local rank 0 while the other ranks wait for it."""
    from runtime.training.models import cache_dir, domain_corpus, resolve_model

    if not name.startswith("builtin:") or int(os.environ.get("LOCAL_RANK", "0")) == 0:
        return str(resolve_model(name, domain_corpus(bundle)))
    folder = cache_dir() / name.removeprefix("builtin:")
    while not (folder / ".complete").exists():
        time.sleep(0.5)
    return str(folder)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from aqwen_spec.documents.pipeline import GRPOStage
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import EpisodeConfig
    from runtime.pipeline.runner import split_tasks
    from runtime.training.rollout import RolloutStats
    from runtime.training.sft_grpo import run_grpo

    rank = int(os.environ.get("RANK", "0"))
    bundle = Bundle.load(args.bundle)
    train, heldout = split_tasks(bundle.tasks, args.heldout_fraction, args.seed)
    if args.max_tasks:
        train = train[: args.max_tasks]
    model = resolve(args.model, bundle)
    stage = GRPOStage(stage="grpo", max_steps=args.max_steps, num_generations=args.num_generations,
                      batch_size=args.batch_size, learning_rate=args.learning_rate, beta=args.beta,
                      loss_type=args.loss_type, temperature=args.temperature,
                      max_completion_length=args.max_completion_length, lora=args.lora)
    config = EpisodeConfig(max_turns=args.max_turns, max_tokens=args.max_tokens)
    args.out.mkdir(parents=True, exist_ok=True)
    metrics_file = args.out / "metrics.jsonl"

    def sink(row: dict[str, Any]) -> None:
        if rank == 0:
            with metrics_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"time": round(time.time(), 3), **row}) + "\n")

    overrides = launcher_trainer_args(args.gpu)
    for item in args.trainer_arg:
        key, _, raw = item.partition("=")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    stats = RolloutStats()
    start = time.perf_counter()
    result = run_grpo(model, bundle, train, args.out, stage, config, args.max_new_tokens, sink,
                      use_cpu=not args.gpu, stats=stats, trainer_args=overrides)
    if rank == 0:
        summary = {
            "model": args.model, "bundle": str(args.bundle), "train_tasks": len(train), "heldout_tasks": len(heldout),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "zero_stage": os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE"), "trainer_args": overrides,
            "checkpoint": str(result.checkpoint), "steps": max((m.get("step", 0) for m in result.metrics), default=0),
            "seconds": round(time.perf_counter() - start, 1),
            "rollout_time": {"model_seconds": round(stats.model_seconds, 2), "env_seconds": round(stats.env_seconds, 3),
                             "outside_model_share": round(stats.outside_model_share, 4)},
        }
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
