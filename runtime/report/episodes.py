"""The "episodes" section: a sample of episodes from the first and last evaluations (the same tasks where they
exist), each with its verifier checks and messages, and the filter bar the page's script drives."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from runtime.report.markup import e
from runtime.report.runfolder import Row, Run
from runtime.report.values import as_list, as_num, as_obj, dec, general

DEFAULT_EPISODES = 40
"""Episodes sampled from each of the first and last evaluations."""


def sample_episodes(trajectories: list[Row], n: int, prefer: Iterable[str] = ()) -> list[Row]:
    """Up to ``n`` episodes: those of the task ids in ``prefer`` first, then round-robin over (workflow, outcome)."""
    wanted = list(dict.fromkeys(prefer))
    chosen: list[Row] = []
    taken: set[int] = set()
    by_id: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(trajectories):
        by_id[str(t.get("task_id"))].append(i)
    for task_id in wanted:
        for i in by_id.get(task_id, [])[:1]:
            if len(chosen) < n:
                chosen.append(trajectories[i])
                taken.add(i)
    buckets: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for i, t in enumerate(trajectories):
        if i not in taken:
            buckets[(str(t.get("workflow")), not t.get("success"))].append(i)
    queues = [buckets[k] for k in sorted(buckets)]
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(trajectories[queue.pop(0)])
    return chosen


def _pretty(text: str) -> str:
    """JSON text indented (tool results are JSON); anything else as it is."""
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return text


def _message(m: Row, common_system: str | None) -> str:
    role = str(m.get("role", "?"))
    content = m.get("content")
    text = content if isinstance(content, str) else "" if content is None else json.dumps(content, ensure_ascii=False)
    if role == "system":
        if text == common_system:
            return '<div class="msg system"><span class="role">system</span><span class="muted">the common system ' \
                   "prompt (shown above the episodes)</span></div>"
        return (f'<details class="msg system"><summary><span class="role">system</span> prompt, {len(text)} '
                f'characters</summary><pre class="text">{e(text)}</pre></details>')
    if role == "tool":
        name = str(m.get("name", ""))
        is_error = name == "error" or '"error"' in text[:200]
        return (f'<div class="msg tool{" error" if is_error else ""}"><span class="role">tool '
                f'<code class="name">{e(name)}</code></span>'
                f'<pre class="text">{e(_pretty(text))}</pre></div>')
    calls = as_list(m.get("tool_calls"))
    body = f'<div class="text">{e(text)}</div>' if text.strip() else ""
    for c in calls:
        fn = c.get("function", c) if isinstance(c, dict) else {}
        name = fn.get("name", "?") if isinstance(fn, dict) else "?"
        args = fn.get("arguments", {}) if isinstance(fn, dict) else {}
        shown = args if isinstance(args, str) else json.dumps(args, indent=2, ensure_ascii=False)
        body += f'<div class="call"><span class="fn">{e(name)}</span><pre>{e(shown)}</pre></div>'
    if not body:
        body = '<div class="muted">(empty turn)</div>'
    cls = role if role in ("user", "assistant") else "other"
    return f'<div class="msg {cls}"><span class="role">{e(role)}</span>{body}</div>'


def _checks(score: Any) -> str:
    checks = score.get("checks") if isinstance(score, dict) else None
    if not isinstance(checks, list) or not checks:
        return '<p class="muted">No verifier checks recorded.</p>'
    rows = []
    for c in checks:
        if not isinstance(c, dict):
            continue
        if not c.get("applicable", True):
            mark, cls = "n/a", "na"
        elif c.get("passed"):
            mark, cls = "pass", "pass"
        else:
            mark, cls = "fail", "fail"
        gate = ' <span class="kind">gate</span>' if c.get("gate") else ""
        weight = as_num(c.get("weight"))
        rows.append(f'<tr class="check {cls}"><td><span class="badge {cls}">{mark}</span></td>'
                    f'<td>{e(c.get("name", ""))}{gate}</td><td>{e(c.get("kind", ""))}</td>'
                    f'<td class="num">{general(weight) if weight is not None else "—"}</td>'
                    f'<td class="detail">{e(c.get("detail", ""))}</td></tr>')
    gate = '<p class="warn">A gate failed: the reward is 0.</p>' if score.get("gate_failed") else ""
    return (f'{gate}<table class="data checks"><thead><tr><th>result</th><th>check</th><th>kind</th>'
            f'<th class="num">weight</th><th>detail</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _episode(t: Row, stage: str, common_system: str | None) -> str:
    success = bool(t.get("success"))
    outcome = "pass" if success else "fail"
    metrics = as_obj(t.get("metrics"))
    path = t.get("path")
    branch = ".".join(map(str, path)) if isinstance(path, list) else str(path or "")
    facts = [f"reward {dec(as_num(t.get('reward')))}"]
    for key, label in (("turns", "turn"), ("tool_calls", "tool call"), ("malformed", "malformed call")):
        count = as_num(metrics.get(key))
        if count is not None:
            facts.append(f"{general(count)} {label}{'' if count == 1 else 's'}")
    if metrics.get("terminated_by"):
        facts.append(f"ended by {metrics['terminated_by']}")
    task_id = str(t.get("task_id", ""))
    search = " ".join(str(x) for x in (task_id, t.get("workflow"), branch, t.get("persona"))).lower()
    messages = as_list(t.get("messages"))
    meta = " · ".join(str(x) for x in (t.get("workflow", ""), branch, t.get("persona")) if x)
    summary = (f'<summary><span class="badge {outcome}">{outcome}</span><span class="stage">{e(stage)}</span>'
               f'<code class="task">{e(task_id)}</code><span class="muted small">trial {e(t.get("trial", 0))}</span>'
               f'<span class="facts">{e(meta)} <span class="sep">|</span> {e(" · ".join(facts))}</span></summary>')
    other = {k: v for k, v in metrics.items() if k not in ("turns", "tool_calls", "malformed", "terminated_by")}
    metric_line = " · ".join(f"{k} {v}" for k, v in other.items())
    body = (f'<div class="ep-body"><h4>Verifier checks</h4>{_checks(t.get("score"))}'
            f'<p class="muted small">{e(metric_line)}</p><h4>Conversation</h4>'
            f'{"".join(_message(m, common_system) for m in messages if isinstance(m, dict))}</div>')
    return (f'<details class="episode" data-stage="{e(stage)}" data-workflow="{e(t.get("workflow", ""))}" '
            f'data-outcome="{outcome}" data-search="{e(search)}">{summary}{body}</details>')


def episodes_section(run: Run, n: int) -> str:
    stages = [s for s in run.evals if s.trajectories]
    if not stages or n <= 0:
        return ""
    last = stages[-1]
    shown: list[tuple[str, Row]] = [(last.name, t) for t in sample_episodes(last.trajectories or [], n)]
    if len(stages) > 1:
        first = stages[0]
        prefer = [str(t.get("task_id")) for _, t in shown]
        shown += [(first.name, t) for t in sample_episodes(first.trajectories or [], n, prefer)]
    systems: dict[str, int] = defaultdict(int)
    for _, t in shown:
        for m in t.get("messages") or []:
            if isinstance(m, dict) and m.get("role") == "system" and isinstance(m.get("content"), str):
                systems[m["content"]] += 1
    common = max(systems, key=lambda k: systems[k]) if systems else None
    workflows = sorted({str(t.get("workflow", "")) for _, t in shown})
    stage_names = list(dict.fromkeys(s for s, _ in shown))
    total = {s.name: len(s.trajectories or []) for s in stages}
    options = "".join(f'<option value="{e(s)}">{e(s)}</option>' for s in stage_names)
    wf_options = "".join(f'<option value="{e(w)}">{e(w)}</option>' for w in workflows)
    counts = ", ".join(f"{sum(1 for s, _ in shown if s == name)} of {total[name]} from {e(name)}"
                       for name in stage_names)
    filters = (
        '<div class="filters" id="filters" hidden>'
        f'<label>stage <select id="f-stage"><option value="">all</option>{options}</select></label>'
        f'<label>workflow <select id="f-workflow"><option value="">all</option>{wf_options}</select></label>'
        '<label>outcome <select id="f-outcome"><option value="">all</option><option value="pass">pass</option>'
        '<option value="fail">fail</option></select></label>'
        '<label>search <input id="f-search" type="search" placeholder="task id, branch, persona"></label>'
        '<button type="button" id="f-open">expand all</button><button type="button" id="f-close">collapse all</button>'
        '<span class="muted" id="f-count"></span></div>'
    )
    system = (f'<details class="card"><summary><h3>System prompt</h3><span class="muted">common to the episodes '
              f'below</span></summary><pre class="text">{e(common)}</pre></details>') if common else ""
    episodes = "".join(_episode(t, s, common) for s, t in shown)
    return (f'<section id="episodes"><h2>Episodes</h2><p class="muted">A sample across workflows and outcomes: '
            f'{counts} (the same tasks where they exist). Open an episode for its verifier checks and messages.</p>'
            f'{filters}{system}<div id="episode-list">{episodes}</div></section>')
