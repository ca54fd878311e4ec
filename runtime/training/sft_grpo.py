"""Training stages on compiled environments: SFT on gold trajectories and GRPO, both with TRL.

Both train on token traces from :mod:`runtime.training.rollout`: the exact ids a rollout of the model produces, with the
loss on the model's own tokens only (tool results and user replies are masked out).

- SFT: the oracle's episodes (the gold trajectories played through the environment) as a pre-tokenised dataset for
  TRL's ``SFTTrainer`` (``assistant_masks`` = our mask).
- GRPO: TRL's ``GRPOTrainer`` with a ``rollout_func`` that runs whole multi-turn episodes (tools and the simulated
  user) and returns prompt ids, completion ids, sampling log-probs and an ``env_mask``; the reward is the verifier's,
  and its parts (success, gate failures, malformed calls, turns) are logged as zero-weight reward functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.episodes.bundle import Bundle
from runtime.episodes.env import EpisodeConfig
from runtime.training.rollout import (
    ChatFormat,
    HFPolicy,
    Rollout,
    RolloutStats,
    TrainingError,
    agent_traces,
    run_rollouts,
)

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


@dataclass
class StageResult:
    checkpoint: Path
    metrics: list[dict[str, Any]]


def _log_callback(sink: Callable[[dict[str, Any]], None]) -> Any:
    from transformers import TrainerCallback

    class Sink(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs:
                sink({"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}})

    return Sink()


Row = dict[str, Any]


def _quiet(trainer: Any) -> None:
    """What a trainer prints: a progress bar, or nothing with ``disable_tqdm`` (``aqwen-run --no-progress``); never
    every logged row (transformers prints each one, under the bar or instead of it): the rows go to the run's
    metrics."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            pass

    if trainer.args.disable_tqdm:
        trainer.remove_callback(PrinterCallback)
    elif trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly())


def train_and_save(trainer: Any, tokenizer: Any, out: Path, metrics: list[dict[str, Any]],
                   resume: bool) -> StageResult:
    """Train (from the last checkpoint under ``out/trainer`` when resuming) and save the model to ``out/model``."""
    _quiet(trainer)
    checkpoint = _last_checkpoint(out / "trainer") if resume else None
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    final = out / "model"
    _save_final(trainer, tokenizer, final)
    return StageResult(final, metrics)


def _recorder(metrics: list[Row], sink: Callable[[Row], None]) -> Callable[[Row], None]:
    """Keep each logged row and pass it on to the run's metrics sink."""

    def record(row: dict[str, Any]) -> None:
        metrics.append(row)
        sink(row)

    return record


def sft_dataset(traces: list[Rollout]) -> Any:
    from datasets import Dataset

    rows: dict[str, list[list[int]]] = {"input_ids": [], "assistant_masks": []}
    for r in traces:
        rows["input_ids"].append(r.trace.prompt_ids + r.trace.completion_ids)
        rows["assistant_masks"].append([0] * len(r.trace.prompt_ids) + r.trace.mask)
    return Dataset.from_dict(rows)


