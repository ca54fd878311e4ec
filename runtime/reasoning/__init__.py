"""Reasoning problems in the runtime: answers extracted and checked, self-instruct rewriting, the flywheel stage.

- :mod:`runtime.reasoning.answers`: the final answer of a model's output, checked exactly, numerically, as a set or
  as a list; malformed output is counted, never raised;
- :mod:`runtime.reasoning.solvers`: who answers (the model, or a parser of the givens);
- :mod:`runtime.reasoning.selfinstruct`: teachers that rewrite questions, and the consistency filter;
- :mod:`runtime.reasoning.flywheel`: the ``reasoning_flywheel`` pipeline stage.
- :mod:`runtime.reasoning.training`: single-turn SFT and GRPO on problems.
"""

from __future__ import annotations

from runtime.reasoning.answers import Checked, check_answer, extract_answer

__all__ = ["Checked", "check_answer", "extract_answer"]
