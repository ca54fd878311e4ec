"""The "curves" section: held-out success and reward by evaluation stage, and each training stage's reward,
success (GRPO) and loss (SFT) per step."""

from __future__ import annotations

from collections import defaultdict

from runtime.report.aggregate import LOSS_KEYS, REWARD_KEYS, SUCCESS_KEYS, by_step, first_series, is_grpo
from runtime.report.charts import figure, line_chart
from runtime.report.runfolder import Row, Run, training_rows
from runtime.report.values import as_num


def curves_section(run: Run) -> str:
    charts = []
    if run.evals:
        names = [s.name for s in run.evals]
        success = [(float(i), v) for i, s in enumerate(run.evals)
                   if (v := as_num(s.report.get("success_rate"))) is not None]
        reward = [(float(i), v) for i, s in enumerate(run.evals)
                  if (v := as_num(s.report.get("mean_reward"))) is not None]
        title = "Held-out evaluation by stage" if run.heldout_only else "Evaluation by stage"
        charts.append(figure(title, line_chart(
            [("success", success), ("mean reward", reward)], x_label="evaluation stage", y_label="success / reward",
            x_names=names, unit_range=True)))
    training: dict[str, list[Row]] = defaultdict(list)
    for r in training_rows(run):
        training[str(r.get("stage"))].append(r)
    for stage, rows in training.items():
        grpo, marks = by_step([r for r in rows if is_grpo(r)])
        found = [(label, s) for label, keys in (("reward", REWARD_KEYS), ("success", SUCCESS_KEYS))
                 if (s := first_series(grpo, keys)) is not None]
        x_label = "GRPO step (all rounds)" if marks else "training step"
        if found:
            charts.append(figure(f"{stage}: reward and success per step", line_chart(
                [(f"{label} ({key})", pts) for label, (key, pts) in found], x_label=x_label,
                y_label="mean over rollouts", unit_range=True, marks=marks)))
        sft, marks = by_step([r for r in rows if not is_grpo(r)])
        loss = first_series(sft, LOSS_KEYS)
        if loss is not None:
            charts.append(figure(f"{stage}: training loss per step", line_chart(
                [("loss", loss[1])], x_label="SFT step (all rounds)" if marks else "training step", y_label="loss",
                marks=marks)))
    if not charts:
        return ""
    return (f'<section id="curves"><h2>Curves</h2><div class="charts">{"".join(charts)}</div></section>')
