"""``aqwen-run report RUN_DIR``: one self-contained HTML page about a run folder.

The page (``RUN_DIR/report.html`` by default) shows held-out success and mean reward by workflow, branch, persona
and task difficulty for every evaluation stage (first to last, with the change), the training curves logged in
``metrics.jsonl`` (reward and success of GRPO, loss of SFT), the flywheel rounds (``flywheel/round_<k>/report.json``)
and a browsable sample of episodes from the first and last evaluations: messages, tool calls and every verifier
check. It loads nothing from elsewhere (inline CSS, inline SVG charts, a few lines of inline script for the
filters, allowed by hash in its content security policy) and everything read from the run is escaped: model output
is untrusted text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

DIFFICULTY_FEATURES = ("depth", "calls", "user_turns", "adversarial")
"""Task difficulty features shown first (any other ``difficulty`` keys follow)."""
DEFAULT_EPISODES = 40
"""Episodes sampled from each of the first and last evaluations."""
COLORS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2")


class ReportError(Exception):
    """A run folder that cannot be reported on (missing, not a run, nothing finished, unreadable files)."""


Row = dict[str, Any]


@dataclass
class EvalStage:
    name: str
    report: Row
    trajectories: list[Row] | None
    """``None`` when the stage wrote no ``trajectories.jsonl``."""


@dataclass
class Run:
    folder: Path
    config: Row = field(default_factory=dict)
    state: Row = field(default_factory=dict)
    summary: Row = field(default_factory=dict)
    metrics: list[Row] = field(default_factory=list)
    evals: list[EvalStage] = field(default_factory=list)
    rounds: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Problems worth showing on the page (unreadable lines, files missing from an unfinished run)."""


# --- reading a run folder -------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from None


def _read_object(path: Path) -> Row:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object")
    return data


def _read_jsonl(path: Path, notes: list[str], label: str = "") -> list[Row]:
    """Rows of a JSON-lines file; unreadable lines (a run killed mid-write) are skipped and noted."""
    rows: list[Row] = []
    bad = 0
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it ({exc})") from None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    if bad:
        notes.append(f"{label or path.name}: skipped {bad} unreadable line{'s' if bad != 1 else ''}")
    return rows


def _round_number(path: Path, data: Row) -> float:
    value = data.get("round")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    found = re.search(r"(\d+)$", path.parent.name)
    return float(found.group(1)) if found else math.inf


def load_run(folder: Path) -> Run:
    """Read what a run folder holds; raises :class:`ReportError` when there is nothing to report."""
    if not folder.exists():
        raise ReportError(f"{folder}: no such run folder")
    if not folder.is_dir():
        raise ReportError(f"{folder}: not a folder (give the run folder, e.g. runs/<name>)")
    markers = ("config.json", "state.json", "metrics.jsonl", "summary.json", "eval", "flywheel", "report.json")
    if not any((folder / m).exists() for m in markers):
        raise ReportError(f"{folder} is not a run folder: it has no config.json, state.json, metrics.jsonl or eval/ "
                          "(aqwen-run writes runs/<name>/)")
    run = Run(folder.resolve() if folder.is_symlink() else folder)
    for name in ("config", "state", "summary"):
        path = folder / f"{name}.json"
        if path.exists():
            setattr(run, name, _read_object(path))
    if not (folder / "summary.json").exists() and (folder / "state.json").exists():
        run.notes.append("no summary.json: the run has not finished (or stopped early); showing the stages done")
    if (folder / "metrics.jsonl").exists():
        run.metrics = _read_jsonl(folder / "metrics.jsonl", run.notes)
    run.evals = _load_evals(folder, run)
    paths = sorted({*folder.glob("flywheel/round_*/report.json"), *folder.glob("flywheel/*/round_*/report.json")})
    rounds = []
    for path in paths:
        data = _read_object(path)
        rounds.append((_round_number(path, data), str(path.parent.relative_to(folder)), data))
    run.rounds = [{"_path": p, **d} for _, p, d in sorted(rounds, key=lambda r: (r[0], r[1]))]
    if not run.evals and not _training_rows(run) and not run.rounds:
        raise ReportError(f"{folder}: nothing to report yet: no finished evaluation (eval/<stage>/report.json), "
                          "training metrics (metrics.jsonl) or flywheel rounds (flywheel/round_<k>/report.json)")
    _fill_difficulty(run)
    return run


