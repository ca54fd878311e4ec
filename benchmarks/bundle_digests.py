"""Digests of what the compiler generates, to check that a speed-up changes none of it.

Run: python benchmarks/bundle_digests.py [--seeds 0 1 7] [--tasks 3000] > digests.txt
Prints one line per bundle file (every spec tree of specs/, examples/ and the tutorial, compiled at each seed, with
its diagnostics) and per `TaskGenerator.generate` stream (each domain of each tree, plain and adversarial, with the
rejection counts), each with a sha256 of its bytes. Run it before and after a change and diff the outputs: an empty
diff means byte-identical bundles and task streams.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = [ROOT / "specs", *sorted((ROOT / "examples").glob("*/specs")), ROOT / "docs" / "tutorial" / "specs"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def bundle_lines(tree: Path, seed: int) -> list[str]:
    from aqwen_spec.diagnostics import SpecError
    from compiler import compile_specs
    from compiler.bundle import write_bundles

    name = tree.relative_to(ROOT).as_posix()
    try:
        project = compile_specs(tree, seed=seed)
    except SpecError as exc:
        text = "\n".join(f"{d.code} {d.location()} {d.message} {d.hint}" for d in exc.diagnostics)
        return [f"{name} seed {seed} errors {_sha(text.encode())}"]
    warnings = "\n".join(f"{d.code} {d.location()} {d.message} {d.hint}" for d in project.diagnostics.warnings)
    lines = [f"{name} seed {seed} warnings {_sha(warnings.encode())}"]
    with tempfile.TemporaryDirectory() as out:
        write_bundles(project, Path(out))
        for path in sorted(Path(out).rglob("*")):
            if path.is_file():
                lines.append(f"{name} seed {seed} {path.relative_to(out).as_posix()} {_sha(path.read_bytes())}")
    return lines


def stream_lines(tree: Path, seed: int, n: int) -> list[str]:
    from aqwen_spec.diagnostics import SpecError
    from compiler import TaskGenerator, compile_specs

    try:
        project = compile_specs(tree)
    except SpecError:
        return []
    lines = []
    for domain in sorted(project.specs.domains):
        for adversarial in (0.0, 0.5):
            generator = TaskGenerator(project.specs, domain, seed=seed)
            tasks = generator.generate(n, seed=seed, adversarial=adversarial)
            blob = "\n".join(json.dumps(t.data, sort_keys=True, default=str) for t in tasks)
            counts = json.dumps({
                "attempts": {w: [a.tries, sorted(a.reasons.items()), sorted(a.out_of_scope.items()),
                                 sorted((k, s.describe()) for k, s in a.examples.items())]
                             for w, a in generator.attempts.items()},
                "uncovered": sorted((str(k), c.count, c.sample.describe()) for k, c in generator.uncovered.items()),
                "early_leaves": [e.task_id for e in generator.early_leaves],
                "gold_failures": [f.task_id for f in generator.gold_failures],
            }, sort_keys=True, default=str)
            name = tree.relative_to(ROOT).as_posix()
            lines.append(f"generate {name} {domain} seed {seed} adversarial {adversarial} tasks {len(tasks)} "
                         f"{_sha(blob.encode())} attempts {_sha(counts.encode())}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 7])
    parser.add_argument("--tasks", type=int, default=3000)
    args = parser.parse_args()
    for seed in args.seeds:
        for tree in TREES:
            for line in bundle_lines(tree, seed) + stream_lines(tree, seed, args.tasks):
                print(line)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
