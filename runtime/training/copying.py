"""Copy pre-training: teach the built-in tiny model to copy from its context before it sees a domain.

Nearly every tool-use task needs an id the user just gave (``WO-1005``) in a tool call, and a randomly initialised
model does not learn to copy from a few hundred SFT steps on gold trajectories: it learns to recall ids seen in
training instead. Copying from context is what an *induction head* does (attend to the token after an earlier
occurrence of the current token, and repeat it), and a small transformer forms one on synthetic data, in a sudden
phase change, when the data rewards nothing else:

1. short sequences (64 tokens) of random token ids in which one random span (8 to 32 tokens) recurs later; the loss
   is on the recurrence only, so copying is the only way to lower it. Repeated until the model copies ``target`` of
   a fixed check batch (the phase change comes after a few hundred to a couple of thousand steps, depending on the
   seed), or ``max_short_steps``;
2. long sequences (512 tokens, the length of an episode) with many short recurring spans, so the copying reaches
   across an episode's length (a model trained on 64 tokens only copies 3 to 11% at 512, measured; one trained on
   512 tokens from the start never forms the head within 1,500 steps).

Token ids are drawn uniformly from ``[low, high)`` (the ordinary tokens, not the special ones), so what is learned
is a mechanism, not a vocabulary. Heavy imports happen inside functions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CopyCurriculum:
    """The two stages of copy pre-training (defaults measured on the built-in model, see docs/training.md)."""

    short_length: int = 64
    short_batch: int = 32
    short_span: tuple[int, int] = (8, 32)
    max_short_steps: int = 3000
    target: float = 0.8
    check_every: int = 100
    long_length: int = 512
    long_batch: int = 8
    long_spans: int = 12
    long_span: tuple[int, int] = (4, 24)
    long_steps: int = 200
    learning_rate: float = 1e-3


def copy_batch(generator: Any, batch: int, length: int, spans: int, span: tuple[int, int], low: int,
               high: int) -> tuple[Any, Any]:
    """``batch`` sequences of random ids in ``[low, high)``, each with up to ``spans`` spans copied from earlier in
    the sequence to later (no two copies touch the same positions, so every copy stays intact; a span that finds no
    room after 20 draws is left out); labels are ``-100`` except on the copied tokens after each copy's first (the
    first cannot be told from the context: it is where the copy starts)."""
    import torch

    ids = torch.randint(low, high, (batch, length), generator=generator)
    labels = torch.full((batch, length), -100)

    def draw(a: int, b: int) -> int:
        return int(torch.randint(a, b + 1, (1,), generator=generator))

    for row in range(batch):
        used = [False] * length
        for _ in range(spans):
            for _attempt in range(20):
                size = draw(*span)
                source = draw(0, length - 2 * size)
                target = draw(source + size, length - size)
                if not any(used[source:source + size] + used[target:target + size]):
                    break
            else:
                continue
            used[source:source + size] = used[target:target + size] = [True] * size
            ids[row, target:target + size] = ids[row, source:source + size]
            labels[row, target + 1:target + size] = ids[row, target + 1:target + size]
    return ids, labels


def copy_accuracy(model: Any, ids: Any, labels: Any) -> float:
    """Greedy next-token accuracy of ``model`` on the labelled (copied) tokens."""
    import torch

    with torch.no_grad():
        predicted = model(input_ids=ids).logits.argmax(-1)
    mask = labels[:, 1:] != -100
    return float((predicted[:, :-1][mask] == labels[:, 1:][mask]).float().mean())


def pretrain_copying(model: Any, low: int, high: int, seed: int = 0,
                     curriculum: CopyCurriculum = CopyCurriculum()) -> dict[str, Any]:
    """Train ``model`` (in place, on CPU) by the two stages of ``curriculum``; returns what happened: steps of each
    stage, copy accuracy on fixed check batches of each length, seconds."""
    import torch

    c = curriculum
    generator = torch.Generator().manual_seed(seed)
    checks = torch.Generator().manual_seed(seed + 7919)
    short_check = copy_batch(checks, 64, c.short_length, 1, c.short_span, low, high)
    long_check = copy_batch(checks, 8, c.long_length, c.long_spans, c.long_span, low, high)
    optimizer = torch.optim.AdamW(model.parameters(), lr=c.learning_rate, weight_decay=0.0)
    start = time.time()
    model.train()

    def step(ids: Any, labels: Any) -> None:
        # the output layer only where there is a label (a quarter of the positions or less): most of a step's cost
        hidden = model.model(input_ids=ids).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        labelled = targets != -100
        torch.nn.functional.cross_entropy(model.lm_head(hidden[labelled]), targets[labelled]).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    short_steps, short_acc = 0, 0.0
    while short_steps < c.max_short_steps:
        step(*copy_batch(generator, c.short_batch, c.short_length, 1, c.short_span, low, high))
        short_steps += 1
        if short_steps % c.check_every == 0:
            model.eval()
            short_acc = copy_accuracy(model, *short_check)
            model.train()
            if short_acc >= c.target:
                break
    for _ in range(c.long_steps):
        step(*copy_batch(generator, c.long_batch, c.long_length, c.long_spans, c.long_span, low, high))
    model.eval()
    return {"short_steps": short_steps, "long_steps": c.long_steps,
            "short_accuracy": round(copy_accuracy(model, *short_check), 3),
            "long_accuracy": round(copy_accuracy(model, *long_check), 3),
            "seconds": round(time.time() - start, 1), "curriculum": asdict(c)}
