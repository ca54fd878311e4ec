"""The top of the page: headline numbers (first and last evaluation, tasks, training steps, flywheel rounds) and
the table of the run's stages."""

from __future__ import annotations

from collections import defaultdict

from runtime.report.markup import change, e, number
from runtime.report.runfolder import Row, Run, training_rows
from runtime.report.values import as_list, as_num, as_obj, dec, general, pct


def stats(run: Run) -> str:
    cards = []
    if run.evals:
        first, last = run.evals[0].report, run.evals[-1].report
        for key, label, percent in (("success_rate", run.success_label(), True), ("mean_reward", "mean reward", False)):
            b, a = as_num(first.get(key)), as_num(last.get(key))
            if len(run.evals) > 1 and a is not None and b is not None:
                cls, text = change(b, a, percent)
                sub = f'<div class="d"><span class="muted">from {number(b, percent)} ·</span> ' \
                      f'<span class="{cls}">{text}</span></div>'
            else:
                sub = f'<div class="d muted">{e(run.evals[-1].name)}</div>'
            cards.append(f'<div class="stat"><div class="k">{label}</div><div class="v">{number(a, percent)}</div>'
                         f"{sub}</div>")
        passes = last.get("pass_hat_k")
        if isinstance(passes, dict) and len(passes) > 1:
            text = " · ".join(f"pass^{e(k)} {pct(as_num(v))}" for k, v in passes.items())
            cards.append(f'<div class="stat"><div class="k">pass^k (last)</div><div class="v">'
                         f'{pct(as_num(list(passes.values())[-1]))}</div><div class="d muted">{text}</div></div>')
    held, train = run.summary.get("heldout_tasks"), run.summary.get("train_tasks")
    tasks_label = "held-out tasks"
    if held is None and run.evals:
        held = run.evals[-1].report.get("n_tasks")
        tasks_label = "held-out tasks" if run.heldout_only else "tasks evaluated"
    if held is not None:
        evaluated = as_num(run.evals[-1].report.get("n_tasks")) if run.evals else None
        sub = " · ".join(x for x in (f"{e(train)} training" if train is not None else "",
                                     f"{general(evaluated)} evaluated" if evaluated is not None else "") if x)
        cards.append(f'<div class="stat"><div class="k">{tasks_label}</div><div class="v">{e(held)}</div>'
                     f'<div class="d muted">{sub}</div></div>')
    training = training_rows(run)
    if training:
        steps, stages = len(training), len({str(r.get("stage")) for r in training})
        cards.append(f'<div class="stat"><div class="k">training steps logged</div><div class="v">{steps}</div>'
                     f'<div class="d muted">in {stages} stage{"s" if stages != 1 else ""}</div></div>')
    if run.rounds:
        last_rate = as_num(run.rounds[-1].get("pass_rate"))
        cards.append(f'<div class="stat"><div class="k">flywheel rounds</div><div class="v">{len(run.rounds)}</div>'
                     f'<div class="d muted">last pass rate {pct(last_rate)}</div></div>')
    return f'<div class="stats">{"".join(cards)}</div>' if cards else ""


def stage_table(run: Run) -> str:
    results = as_obj(run.state.get("results"))
    stages: list[Row] = [s for s in as_list(run.summary.get("stages")) if isinstance(s, dict)] or \
        [{"name": n, **r} for n, r in results.items() if isinstance(r, dict)]
    known = {str(s.get("name")) for s in stages}
    stages += [{"name": s.name, "stage": "eval", **{k: s.report.get(k) for k in ("success_rate", "mean_reward")}}
               for s in run.evals if s.name not in known]
    steps: dict[str, int] = defaultdict(int)
    for r in training_rows(run):
        steps[str(r.get("stage"))] += 1
    known |= {str(s.get("name")) for s in stages}
    stages += [{"name": name, "stage": "training"} for name in steps if name not in known]
    if not stages:
        return ""
    rows = ['<table class="data" id="stages"><thead><tr><th>stage</th><th>kind</th><th class="num">'
            f'{run.success_label()}</th><th class="num">mean reward</th><th class="num">logged steps</th>'
            '<th class="num">seconds</th>'
            "</tr></thead><tbody>"]
    for s in stages:
        name, seconds = str(s.get("name")), as_num(s.get("seconds"))
        rows.append(f'<tr><td>{e(name)}</td><td><span class="kind">{e(s.get("stage", ""))}</span></td>'
                    f'<td class="num">{pct(as_num(s.get("success_rate")))}</td>'
                    f'<td class="num">{dec(as_num(s.get("mean_reward")))}</td>'
                    f'<td class="num">{steps.get(name, "") or "—"}</td>'
                    f'<td class="num">{e(general(seconds)) if seconds else "—"}</td></tr>')
    rows.append("</tbody></table>")
    return f'<div class="card"><h3>Stages</h3><div class="scroll">{"".join(rows)}</div></div>'
