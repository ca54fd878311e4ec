"""Reading a run folder: config, state, summary, metrics, evaluation reports and trajectories, flywheel rounds.

Anything that makes a folder impossible to report on (missing, not a run, nothing finished yet, unreadable JSON)
raises :class:`ReportError` with a message for the user; smaller problems (unreadable lines of a run killed
mid-write, files missing from an unfinished run) become :attr:`Run.notes`, shown on the page.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.report.values import as_list, as_obj


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

    @property
    def heldout_only(self) -> bool:
        """Whether every evaluation ran on held-out tasks: the pipeline's eval stages all use the held-out split
        (the default). An ``aqwen-run eval`` folder runs every task of its bundle, and a stage may ask for
        ``split: train`` or ``all``: their results are not called held-out."""
        stages = as_list(as_obj(self.config.get("pipeline")).get("stages"))
        evals = [s for s in stages if isinstance(s, dict) and s.get("stage") == "eval"]
        return bool(evals) and all(s.get("split", "heldout") == "heldout" for s in evals)

    def success_label(self) -> str:
        """``held-out success`` or ``success``, as :attr:`heldout_only` says."""
        return "held-out success" if self.heldout_only else "success"


def training_rows(run: Run) -> list[Row]:
    """Rows logged by trainers at a step (not evaluations, stage ends or a trainer's closing summary)."""
    return [r for r in run.metrics if "step" in r and "event" not in r and "train_runtime" not in r]


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
    if not run.evals and not training_rows(run) and not run.rounds:
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
    order: list[str] = [str(n) for n in [*as_list(run.state.get("done")), *as_obj(run.state.get("results"))]]
    order += [str(r.get("stage")) for r in run.metrics if r.get("event") == "eval"]
    order += [str(s.get("name")) for s in as_list(run.summary.get("stages")) if isinstance(s, dict)]

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
