"""``aqwen-run report``: the HTML page of a run folder, rendered by headless Chromium.

The run folder is built without training: the shipped specs compiled into a real bundle, held-out tasks evaluated
with the oracle, noop and random agents through the runtime (real trajectories and reports), metrics rows written
by the pipeline's own writer in the shape the trainers log, and flywheel round reports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from runtime.cli import main

ROOT = Path(__file__).resolve().parents[1]
INJECTED = "<script>document.documentElement.setAttribute('data-pwned','1')</script>"
INJECTED_IMG = "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','2')\">"
INJECTED_ATTR = "\"><script>document.documentElement.setAttribute('data-pwned','3')</script>"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("chromium is not installed, and CI must render the report (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def _chromium_run(page: Path, profile: Path, *extra: str, fragment: str = "") -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}"]
    url = page.resolve().as_uri() + fragment
    return subprocess.run([_chromium(), *flags, *extra, url], capture_output=True, text=True,
                          timeout=120, check=False)


def _stage(runner: Any, name: str, report: Any, state: Any) -> None:
    """What PipelineRunner.evaluate and run write for an eval stage."""
    from runtime.pipeline.runner import eval_result

    runner.record_eval(name, report)
    state.results[name] = {**eval_result(report, state.model), "seconds": 1.0}
    state.done.append(name)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aqwen_spec.documents.pipeline import Pipeline
    from compiler import compile_specs, write_bundles
    from runtime.episodes.agents import NoopAgent, OracleAgent, RandomAgent
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.evaluate import EvalReport, evaluate
    from runtime.pipeline.runner import PipelineRunner, RunState

    tmp = tmp_path_factory.mktemp("report")
    build = tmp / "build"
    write_bundles(compile_specs(ROOT / "specs"), build)
    bundle = Bundle.load(build / "plant_maintenance")
    pipeline = Pipeline.model_validate(json.loads((build / "pipelines" / "default.json").read_text()))
    run = tmp / "runs" / "demo"
    run.mkdir(parents=True)
    runner = PipelineRunner(pipeline, bundle, run, progress=False, echo=lambda s: None)
    stride = max(1, len(runner.heldout) // 18)
    tasks = runner.heldout[::stride][:18]
    (run / "config.json").write_text(json.dumps({"pipeline": pipeline.model_dump(mode="json", by_alias=True),
                                                 "bundle": str(bundle.path), "model_path": "builtin:tiny-qwen3"}))
    state = RunState("builtin:tiny-qwen3")

    before = evaluate(bundle, NoopAgent, tasks=tasks)
    _stage(runner, "before", before, state)
    # SFT rows as the trainer's log callback passes them on (one per logging step, then the summary row)
    for step in range(1, 9):
        runner._metric({"stage": "warmup", "step": step, "loss": round(2.4 * 0.78 ** step, 4), "grad_norm": 3.1,
                        "learning_rate": 0.003 * (1 - step / 9), "entropy": 1.2, "num_tokens": 900.0 * step,
                        "mean_token_accuracy": 0.5 + step / 20, "epoch": step / 4})
    runner._metric({"stage": "warmup", "step": 8, "train_runtime": 12.5, "train_samples_per_second": 5.1,
                    "train_steps_per_second": 0.64, "total_flos": 1234.0, "train_loss": 0.9, "epoch": 2.0})
    state.results["warmup"] = {"stage": "sft", "checkpoint": str(run / "checkpoints" / "warmup" / "model"),
                               "seconds": 12.9}
    state.done.append("warmup")
    middle = evaluate(bundle, lambda: RandomAgent(seed=3), tasks=tasks)
    _stage(runner, "after_sft", middle, state)
    # the last stage: half the tasks solved (oracle), half not (noop) -- real episodes either way
    after = EvalReport("mixed", bundle.name, 1)
    after.trials = [*evaluate(bundle, OracleAgent, tasks=tasks[::2]).trials,
                    *evaluate(bundle, NoopAgent, tasks=tasks[1::2]).trials]
    # GRPO rows: groups of 4 real episodes, more of them solved as training goes on
    pool = [t.result for t in before.trials + after.trials + evaluate(bundle, OracleAgent, tasks=tasks).trials]
    for step in range(1, 13):
        group = pool[(step - 1) * len(pool) // 12:][:4]
        reward = sum(r.reward for r in group) / len(group)
        runner._metric({"stage": "grpo", "step": step, "loss": 0.01 * step, "grad_norm": 0.4, "learning_rate": 2e-5,
                        "num_tokens": 4000.0 * step, "completions/mean_length": 180.0,
                        "rewards/reward/mean": reward, "rewards/reward/std": 0.3,
                        "rewards/success/mean": sum(r.success for r in group) / len(group),
                        "rewards/gate_failed/mean": 0.0, "rewards/malformed/mean": 0.25, "rewards/turns/mean": 4.0,
                        "reward": reward, "reward_std": 0.3, "frac_reward_zero_std": 0.25, "kl": 0.002 * step,
                        "entropy": 0.9, "clip_ratio/region_mean": 0.0, "epoch": step / 12})
    state.results["grpo"] = {"stage": "grpo", "checkpoint": str(run / "checkpoints" / "grpo" / "model"),
                             "seconds": 80.2}
    state.done.append("grpo")
    # a flywheel stage trains every round (SFT on all-fail tasks, then GRPO); its steps start again each round
    for k in (1, 2, 3):
        for step in (1, 2):
            runner._metric({"stage": "flywheel", "round": k, "step": step, "loss": 1.5 / (k + step), "grad_norm": 2.0,
                            "learning_rate": 5e-4, "entropy": 1.1, "mean_token_accuracy": 0.6, "num_tokens": 800.0,
                            "epoch": step / 2})
        for step in (1, 2, 3):
            group = pool[(3 * k + step) % len(pool):][:4] or pool[:4]
            runner._metric({"stage": "flywheel", "round": k, "step": step, "loss": 0.0, "grad_norm": 0.5,
                            "rewards/reward/mean": sum(r.reward for r in group) / len(group),
                            "rewards/success/mean": sum(r.success for r in group) / len(group),
                            "reward": sum(r.reward for r in group) / len(group), "epoch": step / 3})
        runner._metric({"stage": "flywheel", "event": "flywheel_round", "round": k, "pass_rate": 0.2 * k})
    state.results["flywheel"] = {"stage": "flywheel", "checkpoint": "x", "seconds": 301.0}
    state.done.append("flywheel")
    _stage(runner, "after", after, state)
    state.save(run)
    (run / "summary.json").write_text(json.dumps(runner.summary(state), indent=2) + "\n")

    # untrusted model output in the last evaluation's first episode
    traj = run / "eval" / "after" / "trajectories.jsonl"
    rows = [json.loads(line) for line in traj.read_text().splitlines()]
    turn = next(m for m in rows[0]["messages"] if m["role"] == "assistant")
    turn["content"] = f"Sure. {INJECTED}{INJECTED_IMG}"
    turn["tool_calls"] = [*turn.get("tool_calls", []), {"name": "</pre><b>x</b>", "arguments": {"q": INJECTED}}]
    rows[0]["persona"] = INJECTED_ATTR
    traj.write_text("".join(json.dumps(r) + "\n" for r in rows))

    ids = [t["id"] for t in tasks]

    def by(key: str, chosen: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        return {str(t[key]): {"n": 1, "pass_rate": 0.5} for t in chosen}

    # what runtime/pipeline/flywheel.py writes each round, plus keys it may add later; some rounds lack optional keys
    rounds: list[dict[str, Any]] = [
        {"round": 1, "n_tasks": 24, "k": 4, "pass_rate": 0.25, "mean_difficulty": 2.5,
         "difficulty_histogram": {"2": 12, "3": 12}, "kept": 18, "to_sft": 3, "retired": 6,
         "retired_tasks": ids[4:10], "by_workflow": by("workflow", tasks[:6]), "by_branch": by("branch", tasks[:6]),
         "by_persona": by("persona", tasks[:6]),
         "new_workflows": [{"workflow": "inspect_clarify", "operator": "clarify", "source_workflow": "inspect",
                            "grown_from": ids[0], "note": "asks for the order id"}],
         "new_branches": ["inspect_clarify:clarify"], "rejected_growths": [], "new_tasks": 4,
         "lineage": [{"task": ids[0] + "/grown", "workflow": "inspect_clarify", "grown_from": ids[0],
                      "operator": "clarify"}],
         "model_before": "builtin:tiny-qwen3", "model_after": "runs/demo/flywheel/round_1/grpo/model",
         "seconds": 95.5},
        {"round": 2, "n_tasks": 24, "pass_rate": 0.5, "mean_difficulty": 3.25, "new_branches": [], "kept": 12,
         "retired": 12, "grpo_tasks": 9, "by_workflow": by("workflow", tasks[3:12]),
         "lineage": [{"task": ids[1] + "/grown", "grown_from": ids[1], "operator": "chain"}]},
        {"round": 3, "n_tasks": 20, "pass_rate": 0.7, "new_branches": ["repair.error_branch", "<b>weird</b>"],
         "kept": 6, "retired": [ids[2], ids[3]]},
    ]
    for r in rounds:
        folder = run / "flywheel" / f"round_{r['round']}"
        folder.mkdir(parents=True)
        (folder / "report.json").write_text(json.dumps(r, indent=2) + "\n")
    return run


@pytest.fixture(scope="module")
def page(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("page") / "report.html"
    assert main(["report", str(run_dir), "-o", str(out), "--episodes", "100"]) == 0
    return out


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


def test_page_renders_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    done = _chromium_run(page, tmp_path / "profile", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert re.search(r'<html[^>]*data-ready="1"', dom), "the page's script did not run to its end"
    problems = ("Uncaught", "Refused to", "Content Security Policy")  # script errors; anything the policy blocked
    assert not any(p in done.stderr for p in problems), done.stderr[-2000:]
    for table in ("stages", "groups-workflow", "groups-branch", "groups-persona", "groups-difficulty",
                  "flywheel-rounds"):
        assert f'id="{table}"' in dom
    assert dom.count("<svg") >= 5 and "<polyline" in dom
    assert 'id="filters"' in dom and 'id="filters" hidden' not in dom  # shown once the script ran
    assert "data-pwned" not in dom.split("<body", 1)[0]
    assert 'data-pwned="' not in dom


def test_filters_from_the_address(page: Path, tmp_path: Path) -> None:
    done = _chromium_run(page, tmp_path / "profile", "--dump-dom", fragment="#stage=after&outcome=fail")
    assert done.returncode == 0 and 'data-ready="1"' in done.stdout, done.stderr[-2000:]
    episodes = re.findall(r"<details [^>]*class=\"episode\"[^>]*>", done.stdout)
    shown = [t for t in episodes if " hidden" not in t]
    assert episodes and shown and len(shown) < len(episodes)
    assert all('data-stage="after"' in t and 'data-outcome="fail"' in t for t in shown)
    assert f"{len(shown)} of {len(episodes)} episodes" in done.stdout


def test_screenshot(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = _chromium_run(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000",
                         "--hide-scrollbars")
    assert done.returncode == 0 and shot.stat().st_size > 20_000, done.stderr[-2000:]


def test_untrusted_text_is_escaped(page: Path) -> None:
    text = page.read_text()
    tags = _tags(text)
    assert [t for t, _ in tags].count("script") == 1  # the page's own, at the end
    assert not any(t == "img" for t, _ in tags)
    assert not any(t == "b" for t, _ in tags)
    assert "Sure. &lt;script&gt;document.documentElement.setAttribute(&#x27;data-pwned&#x27;,&#x27;1&#x27;)" \
           "&lt;/script&gt;&lt;img src=x onerror=" in text
    assert "&lt;/pre&gt;&lt;b&gt;x&lt;/b&gt;" in text
    assert re.search(r'data-search="[^"<>]*&quot;&gt;&lt;script&gt;', text)  # the persona, in an attribute
    assert re.search(r'<span class="facts">[^<]*&quot;&gt;&lt;script&gt;document', text)  # and as text


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text()
    tags = _tags(text)
    assert not any(t in ("link", "iframe", "img", "object", "embed") for t, _ in tags)
    assert not any("src" in attrs for _, attrs in tags)
    assert not any((attrs.get("href") or "#").split("#")[0] for t, attrs in tags if t == "a")
    assert "@import" not in text and "url(" not in text
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    csp = next(a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and "default-src 'none'" in csp and "script-src 'sha256-" in csp


def test_page_content(page: Path, run_dir: Path) -> None:
    text = page.read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["before"]["success_rate"] == 0.0
    after = summary["after"]["success_rate"]
    assert f"{100 * after:.1f}%" in text and f"+{100 * after:.1f} pts" in text
    for stage in ("before", "after_sft", "after", "warmup", "grpo"):
        assert f"<td>{stage}</td>" in text
    for feature in ("depth", "calls", "user_turns", "adversarial"):
        assert f'<th colspan="10">{feature}</th>' in text
    assert "grpo: reward and success per step" in text and "warmup: training loss per step" in text
    assert "flywheel: reward and success per step" in text and "GRPO step (all rounds)" in text
    assert text.count('<text class="mark-label"') == 6  # where rounds 1-3 start, on the GRPO and the SFT curves
    assert "Pass rate per round" in text and "Mean task difficulty per round" in text
    rounds = text.split('id="flywheel-rounds"', 1)[1].split("</table>", 1)[0]
    assert rounds.count("<tr>") == 4 and "grpo tasks" in rounds and "to sft" in rounds and "70.0%" in rounds
    assert "model after" not in rounds and "<dt>model after</dt>" in text and "<dt>new workflows</dt>" in text
    assert "&lt;b&gt;weird&lt;/b&gt;" in text
    workflows = text.split('id="flywheel-workflows"', 1)[1].split("</table>", 1)[0]
    assert "round 3</th>" in workflows and workflows.count('<td class="group">') >= 3
    lineage = text.split('id="flywheel-lineage"', 1)[1].split("</table>", 1)[0]
    assert lineage.count("<tr>") == 3 and "clarify" in lineage and "chain" in lineage and "inspect_clarify" in lineage
    episodes = text.split('id="episode-list"', 1)[1]
    assert 'data-stage="before"' in episodes and 'data-stage="after"' in episodes
    assert 'data-stage="after_sft"' not in episodes
    assert 'data-outcome="pass"' in episodes and 'data-outcome="fail"' in episodes
    assert '<span class="badge pass">pass</span>' in episodes and '<span class="badge fail">fail</span>' in episodes
    assert 'class="msg user"' in episodes and 'class="msg tool' in episodes and 'class="call"' in episodes


def test_default_output_and_episode_sample(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run_dir), "--episodes", "4"]) == 0
    out = run_dir / "report.html"
    assert capsys.readouterr().out.strip() == f"report: {out}"
    episodes = out.read_text().split('id="episode-list"', 1)[1]
    assert episodes.count('data-stage="after"') == 4 and episodes.count('data-stage="before"') == 4
    assert 'data-outcome="pass"' in episodes and 'data-outcome="fail"' in episodes


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "report.html").unlink(missing_ok=True)
    return run


def test_unfinished_run_still_reports(run_dir: Path, tmp_path: Path) -> None:
    run = _copy(run_dir, tmp_path)
    (run / "summary.json").unlink()
    shutil.rmtree(run / "flywheel")
    (run / "eval" / "before" / "trajectories.jsonl").unlink()
    (run / "eval" / "after" / "report.json").unlink()  # killed between trajectories and report
    rows = [json.loads(line) for line in (run / "eval" / "after_sft" / "trajectories.jsonl").read_text().splitlines()]
    for r in rows:
        del r["difficulty"]  # written before trajectories carried it: looked up in the bundle
    (run / "eval" / "after_sft" / "trajectories.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"stage": "grpo", "step": 13, "rew')
    assert main(["report", str(run)]) == 0
    text = (run / "report.html").read_text()
    assert "no summary.json" in text and "eval/after has no report.json" in text
    assert "eval/before/trajectories.jsonl is missing" in text and "skipped 1 unreadable line" in text
    assert 'id="groups-workflow"' in text and 'id="groups-difficulty"' in text
    assert 'id="flywheel"' not in text


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "no such run folder"),
    ("empty", "is not a run folder"),
    ("fresh", "nothing to report yet"),
    ("corrupt", "not valid JSON"),
])
def test_clear_errors(setup: str, message: str, run_dir: Path, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    if setup == "empty":
        run.mkdir()
    elif setup == "fresh":  # started, nothing finished
        run.mkdir()
        shutil.copy(run_dir / "config.json", run)
        (run / "state.json").write_text(json.dumps({"model": "builtin:tiny-qwen3", "done": [], "results": {}}))
    elif setup == "corrupt":
        run = _copy(run_dir, tmp_path)
        (run / "eval" / "after" / "report.json").write_text('{"agent": ')
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("aqwen-run: error: ") and message in err and "Traceback" not in err
    assert not (run / "report.html").exists()


def test_an_eval_out_folder(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "eval-plant_maintenance-oracle"
    shutil.copytree(run_dir / "eval" / "after", folder)
    assert main(["report", str(folder)]) == 0
    text = (folder / "report.html").read_text()
    assert 'id="groups-difficulty"' in text and 'data-stage="eval-plant_maintenance-oracle"' in text
    # aqwen-run eval runs every task of the bundle: nothing on the page calls them held-out; counts are of trials
    assert "held-out" not in text.lower() and ">tasks evaluated<" in text
    assert '<th rowspan="2" class="num">trials</th>' in text


def test_a_pipeline_run_says_held_out(page: Path) -> None:
    text = page.read_text()
    assert "Held-out results by group" in text and ">held-out tasks<" in text
