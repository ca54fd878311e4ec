"""Wall time of one GRPO step through our environments against TRL's bare ``environment_factory`` GRPO.

- ours: ``runtime.training.sft_grpo.run_grpo`` on the compiled plant-maintenance bundle (whole multi-turn episodes:
  tools, the simulated user, the verifier's reward) with ``rollout_func``; rollouts keep each episode's KV cache between
  turns (``--no-cache-run`` leaves out the comparison run that re-encodes every turn from the start);
- ours, one turn: the same with episodes of one assistant turn of up to ``--max-tokens`` tokens: what TRL's loop
  runs on our environment when the model makes no tool call (the random model never makes a valid one), so that the
  work per step is the same as bare, same environment's and only the machinery differs;
- bare, same environment: TRL's own tool loop, ``GRPOTrainer(environment_factory=...)``, on the same bundle and
  training tasks (``runtime.training.trl_environment``: the same prompts, the bundle's tools as methods, the verifiers'
  reward); nothing of ours between the model and the tools. The comparison the goal is about;
- bare, toy environment: the same loop with a one-tool environment (``reset``, a tool method with a Google-style
  docstring, ``get_reward``) and a one-line prompt: TRL's floor;
- bare, same environment, equal tokens (``--equal-tokens N``): the same-environment run with N completion tokens per
  episode at most: TRL's loop ends an episode at the random model's first answer (it never makes a valid tool call),
  one long generation, while ours goes on for several shorter turns with user replies; at N = ours' completion tokens
  per episode both generate about as many tokens per step;
- bare, toy, equal prompt (``--equal-prompt``): the toy with a system message that makes its prompt as long as ours
  (our domain's system prompt text, cut to length).

Same model (the built-in tiny Qwen3, random weights), same batch (completions per step), same group size, same
completion budget per episode, one torch thread, CPU. Per step, TRL's logged ``step_time`` (wall) and this process's
CPU time between two logged steps (with one torch thread, barely changed by other processes on the machine) are
taken; the first steps of each run are warm-up and dropped. The runs are interleaved over ``--rounds`` rounds (the
order rotates each round) so that other load falls on all of them alike; the median over all measured steps is
reported, with the completion tokens of each step (model tokens only; the random model's episodes differ in length
between the runs, so time per completion token is reported too) and the prompt tokens per episode. For ours, the
share of rollout time spent outside the model (``RolloutStats``: environment, parsing, user, reward) is reported,
and the observation tokens (tool results, user replies) that our episodes add to the trained sequences.

Goal (issue: training at scale): ours at most 1.1x the bare step on the same environment.
Run: python benchmarks/grpo_step.py [--rounds 3] [--steps 6] [--warmup 2] [--batch-size 8] [--num-generations 4]
     [--equal-tokens N] [--equal-prompt] [--no-cache-run] [--no-one-turn] [--json results.json]
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


class Clock:
    """CPU time of this process between log events (one per training step): unlike wall time, it is barely
    changed by other processes sharing the machine (one torch thread; the process's own threads are counted)."""

    def __init__(self) -> None:
        self.last = time.process_time()
        self.steps: list[float] = []

    def tick(self, row: dict[str, Any]) -> None:
        now = time.process_time()
        if "step_time" in row:
            self.steps.append(now - self.last)
        self.last = now


def _measure(log: list[dict[str, Any]], cpu: list[float], warmup: int, batch: int) -> list[dict[str, float]]:
    """Per step: wall time, CPU time, completion tokens (model tokens only) and prompt tokens per episode."""
    rows = [r for r in log if "step_time" in r]
    out = []
    seen = 0.0
    for r, cpu_time in zip(rows, cpu, strict=True):
        tokens = r["completions/mean_length"] * batch
        total = r.get("num_tokens", 0.0)
        prompt = (total - seen - tokens) / batch if seen else float("nan")
        seen = total
        out.append({"step_time": r["step_time"], "cpu_time": cpu_time, "tokens": tokens, "prompt": prompt})
    return out[warmup:]


def summarise(name: str, steps: list[dict[str, float]], rounds: list[float]) -> dict[str, Any]:
    times = [s["step_time"] for s in steps]
    cpu = [s["cpu_time"] for s in steps]
    prompts = [s["prompt"] for s in steps if s["prompt"] == s["prompt"]]
    return {
        "name": name, "steps": len(steps), "step_s_median": statistics.median(times),
        "step_s_round_medians": [round(t, 3) for t in rounds],
        "step_s_all": [round(t, 3) for t in times],
        "cpu_s_median": statistics.median(cpu), "cpu_s_all": [round(t, 3) for t in cpu],
        "completion_tokens_per_step": statistics.median(s["tokens"] for s in steps),
        "prompt_tokens_per_episode": statistics.median(prompts) if prompts else None,
        "ms_per_completion_token": 1000 * statistics.median(s["step_time"] / max(s["tokens"], 1) for s in steps),
        "cpu_ms_per_completion_token": 1000 * statistics.median(s["cpu_time"] / max(s["tokens"], 1) for s in steps),
    }


def run_ours(args: argparse.Namespace, model: str, bundle: Any, out: Path, kv_cache: bool, stats: Any,
             one_turn: bool = False) -> list[dict[str, float]]:
    """``one_turn``: episodes of one assistant turn of up to ``--max-tokens`` tokens (what TRL's loop runs when the
    model makes no tool call), instead of ``--max-turns`` turns of ``--max-new-tokens``."""
    from aqwen_spec.documents.pipeline import GRPOStage
    from runtime.episodes.env import EpisodeConfig
    from runtime.training.sft_grpo import run_grpo

    stage = GRPOStage(stage="grpo", max_steps=args.steps + args.warmup, num_generations=args.num_generations,
                      batch_size=args.batch_size, learning_rate=1e-5, max_completion_length=args.max_tokens)
    config = EpisodeConfig(max_turns=1 if one_turn else args.max_turns, max_tokens=args.max_tokens)
    per_turn = args.max_tokens if one_turn else args.max_new_tokens
    rows: list[dict[str, Any]] = []
    clock = Clock()

    def sink(row: dict[str, Any]) -> None:
        clock.tick(row)
        rows.append(row)

    run_grpo(model, bundle, _train_tasks(bundle), out, stage, config, per_turn, sink, stats=stats,
             kv_cache=kv_cache)
    return _measure(rows, clock.steps, args.warmup, args.batch_size)


def _train_tasks(bundle: Any) -> list[dict[str, Any]]:
    from runtime.pipeline.runner import split_tasks

    return split_tasks(bundle.tasks, 0.3, 0)[0]


def our_prompt(bundle: Any, tokenizer: Any) -> tuple[float, str]:
    """Our mean prompt length in tokens over the training tasks, and one of our system prompts."""
    from runtime.episodes.env import Environment
    from runtime.training.rollout import ChatFormat

    fmt = ChatFormat(tokenizer, bundle.tool_schemas)
    lengths, system = [], ""
    for task in _train_tasks(bundle):
        env = Environment(bundle, task)
        messages = env.reset()
        lengths.append(len(fmt.prompt_ids(messages)))
        system = system or next((m["content"] for m in messages if m["role"] == "system"), "")
        env.close()
    return statistics.mean(lengths), system


USER = "Increment the counter to 3."


def bare_system_prompt(tokenizer: Any, target: float, text: str) -> str:
    """A system message (``text`` repeated and cut) that makes the bare prompt ``target`` tokens long."""

    def length(system: str) -> int:
        messages = [{"role": "system", "content": system}] if system else []
        rendered = tokenizer.apply_chat_template(
            [*messages, {"role": "user", "content": USER}], tools=[CounterEnv().increment],
            add_generation_prompt=True, tokenize=False, enable_thinking=False)
        return len(tokenizer(rendered, add_special_tokens=False)["input_ids"])

    filler = tokenizer((text + "\n") * 8, add_special_tokens=False)["input_ids"]
    lo, hi = 0, len(filler)
    while lo < hi:  # the fewest filler tokens that reach the target
        mid = (lo + hi) // 2
        if length(tokenizer.decode(filler[:mid])) < target:
            lo = mid + 1
        else:
            hi = mid
    return str(tokenizer.decode(filler[:lo]))


def run_bare(args: argparse.Namespace, model: str, out: Path, system: str = "") -> list[dict[str, float]]:
    """TRL's loop on the toy environment."""
    from datasets import Dataset

    n = 4 * args.batch_size
    messages = [{"role": "system", "content": system}] if system else []
    dataset = Dataset.from_dict({"prompt": [[*messages, {"role": "user", "content": USER}]] * n,
                                 "target": [1, 3] * (n // 2)})
    return _run_trl_loop(args, model, out, dataset, CounterEnv, [])


def run_bare_same_environment(args: argparse.Namespace, model: str, bundle: Any, out: Path,
                              max_tokens: int | None = None) -> list[dict[str, float]]:
    """TRL's loop on our bundle: the same training tasks, prompts, tools and verifiers as ours (``max_tokens``: another
    completion budget per episode)."""
    from runtime.episodes.env import EpisodeConfig
    from runtime.training.trl_environment import TRLEnvironment

    env = TRLEnvironment(bundle, EpisodeConfig(max_turns=args.max_turns, max_tokens=args.max_tokens))
    return _run_trl_loop(args, model, out, env.dataset(_train_tasks(bundle)), env.factory, [env.reward], max_tokens)


def _run_trl_loop(args: argparse.Namespace, model: str, out: Path, dataset: Any, factory: Any,
                  reward_funcs: list[Any], max_tokens: int | None = None) -> list[dict[str, float]]:
    from trl import GRPOConfig, GRPOTrainer

    from runtime.training.models import load

    policy, tokenizer = load(model)
    config = GRPOConfig(
        output_dir=str(out), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=args.batch_size,
        num_generations=args.num_generations, max_steps=args.steps + args.warmup, learning_rate=1e-5,
        beta=0.0, loss_type="dapo", max_completion_length=max_tokens or args.max_tokens, temperature=1.0,
        logging_steps=1,
        save_strategy="no", gradient_checkpointing=False, seed=0, disable_tqdm=True, log_completions=False,
        max_tool_calling_iterations=args.max_turns, chat_template_kwargs={"enable_thinking": False},
    )
    from transformers import TrainerCallback

    clock = Clock()

    class Tick(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            clock.tick(logs or {})

    trainer = GRPOTrainer(model=policy, args=config, train_dataset=dataset, processing_class=tokenizer,
                          environment_factory=factory, reward_funcs=reward_funcs, callbacks=[Tick()])
    trainer.train()
    return _measure(trainer.state.log_history, clock.steps, args.warmup, args.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all runs")
    parser.add_argument("--steps", type=int, default=6, help="measured steps per run (after the warm-up steps)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="completions per step")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256, help="completion tokens per episode (both)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per assistant turn (ours)")
    parser.add_argument("--equal-prompt", action="store_true", help="add the toy run at our prompt length")
    parser.add_argument("--equal-tokens", type=int, metavar="N",
                        help="add a bare same-environment run whose episodes generate at most N tokens (set N to "
                             "ours' completion tokens per episode to compare at equal generated tokens)")
    parser.add_argument("--no-cache-run", action="store_true", help="leave out our run without the KV cache")
    parser.add_argument("--no-one-turn", action="store_true", help="leave out our run with one-turn episodes")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from compiler.cli import main as compile_main
    from runtime.episodes.bundle import Bundle
    from runtime.training.models import domain_corpus, load, resolve_model
    from runtime.training.rollout import RolloutStats

    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "build"
        assert compile_main([str(ROOT / "specs"), "-o", str(build), "-q"]) == 0
        bundle = Bundle.load(build / "plant_maintenance")
        model = str(resolve_model("builtin:tiny-qwen3", domain_corpus(bundle)))
        target, our_system = our_prompt(bundle, load(model)[1])
        equal_system = bare_system_prompt(load(model)[1], target, our_system)
        stats = {"ours": RolloutStats(), "ours, no KV cache": RolloutStats(), "ours, one turn": RolloutStats()}
        runs: dict[str, Any] = {
            "bare, same env": lambda out: run_bare_same_environment(args, model, bundle, out),
            "bare, toy env": lambda out: run_bare(args, model, out),
            "bare, toy, equal prompt": lambda out: run_bare(args, model, out, equal_system),
            "ours": lambda out: run_ours(args, model, bundle, out, True, stats["ours"]),
            "ours, no KV cache": lambda out: run_ours(args, model, bundle, out, False, stats["ours, no KV cache"]),
            "ours, one turn": lambda out: run_ours(args, model, bundle, out, True, stats["ours, one turn"], True),
        }
        if args.equal_tokens:
            runs["bare, same env, equal tokens"] = lambda out: run_bare_same_environment(args, model, bundle, out,
                                                                                         args.equal_tokens)
        if not args.equal_prompt:
            del runs["bare, toy, equal prompt"]
        if args.no_cache_run:
            del runs["ours, no KV cache"]
        if args.no_one_turn:
            del runs["ours, one turn"]
        names = list(runs)
        steps: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        rounds: dict[str, list[float]] = {n: [] for n in names}
        for k in range(args.rounds):
            for name in names[k % len(names):] + names[: k % len(names)]:
                measured = runs[name](Path(tmp) / f"{name}-{k}".replace(" ", "_").replace(",", ""))
                steps[name].extend(measured)
                rounds[name].append(statistics.median(s["step_time"] for s in measured))
                print(f"round {k}: {name}: {statistics.median(s['step_time'] for s in measured):.3f} s wall, "
                      f"{statistics.median(s['cpu_time'] for s in measured):.3f} s CPU", file=sys.stderr, flush=True)
    results = {n: summarise(n, steps[n], rounds[n]) for n in names}
    for name, st in stats.items():
        if name in results:
            results[name]["rollout"] = {
                "model_seconds": round(st.model_seconds, 3), "env_seconds": round(st.env_seconds, 4),
                "outside_model_share": round(st.outside_model_share, 4), "generated_tokens": st.generated_tokens,
                "observed_tokens": st.observed_tokens}
    pairs = [("ours", n) for n in results if n != "ours"]
    if "ours, one turn" in results:  # the same work per step as TRL's loop on our environment
        pairs.append(("ours, one turn", "bare, same env"))
    ratios = {f"{a} / {b}": {"step": results[a]["step_s_median"] / results[b]["step_s_median"],
                             "per_token": results[a]["ms_per_completion_token"] / results[b]["ms_per_completion_token"],
                             "cpu_step": results[a]["cpu_s_median"] / results[b]["cpu_s_median"],
                             "cpu_per_token": (results[a]["cpu_ms_per_completion_token"]
                                               / results[b]["cpu_ms_per_completion_token"])}
              for a, b in pairs}
    report = {"results": results, "ratios": ratios, "our_prompt_tokens": target,
              "threads": 1, "batch_size": args.batch_size, "num_generations": args.num_generations,
              "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"threads 1, batch {args.batch_size}, group {args.num_generations}, {args.rounds} interleaved rounds of "
          f"{args.steps} steps after {args.warmup} warm-up, {args.max_tokens} completion tokens per episode at most")
    for r in results.values():
        prompt = r["prompt_tokens_per_episode"]
        print(f"{r['name']:<24} step {r['step_s_median']:.3f} s wall (median; rounds "
              f"{', '.join(f'{t:.2f}' for t in r['step_s_round_medians'])}), {r['cpu_s_median']:.3f} s CPU  "
              f"{r['completion_tokens_per_step']:.0f} completion tokens/step  "
              f"{r['ms_per_completion_token']:.2f} ms/token  prompt {prompt or 0:.0f} tokens")
    for name, ratio in ratios.items():
        print(f"{name}: {ratio['step']:.2f}x per step ({ratio['cpu_step']:.2f}x CPU time), "
              f"{ratio['per_token']:.2f}x per completion token ({ratio['cpu_per_token']:.2f}x CPU time)")
    for name in stats:
        if name in results:
            ro = results[name]["rollout"]
            print(f"{name}, rollout time: model {ro['model_seconds']:.2f} s, outside the model "
                  f"{ro['env_seconds']:.3f} s ({100 * ro['outside_model_share']:.1f}%); tokens generated "
                  f"{ro['generated_tokens']}, observed {ro['observed_tokens']} (in the trained sequences, mask 0)")


if __name__ == "__main__":
    main()