def run_sft(model_path: Path | str, bundle: Bundle, tasks: list[dict[str, Any]], out: Path, stage: Any,
            config: EpisodeConfig, sink: Callable[[dict[str, Any]], None], use_cpu: bool = True,
            resume: bool = False, trainer_args: dict[str, Any] | None = None,
            make_traces: Callable[[ChatFormat], list[Rollout]] | None = None, seed: int = 0,
            callbacks: list[Any] | None = None) -> StageResult:
    """Fine-tune on the gold trajectories of ``tasks`` (played by the oracle through the environment).

    ``make_traces`` replaces the oracle: it gets the model's chat format and returns the episodes to learn from
    (a teacher's, for distillation), recorded through the same token path. ``seed``: the trainer's (data order);
    ``callbacks``: more ``TrainerCallback``s (model selection, :mod:`runtime.training.select`).
    """
    from trl import SFTConfig, SFTTrainer

    from runtime.episodes.agents import OracleAgent
    from runtime.training.models import load

    model, tokenizer = load(model_path)
    fmt = ChatFormat(tokenizer, bundle.tool_schemas)
    if make_traces is not None:
        traces = make_traces(fmt)
        why = "no episode was given (a distillation whose teacher episodes all failed to replay)"
    else:
        traces = [t for t in agent_traces(bundle, tasks, OracleAgent, fmt, config) if t.result.success]
        why = (f"none of the {len(tasks)} tasks' gold trajectories succeeds within the episode budget (max_turns "
               f"{config.max_turns}, max_tokens {config.max_tokens}); raise the pipeline's budget")
    if not traces:
        raise TrainingError(f"SFT has nothing to learn from: {why}")
    dataset = sft_dataset(traces)
    metrics: list[dict[str, Any]] = []
    record = _recorder(metrics, sink)

    args = SFTConfig(**{
        **dict(output_dir=str(out / "trainer"), use_cpu=use_cpu, bf16=False, report_to="none",
               per_device_train_batch_size=stage.batch_size, num_train_epochs=stage.epochs,
               max_steps=stage.max_steps or -1, learning_rate=stage.learning_rate, lr_scheduler_type="cosine",
               warmup_steps=2, logging_steps=1, save_strategy="steps", save_steps=50, save_total_limit=1,
               max_length=stage.max_length, gradient_checkpointing=False, dataloader_num_workers=0,
               disable_tqdm=False, seed=seed),
        **(trainer_args or {}),
    })
    peft_config = _lora() if stage.lora else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=[_log_callback(record), *(callbacks or [])])
    return train_and_save(trainer, tokenizer, out, metrics, resume)


