"""Compiling a spec tree: check it, cover every path of every workflow with tasks, gold-check them all.

``compile_specs(path, seed=...)`` returns a :class:`CompiledProject`; :mod:`compiler.bundle` writes it out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqwen_spec.check import check_paths
from aqwen_spec.diagnostics import Diagnostic, Diagnostics, SpecError
from aqwen_spec.resolved import ResolvedPersona, ResolvedWorkflow, SpecSet
from aqwen_spec.semantics.state import StateGenerationError
from aqwen_spec.source import SourceFile
from aqwen_spec.tree import Branch, paths
from compiler.generate import GoldFailure, Task, TaskGenerator, _is_adversarial

DEFAULT_SEED = 20261124
DEFAULT_TASKS_PER_BRANCH = 6


@dataclass
class CompiledDomain:
    name: str
    generator: TaskGenerator
    tasks: list[Task]
    proofs: dict[str, Any] = field(default_factory=dict)  # workflow -> compiler.proofs.WorkflowProof


@dataclass
class CompiledProject:
    specs: SpecSet
    root: Path
    seed: int
    tasks_per_branch: int
    domains: dict[str, CompiledDomain] = field(default_factory=dict)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    sources: dict[str, SourceFile] = field(default_factory=dict)
    problems: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # domain -> Problem instances


def compile_specs(
    path: Path | str, seed: int = DEFAULT_SEED, tasks_per_branch: int = DEFAULT_TASKS_PER_BRANCH
) -> CompiledProject:
    """Check and expand a spec tree. Raises :class:`SpecError` (every diagnostic) if anything is wrong."""
    root = Path(path)
    checked = check_paths([root])
    project = CompiledProject(checked.specs, root, seed, tasks_per_branch, sources=checked.sources)
    project.diagnostics = checked.diagnostics
    if checked.diagnostics.has_errors():
        raise SpecError(checked.diagnostics.errors)
    for name in sorted(checked.specs.domains):
        _compile_domain(project, name)
    if checked.specs.problems:
        from compiler.problems import compile_problems

        compile_problems(project)
    if project.diagnostics.has_errors():
        raise SpecError(project.diagnostics.errors)
    return project


def _compile_domain(project: CompiledProject, name: str) -> None:
    specs = project.specs
    generator = TaskGenerator(specs, name, project.seed)
    domain = specs.domains[name]
    try:
        for s in generator.state_seeds:
            generator.state(s)
    except StateGenerationError as exc:
        project.diagnostics.add(Diagnostic("AQ603", str(exc), domain.origin.path, domain.origin.pos))
        return
    tasks: list[Task] = []
    for wf_name in sorted(specs.workflows_of(name)):
        tasks.extend(_cover_workflow(project, generator, specs.workflows[wf_name]))
    for failure in _dedupe_failures(generator):
        verifier = specs.verifiers[failure.verifier]
        msg = (f"gold trajectory of task {failure.task_id} scores below 1.0 on verifier '{failure.verifier}': "
               f"failed {', '.join(failure.failed)}")
        project.diagnostics.add(Diagnostic("AQ602", msg, verifier.origin.path, verifier.origin.pos,
                                           hint="the check disagrees with what the workflow does on this path"))
    _report_spec_defects(project, generator)
    seen = set()
    for leave in generator.early_leaves:
        if (leave.workflow, leave.pos) in seen:
            continue
        seen.add((leave.workflow, leave.pos))
        wf = specs.workflows[leave.workflow]
        msg = (f"the simulated user leaves after the gold says {leave.told!r} (task {leave.task_id}): it has heard "
               f"every value it came for, but the gold goes on with {leave.next}")
        project.diagnostics.add(Diagnostic("AQ606", msg, wf.origin.path, leave.pos,
                                           hint="tell the user the results after the last tool call: the user ends "
                                                "the conversation once every inform_user value has been said"))
    for (wf_name, _), (task_id, problem, pos) in generator.say_problems.items():
        wf = specs.workflows[wf_name]
        project.diagnostics.add(Diagnostic("AQ623", f"the say text of this action does not work as a gold message "
                                                    f"(task {task_id}): {problem}", wf.origin.path, pos,
                                           hint="the simulated user and the verifiers read gold messages by rule: "
                                                "see 'say:' in docs/spec-language.md"))
    project.domains[name] = CompiledDomain(name, generator, tasks)
    from compiler.proofs import prove  # verifier proofs on the tasks: AQ615-AQ617

    project.domains[name].proofs = prove(project, name)


def _report_spec_defects(project: CompiledProject, generator: TaskGenerator) -> None:
    """AQ620: a gold call hit a run-time error inside a tool's precondition, effects or returns, at that point."""
    seen = set()
    for hit in generator.spec_defects:
        d = hit.defect
        tool = generator.tools[d.tool]
        key = (d.tool, d.part, d.index, d.pos)
        if key in seen:
            continue
        seen.add(key)
        pos = tool.locate(d.part, d.index, d.pos) if tool.locate is not None and d.pos is not None else tool.origin.pos
        msg = f"{d.describe()} (a gold call of workflow '{hit.workflow}' hit it): a spec defect, not a refusal"
        hint = ("guard it with an earlier precondition (e.g. `key in map`) or a declared `fail`: a run-time error "
                "in a tool is shown to the agent as an environment defect")
        project.diagnostics.add(Diagnostic("AQ620", msg, tool.origin.path, pos, hint=hint))


