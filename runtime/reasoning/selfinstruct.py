"""Self-Instruct rewriting with a consistency filter.

A :class:`Teacher` rewrites an instance's question for variety. The answer is never taken from the rewrite: it is
recomputed from the instance's knobs and params (``compiler.problems.recompute``), and a rewrite is kept only when a
:class:`~runtime.reasoning.solvers.Solver` given the rewritten question agrees with that answer in ``k`` of ``k``
samples. A dropped rewrite leaves the instance with its question as the template wrote it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from aqwen_spec.resolved import ResolvedProblem
from runtime.reasoning.answers import check_answer
from runtime.reasoning.solvers import Instance, Solver, reply_text


class Teacher(Protocol):
    """Rewrites a question in other words; ``params`` are the values it must keep."""

    def rewrite(self, question: str, params: dict[str, Any]) -> str: ...


_OPENINGS = [
    "Here is a problem from the plant floor.",
    "A colleague on the maintenance desk asks for help.",
    "Work through the following.",
    "Please help with this calculation.",
]
_CLOSINGS = ["", "Show the key step before the answer.", "Be careful with the arithmetic.", "Keep it short."]


class ParaphraseTeacher:
    """A deterministic teacher: the question between an opening and a closing picked by a hash of the question.

    It keeps every given, so every rewrite it makes passes a solver that can read the givens."""

    name = "builtin:paraphrase"

    def rewrite(self, question: str, params: dict[str, Any]) -> str:
        h = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16)
        opening = _OPENINGS[h % len(_OPENINGS)]
        closing = _CLOSINGS[(h // len(_OPENINGS)) % len(_CLOSINGS)]
        return " ".join(x for x in (opening, question.strip(), closing) if x)


class ModelTeacher:
    """A language model asked to reword the question (greedy, so the same model gives the same rewrite)."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 192) -> None:
        from runtime.training.rollout import ChatFormat, HFPolicy

        self.fmt = ChatFormat(tokenizer, [])
        self.policy = HFPolicy(model, tokenizer, temperature=0.0)
        self.max_new_tokens = max_new_tokens

    def rewrite(self, question: str, params: dict[str, Any]) -> str:
        messages = [{"role": "system", "content": "Rewrite the user's problem in other words. Keep every number, "
                     "name and what is asked. Reply with the rewritten problem only."},
                    {"role": "user", "content": question}]
        ids, _ = self.policy.generate([self.fmt.prompt_ids(messages)], self.max_new_tokens)[0]
        return reply_text(self.fmt, ids).strip()


@dataclass
class FilterStats:
    tried: int = 0
    kept: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # why each dropped rewrite was dropped

    @property
    def dropped(self) -> int:
        return sum(self.reasons.values())

    def to_json(self) -> dict[str, Any]:
        return {"tried": self.tried, "kept": self.kept, "dropped": self.dropped,
                "dropped_because": dict(sorted(self.reasons.items()))}


def consistency_filter(instances: list[Instance], teacher: Teacher, solver: Solver, k: int,
                       problems: dict[str, ResolvedProblem]) -> tuple[list[Instance], FilterStats]:
    """Each instance with its question rewritten where the rewrite passed the filter, else as it was."""
    from compiler.problems import DrawError, recompute

    stats = FilterStats(tried=len(instances))
    candidates: list[tuple[int, Instance, Any]] = []
    for i, inst in enumerate(instances):
        try:
            rewritten = teacher.rewrite(inst["question"], dict(inst["params"]))
        except Exception as exc:  # any backend: a failed rewrite is a dropped rewrite
            stats.reasons[f"teacher failed: {type(exc).__name__}"] += 1
            continue
        if not rewritten or rewritten.strip() == inst["question"].strip():
            stats.reasons["unchanged"] += 1
            continue
        try:
            answer = recompute(inst, problems)  # from the params, never from the rewrite
        except DrawError:
            stats.reasons["answer cannot be recomputed"] += 1
            continue
        candidates.append((i, {**inst, "question": rewritten}, answer))
    out = list(instances)
    if candidates:
        outputs = solver.solve([c[1] for c in candidates], k)
        for (i, candidate, answer), texts in zip(candidates, outputs, strict=True):
            original = instances[i]
            agree = sum(check_answer(t, answer, original["check"], original.get("tolerance")).correct for t in texts)
            if agree == k and len(texts) == k:
                stats.kept += 1
                out[i] = {**candidate, "answer": answer, "original_question": original["question"], "rewritten": True}
            else:
                stats.reasons["solver disagreed"] += 1
    return out, stats