def run_grpo(model_path: Path | str, bundle: Bundle, tasks: list[dict[str, Any]], out: Path, stage: Any,
             config: EpisodeConfig, max_new_tokens: int, sink: Callable[[dict[str, Any]], None],
             use_cpu: bool = True, resume: bool = False, stats: RolloutStats | None = None,
             trainer_args: dict[str, Any] | None = None, kv_cache: bool = True, seed: int = 0,
             callbacks: list[Any] | None = None) -> StageResult:
    """GRPO over whole episodes of ``tasks`` with TRL's GRPOTrainer and our rollouts.

    ``trainer_args`` are merged last into the ``GRPOConfig`` (DeepSpeed and vLLM settings under ``accelerate``).
    ``kv_cache``: rollouts keep each episode's KV cache between its turns (``HFPolicy``); False re-encodes every
    episode from the start at each turn (the same tokens, slower; for comparison).
    The stage's ``vllm_mode`` (``colocate`` or ``server``; or ``use_vllm`` in ``trainer_args``) has TRL start vLLM,
    and the rollouts then generate through it (``runtime.backends.trl_vllm``; GPU only).
    ``seed`` seeds the trainer and the rollouts' sampling; ``callbacks``: more ``TrainerCallback``s.
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from runtime.training.models import load

    model, tokenizer = load(model_path)
    model.train()
    fmt = ChatFormat(tokenizer, bundle.tool_schemas)
    by_id = {t["id"]: t for t in tasks}
    stats = stats if stats is not None else RolloutStats()
    calls = {"n": 0}

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from trl.models import unwrap_model_for_generation

        chosen = [by_id[p[-1]["content"]] for p in prompts]
        if getattr(trainer, "use_vllm", False):  # TRL's vLLM engine, weights already synced by TRL
            from runtime.backends.trl_vllm import TRLVLLMPolicy

            engine = TRLVLLMPolicy(trainer, max_new_tokens)
            rollouts = run_rollouts(bundle, chosen, engine, fmt, config, max_new_tokens=max_new_tokens,
                                    batch_size=len(chosen), stats=stats)
            engine.finish()  # other ranks may still be generating
            return _grpo_outputs(rollouts)
        # gathers ZeRO-3 shards for generation (once per rollout, not per forward pass)
        gather = trainer.args.ds3_gather_for_generation
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                         gather_deepspeed3_params=gather) as policy_model:
            was_training = policy_model.training
            policy_model.eval()
            policy = HFPolicy(policy_model, tokenizer, temperature=stage.temperature,
                              seed=1_000_000 * seed + 1000 * calls["n"], kv_cache=kv_cache)
            calls["n"] += 1
            rollouts = run_rollouts(bundle, chosen, policy, fmt, config, max_new_tokens=max_new_tokens,
                                    batch_size=len(chosen), stats=stats)
            if was_training:
                policy_model.train()
        return _grpo_outputs(rollouts)

    def field(name: str) -> Any:
        def reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
            return [float(v) for v in kwargs[name]]

        reward.__name__ = name.removeprefix("aqwen_")
        return reward

    components = ["aqwen_reward", "aqwen_success", "aqwen_gate_failed", "aqwen_malformed", "aqwen_turns"]
    objective = "aqwen_success" if stage.reward == "success" else "aqwen_reward"  # what GRPO maximises
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": t["id"]}] for t in tasks]})
    metrics: list[dict[str, Any]] = []
    record = _recorder(metrics, sink)

    args = GRPOConfig(**{
        **dict(output_dir=str(out / "trainer"), use_cpu=use_cpu, bf16=False, report_to="none",
               per_device_train_batch_size=stage.batch_size, num_generations=stage.num_generations,
               max_steps=stage.max_steps, learning_rate=stage.learning_rate, beta=stage.beta,
               loss_type=stage.loss_type, max_completion_length=stage.max_completion_length,
               temperature=stage.temperature, logging_steps=1, save_strategy="steps", save_steps=5,
               save_total_limit=1, gradient_checkpointing=False,
               reward_weights=[float(c == objective) for c in components], seed=seed, disable_tqdm=False,
               log_completions=False),
        **_vllm_args(stage), **(trainer_args or {}),
    })
    trainer = GRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          reward_funcs=[field(c) for c in components], rollout_func=rollout_func,
                          peft_config=_lora() if stage.lora else None,
                          callbacks=[_log_callback(record), *(callbacks or [])])
    return train_and_save(trainer, tokenizer, out, metrics, resume)


def _grpo_outputs(rollouts: list[Rollout]) -> dict[str, Any]:
    """What ``rollout_func`` returns to TRL: the exact token traces, and the reward and its parts per episode."""
    return {
        "prompt_ids": [r.trace.prompt_ids for r in rollouts],
        "completion_ids": [r.trace.completion_ids for r in rollouts],
        "logprobs": [r.trace.logprobs for r in rollouts],
        "env_mask": [r.trace.mask for r in rollouts],
        "aqwen_reward": [r.result.reward for r in rollouts],
        "aqwen_success": [float(r.result.success) for r in rollouts],
        "aqwen_gate_failed": [float(r.result.score.gate_failed) for r in rollouts],
        "aqwen_malformed": [float(r.result.metrics.get("malformed", 0)) for r in rollouts],
        "aqwen_turns": [float(r.result.metrics.get("turns", 0)) for r in rollouts],
    }


def _vllm_args(stage: Any) -> dict[str, Any]:
    """GRPOConfig fields for the stage's ``vllm_mode`` (TRL then starts vLLM; ``trainer_args`` may refine them)."""
    mode = getattr(stage, "vllm_mode", "none")
    return {"use_vllm": True, "vllm_mode": mode} if mode in ("colocate", "server") else {}


def _lora() -> Any:
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def _last_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])) if folder.exists() else []
    return found[-1] if found else None


def _save_final(trainer: Any, tokenizer: Any, folder: Path) -> None:
    """A plain transformers checkpoint (what ``vllm serve`` loads), written once, with ZeRO-3 shards gathered."""
    accelerator = trainer.accelerator
    state_dict = accelerator.get_state_dict(trainer.model_wrapped)  # every rank joins the gather
    model = accelerator.unwrap_model(trainer.model)
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        if hasattr(model, "merge_and_unload"):  # LoRA: merge so the checkpoint loads without peft
            model.load_state_dict(state_dict, strict=False)
            model = model.merge_and_unload()
            state_dict = None
        model.save_pretrained(folder, state_dict=state_dict)
        tokenizer.save_pretrained(folder)
        (folder / "aqwen.json").write_text(json.dumps({"format": "transformers"}) + "\n")
    accelerator.wait_for_everyone()
