"""Every spec tree compiles for every seed: `aqwen-compile TREE --seed N` for the trees of specs/, examples/ and the
tutorial, for seeds 0..N-1, in one process.

Run: python benchmarks/compile_seeds.py [--seeds 100] [TREE ...]
Prints, per tree, how many seeds compiled, the seeds that failed (with their first diagnostic), the branches the
search had to find beyond the pooled states (in how many seeds), and the time per compile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = [ROOT / "specs", *sorted((ROOT / "examples").glob("*/specs")), ROOT / "docs" / "tutorial" / "specs"]


def check_tree(tree: Path, seeds: range) -> tuple[list[str], Counter[str], list[float]]:
    from aqwen_spec.diagnostics import SpecError
    from compiler import compile_specs

    failures: list[str] = []
    searched: Counter[str] = Counter()
    times: list[float] = []
    for seed in seeds:
        start = time.perf_counter()
        try:
            project = compile_specs(tree, seed=seed)
        except SpecError as exc:
            first = exc.diagnostics[0]
            failures.append(f"seed {seed}: {first.code} {first.message}")
            continue
        finally:
            times.append(time.perf_counter() - start)
        for domain in project.domains.values():
            for wf, report in domain.coverage.items():
                for branch, how in report.searched.items():
                    searched[f"{wf}/{branch} ({'scenario' if 'scenario' in how else 'further states'})"] += 1
    return failures, searched, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("trees", nargs="*", type=Path, help="spec trees (default: specs/, examples/*/specs, tutorial)")
    parser.add_argument("--seeds", type=int, default=100, help="seeds 0..N-1 (default: 100)")
    args = parser.parse_args()
    failed = 0
    for tree in args.trees or TREES:
        failures, searched, times = check_tree(tree, range(args.seeds))
        failed += len(failures)
        name = tree.relative_to(ROOT) if tree.is_relative_to(ROOT) else tree
        print(f"{name}: {args.seeds - len(failures)}/{args.seeds} seeds compile; "
              f"median {statistics.median(times):.2f} s, max {max(times):.2f} s per compile")
        for line in failures:
            print(f"  FAILED {line}")
        for key, n in sorted(searched.items()):
            print(f"  searched: {key} in {n} seeds")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
