"""Model selection on validation tasks: the checkpoint of a training stage that is handed on.

A stage with ``select_every: N`` evaluates the model being trained on the pipeline's validation tasks (greedy)
before its first step, every N steps and after its last, and keeps the best of those checkpoints: the highest
validation success, then the highest mean reward, the earliest on a tie. The held-out tasks play no part, so the
final held-out evaluation of the chosen model is an honest estimate. Evaluating does not change what is trained:
the random number generators are put back as they were.

``<stage>/select/selection.json`` lists every candidate (written after each, so an interrupted stage resumes with
the candidates it had) and ``<stage>/select/best/`` holds the best model so far.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

Score = Callable[[Any, Any], tuple[float, float]]
"""(model, tokenizer) -> (success rate, mean reward) on the validation tasks."""


def better(a: dict[str, Any], b: dict[str, Any] | None) -> bool:
    """Whether candidate ``a`` beats ``b`` (by success, then mean reward; a tie keeps ``b``, the earlier)."""
    return b is None or (a["success_rate"], a["mean_reward"]) > (b["success_rate"], b["mean_reward"])


class CheckpointSelector:
    """A ``TrainerCallback`` (built by :func:`selector_callback`) that scores checkpoints and keeps the best."""

    def __init__(self, score: Score, every: int, folder: Path, on: str,
                 sink: Callable[[dict[str, Any]], None] = lambda row: None) -> None:
        self.score = score
        self.every = every
        self.folder = folder
        self.on = on
        self.sink = sink
        self.candidates: list[dict[str, Any]] = []
        saved = folder / "selection.json"
        if saved.exists():  # a resumed stage keeps what it had scored
            self.candidates = json.loads(saved.read_text())["candidates"]

    @property
    def best(self) -> dict[str, Any] | None:
        best: dict[str, Any] | None = None
        for c in self.candidates:
            if better(c, best):
                best = c
        return best

    @property
    def best_model(self) -> Path:
        return self.folder / "best"

    def scored(self, step: int) -> bool:
        return any(c["step"] == step for c in self.candidates)

    def consider(self, step: int, model: Any, tokenizer: Any) -> None:
        """Score the model at ``step``; save it if it is the best so far."""
        import random

        import numpy as np
        import torch

        if self.scored(step):
            return
        rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        was_training = model.training
        model.eval()
        try:
            success, reward = self.score(model, tokenizer)
        finally:
            if was_training:
                model.train()
            random.setstate(rng[0])
            np.random.set_state(rng[1])
            torch.set_rng_state(rng[2])
        candidate = {"step": step, "success_rate": success, "mean_reward": reward}
        if better(candidate, self.best):
            _save(model, tokenizer, self.best_model)
        self.candidates.append(candidate)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / "selection.json.tmp"
        tmp.write_text(json.dumps({"on": self.on, "every": self.every, "candidates": self.candidates}, indent=2) + "\n")
        os.replace(tmp, self.folder / "selection.json")
        self.sink({"step": step, "event": "select", "validation_success_rate": success,
                   "validation_mean_reward": reward})

    def result(self) -> dict[str, Any]:
        """What the stage's entry in ``state.json`` and ``summary.json`` says about the choice."""
        best = self.best
        assert best is not None, "no checkpoint was scored"
        return {"on": self.on, "every": self.every, "step": best["step"],
                "validation": {"success_rate": best["success_rate"], "mean_reward": best["mean_reward"]},
                "candidates": self.candidates}


def selector_callback(selector: CheckpointSelector) -> Any:
    """The ``TrainerCallback`` that drives ``selector``: before the first step, every ``every`` steps, at the end."""
    from transformers import TrainerCallback

    class Select(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                           processing_class: Any = None, **kwargs: Any) -> None:
            if state.global_step == 0:
                selector.consider(0, model, processing_class)

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None,
                        processing_class: Any = None, **kwargs: Any) -> None:
            if state.global_step % selector.every == 0:
                selector.consider(state.global_step, model, processing_class)

        def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None,
                         processing_class: Any = None, **kwargs: Any) -> None:
            selector.consider(state.global_step, model, processing_class)

    return Select()


def _save(model: Any, tokenizer: Any, folder: Path) -> None:
    """A plain transformers checkpoint, as a stage's final ``model/`` is."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "aqwen.json").write_text(json.dumps({"format": "transformers"}) + "\n")
