"""Numbers derived from a run: results grouped by workflow, branch, persona and task difficulty for each
evaluation stage, and the training curves (reward, success, loss) by step across flywheel rounds."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable

from runtime.report.runfolder import EvalStage, Row
from runtime.report.values import as_num, general

DIFFICULTY_FEATURES = ("depth", "calls", "user_turns", "adversarial")
"""Task difficulty features shown first (any other ``difficulty`` keys follow)."""

Cell = tuple[int, float, float]
"""(n, success rate, mean reward) of one group."""

REWARD_KEYS = ("rewards/reward/mean", "reward")
SUCCESS_KEYS = ("rewards/success/mean",)
LOSS_KEYS = ("loss",)


# --- groups -----------------------------------------------------------------------------------------------------


def by_group(trajectories: list[Row], key: Callable[[Row], str | None]) -> dict[str, Cell]:
    """{group: (n, success rate, mean reward)} over trials."""
    buckets: dict[str, list[Row]] = defaultdict(list)
    for t in trajectories:
        name = key(t)
        if name is not None:
            buckets[name].append(t)
    out = {}
    for name, rows in buckets.items():
        success = [as_num(r.get("success")) or 0.0 for r in rows]
        reward = [as_num(r.get("reward")) or 0.0 for r in rows]
        out[name] = (len(rows), sum(success) / len(rows), sum(reward) / len(rows))
    return out


def from_report(report: Row, key: str) -> dict[str, Cell]:
    """The same tables from report.json, for a stage without trajectories."""
    out = {}
    table = report.get(key)
    for name, row in (table.items() if isinstance(table, dict) else []):
        if isinstance(row, dict):
            n = as_num(row.get("n"))
            success, reward = as_num(row.get("success")), as_num(row.get("reward"))
            if n is not None and success is not None and reward is not None:
                out[str(name)] = (int(n), success, reward)
    return out


def branch_of(t: Row) -> str:
    path = t.get("path")
    return f"{t.get('workflow')}/{'.'.join(map(str, path)) if isinstance(path, list) else path}"


def sort_key(name: str) -> tuple[int, float, str]:
    """Numbers in numeric order first, then text."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _difficulty_value(feature: str) -> Callable[[Row], str | None]:
    def key(t: Row) -> str | None:
        d = t.get("difficulty")
        if not isinstance(d, dict) or feature not in d:
            return None
        value = d[feature]
        return "yes" if value is True else "no" if value is False else str(value)

    return key


def by_difficulty(stages: list[EvalStage]) -> tuple[list[dict[str, Cell]], list[tuple[str, list[str]]]]:
    """The groups ``"<feature> = <value>"`` of each stage, and the table's sections: each difficulty feature found
    in the trajectories with its groups in order (none: nothing to show)."""
    features: list[str] = []
    for s in stages:
        for t in s.trajectories or []:
            d = t.get("difficulty")
            if isinstance(d, dict):
                features += [f for f in d if f not in features]
    features.sort(key=lambda f: (DIFFICULTY_FEATURES.index(f) if f in DIFFICULTY_FEATURES else 99, f))
    merged: list[dict[str, Cell]] = [{} for _ in stages]
    sections = []
    for feature in features:
        key = _difficulty_value(feature)
        values: set[str] = set()
        for i, s in enumerate(stages):
            for value, cell in by_group(s.trajectories or [], key).items():
                merged[i][f"{feature} = {value}"] = cell
                values.add(value)
        sections.append((feature, [f"{feature} = {v}" for v in sorted(values, key=sort_key)]))
    return merged, sections


# --- training curves --------------------------------------------------------------------------------------------


def is_grpo(row: Row) -> bool:
    return any(k in row for k in REWARD_KEYS) or any(k.startswith("rewards/") for k in row)


def by_step(rows: list[Row]) -> tuple[list[tuple[float, Row]], list[tuple[float, str]]]:
    """(x, row) in training order, and round boundaries: x is the step, or a running count when the stage trains
    once per flywheel round (steps start again each round)."""
    latest: dict[tuple[float, float], Row] = {}
    for r in rows:
        step = as_num(r.get("step"))
        if step is not None:
            rnd = as_num(r.get("round"))
            latest[(-math.inf if rnd is None else rnd, step)] = r  # a resumed stage logs a step again: the last counts
    keys = sorted(latest)
    if all(k[0] == -math.inf for k in keys):
        return [(k[1], latest[k]) for k in keys], []
    out: list[tuple[float, Row]] = []
    marks: list[tuple[float, str]] = []
    previous: float | None = None
    for i, key in enumerate(keys, 1):
        if key[0] != previous and key[0] != -math.inf:
            marks.append((float(i), f"round {general(key[0])}"))
        previous = key[0]
        out.append((float(i), latest[key]))
    return out, marks


def first_series(steps: list[tuple[float, Row]], keys: Iterable[str]) -> tuple[str, list[tuple[float, float]]] | None:
    """The points of the first of ``keys`` logged at any step, with that key."""
    for key in keys:
        points = [(x, v) for x, r in steps if (v := as_num(r.get(key))) is not None]
        if points:
            return key, points
    return None
