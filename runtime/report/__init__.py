"""``aqwen-run report RUN_DIR``: one self-contained HTML page about a run folder.

The page (``RUN_DIR/report.html`` by default) shows held-out success and mean reward by workflow, branch, persona
and task difficulty for every evaluation stage (first to last, with the change), the training curves logged in
``metrics.jsonl`` (reward and success of GRPO, loss of SFT), the flywheel rounds (``flywheel/round_<k>/report.json``)
and a browsable sample of episodes from the first and last evaluations: messages, tool calls and every verifier
check. It loads nothing from elsewhere (inline CSS, inline SVG charts, a few lines of inline script for the
filters, allowed by hash in its content security policy) and everything read from the run is escaped: model output
is untrusted text.

- :mod:`runtime.report.runfolder`: reading and checking a run folder (:class:`ReportError` for one that cannot be
  reported on);
- :mod:`runtime.report.values`: lenient reading of JSON values, number formats;
- :mod:`runtime.report.aggregate`: results grouped by workflow, branch, persona and difficulty; training curves;
- :mod:`runtime.report.markup`: escaping and shared table cells; :mod:`runtime.report.charts`: inline SVG charts;
- :mod:`runtime.report.overview`, :mod:`~runtime.report.groups`, :mod:`~runtime.report.curves`,
  :mod:`~runtime.report.rounds`, :mod:`~runtime.report.episodes`: the page's sections;
- :mod:`runtime.report.assets`: the CSS, the script and its content security policy;
- :mod:`runtime.report.page`: the page put together.
"""

from __future__ import annotations

from pathlib import Path

from runtime.report.episodes import DEFAULT_EPISODES
from runtime.report.page import render
from runtime.report.runfolder import ReportError, load_run


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


__all__ = ["DEFAULT_EPISODES", "ReportError", "write_report"]
