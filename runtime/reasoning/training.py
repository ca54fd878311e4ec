"""Training on problem instances with TRL: SFT on computed solutions, GRPO with the checked answer as the reward.

Both use the prompt the evaluation uses (``runtime.reasoning.solvers.messages_for``, rendered by the chat template
through ``ChatFormat``), so the tokens trained on are the tokens the model is evaluated on.

- SFT (``SFTTrainer``): prompt ids + the instance's solution (ending ``Answer: ...``) + end of turn; the loss is on
  the solution only (``assistant_masks``).
- GRPO (``GRPOTrainer``): a single-turn ``rollout_func`` generates each completion with ``HFPolicy`` and returns its
  ids and sampling log-probs; the reward is 1.0 when the extracted answer passes the instance's check, else 0.0.
  Malformed answers are logged as a zero-weight reward.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.training.sft_grpo import StageResult, _log_callback, _lora, _recorder, train_and_save

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

Instance = dict[str, Any]
Sink = Callable[[dict[str, Any]], None]


def sft_dataset(fmt: Any, items: list[Instance]) -> Any:
    from datasets import Dataset

    from runtime.reasoning.solvers import messages_for

    rows: dict[str, list[list[int]]] = {"input_ids": [], "assistant_masks": []}
    for item in items:
        prompt = fmt.prompt_ids(messages_for(item["question"]))
        completion = fmt.assistant_ids(item["solution"])
        rows["input_ids"].append(prompt + completion)
        rows["assistant_masks"].append([0] * len(prompt) + [1] * len(completion))
    return Dataset.from_dict(rows)


def run_problem_sft(model_path: Path | str, items: list[Instance], out: Path, options: Any, sink: Sink,
                    use_cpu: bool = True, resume: bool = False, seed: int = 0) -> StageResult:
    """Fine-tune on the computed solutions of ``items``."""
    from trl import SFTConfig, SFTTrainer

    from runtime.training.models import load
    from runtime.training.rollout import ChatFormat

    model, tokenizer = load(model_path)
    dataset = sft_dataset(ChatFormat(tokenizer, []), items)
    metrics: list[dict[str, Any]] = []
    args = SFTConfig(
        output_dir=str(out / "trainer"), use_cpu=use_cpu, bf16=False, report_to="none",
        per_device_train_batch_size=options.batch_size, num_train_epochs=options.epochs,
        max_steps=options.max_steps or -1, learning_rate=options.learning_rate, lr_scheduler_type="cosine",
        warmup_steps=0 if options.max_steps and options.max_steps <= 4 else 2, logging_steps=1,
        save_strategy="steps", save_steps=50, save_total_limit=1,
        max_length=options.max_length, gradient_checkpointing=False, dataloader_num_workers=0,
        disable_tqdm=True, seed=seed,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=_lora() if options.lora else None,
                         callbacks=[_log_callback(_recorder(metrics, sink))])
    return train_and_save(trainer, tokenizer, out, metrics, resume)


def run_problem_grpo(model_path: Path | str, items: list[Instance], out: Path, options: Any, sink: Sink,
                     max_new_tokens: int = 64, use_cpu: bool = True, resume: bool = False,
                     seed: int = 0) -> StageResult:
    """GRPO on ``items``: single-turn completions, the checked answer as the reward."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from runtime.reasoning.answers import check_answer
    from runtime.reasoning.solvers import messages_for, reply_text
    from runtime.training.models import load
    from runtime.training.rollout import ChatFormat, HFPolicy

    model, tokenizer = load(model_path)
    model.train()
    fmt = ChatFormat(tokenizer, [])
    by_id = {item["id"]: item for item in items}
    calls = {"n": 0}
    new_tokens = min(max_new_tokens, options.max_completion_length)

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from trl.models import unwrap_model_for_generation

        chosen = [by_id[p[-1]["content"]] for p in prompts]
        contexts = [fmt.prompt_ids(messages_for(item["question"])) for item in chosen]
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                         gather_deepspeed3_params=trainer.args.ds3_gather_for_generation) as policy:
            was_training = policy.training
            policy.eval()
            generated = HFPolicy(policy, tokenizer, temperature=options.temperature,
                                 seed=seed + 1000 * calls["n"]).generate(contexts, new_tokens)
            calls["n"] += 1
            if was_training:
                policy.train()
        rewards, malformed = [], []
        for item, (ids, _) in zip(chosen, generated, strict=True):
            verdict = check_answer(reply_text(fmt, ids), item["answer"], item["check"], item.get("tolerance"))
            rewards.append(1.0 if verdict.correct else 0.0)
            malformed.append(1.0 if verdict.malformed else 0.0)
        return {"prompt_ids": contexts, "completion_ids": [ids for ids, _ in generated],
                "logprobs": [lps for _, lps in generated], "reasoning_reward": rewards,
                "reasoning_malformed": malformed}

    def field(name: str) -> Any:
        def reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
            return [float(v) for v in kwargs[name]]

        reward.__name__ = name.removeprefix("reasoning_")
        return reward

    # enough prompts for every step's distinct groups, cycling through the instances in their order
    per_step = max(1, options.batch_size // options.num_generations)
    ids = [item["id"] for item in items]
    rows = [ids[i % len(ids)] for i in range(max(len(ids), per_step * options.max_steps))]
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": i}] for i in rows]})
    metrics: list[dict[str, Any]] = []
    args = GRPOConfig(
        output_dir=str(out / "trainer"), use_cpu=use_cpu, bf16=False, report_to="none",
        per_device_train_batch_size=options.batch_size, num_generations=options.num_generations,
        max_steps=options.max_steps, learning_rate=options.learning_rate, beta=options.beta,
        loss_type=options.loss_type, max_completion_length=options.max_completion_length,
        temperature=options.temperature, logging_steps=1, save_strategy="steps", save_steps=5, save_total_limit=1,
        gradient_checkpointing=False, reward_weights=[1.0, 0.0], seed=seed, disable_tqdm=True,
        log_completions=False,
    )
    trainer = GRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          reward_funcs=[field("reasoning_reward"), field("reasoning_malformed")],
                          rollout_func=rollout_func, peft_config=_lora() if options.lora else None,
                          callbacks=[_log_callback(_recorder(metrics, sink))])
    return train_and_save(trainer, tokenizer, out, metrics, resume)
