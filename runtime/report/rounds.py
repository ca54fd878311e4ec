"""The "flywheel" section: one row per round (``flywheel/round_<k>/report.json``), pass rate and difficulty per
round, pass rate by workflow, the lineage of grown tasks and any other per-round details."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from runtime.report.charts import figure, line_chart
from runtime.report.markup import bar_cell, e
from runtime.report.runfolder import Run
from runtime.report.values import as_list, as_num, as_obj, general


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="num">—</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, (int, float)):
        return f'<td class="num">{e(general(float(value)))}</td>'
    if isinstance(value, list):
        if not value:
            return '<td class="num">0</td>'
        items = ", ".join(str(v) if not isinstance(v, (dict, list)) else json.dumps(v, ensure_ascii=False)
                          for v in value)
        return (f'<td class="num"><details class="inline"><summary>{len(value)}</summary><div class="list">'
                f"{e(items)}</div></details></td>")
    if isinstance(value, dict):
        return f"<td><code>{e(json.dumps(value, ensure_ascii=False))}</code></td>"
    return f"<td>{e(value)}</td>"


def _value_text(value: Any) -> str:
    if value in ([], {}, None, ""):
        return "(none)"
    if isinstance(value, list):
        return "\n".join(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v) for v in value)
    if isinstance(value, dict):
        if not any(isinstance(v, (dict, list)) for v in value.values()):
            return ", ".join(f"{k}: {v}" for k, v in value.items())
        return json.dumps(value, ensure_ascii=False, indent=1)
    return str(value)


def flywheel_section(run: Run) -> str:
    if not run.rounds:
        return ""
    fixed = ["round", "n_tasks", "pass_rate", "mean_difficulty", "new_branches", "kept", "retired"]
    grouped = ("by_workflow", "by_branch", "by_persona")
    numbers: list[str] = []  # more numbers: columns of the table
    others: list[str] = []  # lists, text, objects: a details block per round
    for r in run.rounds:
        for k, v in r.items():
            if k in fixed or k in numbers or k in others or k in ("lineage", "_path", *grouped):
                continue
            scalar = isinstance(v, (int, float)) or v is None
            (numbers if scalar else others).append(k)
    columns = fixed + numbers
    nested = len({str(r["_path"]).rsplit("/", 1)[0] for r in run.rounds}) > 1
    head = ("<th>folder</th>" if nested else "") + "".join(
        f'<th class="num">{e(c.replace("_", " "))}</th>' for c in columns)
    rows = [f'<table class="data" id="flywheel-rounds"><thead><tr>{head}</tr></thead><tbody>']
    for r in run.rounds:
        cells = [f"<td>{e(r['_path'])}</td>"] if nested else []
        for c in columns:
            rate = as_num(r.get(c)) if c == "pass_rate" else None
            cells.append(bar_cell(rate, True) if rate is not None else _cell(r.get(c)))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    rows.append("</tbody></table>")
    x_names = [str(r.get("round", i + 1)) for i, r in enumerate(run.rounds)]
    pass_rate = [(float(i), v) for i, r in enumerate(run.rounds) if (v := as_num(r.get("pass_rate"))) is not None]
    charts = [figure("Pass rate per round", line_chart([("pass rate", pass_rate)], x_label="flywheel round",
                                                        y_label="pass rate", percent=True, x_names=x_names,
                                                        unit_range=True))]
    difficulty = [(float(i), v) for i, r in enumerate(run.rounds)
                  if (v := as_num(r.get("mean_difficulty"))) is not None]
    if difficulty:
        charts.append(figure("Mean task difficulty per round", line_chart(
            [("mean difficulty", difficulty)], x_label="flywheel round", y_label="mean difficulty", x_names=x_names)))
    parts = [f'<section id="flywheel"><h2>Flywheel rounds</h2><div class="charts">{"".join(charts)}</div>',
             f'<div class="card"><div class="scroll">{"".join(rows)}</div></div>']
    by_workflow = [as_obj(r.get("by_workflow")) for r in run.rounds]
    workflows = sorted({w for table in by_workflow for w in table})
    if workflows:
        body = []
        for w in workflows:
            cells = [bar_cell(as_num(as_obj(table.get(w)).get("pass_rate")), True) for table in by_workflow]
            body.append(f'<tr><td class="group">{e(w)}</td>{"".join(cells)}</tr>')
        head = "".join(f'<th class="num">round {e(x)}</th>' for x in x_names)
        parts.append('<details class="card"><summary><h3>Pass rate by workflow</h3><span class="muted">per round, '
                     f'{len(workflows)} workflows (grown ones appear when first drawn)</span></summary>'
                     f'<div class="scroll"><table class="data groups" id="flywheel-workflows"><thead><tr>'
                     f'<th>workflow</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div></details>')
    grown = [(r.get("round", "?"), i) for r in run.rounds for i in as_list(r.get("lineage")) if isinstance(i, dict)]
    if grown:
        operators: dict[str, int] = defaultdict(int)
        for _, i in grown:
            operators[str(i.get("operator", "?"))] += 1
        with_workflow = any("workflow" in i for _, i in grown)
        body = [f'<tr><td class="num">{e(rnd)}</td><td><span class="kind">{e(i.get("operator", ""))}</span></td>'
                + (f'<td><code>{e(i.get("workflow", ""))}</code></td>' if with_workflow else "")
                + f'<td><code>{e(i.get("task", ""))}</code></td><td><code>{e(i.get("grown_from", ""))}</code></td></tr>'
                for rnd, i in grown]
        by_op = ", ".join(f"{e(op)} {n}" for op, n in sorted(operators.items()))
        head = '<th class="num">round</th><th>operator</th>' + ("<th>workflow</th>" if with_workflow else "")
        parts.append(f'<details class="card"><summary><h3>Lineage</h3><span class="muted">{len(grown)} grown '
                     f'task{"s" if len(grown) != 1 else ""}: {by_op}</span></summary><div class="scroll">'
                     f'<table class="data" id="flywheel-lineage"><thead><tr>{head}<th>task</th><th>grown from</th>'
                     f'</tr></thead><tbody>{"".join(body)}</tbody></table></div></details>')
    if others:
        blocks = []
        for r, name in zip(run.rounds, x_names, strict=True):
            items = "".join(f"<dt>{e(k.replace('_', ' '))}</dt><dd><pre>{e(_value_text(r[k]))}</pre></dd>"
                            for k in others if k in r)
            if items:
                blocks.append(f'<div class="round-more"><h4>Round {e(name)}</h4><dl>{items}</dl></div>')
        parts.append('<details class="card"><summary><h3>Round details</h3><span class="muted">'
                     f'{e(", ".join(k.replace("_", " ") for k in others))}</span></summary>{"".join(blocks)}</details>')
    parts.append("</section>")
    return "".join(parts)