def _load_evals(folder: Path, run: Run) -> list[EvalStage]:
    found: list[tuple[str, Path]] = []
    if (folder / "report.json").exists():  # an `aqwen-run eval --out DIR` folder
        found.append((folder.name, folder))
    if (folder / "eval").is_dir():
        for sub in sorted(p for p in (folder / "eval").iterdir() if p.is_dir()):
            if (sub / "report.json").exists():
                found.append((sub.name, sub))
            else:
                run.notes.append(f"eval/{sub.name} has no report.json (unfinished); left out")
    order: list[str] = [str(n) for n in [*_items(run.state.get("done")), *_obj(run.state.get("results"))]]
    order += [str(r.get("stage")) for r in run.metrics if r.get("event") == "eval"]
    order += [str(s.get("name")) for s in _items(run.summary.get("stages")) if isinstance(s, dict)]

    def rank(item: tuple[str, Path]) -> tuple[int, float]:
        name, path = item
        return (order.index(name) if name in order else len(order), (path / "report.json").stat().st_mtime)

    stages = []
    for name, path in sorted(found, key=rank):
        report = _read_object(path / "report.json")
        trajectories = None
        where = "" if path == folder else f"eval/{name}/"
        if (path / "trajectories.jsonl").exists():
            trajectories = _read_jsonl(path / "trajectories.jsonl", run.notes, f"{where}trajectories.jsonl")
        else:
            run.notes.append(f"{where}trajectories.jsonl is missing: no episodes or difficulty for {name}")
        stages.append(EvalStage(name, report, trajectories))
    return stages


def _fill_difficulty(run: Run) -> None:
    """Trajectories written before they carried ``difficulty``: look the tasks up in the run's bundle."""
    missing = [t for s in run.evals for t in s.trajectories or [] if not isinstance(t.get("difficulty"), dict)]
    bundle = run.config.get("bundle")
    if not missing or not isinstance(bundle, str):
        return
    tasks_file = Path(bundle) / "tasks.jsonl"
    if not tasks_file.exists():
        return
    by_id = {t.get("id"): t.get("difficulty") for t in _read_jsonl(tasks_file, [])}
    for t in missing:
        if isinstance(by_id.get(t.get("task_id")), dict):
            t["difficulty"] = by_id[t.get("task_id")]


# --- numbers ----------------------------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _obj(value: Any) -> Row:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _dec(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _general(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _delta(before: float | None, after: float | None, percent: bool) -> str:
    if before is None or after is None:
        return '<td class="num">—</td>'
    d = after - before
    cls = "up" if d > 1e-12 else "down" if d < -1e-12 else "flat"
    text = f"{100 * d:+.1f} pts" if percent else f"{d:+.3f}"
    return f'<td class="num delta {cls}">{text}</td>'


# --- HTML helpers -----------------------------------------------------------------------------------------------


def e(value: Any) -> str:
    """Escaped text (for element content and double-quoted attribute values)."""
    return escape(str(value), quote=True)


def _bar_cell(value: float | None, percent: bool) -> str:
    if value is None:
        return '<td class="num">—</td>'
    width = max(0.0, min(1.0, value)) * 100
    text = _pct(value) if percent else _dec(value)
    return (f'<td class="num"><span class="track"><span style="width:{width:.1f}%"></span></span>'
            f"<span>{text}</span></td>")


# --- charts -----------------------------------------------------------------------------------------------------

Series = tuple[str, list[tuple[float, float]]]


def _nice_step(span: float, target: int = 5) -> float:
    if not span > 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * magnitude:
            return mult * magnitude
    return 10 * magnitude


