"""Reasoning problems in the runtime: answers extracted and checked, self-instruct rewriting, the flywheel stage.

- :mod:`runtime.reasoning.answers`: the final answer of a model's output, checked exactly, numerically, as a set or
  as a list; malformed output is counted, never raised;
- :mod:`runtime.reasoning.solvers`: who answers (the model, or a parser of the givens);
- :mod:`runtime.reasoning.selfinstruct`: teachers that rewrite questions, and the consistency filter;
- :mod:`runtime.reasoning.flywheel`: the ``reasoning_flywheel`` pipeline stage.
"""

from __future__ import annotations

from typing import Any

from runtime.reasoning.answers import Checked, check_answer, extract_answer


def run_reasoning_stage(runner: Any, model_path: str, stage: Any, name: str, resume: bool) -> dict[str, Any]:
    """The ``reasoning_flywheel`` stage of a Pipeline (see :mod:`runtime.reasoning.flywheel`)."""
    from runtime.reasoning.flywheel import run_reasoning_stage as run

    return run(runner, model_path, stage, name, resume)


__all__ = ["Checked", "check_answer", "extract_answer", "run_reasoning_stage"]
