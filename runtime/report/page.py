"""The whole page: the header with the run's facts, the headline numbers and stages, then each section."""

from __future__ import annotations

from runtime.report.assets import CSS, SCRIPT, content_security_policy
from runtime.report.curves import curves_section
from runtime.report.episodes import DEFAULT_EPISODES, episodes_section
from runtime.report.groups import groups_section
from runtime.report.markup import e
from runtime.report.overview import stage_table, stats
from runtime.report.rounds import flywheel_section
from runtime.report.runfolder import Run
from runtime.report.values import as_obj


def render(run: Run, episodes: int = DEFAULT_EPISODES) -> str:
    """The whole page as one string."""
    pipeline = as_obj(run.config.get("pipeline"))
    model_doc = as_obj(pipeline.get("model"))
    model = run.summary.get("model") or model_doc.get("name")
    facts = [("pipeline", run.summary.get("pipeline") or pipeline.get("name")),
             ("domain", run.summary.get("domain") or pipeline.get("domain") or
              (run.evals[-1].report.get("domain") if run.evals else None)),
             ("model", model), ("bundle", run.config.get("bundle"))]
    sub = " · ".join(f"{k} <strong>{e(v)}</strong>" for k, v in facts if v)
    sections = [
        ("groups", "By group", groups_section(run)),
        ("curves", "Curves", curves_section(run)),
        ("flywheel", "Flywheel", flywheel_section(run)),
        ("episodes", "Episodes", episodes_section(run, episodes)),
    ]
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t, body in sections if body)
    notes = "".join(f'<div class="warn">{e(n)}</div>' for n in run.notes)
    csp = content_security_policy()
    title = f"Run report: {run.folder.name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top"><div class="wrap"><h1>{e(title)}</h1><div class="sub">{sub}</div>'
        f"<nav>{nav}</nav></div></header><main>"
        f'{stats(run)}<div class="notes">{notes}</div>{stage_table(run)}'
        f'{"".join(body for _, _, body in sections)}'
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )
