"""GRPO on one GPU in bf16 through TRL: does the training code run on the device's torch, how fast, and how much of
the rollout time is spent outside the model.

Steps: compile specs/ (the plant-maintenance domain), build the built-in tiny Qwen3, a short SFT warm-up on gold
trajectories, then GRPO with our rollout_func (whole multi-turn episodes: tools, the simulated user, the verifier's
reward), both with TRL in bf16 on the GPU. Reported (JSON on stdout and in --json): torch/transformers/TRL versions,
the device, SFT and GRPO wall times, GRPO seconds per step (median over steps after --warmup), completion tokens per
step, and the share of rollout time outside the model (environment, parsing, user, reward).

On a device machine (torch, transformers, accelerate and peft there; TRL, datasets and this project's own small
dependencies carried as wheels): `bash benchmarks/gpu_check.sh`. Here, the same code on CPU (a smoke test):
`python benchmarks/gpu_check.py --cpu --sft-steps 2 --steps 3 --warmup 1`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="run on CPU in float32 (a smoke test of this script)")
    parser.add_argument("--steps", type=int, default=8,
                        help="GRPO steps (default 8: a step took 25-31 s on an H200, see benchmarks/README.md)")
    parser.add_argument("--warmup", type=int, default=3, help="GRPO steps left out of the timing (default 3)")
    parser.add_argument("--sft-steps", type=int, default=40, help="SFT warm-up steps (default 40)")
    parser.add_argument("--batch-size", type=int, default=32, help="completions per GRPO step (default 32)")
    parser.add_argument("--num-generations", type=int, default=8, help="GRPO group size (default 8)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import torch
    import transformers
    import trl

    from aqwen_spec.documents.pipeline import GRPOStage, SFTStage
    from compiler.bundle import write_bundles
    from compiler.project import compile_specs
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import EpisodeConfig
    from runtime.pipeline.runner import split_tasks
    from runtime.training.models import domain_corpus, resolve_model
    from runtime.training.rollout import RolloutStats, TrainingError
    from runtime.training.sft_grpo import run_grpo, run_sft

    gpu = torch.cuda.is_available() and not args.cpu
    if not gpu and not args.cpu:
        print("no CUDA device: run with --cpu for a smoke test", file=sys.stderr)
        return 2
    device_args: dict[str, Any] = {"bf16": True} if gpu else {}
    report: dict[str, Any] = {
        "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
        "device": torch.cuda.get_device_name(0) if gpu else "cpu", "dtype": "bf16" if gpu else "float32",
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        project = compile_specs(ROOT / "specs")
        write_bundles(project, work / "build")
        bundle = Bundle.load(work / "build" / "plant_maintenance")
        train, _ = split_tasks(bundle.tasks, 0.3, 0)
        report["compile_s"] = round(time.perf_counter() - started, 2)
        os.environ.setdefault("XDG_CACHE_HOME", str(work / "cache"))
        model = resolve_model("builtin:tiny-qwen3", domain_corpus(bundle, train))
        config = EpisodeConfig(max_turns=8, max_tokens=1024)
        rows: list[dict[str, Any]] = []

        started = time.perf_counter()
        sft = run_sft(model, bundle, train, work / "sft", SFTStage(stage="sft", max_steps=args.sft_steps),
                      config, rows.append, use_cpu=not gpu, trainer_args=device_args)
        report["sft_s"] = round(time.perf_counter() - started, 2)
        report["sft_final_loss"] = next((r["loss"] for r in reversed(rows) if "loss" in r), None)
        _write(report, args.json)  # what is known so far, in case the GRPO part runs out of time

        stage = GRPOStage(stage="grpo", max_steps=args.warmup + args.steps, batch_size=args.batch_size,
                          num_generations=args.num_generations, learning_rate=5e-5, reward="success",
                          max_completion_length=512)
        stats = RolloutStats()
        grpo_rows: list[dict[str, Any]] = []
        started = time.perf_counter()

        def step_done(row: dict[str, Any]) -> None:
            grpo_rows.append(row)
            if "step_time" in row:
                report["grpo_steps_done"] = row.get("step")
                report["grpo_step_times"] = [round(float(r["step_time"]), 2) for r in grpo_rows if "step_time" in r]
                _write(report, args.json)

        try:
            run_grpo(sft.checkpoint, bundle, train, work / "grpo", stage, config, 96, step_done,
                     use_cpu=not gpu, stats=stats, trainer_args=device_args)
        except TrainingError as exc:  # a diverged model: recorded with the steps it took, not a lost run
            report["grpo_error"] = str(exc)
        report["grpo_s"] = round(time.perf_counter() - started, 2)
        steps = [r for r in grpo_rows if "step_time" in r][args.warmup:]
        times = [float(r["step_time"]) for r in steps]
        report["grpo_steps_timed"] = len(times)
        report["grpo_s_per_step_median"] = round(statistics.median(times), 4) if times else None
        report["grpo_steps_per_s"] = round(1 / statistics.median(times), 3) if times else None
        report["completion_tokens_per_step"] = (
            statistics.median(float(r["completions/mean_length"]) * args.batch_size for r in steps) if steps else None)
        report["outside_model_share"] = round(stats.outside_model_share, 4)
        report["grpo_success_last"] = next((r.get("rewards/success/mean") for r in reversed(grpo_rows)
                                            if "rewards/success/mean" in r), None)
        if gpu:
            report["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(_write(report, args.json))
    return 1 if "grpo_error" in report else 0


def _write(report: dict[str, Any], path: Path | None) -> str:
    text = json.dumps(report, indent=2)
    if path:
        path.write_text(text + "\n")
    return text


if __name__ == "__main__":
    sys.exit(main())