def _dedupe_failures(generator: TaskGenerator) -> list[GoldFailure]:
    seen = set()
    out = []
    for f in generator.gold_failures:
        key = (f.verifier, tuple(f.failed))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _cover_workflow(project: CompiledProject, generator: TaskGenerator, wf: ResolvedWorkflow) -> list[Task]:
    """Tasks for every path of the tree (``tasks_per_branch`` each), personas in turn, plus adversarial variants."""
    specs = project.specs
    all_paths = [tuple(b.name for b in p) for p in paths(wf.tree)]
    per_path = project.tasks_per_branch
    buckets: dict[tuple[str, ...], list[Task]] = {p: [] for p in all_paths}
    personas: list[ResolvedPersona | None] = [*specs.personas_for(wf)] or [None]
    rng = random.Random(f"cover:{project.seed}:{wf.name}")
    budget = 200 + 100 * len(all_paths) * per_path
    turn = 0
    while budget > 0 and any(len(b) < per_path for b in buckets.values()):
        budget -= 1
        persona = personas[turn % len(personas)]
        task = generator.draw(wf, rng, persona)
        if task is None:
            continue
        key = tuple(task.data["path"])
        bucket = buckets.setdefault(key, [])
        if len(bucket) < per_path and all(t.id != task.id for t in bucket):
            bucket.append(task)
            turn += 1
    reached = {name for key, bucket in buckets.items() if bucket for name in key}
    branches = {b.name: b for p in paths(wf.tree) for b in p}
    for bname, branch in branches.items():
        if bname not in reached:
            _unreachable(project, generator, wf, branch)
    tasks = [t for key in all_paths for t in buckets.get(key, [])]
    if not tasks and not branches:
        reason = generator.attempts[wf.name].reasons.most_common(1)
        msg = f"no task could be drawn for workflow '{wf.name}'" + (f": {reason[0][0]}" if reason else "")
        project.diagnostics.add(Diagnostic("AQ604", msg, wf.origin.path, wf.origin.pos))
    variants = []
    for task in tasks:
        known = specs.personas.get(task.data["persona"] or "")
        if task.data["request"] != "legal" and known is not None and _is_adversarial(known):
            variants.append(generator.draw_variant(wf, task.data, known))
    return tasks + variants


def _unreachable(project: CompiledProject, generator: TaskGenerator, wf: ResolvedWorkflow, branch: Branch) -> None:
    stats = generator.attempts[wf.name]
    top = stats.reasons.most_common(2)
    why = "; ".join(f"{reason} ({n}x)" for reason, n in top)
    msg = f"branch '{branch.name}' of workflow '{wf.name}' was never reached in {stats.tries} samples"
    hint = f"most rejected samples: {why}" if why else "no sampled state satisfies its condition"
    project.diagnostics.add(Diagnostic("AQ601", msg, wf.origin.path, branch.pos, hint=hint))
