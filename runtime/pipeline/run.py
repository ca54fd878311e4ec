"""``aqwen-run run``: compile if needed, pick the run folder, run the pipeline, print the before/after table; with
``--seeds``, run it once per training seed and aggregate."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any


def _error(message: str) -> int:
    sys.stderr.write(f"aqwen-run: error: {message}\n")
    return 1


def _compile_options(specs: Path, name: str) -> list[str]:
    """Compiler options a pipeline asks for (more tasks per branch means more training data)."""
    from aqwen_spec.check import check_paths

    doc = check_paths([specs]).specs.pipelines.get(name)
    if doc is not None and doc.tasks_per_branch:
        return ["--tasks-per-branch", str(doc.tasks_per_branch)]
    return []


def run_pipeline(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from aqwen_spec.documents.pipeline import Pipeline

    if not args.no_compile and args.specs.exists():
        from compiler.cli import main as compile_main

        options = _compile_options(args.specs, args.pipeline)
        if compile_main([str(args.specs), "-o", str(args.build), "-q", *options]) != 0:
            return 1
    config_file = args.build / "pipelines" / f"{args.pipeline}.json"
    if not config_file.exists():
        return _error(f"no pipeline '{args.pipeline}' in {args.build}/pipelines (add a 'kind: Pipeline' spec named "
                      f"{args.pipeline} and compile)")
    try:
        pipeline = Pipeline.model_validate(json.loads(config_file.read_text()))
    except (ValidationError, ValueError) as exc:
        return _error(f"{config_file}: {exc}")
    try:
        import torch  # noqa: F401
        import trl  # noqa: F401
    except ImportError:
        return _error("training needs the train extra: pip install -e '.[train]'")
    from runtime.episodes.bundle import Bundle, BundleError
    from runtime.pipeline.runner import no_library_bars

    if args.no_progress:
        no_library_bars()  # from here on: building the built-in model writes its weights with a bar

    try:
        bundle = Bundle.load(args.build / pipeline.domain)
    except BundleError as exc:
        return _error(str(exc))
    if args.seeds:
        return _run_seeds(args, pipeline, bundle)
    runs: Path = args.runs
    latest = runs / "latest"
    if args.resume:
        run_dir = runs / args.name if args.name else (latest.resolve() if latest.exists() else None)
        if run_dir is None or not (run_dir / "state.json").exists():
            return _error("nothing to resume: no run with a state.json (start one without --resume)")
    else:
        run_dir = runs / (args.name or f"{pipeline.name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
        if run_dir.exists():
            return _error(f"{run_dir} exists: pick another --name, or --resume it")
    summary = _run_one(args, pipeline, bundle, run_dir)
    return summary if isinstance(summary, int) else 0


def _copy_summary(report: dict[str, Any]) -> str:
    """One line on what a model's copy pre-training reached, a warning when it never passed the phase change."""
    curriculum = report["curriculum"]
    target = curriculum["target"]
    shipped = " (shipped with the package)" if report.get("shipped") else ""
    line = (f"copy core {report.get('core', '')}{shipped}: copies {report['short_accuracy']:.2f} of the "
            f"{curriculum['short_length']}-token check and {report['long_accuracy']:.2f} at "
            f"{curriculum['long_length']} tokens after "
            f"{report['short_steps']} + {report['long_steps']} steps")
    if report["short_accuracy"] < target:
        line += (f"\nwarning: the copy core stayed below {target:.2f} (it never learned to copy in "
                 f"{report['short_steps']} steps): expect ids to be guessed, not copied; raise "
                 "model.copy_pretraining.short_steps or try another seed")
    return line


