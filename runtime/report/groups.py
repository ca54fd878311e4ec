"""The "by group" section: held-out success and mean reward by workflow, branch, persona and task difficulty for
each evaluation stage, with the change from the first to the last."""

from __future__ import annotations

from collections.abc import Callable

from runtime.report.aggregate import Cell, branch_of, by_difficulty, by_group, from_report, sort_key
from runtime.report.markup import bar_cell, delta_cell, e
from runtime.report.runfolder import EvalStage, Row, Run
from runtime.report.values import dec


def _table(table_id: str, title: str, stages: list[EvalStage], per_stage: list[dict[str, Cell]],
           sections: list[tuple[str, list[str]]], success_label: str) -> str:
    names = [s.name for s in stages]
    two = len(stages) > 1
    span = len(stages) + (1 if two else 0)
    head1 = (f'<tr><th rowspan="2" class="group">{e(title)}</th><th rowspan="2" class="num">trials</th>'
             f'<th colspan="{span}" class="span">{e(success_label)}</th>'
             f'<th colspan="{span}" class="span">mean reward</th></tr>')
    stage_heads = "".join(f'<th class="num">{e(n)}</th>' for n in names)
    stage_heads += '<th class="num">change</th>' if two else ""
    rows = [f'<table class="data groups" id="{e(table_id)}"><thead>{head1}<tr>{stage_heads}{stage_heads}</tr></thead>'
            "<tbody>"]
    for section, keys in sections:
        if section:
            rows.append(f'<tr class="section"><th colspan="{2 + 2 * span}">{e(section)}</th></tr>')
        for key in keys:
            cells = [g.get(key) for g in per_stage]
            n = next((c[0] for c in reversed(cells) if c is not None), 0)
            success = [c[1] if c else None for c in cells]
            reward = [c[2] if c else None for c in cells]
            row = [f'<tr><td class="group">{e(key)}</td><td class="num">{n}</td>']
            row += [bar_cell(v, True) for v in success]
            if two:
                row.append(delta_cell(success[0], success[-1], True))
            row += [f'<td class="num">{dec(v)}</td>' for v in reward]
            if two:
                row.append(delta_cell(reward[0], reward[-1], False))
            rows.append("".join(row) + "</tr>")
    rows.append("</tbody></table>")
    return f'<div class="scroll">{"".join(rows)}</div>'


def groups_section(run: Run) -> str:
    stages = run.evals
    if not stages:
        return ""
    what = "Held-out results" if run.heldout_only else "Results"
    parts = [f'<section id="groups"><h2>{what} by group</h2>',
             f'<p class="muted">Success and mean reward over all trials of each evaluation stage '
             f'({" → ".join(e(s.name) for s in stages)}); <em>change</em> is the last stage minus the first.</p>']
    keyed: list[tuple[str, str, Callable[[Row], str | None], str]] = [
        ("workflow", "Workflow", lambda t: str(t.get("workflow")), "by_workflow"),
        ("branch", "Branch", branch_of, "by_branch"),
        ("persona", "Persona", lambda t: str(t.get("persona")), "by_persona"),
    ]
    for slug, title, key, report_key in keyed:
        per_stage = [by_group(s.trajectories, key) if s.trajectories is not None else from_report(s.report, report_key)
                     for s in stages]
        names = sorted({k for g in per_stage for k in g}, key=sort_key)
        if not names:
            continue
        table = _table(f"groups-{slug}", title, stages, per_stage, [("", names)], run.success_label())
        parts.append(f'<details class="card" open><summary><h3>By {e(slug)}</h3>'
                     f'<span class="muted">{len(names)} group{"s" if len(names) != 1 else ""}</span></summary>'
                     f"{table}</details>")
    merged, sections = by_difficulty(stages)
    if sections:
        table = _table("groups-difficulty", "Difficulty", stages, merged, sections, run.success_label())
        parts.append('<details class="card" open><summary><h3>By difficulty</h3><span class="muted">task features: '
                     f'{e(", ".join(feature for feature, _ in sections))}</span></summary>{table}</details>')
    else:
        parts.append('<p class="muted">No difficulty features in the trajectories.</p>')
    parts.append("</section>")
    return "".join(parts)
