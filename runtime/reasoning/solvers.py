"""Who answers problem instances: the model being trained (``ModelSolver``) or a parser (``ParsingSolver``).

A solver turns instances into ``k`` outputs each; :mod:`runtime.reasoning.answers` checks them. The model sees the
same prompt in evaluation, SFT and GRPO: :data:`SYSTEM_PROMPT` and the question as the user's message.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from aqwen_spec.resolved import ResolvedProblem

SYSTEM_PROMPT = ("Solve the problem. Work it out briefly, then end with one line 'Answer: <answer>'. "
                 "Give numbers without units; separate several values with commas.")

Instance = dict[str, Any]


def messages_for(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def reply_text(fmt: Any, ids: list[int]) -> str:
    """The text of a generated reply (a ``ChatFormat``'s ids), without its end-of-turn token."""
    return fmt.decode(ids[:-1] if ids and ids[-1] == fmt.eos_id else ids)


class Solver(Protocol):
    """Answers each instance's ``question`` ``k`` times."""

    def solve(self, items: list[Instance], k: int) -> list[list[str]]: ...


class ModelSolver:
    """A transformers model through the token-exact rollout path (``HFPolicy`` and the chat template)."""

    def __init__(self, model: Any, tokenizer: Any, temperature: float = 1.0, seed: int = 0,
                 max_new_tokens: int = 64, batch_rows: int = 32) -> None:
        from runtime.training.rollout import ChatFormat, HFPolicy

        self.fmt = ChatFormat(tokenizer, [])
        self.policy = HFPolicy(model, tokenizer, temperature=temperature, seed=seed)
        self.max_new_tokens = max_new_tokens
        self.batch_rows = batch_rows

    def prompt_ids(self, question: str) -> list[int]:
        return self.fmt.prompt_ids(messages_for(question))

    def solve(self, items: list[Instance], k: int) -> list[list[str]]:
        prompts = [self.prompt_ids(item["question"]) for item in items]  # each question tokenised once
        rows = [prompt for prompt in prompts for _ in range(k)]
        texts: list[str] = []
        for start in range(0, len(rows), self.batch_rows):
            chunk = rows[start:start + self.batch_rows]
            generated = self.policy.generate(chunk, self.max_new_tokens)
            texts += [reply_text(self.fmt, ids) for _, (ids, _) in zip(chunk, generated, strict=True)]
        release = getattr(self.policy, "release", None)  # single turns: nothing to keep between calls
        if release is not None:
            release()
        return [texts[i * k:(i + 1) * k] for i in range(len(items))]


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    return [value]


class ParsingSolver:
    """Solves by reading the givens back out of the question text and computing the answer from them.

    It answers only when every parameter value (numbers and words) is still written in the question, so it agrees
    with the computed answer exactly when a rewrite kept all the givens: a deterministic consistency check.
    """

    def __init__(self, problems: dict[str, ResolvedProblem]) -> None:
        self.problems = problems

    def _answer(self, item: Instance) -> str:
        from compiler.problems import DrawError, format_answer, recompute

        text = item["question"]
        numbers = {float(n) for n in _NUMBER.findall(text.replace(",", ""))}
        into = (item.get("compose") or {}).get("into")
        givens = {k: v for k, v in item["params"].items() if k != into}
        for part in [givens, (item.get("compose") or {}).get("params", {})]:
            for leaf in _leaves(part):
                if isinstance(leaf, bool) or leaf is None:
                    continue
                if isinstance(leaf, (int, float)):
                    if float(leaf) not in numbers:
                        return f"The question does not give {leaf}; I cannot solve it."
                elif str(leaf) not in text:
                    return f"The question does not mention {leaf}; I cannot solve it."
        try:
            return f"Answer: {format_answer(recompute(item, self.problems))}"
        except DrawError as exc:
            return f"I cannot solve it: {exc}"

    def solve(self, items: list[Instance], k: int) -> list[list[str]]:
        return [[self._answer(item)] * k for item in items]
