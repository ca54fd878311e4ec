"""Model backends: an agent for OpenAI-compatible servers, concurrent evaluation, and (GPU only) a vLLM policy.

Everything is imported on first use: importing :mod:`runtime.backends` imports neither torch nor vLLM.

- :class:`OpenAIAgent` (``runtime.backends.openai``): an :class:`runtime.episodes.agents.Agent` that asks any
  OpenAI-compatible chat-completions server (vLLM, SGLang, ``aqwen-run serve``) for each turn; standard library only.
- :func:`evaluate_concurrent` (``runtime.backends.concurrent``): :func:`runtime.episodes.evaluate.evaluate` with
  episodes in a thread pool, so a slow reply never stalls other episodes.
- :class:`VLLMPolicy` (``runtime.backends.vllm``, GPU only): :class:`runtime.training.rollout.Policy` on ``vllm.LLM``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.backends.concurrent import evaluate_concurrent, run_episode_counted
    from runtime.backends.openai import BackendError, OpenAIAgent, from_openai_message, to_openai_messages
    from runtime.backends.vllm import VLLMPolicy, VLLMUnavailable

_EXPORTS = {
    "OpenAIAgent": "runtime.backends.openai",
    "BackendError": "runtime.backends.openai",
    "to_openai_messages": "runtime.backends.openai",
    "from_openai_message": "runtime.backends.openai",
    "evaluate_concurrent": "runtime.backends.concurrent",
    "run_episode_counted": "runtime.backends.concurrent",
    "VLLMPolicy": "runtime.backends.vllm",
    "VLLMUnavailable": "runtime.backends.vllm",
}

__all__ = [
    "BackendError",
    "OpenAIAgent",
    "VLLMPolicy",
    "VLLMUnavailable",
    "evaluate_concurrent",
    "from_openai_message",
    "run_episode_counted",
    "to_openai_messages",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime.backends' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
