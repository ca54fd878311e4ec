"""GPU ONLY: a rollout policy on vLLM (``pip install -e '.[gpu]'``, vLLM 0.31, one CUDA GPU or more).

:class:`VLLMPolicy` implements :class:`runtime.training.rollout.Policy`, the protocol of
:class:`runtime.training.rollout.HFPolicy`: ``generate(contexts, max_new_tokens)`` takes token-id contexts (prompts are
never re-tokenised, so rollouts stay token-exact) and returns, per context, the generated ids (ending with the
end-of-turn token when the turn ended) and the sampled tokens' log-probs.

vLLM is imported when a policy is built, never when this module (or :mod:`runtime.backends`) is imported; without
vLLM the constructor raises :class:`VLLMUnavailable` saying how to install it. This file cannot run on a machine
without a GPU; its API use follows vLLM 0.31 as TRL 1.16's colocated generation uses it (``LLM.generate`` with
``{"prompt_token_ids": ...}`` prompts and ``SamplingParams(logprobs=0)``, where vLLM returns the sampled token's
log-prob at each position; ``logprobs_mode="processed_logprobs"`` so the log-probs are those of the distribution
sampled from, after temperature, as :class:`runtime.training.rollout.HFPolicy` computes them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

INSTALL_HINT = "pip install -e '.[gpu]' (vllm==0.31.0, needs a CUDA GPU)"


class VLLMUnavailable(RuntimeError):
    """vLLM is not installed (or cannot be imported) here."""


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise VLLMUnavailable(f"VLLMPolicy needs vLLM, which is not installed here ({exc}): {INSTALL_HINT}") from None
    except Exception as exc:  # vLLM present but broken (no CUDA, mismatched torch)
        raise VLLMUnavailable(f"vLLM is installed but cannot be imported: {type(exc).__name__}: {exc}") from exc
    return vllm


class VLLMPolicy:
    """Batched generation with a colocated ``vllm.LLM`` (GPU only), returning token ids and sampled log-probs.

    ``model`` is a checkpoint folder or hub id (or pass a ready ``llm``); ``llm_kwargs`` go to ``vllm.LLM``
    (``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size``, ``enable_sleep_mode``, ...).
    ``seed`` makes sampling reproducible: request ``i`` of call ``c`` gets seed ``seed + c * 100003 + i``
    (``None``: the engine's own randomness). ``stop_token_ids`` adds end-of-turn ids besides the model's EOS.
    """

    def __init__(self, model: str | Path | None = None, temperature: float = 0.0, seed: int | None = 0,
                 top_p: float = 1.0, top_k: int = 0, stop_token_ids: Iterable[int] = (), llm: Any = None,
                 **llm_kwargs: Any) -> None:
        vllm = _import_vllm()
        if llm is None:
            if model is None:
                raise ValueError("VLLMPolicy needs a model (checkpoint folder or hub id) or an llm")
            llm_kwargs.setdefault("logprobs_mode", "processed_logprobs")
            llm_kwargs.setdefault("seed", seed or 0)
            llm = vllm.LLM(model=str(model), **llm_kwargs)
        self.llm = llm
        self._sampling_params = vllm.SamplingParams
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.seed = seed
        self.stop_token_ids = [int(t) for t in stop_token_ids]
        self.calls = 0
        self.missing_logprobs = 0
        """Positions whose log-prob vLLM did not return (or returned as NaN); they are reported as 0.0."""

    def sampling_params(self, max_new_tokens: int, index: int) -> Any:
        kwargs: dict[str, Any] = {"max_tokens": max_new_tokens, "temperature": self.temperature, "logprobs": 0,
                                  "n": 1, "skip_special_tokens": False}
        if self.temperature > 0:
            kwargs["top_p"] = self.top_p
            if self.top_k > 0:
                kwargs["top_k"] = self.top_k
        if self.seed is not None:
            kwargs["seed"] = self.seed + self.calls * 100003 + index
        if self.stop_token_ids:
            kwargs["stop_token_ids"] = list(self.stop_token_ids)
        return self._sampling_params(**kwargs)

    def generate(self, contexts: list[list[int]], max_new_tokens: int) -> list[tuple[list[int], list[float]]]:
        if not contexts:
            return []
        prompts = [{"prompt_token_ids": list(c)} for c in contexts]
        params = [self.sampling_params(max_new_tokens, i) for i in range(len(contexts))]
        self.calls += 1
        outputs = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
        return [self._result(out.outputs[0]) for out in outputs]

    def _result(self, completion: Any) -> tuple[list[int], list[float]]:
        ids = [int(t) for t in completion.token_ids]
        steps = completion.logprobs or []
        logprobs: list[float] = []
        for j, token in enumerate(ids):
            value = None
            if j < len(steps) and steps[j] is not None:
                entry = steps[j].get(token) if hasattr(steps[j], "get") else None
                value = getattr(entry, "logprob", None)
            if value is None or math.isnan(value):
                self.missing_logprobs += 1
                value = 0.0
            logprobs.append(float(value))
        stop = getattr(completion, "stop_reason", None)
        if completion.finish_reason == "stop" and isinstance(stop, int) and (not ids or ids[-1] != stop):
            ids.append(stop)  # a stop token vLLM left out: keep the turn visibly ended, as HFPolicy does
            logprobs.append(0.0)
        return ids, logprobs

    def load_weights(self, named_parameters: Iterable[tuple[str, Any]]) -> None:
        """Push trained weights into the engine, then drop the prefix cache (computed with the old weights).

        Needs the model in this process, as TRL's colocate mode has it: build the ``LLM`` with
        ``distributed_executor_backend="external_launcher"`` (under torchrun/accelerate, which set ``RANK``,
        ``WORLD_SIZE`` and the rendezvous variables).
        """
        model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        for name, param in named_parameters:
            model.load_weights([(name, param)])
        self.llm.reset_prefix_cache()