def _ticks(low: float, high: float, target: int = 5, integer: bool = False) -> list[float]:
    step = _nice_step(high - low, target)
    if integer:
        step = max(1.0, math.ceil(step))
    if not math.isfinite(high - low) or (high - low) / step > 50:
        return [low, high]
    start = math.floor(low / step + 1e-9) * step
    ticks = []
    value = start
    while value <= high + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def line_chart(series: list[Series], *, x_label: str, y_label: str, percent: bool = False,
               x_names: list[str] | None = None, unit_range: bool = False, marks: Iterable[tuple[float, str]] = (),
               width: int = 560, height: int = 250) -> str:
    """An inline SVG line chart; ``x_names`` labels integer x positions (stages, rounds) instead of numbers;
    ``marks`` are labelled vertical lines (where each flywheel round starts)."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return '<p class="muted">No data.</p>'
    left, right, top, bottom = 56, 18, 14, 44
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs)
    if x_names is not None:
        x_lo, x_hi = -0.5, len(x_names) - 0.5
    elif x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if unit_range and min(ys) >= 0 and max(ys) <= 1:
        y_lo, y_hi = 0.0, 1.0
    else:
        y_lo, y_hi = min(0.0, min(ys)), max(0.0, max(ys))
        if y_hi == y_lo:
            y_hi = y_lo + 1
        step = _nice_step(y_hi - y_lo)
        y_lo, y_hi = math.floor(y_lo / step + 1e-9) * step, math.ceil(y_hi / step - 1e-9) * step
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    def y_text(y: float) -> str:
        return f"{100 * y:.0f}%" if percent else _general(y)

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{e(y_label)} by {e(x_label)}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for y in _ticks(y_lo, y_hi):
        if y_lo - 1e-9 <= y <= y_hi + 1e-9:
            out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>')
            out.append(f'<text class="tick" x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{e(y_text(y))}</text>')
    if x_names is not None:
        every = max(1, math.ceil(len(x_names) / 8))
        for i, name in enumerate(x_names):
            if i % every == 0:
                label = name if len(name) <= 14 else name[:13] + "…"
                out.append(f'<text class="tick" x="{sx(i):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                           f'{e(label)}</text>')
    else:
        for x in _ticks(x_lo, x_hi, 6, integer=all(x == int(x) for x in xs)):
            if x_lo - 1e-9 <= x <= x_hi + 1e-9:
                out.append(f'<text class="tick" x="{sx(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                           f'{e(_general(x))}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    out.append(f'<text class="label" x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
               f'{e(x_label)}</text>')
    out.append(f'<text class="label" transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{e(y_label)}</text>')
    for x, label in marks:
        if x_lo <= x <= x_hi:
            out.append(f'<line class="mark" x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{top + plot_h}"/>')
            near_end = sx(x) + 6 * len(label) > width - right
            out.append(f'<text class="mark-label" x="{sx(x) + (-3 if near_end else 3):.1f}" y="{top + 10}" '
                       f'text-anchor="{"end" if near_end else "start"}">{e(label)}</text>')
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        if len(pts) > 1:
            out.append(f'<polyline class="line" points="{coords}" stroke="{color}"/>')
        if len(pts) <= 60:
            for x, y in pts:
                where = x_names[int(x)] if x_names is not None and 0 <= int(x) < len(x_names) else _general(x)
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.2" fill="{color}"><title>'
                           f'{e(name)} at {e(where)}: {e(_pct(y) if percent else _general(y))}</title></circle>')
    out.append("</svg>")
    legend = "".join(f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>{e(name)}</span>'
                     for i, (name, _) in enumerate(series))
    return "".join(out) + f'<div class="legend">{legend}</div>'


def _figure(title: str, body: str) -> str:
    return f'<figure class="card chart-card"><figcaption>{e(title)}</figcaption>{body}</figure>'


# --- sections ---------------------------------------------------------------------------------------------------


def _groups(trajectories: list[Row], key: Callable[[Row], str | None]) -> dict[str, tuple[int, float, float]]:
    """{group: (n, success rate, mean reward)} over trials."""
    buckets: dict[str, list[Row]] = defaultdict(list)
    for t in trajectories:
        name = key(t)
        if name is not None:
            buckets[name].append(t)
    out = {}
    for name, rows in buckets.items():
        success = [_num(r.get("success")) or 0.0 for r in rows]
        reward = [_num(r.get("reward")) or 0.0 for r in rows]
        out[name] = (len(rows), sum(success) / len(rows), sum(reward) / len(rows))
    return out


def _from_report(report: Row, key: str) -> dict[str, tuple[int, float, float]]:
    """The same tables from report.json, for a stage without trajectories."""
    out = {}
    table = report.get(key)
    for name, row in (table.items() if isinstance(table, dict) else []):
        if isinstance(row, dict):
            n = _num(row.get("n"))
            success, reward = _num(row.get("success")), _num(row.get("reward"))
            if n is not None and success is not None and reward is not None:
                out[str(name)] = (int(n), success, reward)
    return out


def _branch(t: Row) -> str:
    path = t.get("path")
    return f"{t.get('workflow')}/{'.'.join(map(str, path)) if isinstance(path, list) else path}"


def _difficulty_value(feature: str) -> Callable[[Row], str | None]:
    def key(t: Row) -> str | None:
        d = t.get("difficulty")
        if not isinstance(d, dict) or feature not in d:
            return None
        value = d[feature]
        return "yes" if value is True else "no" if value is False else str(value)

    return key


def _sort_key(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _group_table(table_id: str, title: str, stages: list[EvalStage],
                 per_stage: list[dict[str, tuple[int, float, float]]], sections: list[tuple[str, list[str]]]) -> str:
    names = [s.name for s in stages]
    two = len(stages) > 1
    span = len(stages) + (1 if two else 0)
    head1 = (f'<tr><th rowspan="2" class="group">{e(title)}</th><th rowspan="2" class="num">n</th>'
             f'<th colspan="{span}" class="span">held-out success</th>'
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
            row += [_bar_cell(v, True) for v in success]
            if two:
                row.append(_delta(success[0], success[-1], True))
            row += [f'<td class="num">{_dec(v)}</td>' for v in reward]
            if two:
                row.append(_delta(reward[0], reward[-1], False))
            rows.append("".join(row) + "</tr>")
    rows.append("</tbody></table>")
    return f'<div class="scroll">{"".join(rows)}</div>'


def _groups_section(run: Run) -> str:
    stages = run.evals
    if not stages:
        return ""
    parts = ['<section id="groups"><h2>Held-out results by group</h2>',
             f'<p class="muted">Success and mean reward over all trials of each evaluation stage '
             f'({" → ".join(e(s.name) for s in stages)}); <em>change</em> is the last stage minus the first.</p>']
    keyed: list[tuple[str, str, Callable[[Row], str | None], str]] = [
        ("workflow", "Workflow", lambda t: str(t.get("workflow")), "by_workflow"),
        ("branch", "Branch", _branch, "by_branch"),
        ("persona", "Persona", lambda t: str(t.get("persona")), "by_persona"),
    ]
    for slug, title, key, report_key in keyed:
        per_stage = [_groups(s.trajectories, key) if s.trajectories is not None else _from_report(s.report, report_key)
                     for s in stages]
        names = sorted({k for g in per_stage for k in g}, key=_sort_key)
        if not names:
            continue
        table = _group_table(f"groups-{slug}", title, stages, per_stage, [("", names)])
        parts.append(f'<details class="card" open><summary><h3>By {e(slug)}</h3>'
                     f'<span class="muted">{len(names)} group{"s" if len(names) != 1 else ""}</span></summary>'
                     f"{table}</details>")
    features: list[str] = []
    for s in stages:
        for t in s.trajectories or []:
            d = t.get("difficulty")
            if isinstance(d, dict):
                features += [f for f in d if f not in features]
    features.sort(key=lambda f: (DIFFICULTY_FEATURES.index(f) if f in DIFFICULTY_FEATURES else 99, f))
    if features:
        merged: list[dict[str, tuple[int, float, float]]] = [{} for _ in stages]
        sections = []
        for feature in features:
            key = _difficulty_value(feature)
            values: set[str] = set()
            for i, s in enumerate(stages):
                for value, cell in _groups(s.trajectories or [], key).items():
                    merged[i][f"{feature} = {value}"] = cell
                    values.add(value)
            sections.append((feature, [f"{feature} = {v}" for v in sorted(values, key=_sort_key)]))
        table = _group_table("groups-difficulty", "Difficulty", stages, merged, sections)
        parts.append('<details class="card" open><summary><h3>By difficulty</h3><span class="muted">task features: '
                     f'{e(", ".join(features))}</span></summary>{table}</details>')
    else:
        parts.append('<p class="muted">No difficulty features in the trajectories.</p>')
    parts.append("</section>")
    return "".join(parts)


def _training_rows(run: Run) -> list[Row]:
    """Rows logged by trainers at a step (not evaluations, stage ends or a trainer's closing summary)."""
    return [r for r in run.metrics if "step" in r and "event" not in r and "train_runtime" not in r]


def _stage_table(run: Run) -> str:
    results = _obj(run.state.get("results"))
    stages: list[Row] = [s for s in _items(run.summary.get("stages")) if isinstance(s, dict)] or \
        [{"name": n, **r} for n, r in results.items() if isinstance(r, dict)]
    known = {str(s.get("name")) for s in stages}
    stages += [{"name": s.name, "stage": "eval", **{k: s.report.get(k) for k in ("success_rate", "mean_reward")}}
               for s in run.evals if s.name not in known]
    steps: dict[str, int] = defaultdict(int)
    for r in _training_rows(run):
        steps[str(r.get("stage"))] += 1
    known |= {str(s.get("name")) for s in stages}
    stages += [{"name": name, "stage": "training"} for name in steps if name not in known]
    if not stages:
        return ""
    rows = ['<table class="data" id="stages"><thead><tr><th>stage</th><th>kind</th><th class="num">held-out success'
            '</th><th class="num">mean reward</th><th class="num">logged steps</th><th class="num">seconds</th>'
            "</tr></thead><tbody>"]
    for s in stages:
        name = str(s.get("name"))
        rows.append(f'<tr><td>{e(name)}</td><td><span class="kind">{e(s.get("stage", ""))}</span></td>'
                    f'<td class="num">{_pct(_num(s.get("success_rate")))}</td>'
                    f'<td class="num">{_dec(_num(s.get("mean_reward")))}</td>'
                    f'<td class="num">{steps.get(name, "") or "—"}</td>'
                    f'<td class="num">{e(_general(_num(s.get("seconds")) or 0)) if _num(s.get("seconds")) else "—"}'
                    "</td></tr>")
    rows.append("</tbody></table>")
    return f'<div class="card"><h3>Stages</h3><div class="scroll">{"".join(rows)}</div></div>'


_REWARD_KEYS = ("rewards/reward/mean", "reward")
_SUCCESS_KEYS = ("rewards/success/mean",)
_LOSS_KEYS = ("loss",)


def _is_grpo(row: Row) -> bool:
    return any(k in row for k in _REWARD_KEYS) or any(k.startswith("rewards/") for k in row)


def _steps(rows: list[Row]) -> tuple[list[tuple[float, Row]], list[tuple[float, str]]]:
    """(x, row) in training order, and round boundaries: x is the step, or a running count when the stage trains
    once per flywheel round (steps start again each round)."""
    latest: dict[tuple[float, float], Row] = {}
    for r in rows:
        step = _num(r.get("step"))
        if step is not None:
            rnd = _num(r.get("round"))
            latest[(-math.inf if rnd is None else rnd, step)] = r  # a resumed stage logs a step again: the last counts
    keys = sorted(latest)
    if all(k[0] == -math.inf for k in keys):
        return [(k[1], latest[k]) for k in keys], []
    out: list[tuple[float, Row]] = []
    marks: list[tuple[float, str]] = []
    previous: float | None = None
    for i, key in enumerate(keys, 1):
        if key[0] != previous and key[0] != -math.inf:
            marks.append((float(i), f"round {_general(key[0])}"))
        previous = key[0]
        out.append((float(i), latest[key]))
    return out, marks


def _series(steps: list[tuple[float, Row]], keys: Iterable[str]) -> tuple[str, list[tuple[float, float]]] | None:
    for key in keys:
        points = [(x, v) for x, r in steps if (v := _num(r.get(key))) is not None]
        if points:
            return key, points
    return None


def _curves_section(run: Run) -> str:
    charts = []
    if run.evals:
        names = [s.name for s in run.evals]
        success = [(float(i), v) for i, s in enumerate(run.evals)
                   if (v := _num(s.report.get("success_rate"))) is not None]
        reward = [(float(i), v) for i, s in enumerate(run.evals)
                  if (v := _num(s.report.get("mean_reward"))) is not None]
        charts.append(_figure("Held-out evaluation by stage", line_chart(
            [("success", success), ("mean reward", reward)], x_label="evaluation stage", y_label="success / reward",
            x_names=names, unit_range=True)))
    training: dict[str, list[Row]] = defaultdict(list)
    for r in _training_rows(run):
        training[str(r.get("stage"))].append(r)
    for stage, rows in training.items():
        grpo, marks = _steps([r for r in rows if _is_grpo(r)])
        found = [(label, s) for label, keys in (("reward", _REWARD_KEYS), ("success", _SUCCESS_KEYS))
                 if (s := _series(grpo, keys)) is not None]
        x_label = "GRPO step (all rounds)" if marks else "training step"
        if found:
            charts.append(_figure(f"{stage}: reward and success per step", line_chart(
                [(f"{label} ({key})", pts) for label, (key, pts) in found], x_label=x_label,
                y_label="mean over rollouts", unit_range=True, marks=marks)))
        sft, marks = _steps([r for r in rows if not _is_grpo(r)])
        loss = _series(sft, _LOSS_KEYS)
        if loss is not None:
            charts.append(_figure(f"{stage}: training loss per step", line_chart(
                [("loss", loss[1])], x_label="SFT step (all rounds)" if marks else "training step", y_label="loss",
                marks=marks)))
    if not charts:
        return ""
    return (f'<section id="curves"><h2>Curves</h2><div class="charts">{"".join(charts)}</div></section>')


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="num">—</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, (int, float)):
        return f'<td class="num">{e(_general(float(value)))}</td>'
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


