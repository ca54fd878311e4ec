"""The ``aqwen-run`` command line.

``aqwen-run`` (or ``aqwen-run run``) runs a pipeline: by default the ``default`` pipeline of ``specs/`` (compiled
into ``build/`` first), on CPU, writing ``runs/<name>/``; ``--resume`` continues the latest run.

``aqwen-run eval BUILD/<domain> --agent oracle|noop|random [--k K] [--json] [--out DIR]`` runs every task K times
and reports success, mean reward and pass^k per workflow, branch and persona.

``aqwen-run report [RUN_DIR] [-o FILE] [--episodes N]`` writes a self-contained HTML page about a run folder
(default ``runs/latest``, written to ``RUN_DIR/report.html``); see :mod:`runtime.report`.

``aqwen-run serve CHECKPOINT [--host 127.0.0.1] [--port 8000]`` serves a checkpoint over an OpenAI-compatible HTTP
API (``/v1/chat/completions`` with tools, ``/v1/models``, ``/health``); see :mod:`runtime.serving.model_server`.

``aqwen-run serve-env BUILD/<domain> [--host 127.0.0.1] [--port 8000]`` serves a bundle as an OpenEnv environment
(``/ws`` sessions, ``/reset``, ``/step``, ``/state``, ``/schema``) and its tools over MCP (``/agent/mcp``); see
:mod:`runtime.serving.env_server`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aqwen-run", description="Run episodes on compiled environment bundles.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run a pipeline (the default command)")
    run.add_argument("--pipeline", default="default", help="pipeline name (default: default)")
    run.add_argument("--specs", type=Path, default=Path("specs"), help="spec folder, compiled first (default: specs/)")
    run.add_argument("--build", type=Path, default=Path("build"), help="build folder (default: build/)")
    run.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder (default: runs/)")
    run.add_argument("--name", default=None, help="run name (default: <pipeline>-<date>-<time>)")
    run.add_argument("--resume", action="store_true", help="continue the latest run (or --name) where it stopped")
    run.add_argument("--no-compile", action="store_true", help="use BUILD as it is")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--seeds", type=_seed_list, default=None, metavar="S,S,...",
                     help="run once per training seed (e.g. 0,1,2) into RUNS/NAME/seed-S/ and aggregate held-out "
                     "success and reward (mean, std, min, max) into RUNS/NAME/seeds.json")
    ev = sub.add_parser("eval", help="evaluate an agent on every task of a bundle")
    ev.add_argument("bundle", type=Path, help="a bundle folder written by aqwen-compile (BUILD/<domain>)")
    ev.add_argument("--agent", default="oracle", choices=["oracle", "noop", "random"], help="built-in agent")
    ev.add_argument("--k", type=int, default=1, help="trials per task (pass^k is reported for 1..K)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ev.add_argument("--out", type=Path, default=None,
                    help="folder for trajectories.jsonl and report.json (default: runs/eval-<domain>-<agent>)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the random agent")
    ev.add_argument("--max-turns", type=int, default=20, help="assistant turns per episode")
    from runtime.report import DEFAULT_EPISODES

    rep = sub.add_parser("report", help="write a self-contained HTML report of a run folder")
    rep.add_argument("run_dir", type=Path, nargs="?", default=Path("runs/latest"),
                     help="a run folder written by aqwen-run (default: runs/latest)")
    rep.add_argument("-o", "--output", type=Path, default=None, help="the HTML file (default: RUN_DIR/report.html)")
    rep.add_argument("--episodes", type=int, default=DEFAULT_EPISODES,
                     help="episodes sampled from each of the first and last evaluations (default: %(default)s)")
    from runtime.serving.model_server import add_arguments as serve_arguments

    serve_arguments(sub.add_parser("serve", help="serve a checkpoint over an OpenAI-compatible HTTP API"))
    env_help = "serve a bundle as an OpenEnv environment (WebSocket/HTTP) and its tools over MCP"
    from runtime.serving.serve_env import add_arguments as serve_env_arguments

    serve_env_arguments(sub.add_parser("serve-env", help=env_help))
    return parser


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 0,1,2, not '{text}'") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is repeated in '{text}'")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "run":
        from runtime.pipeline.run import run_pipeline

        return run_pipeline(args)
    if args.command == "serve":
        from runtime.serving.model_server import run as serve

        return serve(args)
    if args.command == "serve-env":
        from runtime.serving.serve_env import run as serve_env

        return serve_env(args)
    if args.command == "report":
        return _report(args)
    if args.k < 1:
        sys.stderr.write("aqwen-run: error: --k must be at least 1\n")
        return 2
    return _eval(args)


def _eval(args: argparse.Namespace) -> int:
    from runtime.episodes.agents import Agent, NoopAgent, OracleAgent, RandomAgent
    from runtime.episodes.bundle import Bundle, BundleError
    from runtime.episodes.env import EpisodeConfig
    from runtime.episodes.evaluate import evaluate, format_table

    try:
        bundle = Bundle.load(args.bundle)
    except BundleError as exc:
        sys.stderr.write(f"aqwen-run: error: {exc}\n")
        return 1
    makers: dict[str, Callable[[], Agent]] = {
        "oracle": OracleAgent, "noop": NoopAgent, "random": lambda: RandomAgent(seed=args.seed)
    }
    report = evaluate(bundle, makers[args.agent], k=args.k, config=EpisodeConfig(max_turns=args.max_turns))
    out = args.out or Path("runs") / f"eval-{bundle.name}-{args.agent}"
    report.write_trajectories(out / "trajectories.jsonl")
    summary = report.summary()
    (out / "report.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return 0
    trials = "trial" if args.k == 1 else "trials"
    print(f"{bundle.name}: agent {args.agent}, {report.n_tasks} tasks x {args.k} {trials}")
    for title, key in (("workflow", "by_workflow"), ("branch", "by_branch"), ("persona", "by_persona")):
        print()
        print(format_table(title, summary[key], args.k))
    passes = "  ".join(f"pass^{k} {v:.3f}" for k, v in report.pass_hat().items())
    print(f"\nsuccess {report.success_rate:.3f}  mean reward {report.mean_reward:.3f}  {passes}")
    print(f"trajectories: {out / 'trajectories.jsonl'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from runtime.report import ReportError, write_report

    if args.episodes < 0:
        sys.stderr.write("aqwen-run: error: --episodes must be 0 or more\n")
        return 2
    try:
        out = write_report(args.run_dir, args.output, episodes=args.episodes)
    except ReportError as exc:
        sys.stderr.write(f"aqwen-run: error: {exc}\n")
        return 1
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
