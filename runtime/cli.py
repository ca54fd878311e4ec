"""The ``aqwen-run`` command line.

``aqwen-run eval BUILD/<domain> --agent oracle|noop|random [--k K] [--json] [--out DIR]`` runs every task K times
and reports success, mean reward and pass^k per workflow, branch and persona.
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
    ev = sub.add_parser("eval", help="evaluate an agent on every task of a bundle")
    ev.add_argument("bundle", type=Path, help="a bundle folder written by aqwen-compile (BUILD/<domain>)")
    ev.add_argument("--agent", default="oracle", choices=["oracle", "noop", "random"], help="built-in agent")
    ev.add_argument("--k", type=int, default=1, help="trials per task (pass^k is reported for 1..K)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ev.add_argument("--out", type=Path, default=None,
                    help="folder for trajectories.jsonl and report.json (default: runs/eval-<domain>-<agent>)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the random agent")
    ev.add_argument("--max-turns", type=int, default=20, help="assistant turns per episode")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.k < 1:
        sys.stderr.write("aqwen-run: error: --k must be at least 1\n")
        return 2
    return _eval(args)


def _eval(args: argparse.Namespace) -> int:
    from runtime.agents import Agent, NoopAgent, OracleAgent, RandomAgent
    from runtime.bundle import Bundle, BundleError
    from runtime.env import EpisodeConfig
    from runtime.evaluate import evaluate, format_table

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
    print(f"{bundle.name}: agent {args.agent}, {report.n_tasks} tasks x {args.k} trials")
    for title, key in (("workflow", "by_workflow"), ("branch", "by_branch"), ("persona", "by_persona")):
        print()
        print(format_table(title, summary[key], args.k))
    passes = "  ".join(f"pass^{k} {v:.3f}" for k, v in report.pass_hat().items())
    print(f"\nsuccess {report.success_rate:.3f}  mean reward {report.mean_reward:.3f}  {passes}")
    print(f"trajectories: {out / 'trajectories.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