def _flywheel_section(run: Run) -> str:
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
            cells.append(_bar_cell(_num(r.get(c)), True) if c == "pass_rate" and _num(r.get(c)) is not None
                         else _cell(r.get(c)))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    rows.append("</tbody></table>")
    x_names = [str(r.get("round", i + 1)) for i, r in enumerate(run.rounds)]
    pass_rate = [(float(i), v) for i, r in enumerate(run.rounds) if (v := _num(r.get("pass_rate"))) is not None]
    charts = [_figure("Pass rate per round", line_chart([("pass rate", pass_rate)], x_label="flywheel round",
                                                        y_label="pass rate", percent=True, x_names=x_names,
                                                        unit_range=True))]
    difficulty = [(float(i), v) for i, r in enumerate(run.rounds) if (v := _num(r.get("mean_difficulty"))) is not None]
    if difficulty:
        charts.append(_figure("Mean task difficulty per round", line_chart(
            [("mean difficulty", difficulty)], x_label="flywheel round", y_label="mean difficulty", x_names=x_names)))
    parts = [f'<section id="flywheel"><h2>Flywheel rounds</h2><div class="charts">{"".join(charts)}</div>',
             f'<div class="card"><div class="scroll">{"".join(rows)}</div></div>']
    by_workflow = [_obj(r.get("by_workflow")) for r in run.rounds]
    workflows = sorted({w for table in by_workflow for w in table})
    if workflows:
        body = []
        for w in workflows:
            cells = [_bar_cell(_num(_obj(table.get(w)).get("pass_rate")), True) for table in by_workflow]
            body.append(f'<tr><td class="group">{e(w)}</td>{"".join(cells)}</tr>')
        head = "".join(f'<th class="num">round {e(x)}</th>' for x in x_names)
        parts.append('<details class="card"><summary><h3>Pass rate by workflow</h3><span class="muted">per round, '
                     f'{len(workflows)} workflows (grown ones appear when first drawn)</span></summary>'
                     f'<div class="scroll"><table class="data groups" id="flywheel-workflows"><thead><tr>'
                     f'<th>workflow</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div></details>')
    grown = [(r.get("round", "?"), i) for r in run.rounds for i in _items(r.get("lineage")) if isinstance(i, dict)]
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


