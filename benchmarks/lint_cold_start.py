"""Cold start of ``aqwen-lint specs/`` against ``yamllint specs/`` on the same files.

Each run is a fresh process started through the console script, as a developer or a pre-commit hook starts it;
wall time is measured around ``subprocess.run`` (start-up, imports, checking, output). Runs of the two commands are
interleaved so that machine noise hits both alike; the median is the number reported.

The import time breakdown comes from ``python -X importtime`` on the same command: the slowest imports by
cumulative time, and the self time summed per top-level package (median over a few runs).

Bytecode: both commands normally run from compiled ``.pyc`` files (pip compiles them on install, and an editable
install writes them on first import). When ``PYTHONDONTWRITEBYTECODE`` is set, aqwen_spec's modules would be compiled
from source on every run, which measures the environment rather than the linter; the benchmark therefore unsets it
for one warm-up run (writing ``__pycache__``) unless ``--keep-env`` is given.

Usage::

    python benchmarks/lint_cold_start.py                 # 21 runs each, on specs/
    python benchmarks/lint_cold_start.py --runs 41 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str) -> str:
    """The console script next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the dev extra (pip install -e '.[dev]')")
    return found


def _env(keep: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not keep:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("GITHUB_ACTIONS", None)  # same output format on every machine
    env["NO_COLOR"] = "1"
    return env


def _time_once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def wall_times(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    for cmd in commands.values():  # warm-up: OS file cache, __pycache__
        _time_once(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(_time_once(cmd, env))
    return times


_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def import_breakdown(cmd: list[str], env: dict[str, str], runs: int = 5) -> tuple[list[tuple[str, float]], dict]:
    """(slowest imports by cumulative ms, from one run; median self ms per top-level package)."""
    per_package: dict[str, list[float]] = defaultdict(list)
    top: list[tuple[str, float]] = []
    for i in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", *cmd], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        sums: dict[str, float] = defaultdict(float)
        entries = []
        for line in proc.stderr.splitlines():
            m = _LINE.match(line)
            if not m:
                continue
            self_us, cum_us, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
            sums[name.split(".")[0].lstrip("_") or name] += self_us / 1000
            entries.append((indent, name, cum_us / 1000))
        for package, ms in sums.items():
            per_package[package].append(ms)
        if i == 0:
            top = sorted(((n, c) for _, n, c in entries), key=lambda x: -x[1])
    medians = {p: statistics.median(v + [0.0] * (runs - len(v))) for p, v in per_package.items()}
    return top, dict(sorted(medians.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each command (default 21)")
    parser.add_argument("--specs", default="specs/", help="the spec tree to lint (default specs/)")
    parser.add_argument("--keep-env", action="store_true", help="leave PYTHONDONTWRITEBYTECODE as it is")
    parser.add_argument("--top", type=int, default=15, help="how many imports and packages to list")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    env = _env(args.keep_env)
    aqwen, yamllint = _script("aqwen-lint"), _script("yamllint")
    # every file changed since the last lint (--no-cache: a full check), and nothing changed (a cache hit)
    commands = {"aqwen-lint --no-cache": [aqwen, "--no-cache", args.specs],
                "aqwen-lint (cache hit)": [aqwen, args.specs], "yamllint": [yamllint, args.specs]}
    times = wall_times(commands, args.runs, env)
    top, packages = import_breakdown([aqwen, "--no-cache", args.specs], env)

    summary = {
        name: {
            "median_ms": round(statistics.median(ts) * 1000, 1),
            "min_ms": round(min(ts) * 1000, 1),
            "max_ms": round(max(ts) * 1000, 1),
        }
        for name, ts in times.items()
    }
    baseline = _time_python(env, args.runs)
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "python_startup_ms": baseline,
    }
    if args.json:
        payload = {"machine": machine, "wall": summary, "imports_top": top[: args.top], "packages": packages}
        print(json.dumps(payload, indent=2))
        return 0
    print(f"machine: {machine['platform']}, {machine['cpus']} cpus, Python {machine['python']}")
    print(f"bare interpreter start (python -c pass): {baseline} ms median\n")
    print("| command | median | min | max |")
    print("|---|---:|---:|---:|")
    for name, s in summary.items():
        print(f"| `{name} {args.specs}` | {s['median_ms']} ms | {s['min_ms']} ms | {s['max_ms']} ms |")
    print("\nslowest imports (cumulative ms, one run of python -X importtime):\n")
    print("| module | cumulative ms |")
    print("|---|---:|")
    for name, ms in top[: args.top]:
        print(f"| `{name}` | {ms:.1f} |")
    print("\nimport self time per top-level package (ms, median of 5 runs):\n")
    print("| package | self ms |")
    print("|---|---:|")
    for name, ms in list(packages.items())[: args.top]:
        print(f"| `{name}` | {ms:.1f} |")
    return 0


def _time_python(env: dict[str, str], runs: int) -> float:
    ts = [_time_once([sys.executable, "-c", "pass"], env) for _ in range(runs)]
    return round(statistics.median(ts) * 1000, 1)


if __name__ == "__main__":
    raise SystemExit(main())