def _run_one(args: argparse.Namespace, pipeline: Any, bundle: Any, run_dir: Path) -> dict[str, Any] | int:
    """Run (or resume, when ``run_dir`` has a ``state.json``) one pipeline in ``run_dir``; its summary, or 1."""
    from runtime.pipeline.runner import PipelineRunner, RunState, format_summary
    from runtime.pipeline.split import split_three
    from runtime.training.models import domain_corpus, resolve_pipeline_model

    runs: Path = args.runs
    if (run_dir / "state.json").exists():
        state = RunState.load(run_dir)
        print(f"resuming {run_dir} after: {', '.join(state.done) or 'nothing'}")
    else:
        run_dir.mkdir(parents=True)
        split = split_three(bundle.tasks, pipeline.heldout_fraction, pipeline.validation_fraction,
                            pipeline.split_seed)
        if pipeline.model.copy_pretraining is not None:
            copy = pipeline.model.copy_pretraining
            print(f"model {pipeline.model.name}: copy pre-training (the package ships the default's core; another is "
                  f"trained once and cached: at most {copy.short_steps} + {copy.long_steps} steps, several minutes "
                  "on CPU)", flush=True)
        model = resolve_pipeline_model(pipeline.model, domain_corpus(bundle, split.train), seed=pipeline.seed)
        state = RunState(str(model))
        copy_file = Path(model) / "copy_pretraining.json"
        copy_report = json.loads(copy_file.read_text()) if copy_file.exists() else None
        if copy_report is not None:
            print(_copy_summary(copy_report), flush=True)
        (run_dir / "config.json").write_text(json.dumps({
            "pipeline": pipeline.model_dump(mode="json", by_alias=True),
            "bundle": str(bundle.path), "bundle_files": bundle.manifest.get("files", {}),
            "model_path": str(model), "split": split.describe(),
            **({"copy_pretraining": copy_report} if copy_report is not None else {}),
        }, indent=2) + "\n")
        state.save(run_dir)
    runs.mkdir(parents=True, exist_ok=True)
    latest = runs / "latest"
    tmp_link = runs / f".latest.{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(os.path.relpath(run_dir.resolve(), runs.resolve()))
    os.replace(tmp_link, latest)
    runner = PipelineRunner(pipeline, bundle, run_dir, progress=not args.no_progress,
                            specs=args.specs if args.specs.exists() else None)
    validation = f", {len(runner.validation)} validation" if runner.validation else ""
    print(f"run {run_dir}: pipeline {pipeline.name}, model {pipeline.model.name}, seed {pipeline.seed}, "
          f"{len(runner.train_tasks)} training{validation} and {len(runner.heldout)} held-out tasks")
    from runtime.training.sft_grpo import TrainingError

    try:
        summary = runner.run(state)
    except TrainingError as exc:
        return _error(f"{run_dir}: {exc}")
    print()
    print(format_summary(summary))
    print(f"\nsummary: {run_dir / 'summary.json'}")
    return summary


def _run_seeds(args: argparse.Namespace, pipeline: Any, bundle: Any) -> int:
    """``--seeds``: the pipeline once per training seed in ``runs/<name>/seed-<s>/`` (the same task split), then
    ``runs/<name>/seeds.json``: each evaluation's held-out success and reward, mean and spread over the seeds."""
    from runtime.pipeline.seeds import aggregate, format_seeds

    base = args.runs / (args.name or f"{pipeline.name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    if args.resume and not base.exists():
        return _error(f"nothing to resume: no {base} (start it without --resume)")
    if not args.resume and base.exists():
        return _error(f"{base} exists: pick another --name, or --resume it")
    summaries: dict[int, dict[str, Any]] = {}
    for seed in args.seeds:
        run_dir = base / f"seed-{seed}"
        done = run_dir / "summary.json"  # written when a run ends
        if args.resume and done.exists():
            summaries[seed] = json.loads(done.read_text())
            continue
        summary = _run_one(args, pipeline.model_copy(update={"seed": seed}), bundle, run_dir)
        if isinstance(summary, int):
            return summary
        summaries[seed] = summary
    result = aggregate(summaries)
    (base / "seeds.json").write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(format_seeds(result))
    print(f"\nseeds: {base / 'seeds.json'}")
    return 0
