"""The task split of a pipeline: training, validation and held-out tasks, disjoint by workflow sample.

Tasks are grouped by their *sample*: the workflow and its slot values. Tasks of one sample differ only in the
persona who asks, the rest of the initial state and the adversarial variant, and most share their gold
conversation, so a sample goes to one side whole: a held-out task never has a near-duplicate in training or in
validation. (Split by task id instead, as before, 28 of the default pipeline's 83 held-out tasks shared their
workflow and slots with a training task, and 36 had a gold conversation identical to one in training.)

Each sample gets a number in [0, 1) from a hash of ``split_seed`` and the sample; below ``heldout_fraction`` it is
held out, below ``heldout_fraction + validation_fraction`` it is for validation, and above, for training. Raising
``validation_fraction`` therefore never moves a held-out task: validation is carved out of the training tasks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Tasks = list[dict[str, Any]]


def sample_key(task: dict[str, Any]) -> str:
    """The group a task splits with: its workflow and slot values (the sample it was drawn from)."""
    return json.dumps([task.get("workflow"), task.get("slots")], sort_keys=True, default=str)


def _position(seed: int, key: str) -> float:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0x100000000


Roots = Mapping[str, tuple[str, Collection[str]]]
"""A grown workflow's root: the domain's own workflow it was grown from (through any number of growths), and that
workflow's slot names."""


def source_key(task: dict[str, Any], roots: Roots) -> str:
    """The sample a task was grown from: its root workflow and the slot values it shares with it (a grown workflow
    keeps its source's slots, and a chained one adds its own). A task of the domain's own workflows is its own
    sample (:func:`sample_key`)."""
    workflow = task.get("workflow")
    if workflow not in roots:
        return sample_key(task)
    root, names = roots[str(workflow)]
    slots = task.get("slots") or {}
    return sample_key({"workflow": root, "slots": {k: v for k, v in slots.items() if k in names}})


Side = Literal["train", "validation", "heldout"]


def side(key: str, heldout_fraction: float, validation_fraction: float, seed: int) -> Side:
    """Where a sample (a :func:`sample_key` or :func:`source_key`) falls: held-out, validation or training."""
    h = _position(seed, key)
    return "heldout" if h < heldout_fraction else "validation" if h < heldout_fraction + validation_fraction \
        else "train"


@dataclass
class TaskSplit:
    """Disjoint training, validation and held-out tasks, and how they were drawn."""

    train: Tasks
    validation: Tasks
    heldout: Tasks
    heldout_fraction: float
    validation_fraction: float
    seed: int

    def describe(self) -> dict[str, Any]:
        """What ``config.json`` and ``summary.json`` record about the split."""
        samples = {name: len({sample_key(t) for t in tasks})
                   for name, tasks in (("train", self.train), ("validation", self.validation),
                                       ("heldout", self.heldout))}
        return {
            "by": "workflow sample (workflow and slot values), hashed with split_seed",
            "split_seed": self.seed, "heldout_fraction": self.heldout_fraction,
            "validation_fraction": self.validation_fraction,
            "tasks": {"train": len(self.train), "validation": len(self.validation), "heldout": len(self.heldout)},
            "samples": samples,
        }


def split_three(tasks: Tasks, heldout_fraction: float, validation_fraction: float, seed: int) -> TaskSplit:
    """Split ``tasks`` into training, validation and held-out tasks by sample (see the module's docstring)."""
    train: Tasks = []
    validation: Tasks = []
    heldout: Tasks = []
    sides = {"train": train, "validation": validation, "heldout": heldout}
    for task in tasks:
        sides[side(sample_key(task), heldout_fraction, validation_fraction, seed)].append(task)
    return TaskSplit(train, validation, heldout, heldout_fraction, validation_fraction, seed)


def split_tasks(tasks: Tasks, heldout_fraction: float, seed: int) -> tuple[Tasks, Tasks]:
    """(train, held-out), with no validation tasks."""
    split = split_three(tasks, heldout_fraction, 0.0, seed)
    return split.train, split.heldout