# --- episodes ---------------------------------------------------------------------------------------------------


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
    calls = _items(m.get("tool_calls"))
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
        weight = _num(c.get("weight"))
        rows.append(f'<tr class="check {cls}"><td><span class="badge {cls}">{mark}</span></td>'
                    f'<td>{e(c.get("name", ""))}{gate}</td><td>{e(c.get("kind", ""))}</td>'
                    f'<td class="num">{_general(weight) if weight is not None else "—"}</td>'
                    f'<td class="detail">{e(c.get("detail", ""))}</td></tr>')
    gate = '<p class="warn">A gate failed: the reward is 0.</p>' if score.get("gate_failed") else ""
    return (f'{gate}<table class="data checks"><thead><tr><th>result</th><th>check</th><th>kind</th>'
            f'<th class="num">weight</th><th>detail</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _episode(t: Row, stage: str, common_system: str | None) -> str:
    success = bool(t.get("success"))
    outcome = "pass" if success else "fail"
    metrics = _obj(t.get("metrics"))
    path = t.get("path")
    branch = ".".join(map(str, path)) if isinstance(path, list) else str(path or "")
    facts = [f"reward {_dec(_num(t.get('reward')))}"]
    for key, label in (("turns", "turn"), ("tool_calls", "tool call"), ("malformed", "malformed call")):
        count = _num(metrics.get(key))
        if count is not None:
            facts.append(f"{_general(count)} {label}{'' if count == 1 else 's'}")
    if metrics.get("terminated_by"):
        facts.append(f"ended by {metrics['terminated_by']}")
    task_id = str(t.get("task_id", ""))
    search = " ".join(str(x) for x in (task_id, t.get("workflow"), branch, t.get("persona"))).lower()
    messages = _items(t.get("messages"))
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


def _episodes_section(run: Run, n: int) -> str:
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


# --- the page ---------------------------------------------------------------------------------------------------

CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;--pass:#15803d;
--fail:#b91c1c;--passbg:#dcfce7;--failbg:#fee2e2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
header.top{background:#0f172a;color:#e5e7eb;padding:22px 0 18px}
header.top h1{margin:0 0 4px;font-size:22px;font-weight:600;color:#fff}
header.top .sub{color:#94a3b8;font-size:13px}
header.top nav{margin-top:12px;display:flex;gap:16px;flex-wrap:wrap}
header.top nav a{color:#93c5fd;text-decoration:none;font-size:13px}
header.top nav a:hover{text-decoration:underline}
main,.wrap{max-width:1200px;margin:0 auto;padding:0 24px}
main{padding-bottom:48px}
h2{font-size:18px;margin:32px 0 8px;font-weight:600}
h3{font-size:15px;margin:0;font-weight:600;display:inline}
h4{font-size:13px;margin:14px 0 6px;color:#374151;text-transform:uppercase;letter-spacing:.04em}
.muted{color:var(--muted)}.small{font-size:12px}
.warn{color:#92400e;background:#fef3c7;border-radius:6px;padding:6px 10px;margin:6px 0}
.notes{margin-top:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:12px 0;
box-shadow:0 1px 2px rgba(0,0,0,.03)}
details.card>summary{cursor:pointer;display:flex;gap:12px;align-items:baseline;list-style:none}
details.card>summary::-webkit-details-marker{display:none}
details.card>summary::before{content:"▸";color:var(--muted);width:10px}
details.card[open]>summary::before{content:"▾"}
details.card[open]>summary{margin-bottom:10px}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px;margin-top:18px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.stat .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.stat .v{font-size:22px;font-weight:600;margin-top:2px}
.stat .d{font-size:13px}
.up{color:var(--pass)}.down{color:var(--fail)}.flat{color:var(--muted)}
.scroll{overflow-x:auto}
table.data{border-collapse:collapse;width:100%;font-size:13px}
table.data th,table.data td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
table.data thead th{background:#f9fafb;font-weight:600;color:#374151;white-space:nowrap}
table.data th.span{text-align:center;border-left:1px solid var(--line)}
table.data td.num,table.data th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.track{display:inline-block;width:36px;height:6px;border-radius:3px;background:#e5e7eb;margin-right:8px;
vertical-align:middle;overflow:hidden}
.track>span{display:block;height:100%;background:#60a5fa;border-radius:3px}
table.groups td.group{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
table.data tr.section th{background:#f3f4f6;text-transform:uppercase;font-size:11px;letter-spacing:.05em;
color:#4b5563}
table.data tbody tr:hover{background:#f9fafb}
td.delta{font-weight:600}
.kind{background:#eef2ff;color:#3730a3;border-radius:4px;padding:0 6px;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}
figure.chart-card{margin:0}
figure figcaption{font-weight:600;margin-bottom:6px}
svg.chart{width:100%;height:auto;display:block}
svg.chart .grid{stroke:#eef0f3;stroke-width:1}
svg.chart .axis{stroke:#9ca3af;stroke-width:1}
svg.chart .tick{fill:#6b7280;font-size:11px}
svg.chart .label{fill:#374151;font-size:12px}
svg.chart .mark{stroke:#94a3b8;stroke-width:1;stroke-dasharray:3 3}
svg.chart .mark-label{fill:#64748b;font-size:10px}
svg.chart .line{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:#374151;margin-top:4px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.round-more dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0 0 8px}
.round-more dt{color:#374151;font-weight:600;font-size:12px}
.round-more dd{margin:0}
details.inline>summary{cursor:pointer;color:var(--accent)}
details.inline .list{white-space:normal;text-align:left;max-width:420px;font-size:12px}
.filters{display:flex;gap:14px;flex-wrap:wrap;align-items:center;background:var(--card);border:1px solid var(--line);
border-radius:10px;padding:10px 14px;position:sticky;top:0;z-index:5}
.filters label{font-size:12px;color:#374151;display:flex;gap:6px;align-items:center}
.filters select,.filters input,.filters button{font:inherit;font-size:13px;padding:3px 6px;border:1px solid #d1d5db;
border-radius:6px;background:#fff}
.filters button{cursor:pointer}
details.episode{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:8px 0}
details.episode>summary{cursor:pointer;padding:7px 12px;display:flex;gap:4px 10px;align-items:center;
flex-wrap:wrap}
details.episode[open]>summary{border-bottom:1px solid var(--line);background:#fafbfc}
details.episode .task{font-size:12px;overflow-wrap:anywhere}
details.episode .facts{flex-basis:100%;color:var(--muted);font-size:12px;padding-left:2px}
details.episode .sep{color:#d1d5db;margin:0 4px}
.stage{font-size:11px;color:#475569;background:#f1f5f9;border-radius:4px;padding:0 6px}
.badge{display:inline-block;min-width:38px;text-align:center;font-size:11px;font-weight:700;text-transform:uppercase;
border-radius:4px;padding:1px 6px}
.badge.pass{background:var(--passbg);color:var(--pass)}
.badge.fail{background:var(--failbg);color:var(--fail)}
.badge.na{background:#f3f4f6;color:var(--muted)}
.ep-body{padding:4px 14px 14px}
table.checks td.detail{color:#4b5563;font-size:12px}
.msg{border-left:3px solid #d1d5db;padding:6px 10px;margin:6px 0;border-radius:0 6px 6px 0;background:#fafafa}
.msg .role{display:block;font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.05em;
color:#6b7280;margin-bottom:2px}
.msg.user{border-color:#60a5fa;background:#eff6ff}
.msg.assistant{border-color:#a78bfa;background:#f5f3ff}
.msg.tool{border-color:#34d399;background:#ecfdf5}
.msg.tool.error{border-color:#f87171;background:#fef2f2}
.msg.system{border-color:#cbd5e1}
.msg .role .name{text-transform:none;letter-spacing:0;font-weight:600;color:#047857;margin-left:4px}
.msg .text{white-space:pre-wrap;word-break:break-word;margin:0}
pre{font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin:0;white-space:pre-wrap;
word-break:break-word;max-height:360px;overflow:auto}
.call{margin-top:6px;background:#fff;border:1px solid #e9d5ff;border-radius:6px;padding:6px 8px}
.call .fn{font:600 12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#6d28d9}
table.data code{overflow-wrap:anywhere}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
[hidden]{display:none!important}
"""

SCRIPT = """
(function () {
  var list = document.getElementById("episode-list");
  var bar = document.getElementById("filters");
  if (list && bar) {
    var items = Array.prototype.slice.call(list.querySelectorAll("details.episode"));
    var get = function (id) { return document.getElementById(id); };
    var keys = ["stage", "workflow", "outcome", "search"];
    if (location.hash.indexOf("=") >= 0) {  // filters in the address: #outcome=fail&workflow=...
      location.hash.slice(1).split("&").forEach(function (pair) {
        var i = pair.indexOf("=");
        try {
          var key = decodeURIComponent(pair.slice(0, i)), value = decodeURIComponent(pair.slice(i + 1));
          if (keys.indexOf(key) >= 0) { get("f-" + key).value = value; }
        } catch (err) { /* a malformed pair: ignored */ }
      });
    }
    var remember = function () {
      var parts = [];
      keys.forEach(function (key) {
        var value = get("f-" + key).value.trim();
        if (value) { parts.push(key + "=" + encodeURIComponent(value)); }
      });
      if (!parts.length && location.hash.indexOf("=") < 0) { return; }
      try {
        history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
      } catch (err) { /* some browsers refuse it for local files */ }
    };
    var apply = function () {
      var stage = get("f-stage").value, workflow = get("f-workflow").value, outcome = get("f-outcome").value;
      var text = get("f-search").value.trim().toLowerCase(), shown = 0;
      items.forEach(function (el) {
        var ok = (!stage || el.dataset.stage === stage) && (!workflow || el.dataset.workflow === workflow) &&
          (!outcome || el.dataset.outcome === outcome) && (!text || el.dataset.search.indexOf(text) >= 0);
        el.hidden = !ok;
        if (ok) { shown += 1; }
      });
      get("f-count").textContent = shown + " of " + items.length + " episodes";
    };
    var update = function () { apply(); remember(); };
    ["f-stage", "f-workflow", "f-outcome"].forEach(function (id) { get(id).addEventListener("change", update); });
    get("f-search").addEventListener("input", update);
    get("f-open").addEventListener("click", function () {
      items.forEach(function (el) { if (!el.hidden) { el.open = true; } });
    });
    get("f-close").addEventListener("click", function () { items.forEach(function (el) { el.open = false; }); });
    bar.hidden = false;
    apply();
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
"""


def _stats(run: Run) -> str:
    cards = []
    if run.evals:
        first, last = run.evals[0].report, run.evals[-1].report
        for key, label, percent in (("success_rate", "held-out success", True), ("mean_reward", "mean reward", False)):
            b, a = _num(first.get(key)), _num(last.get(key))
            value = _pct(a) if percent else _dec(a)
            if len(run.evals) > 1 and a is not None and b is not None:
                d = a - b
                cls = "up" if d > 1e-12 else "down" if d < -1e-12 else "flat"
                change = f"{100 * d:+.1f} pts" if percent else f"{d:+.3f}"
                before = _pct(b) if percent else _dec(b)
                sub = f'<div class="d"><span class="muted">from {before} ·</span> <span class="{cls}">{change}</span>' \
                      "</div>"
            else:
                sub = f'<div class="d muted">{e(run.evals[-1].name)}</div>'
            cards.append(f'<div class="stat"><div class="k">{label}</div><div class="v">{value}</div>{sub}</div>')
        passes = last.get("pass_hat_k")
        if isinstance(passes, dict) and len(passes) > 1:
            text = " · ".join(f"pass^{e(k)} {_pct(_num(v))}" for k, v in passes.items())
            cards.append(f'<div class="stat"><div class="k">pass^k (last)</div><div class="v">'
                         f'{_pct(_num(list(passes.values())[-1]))}</div><div class="d muted">{text}</div></div>')
    held, train = run.summary.get("heldout_tasks"), run.summary.get("train_tasks")
    if held is None and run.evals:
        held = run.evals[-1].report.get("n_tasks")
    if held is not None:
        evaluated = _num(run.evals[-1].report.get("n_tasks")) if run.evals else None
        sub = " · ".join(x for x in (f"{e(train)} training" if train is not None else "",
                                     f"{_general(evaluated)} evaluated" if evaluated is not None else "") if x)
        cards.append(f'<div class="stat"><div class="k">held-out tasks</div><div class="v">{e(held)}</div>'
                     f'<div class="d muted">{sub}</div></div>')
    steps = len(_training_rows(run))
    if steps:
        stages = len({str(r.get("stage")) for r in _training_rows(run)})
        cards.append(f'<div class="stat"><div class="k">training steps logged</div><div class="v">{steps}</div>'
                     f'<div class="d muted">in {stages} stage{"s" if stages != 1 else ""}</div></div>')
    if run.rounds:
        last_rate = _num(run.rounds[-1].get("pass_rate"))
        cards.append(f'<div class="stat"><div class="k">flywheel rounds</div><div class="v">{len(run.rounds)}</div>'
                     f'<div class="d muted">last pass rate {_pct(last_rate)}</div></div>')
    return f'<div class="stats">{"".join(cards)}</div>' if cards else ""


def render(run: Run, episodes: int = DEFAULT_EPISODES) -> str:
    """The whole page as one string."""
    pipeline = _obj(run.config.get("pipeline"))
    model_doc = _obj(pipeline.get("model"))
    model = run.summary.get("model") or model_doc.get("name")
    facts = [("pipeline", run.summary.get("pipeline") or pipeline.get("name")),
             ("domain", run.summary.get("domain") or pipeline.get("domain") or
              (run.evals[-1].report.get("domain") if run.evals else None)),
             ("model", model), ("bundle", run.config.get("bundle"))]
    sub = " · ".join(f"{k} <strong>{e(v)}</strong>" for k, v in facts if v)
    sections = [
        ("groups", "By group", _groups_section(run)),
        ("curves", "Curves", _curves_section(run)),
        ("flywheel", "Flywheel", _flywheel_section(run)),
        ("episodes", "Episodes", _episodes_section(run, episodes)),
    ]
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t, body in sections if body)
    notes = "".join(f'<div class="warn">{e(n)}</div>' for n in run.notes)
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    title = f"Run report: {run.folder.name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top"><div class="wrap"><h1>{e(title)}</h1><div class="sub">{sub}</div>'
        f"<nav>{nav}</nav></div></header><main>"
        f'{_stats(run)}<div class="notes">{notes}</div>{_stage_table(run)}'
        f'{"".join(body for _, _, body in sections)}'
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )


def write_report(run_dir: Path, out: Path | None = None, episodes: int = DEFAULT_EPISODES) -> Path:
    """Read ``run_dir`` and write its HTML report (``run_dir/report.html`` unless ``out``); returns the file."""
    run = load_run(run_dir)
    target = out if out is not None else run_dir / "report.html"
    page = render(run, episodes)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{target}: cannot write the report ({exc})") from None
    return target
