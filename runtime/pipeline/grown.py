"""Held-out grown tasks: harder variants of held-out samples, grown with the flywheel's own operators, never trained on.

The domain's spec tree is copied to ``<folder>/specs/``; every workflow of the domain is grown by each operator of the
pipeline's ``grown_heldout.grow`` in turn (as the flywheel grows, round number 0, so the names, ``<workflow>_err0``
and the like, never clash with a flywheel's rounds 1 and up); a growth is kept only if the grown tree lints,
compiles and every gold trajectory scores 1.0. Tasks are then drawn from each kept workflow with a fixed seed, and a
task is kept only if its *source sample* (the workflow it was grown from and the slot values they share,
:func:`runtime.pipeline.split.source_key`) falls in the pipeline's held-out share: the same hash as the pipeline's
own split, so a held-out grown task is a harder variant of a held-out sample. A flywheel never trains on a task whose
source sample is held out or kept for validation (:meth:`runtime.pipeline.flywheel.Flywheel.trainable`), so these
tasks are disjoint from anything any stage trains on.

Everything is seeded (``grown_heldout.seed``, the bundle's compile seed): every training seed of a pipeline is
evaluated on the same tasks. Growing compiles the tree once per candidate (minutes on a busy CPU), so the result is
kept next to the bundle, ``<build>/grown_heldout/<key>/``, the key a hash of the spec tree (its files of Pipeline
documents left out: they change no task), the options and the split: ``tasks.json`` (the tasks and the growths
kept and rejected), ``tasks.jsonl`` (the task records), ``build/`` (the bundle they run on) and ``specs/`` (the
grown tree).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from runtime.pipeline.flywheel import FlywheelError, _seed, keep_growths, workflow_slots
from runtime.pipeline.split import side, source_key
from runtime.publish import publish_folder

Task = dict[str, Any]


def grow_every_workflow(work: Path, domain: str, operators: list[str], try_compile: Any) -> tuple[list[Any],
                                                                                                   list[Any], Any]:
    """Grow each of the domain's workflows (in name order) by each operator; keep what compiles (see the module)."""
    from compiler.growth import OPERATORS, GrowthContext, load_raw

    project, error = try_compile()
    if project is None:
        raise FlywheelError(f"the spec tree does not compile: {error}")
    raw = load_raw(work)
    ctx = GrowthContext(project.specs, raw, 0)
    workflows = sorted(name for (kind, name), doc in raw.items()
                       if kind == "Workflow" and doc.data.get("domain") == domain)
    candidates = []
    for workflow in workflows:
        for op in operators:
            growth = OPERATORS[op](ctx, workflow)
            if growth is not None:
                candidates.append(growth)
    return keep_growths(work, candidates, 0, try_compile)


def cache_key(runner: Any) -> str:
    """What the held-out grown tasks depend on: the spec tree's files, the options, the split and the compile seed."""
    p = runner.pipeline
    h = hashlib.sha256(json.dumps([p.grown_heldout.model_dump(mode="json"), p.heldout_fraction,
                                   p.validation_fraction, p.split_seed, runner.bundle.manifest.get("seed", 0),
                                   runner.bundle.name]).encode())
    for path in sorted(Path(runner.specs).rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.parts) and not _pipelines_only(path):
            h.update(str(path.relative_to(runner.specs)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _pipelines_only(path: Path) -> bool:
    """A YAML file of Pipeline documents only: it changes no task, so adding a pipeline keeps the cache."""
    import yaml

    if path.suffix not in (".yaml", ".yml"):
        return False
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return bool(docs) and all(isinstance(d, dict) and d.get("kind") == "Pipeline" for d in docs)


def grown_heldout(runner: Any) -> tuple[Any, list[Task]]:
    """The held-out grown tasks of ``runner``'s pipeline and the bundle they run on: built once per spec tree, options
    and split, then read back (see the module)."""
    from runtime.episodes.bundle import Bundle

    if runner.specs is None:
        raise FlywheelError("held-out grown tasks need the spec tree the bundle came from (aqwen-run --specs)")
    folder = Path(runner.bundle.path).parent / "grown_heldout" / cache_key(runner)
    records = folder / "tasks.jsonl"
    if not records.exists():
        build_grown_heldout(runner, folder)
    tasks = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines() if line]
    runner.echo(f"held-out grown tasks: {len(tasks)} ({folder})")
    return Bundle.load(folder / "build" / runner.bundle.name), tasks


def build_grown_heldout(runner: Any, folder: Path) -> None:
    """Grow, draw and write the held-out grown tasks of ``runner``'s pipeline under ``folder``."""
    from aqwen_spec.diagnostics import SpecError
    from compiler import compile_specs, write_bundles
    from compiler.growth import load_raw

    pipeline, options = runner.pipeline, runner.pipeline.grown_heldout
    domain = runner.bundle.name
    compile_seed = int(runner.bundle.manifest.get("seed", 0))
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")  # runs sharing a build folder build side by side
    work = tmp / "specs"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(runner.specs, work, ignore=shutil.ignore_patterns(".*"))

    def try_compile() -> tuple[Any, Any]:
        try:
            return compile_specs(work, seed=compile_seed, tasks_per_branch=2), None
        except SpecError as exc:
            return None, exc

    kept, rejected, project = grow_every_workflow(work, domain, list(options.grow), try_compile)
    if project is None:
        raise FlywheelError("no growth of the domain's workflows compiles: no held-out grown tasks")
    original = load_raw(runner.specs)
    roots = {g.workflow: (g.source, workflow_slots(original, g.source)) for g in kept}
    generator = project.domains[domain].generator
    tasks: list[Task] = []
    for g in kept:
        found: dict[str, Task] = {}  # by task id: a task drawn again is the same task
        for attempt in range(4):
            if len(found) >= options.tasks_per_workflow:
                break
            drawn = generator.generate(options.tasks_per_workflow * 8, seed=_seed(options.seed, "grown_heldout",
                                                                                 g.workflow, attempt),
                                       workflows=[g.workflow])
            for task in drawn:
                if len(found) >= options.tasks_per_workflow:
                    break
                key = source_key(task.data, roots)
                if task.data["id"] not in found and side(key, pipeline.heldout_fraction, pipeline.validation_fraction,
                                                         pipeline.split_seed) == "heldout":
                    found[task.data["id"]] = task.data
        tasks += found.values()
    write_bundles(project, tmp / "build")
    with (tmp / "tasks.jsonl").open("w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")
    (tmp / "tasks.json").write_text(json.dumps({
        "n_tasks": len(tasks),
        "growths": [{"workflow": g.workflow, "operator": g.operator, "source_workflow": g.source,
                     "tasks": sum(t["workflow"] == g.workflow for t in tasks)} for g in kept],
        "rejected_growths": rejected,
        "tasks": [{"id": t["id"], "workflow": t["workflow"], "branch": t.get("branch"),
                   "source_sample": source_key(t, roots)} for t in tasks],
    }, indent=2) + "\n")
    runner.echo(f"held-out grown tasks: {len(tasks)} drawn from {len(kept)} grown workflows ({len(rejected)} "
                "growths rejected)")
    publish_folder(tmp, folder, marker="tasks.jsonl")

