"""Runs of one pipeline over several training seeds, aggregated (``aqwen-run --seeds 0,1,2``).

The seeds vary the built-in model's initial weights, the trainers' data order and the rollouts' sampling; the task
split is the same for every seed (``split_seed``), so the spread is that of training, on the same held-out tasks.
"""

from __future__ import annotations

import json
import statistics
from typing import Any


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def aggregate(summaries: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max over the seeds of each evaluation's held-out success and mean
    reward (by stage name, in the order of the first run's stages), with every seed's values and what each run's
    model selection chose."""
    seeds = sorted(summaries)
    first = summaries[seeds[0]]
    evals = [s["name"] for s in first["stages"] if s.get("stage") == "eval"]
    stages: dict[str, Any] = {}
    for name in evals:
        rows = {seed: next(s for s in summaries[seed]["stages"] if s["name"] == name) for seed in seeds}
        stages[name] = {
            metric: {**_spread([float(rows[seed][metric]) for seed in seeds]),
                     "by_seed": {str(seed): rows[seed][metric] for seed in seeds}}
            for metric in ("success_rate", "mean_reward")
        } | {"n_tasks": rows[seeds[0]]["n_tasks"]}
    training: dict[str, Any] = {}
    for name in [s["name"] for s in first["stages"] if s.get("stage") != "eval"]:
        rows = {seed: next((s for s in summaries[seed]["stages"] if s["name"] == name), {}) for seed in seeds}
        training[name] = {"seconds": _spread([float(rows[seed].get("seconds", 0.0)) for seed in seeds]),
                          "compute": {str(seed): rows[seed].get("compute", {}) for seed in seeds}}
    return {
        "pipeline": first["pipeline"], "seeds": seeds, "split": first.get("split"),
        "heldout_tasks": first["heldout_tasks"], "evals": stages, "training": training,
        "selected": {str(seed): summaries[seed].get("selected", {}) for seed in seeds},
    }


def format_seeds(result: dict[str, Any]) -> str:
    """The aggregate as a table: per evaluation, held-out success and mean reward as mean ± std [min, max]."""
    seeds = ", ".join(str(s) for s in result["seeds"])
    lines = [f"{len(result['seeds'])} seeds ({seeds}), {result['heldout_tasks']} held-out tasks",
             f"{'stage':<16}{'held-out success':>30}{'mean reward':>30}", "-" * 76]
    for name, row in result["evals"].items():
        cells = [f"{m['mean']:.3f} ± {m['std']:.3f} [{m['min']:.3f}, {m['max']:.3f}]"
                 for m in (row["success_rate"], row["mean_reward"])]
        lines.append(f"{name:<16}{cells[0]:>30}{cells[1]:>30}")
    for name, row in result.get("training", {}).items():
        t = row["seconds"]
        computes = {json.dumps(c, sort_keys=True) for c in row["compute"].values()}
        spent = ", ".join(f"{k} {v}" for k, v in next(iter(row["compute"].values())).items()) \
            if len(computes) == 1 else "by seed: " + "; ".join(
                f"{seed}: " + ", ".join(f"{k} {v}" for k, v in c.items()) for seed, c in row["compute"].items())
        lines.append(f"{name}: {t['mean']:.0f} s [{t['min']:.0f}, {t['max']:.0f}]" + (f"; {spent}" if spent else ""))
    for seed, chosen in result["selected"].items():
        for stage, pick in chosen.items():
            lines.append(f"seed {seed}: {stage} kept step {pick['step']} (validation success "
                         f"{pick['validation']['success_rate']:.3f} on {pick['on']})")
    return "\n".join(lines)
