"""Checks of ``kind: Pipeline`` documents: what ``aqwen-run``, TRL and the runtime would reject, found at lint time.

The checks read the document's YAML data, not its validated model, so a pipeline with a schema error (a typo in one
stage) still gets every other problem reported: each stage, the model and the teacher are validated on their own,
and what does not validate was reported by the loader and is skipped here. Constraints, each at the key's line:

- the domain exists; a ``builtin:`` model (the pipeline's, a distillation teacher's, a reasoning flywheel's
  ``teacher`` or ``solver``) is one of :data:`BUILTIN_MODELS`; ``model.id_prefixes`` and
  ``model.copy_pretraining`` go with ``builtin:tiny-qwen3`` only;
- ``backend: openai`` needs ``model.endpoint`` and trains nothing (only ``eval`` stages); a distillation teacher on
  ``backend: openai`` needs its ``endpoint``;
- ``vllm_mode`` (a GRPO stage's, or the GRPO options of a flywheel) needs ``backend: vllm``;
- GRPO (a ``grpo`` stage, a flywheel's or a reasoning flywheel's ``grpo``): ``batch_size`` is a multiple of
  ``num_generations``. TRL's ``GRPOConfig`` makes its generation batch ``batch_size`` x processes x gradient
  accumulation and refuses one that is not made of whole groups ("generation_batch_size (4) must be divisible by
  num_generations (3)"); ``aqwen-run`` trains in one process with no accumulation, so the generation batch is
  ``batch_size`` itself (a multiple also fits any number of processes);
- a reasoning flywheel names problems of its domain and has some;
- the task split leaves tasks for training: ``heldout_fraction + validation_fraction`` is below 1 (AQ115);
- what needs validation tasks has them: a stage's ``select_every``, an ``eval`` stage's ``split: validation``
  need ``validation_fraction`` above 0 (AQ116);
- ``select_every`` keeps plain checkpoints: not with ``lora: true`` (AQ117);
- a stage's ``from`` names an earlier training stage of the pipeline, whose model it starts from (AQ118).
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from aqwen_spec.check.context import DocChecker
from aqwen_spec.diagnostics import did_you_mean
from aqwen_spec.documents.pipeline import GRPOOptions, ModelSpec, Pipeline, Stage, TeacherSpec
from aqwen_spec.loader import Broken
from aqwen_spec.resolved import SpecSet
from aqwen_spec.source import YPath

BUILTIN_MODELS = ("builtin:tiny-qwen3", "builtin:smollm2-135m")
_STAGE: TypeAdapter[Any] = TypeAdapter(Stage)
_BACKENDS: tuple[str, ...] = get_args(Pipeline.model_fields["backend"].annotation)


def check_pipeline(c: DocChecker, data: dict[str, Any], specs: SpecSet, broken: Broken) -> None:
    """Report what the training stack would reject in the pipeline ``data`` (a document's YAML mapping)."""
    domain = data.get("domain")
    if isinstance(domain, str) and domain not in specs.domains and not broken.skip(("Domain", domain)):
        c.report("AQ402", f"unknown domain '{domain}'", ("domain",), did_you_mean(domain, specs.domains))
    backend = data.get("backend", Pipeline.model_fields["backend"].default)
    backend = backend if backend in _BACKENDS else None  # else reported by the loader: skip what depends on it
    model = _valid(ModelSpec, data.get("model"))
    if model is not None:
        _builtin(c, model.name, ("model", "name"))
        for option in ("id_prefixes", "copy_pretraining"):
            if getattr(model, option) and model.name != "builtin:tiny-qwen3":
                c.report("AQ106", f"model.{option} is an option of builtin:tiny-qwen3 only (the model is "
                         f"'{model.name}')", ("model", option), "remove it, or use builtin:tiny-qwen3")
        if backend == "openai" and not model.endpoint:
            c.report("AQ104", "backend openai needs model.endpoint (the server's base URL)", ("model",))
    validation = _check_split(c, data)
    stages = data.get("stages")
    trained: list[str] = []  # the names of the training stages so far (as aqwen-run names them)
    for i, raw in enumerate(stages if isinstance(stages, list) else []):
        stage = _valid_stage(raw)
        if stage is not None:
            _check_stage(c, stage, raw, ("stages", i), backend, str(domain), specs, broken)
            _check_selection(c, stage, raw, ("stages", i), validation)
            _check_from(c, stage, ("stages", i), trained)
        if isinstance(raw, dict) and raw.get("stage") != "eval":
            trained.append(str(raw.get("name") or f"{raw.get('stage')}_{i}"))


def _check_from(c: DocChecker, stage: Any, ypath: YPath, trained: list[str]) -> None:
    start = getattr(stage, "start_from", None)
    if start is None or start in trained:
        return
    hint = did_you_mean(start, trained) or (f"earlier training stages: {', '.join(trained)}" if trained
                                            else "put the stage it starts from before it, or drop from:")
    c.report("AQ118", f"from: '{start}' is no earlier training stage of this pipeline", (*ypath, "from"), hint)


def _fraction(data: dict[str, Any], key: str) -> float | None:
    """The pipeline's ``key`` (its default when absent), or None where it is not valid (reported by the loader)."""
    field = Pipeline.model_fields[key]
    try:
        return float(TypeAdapter(Annotated[float, *field.metadata]).validate_python(data.get(key, field.default)))
    except ValidationError:
        return None


def _check_split(c: DocChecker, data: dict[str, Any]) -> float | None:
    """Training, validation and held-out shares that leave tasks to train on; the validation share (None if it
    is not valid: reported by the loader)."""
    heldout, validation = _fraction(data, "heldout_fraction"), _fraction(data, "validation_fraction")
    if heldout is not None and validation is not None and heldout + validation >= 1:
        at = "validation_fraction" if "validation_fraction" in data else "heldout_fraction"
        c.report("AQ115", f"heldout_fraction ({heldout}) and validation_fraction ({validation}) leave no tasks to "
                 "train on: together they must be below 1", (at,),
                 f"lower {at} to below {round(1 - (validation if at == 'heldout_fraction' else heldout), 6)}",
                 key=True)
    return validation


def _check_selection(c: DocChecker, stage: Any, raw: dict[str, Any], ypath: YPath,
                     validation: float | None) -> None:
    needs = "select_every" if getattr(stage, "select_every", None) else \
        "split" if stage.stage == "eval" and stage.split == "validation" else None
    if needs is not None and validation == 0:
        what = "model selection (select_every) chooses on validation tasks" if needs == "select_every" \
            else "an eval stage with split: validation evaluates the validation tasks"
        c.report("AQ116", f"{what}, and the pipeline has none (validation_fraction is 0)", (*ypath, needs),
                 "set the pipeline's validation_fraction, e.g. validation_fraction: 0.15", key=True)
    if needs == "select_every" and stage.lora:
        c.report("AQ117", "select_every keeps whole-model checkpoints, not LoRA adapters", (*ypath, "select_every"),
                 "drop lora: true, or drop select_every", key=True)


def _valid(model: type[BaseModel], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _valid_stage(raw: Any) -> Any:
    try:
        return _STAGE.validate_python(raw)
    except ValidationError:
        return None


def _builtin(c: DocChecker, name: str, ypath: YPath) -> None:
    if name.startswith("builtin:") and name not in BUILTIN_MODELS:
        c.report("AQ106", f"unknown built-in model '{name}'", ypath,
                 did_you_mean(name, BUILTIN_MODELS) or "built-in models: " + ", ".join(BUILTIN_MODELS))


def _check_stage(c: DocChecker, stage: Any, raw: dict[str, Any], ypath: YPath, backend: str | None, domain: str,
                 specs: SpecSet, broken: Broken) -> None:
    if backend == "openai" and stage.stage != "eval":
        c.report("AQ106", f"a {stage.stage} stage trains the model: it needs backend hf or vllm, not openai",
                 (*ypath, "stage"), "evaluate a served model with backend openai; train with hf")
    if stage.stage == "grpo":
        _check_grpo(c, stage, raw, ypath, backend)
    elif stage.stage in ("flywheel", "reasoning_flywheel") and stage.grpo is not None:
        grpo_raw = raw.get("grpo")
        _check_grpo(c, stage.grpo, grpo_raw if isinstance(grpo_raw, dict) else {}, (*ypath, "grpo"), backend)
    if stage.stage == "distill":
        _check_teacher(c, stage.teacher, (*ypath, "teacher"))
    if stage.stage == "reasoning_flywheel":
        if stage.teacher is not None and stage.teacher != "builtin:paraphrase":
            _builtin(c, stage.teacher, (*ypath, "teacher"))
        if stage.solver not in ("model", "builtin:parser"):
            _builtin(c, stage.solver, (*ypath, "solver"))
        _check_reasoning_stage(c, stage, ypath, domain, specs, broken)


def _check_grpo(c: DocChecker, options: GRPOOptions, raw: dict[str, Any], ypath: YPath, backend: str | None) -> None:
    if options.vllm_mode != "none" and backend not in ("vllm", None):
        c.report("AQ106", "vllm_mode needs backend: vllm", (*ypath, "vllm_mode"))
    n, batch = options.num_generations, options.batch_size
    if batch % n == 0:
        return
    written = [k for k in ("num_generations", "batch_size") if k in raw]
    at = (*ypath, written[0]) if written else ypath
    shown = {k: f"{v}" if k in raw else f"{v}, the default" for k, v in (("num_generations", n), ("batch_size", batch))}
    lower, upper = batch // n * n, (batch // n + 1) * n
    sizes = _either([x for x in (lower, upper) if x >= n])
    divisors = _either([d for d in range(2, batch + 1) if batch % d == 0])
    c.report(
        "AQ110",
        f"batch_size ({shown['batch_size']}) must be a multiple of num_generations ({shown['num_generations']}): "
        "TRL's GRPO trains on whole groups of completions per prompt",
        at,
        f"set batch_size to {sizes}" + (f", or num_generations to {divisors}" if divisors else ""),
        key=bool(written),
    )


def _either(values: list[int]) -> str:
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _check_teacher(c: DocChecker, teacher: TeacherSpec, ypath: YPath) -> None:
    if teacher.backend == "openai":
        if not teacher.endpoint:
            c.report("AQ104", "a teacher on backend openai needs its endpoint (the server's base URL)", ypath)
    else:
        _builtin(c, teacher.name, (*ypath, "name"))


def _check_reasoning_stage(c: DocChecker, stage: Any, ypath: YPath, domain: str, specs: SpecSet,
                           broken: Broken) -> None:
    """A reasoning flywheel needs Problem documents of its domain; the problems it names must exist."""
    available = specs.problems_of(domain)
    for j, name in enumerate(stage.problems):
        if name not in available and not broken.skip(("Problem", name)):
            message = f"problem '{name}' is not of domain '{domain}'" if name in specs.problems \
                else f"unknown problem '{name}'"
            c.report("AQ411", message, (*ypath, "problems", j), did_you_mean(name, available))
    if not available and not broken.skip_kind("Problem"):
        c.report("AQ410", f"a reasoning_flywheel stage needs Problem documents, and domain '{domain}' has none",
                 (*ypath, "stage"), "add kind: Problem documents with this domain (or with no domain)")
