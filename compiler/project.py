"""Compiling a spec tree: check it, cover every path of every workflow with tasks, gold-check them all.

``compile_specs(path, seed=...)`` returns a :class:`CompiledProject`; :mod:`compiler.bundle` writes it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqwen_spec.check import check_paths
from aqwen_spec.diagnostics import Diagnostic, Diagnostics, SpecError
from aqwen_spec.resolved import ResolvedWorkflow, SpecSet
from aqwen_spec.semantics.state import StateGenerationError
from aqwen_spec.source import SourceFile
from aqwen_spec.tree import walk_branches
from compiler.coverage import WorkflowCoverage, cover_workflow
from compiler.expand import EFFECTS, NO_BRANCH
from compiler.generate import GoldFailure, Task, TaskGenerator

DEFAULT_SEED = 20261124
DEFAULT_TASKS_PER_BRANCH = 6


@dataclass
class CompiledDomain:
    name: str
    generator: TaskGenerator
    tasks: list[Task]
    coverage: dict[str, WorkflowCoverage] = field(default_factory=dict)
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
    coverage: dict[str, WorkflowCoverage] = {}
    for wf_name in sorted(specs.workflows_of(name)):
        wf = specs.workflows[wf_name]
        drawn, coverage[wf_name] = cover_workflow(specs, generator, wf, project.tasks_per_branch, project.seed)
        tasks.extend(drawn)
        _coverage_diagnostics(project, generator, wf, coverage[wf_name], drawn)
    for failure in _dedupe_failures(generator):
        _gold_failure(project, failure)
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
    project.domains[name] = CompiledDomain(name, generator, tasks, coverage)
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
        if d.part == "let":
            hint = ("bindings are computed before every precondition: bind get(map, key) and check it != null in a "
                    "precondition, so the agent is told what is wrong")
        project.diagnostics.add(Diagnostic("AQ620", msg, tool.origin.path, pos, hint=hint))


def _dedupe_failures(generator: TaskGenerator) -> list[GoldFailure]:
    """One failure per (verifier, failing check), the first task that shows it."""
    seen = set()
    out = []
    for f in generator.gold_failures:
        for index, detail in f.failed:
            if (f.verifier, index) not in seen:
                seen.add((f.verifier, index))
                out.append(GoldFailure(f.task_id, f.workflow, f.verifier, [(index, detail)], f.path))
    return out


def _gold_failure(project: CompiledProject, failure: GoldFailure) -> None:
    """AQ602 at the failing check's own line, numbered from 1 as the author counts the checks."""
    verifier = project.specs.verifiers[failure.verifier]
    [(index, detail)] = failure.failed
    check = verifier.checks[index]
    named = "" if check.name == f"{check.kind}_{index}" else f" '{check.name}'"
    msg = (f"gold trajectory of task {failure.task_id} scores below 1.0 on verifier '{failure.verifier}': "
           f"check {index + 1}{named} ({check.kind}) fails" + (f": {detail}" if detail else ""))
    origin = check.origin or verifier.origin
    project.diagnostics.add(Diagnostic("AQ602", msg, origin.path, origin.pos,
                                       hint="the check disagrees with what the workflow does on path "
                                            f"{'.'.join(failure.path) or 'main'}"))


def _coverage_diagnostics(project: CompiledProject, generator: TaskGenerator, wf: ResolvedWorkflow,
                          coverage: WorkflowCoverage, drawn: list[Task]) -> None:
    """AQ607 for each case no branch handles, AQ601 for each branch the search could not reach, AQ604 when a
    workflow without branches gave no task."""
    for case in generator.uncovered.values():
        if case.workflow != wf.name:
            continue
        if case.precondition == NO_BRANCH:
            msg = (f"uncovered case in workflow '{wf.name}': no branch of this select matches in {case.count} of "
                   f"{generator.attempts[wf.name].tries} samples; e.g. {case.sample.describe()}")
            hint = "add an 'otherwise' branch, or narrow the slots' sampling so that one of the conditions holds"
            project.diagnostics.add(Diagnostic("AQ607", msg, wf.origin.path, case.pos, hint=hint))
            continue
        tool = project.specs.tools[case.tool]
        if case.precondition == EFFECTS:
            where = "in its effects"
        else:
            where = f"on its precondition {case.precondition + 1} ({tool.requires[case.precondition].error!r})"
        msg = (f"uncovered case in workflow '{wf.name}': the gold call {case.tool}(...) fails {where} in "
               f"{case.count} of {generator.attempts[wf.name].tries} samples, and no branch catches it; "
               f"e.g. {case.sample.describe()}: {case.error!r}")
        hint = ("add a branch before the call whose condition catches this case, narrow the slot's sampling so it "
                f"cannot happen, or list it under out_of_scope: [{{tool: {case.tool}, precondition: ..., "
                "reason: ...}] if the workflow leaves it out on purpose")
        project.diagnostics.add(Diagnostic("AQ607", msg, wf.origin.path, case.pos, hint=hint))
    for name, hint in coverage.unreached.items():
        branch = next(b for b in walk_branches(wf.tree) if b.name == name)
        msg = f"branch '{name}' of workflow '{wf.name}' was never reached, even by the search"
        project.diagnostics.add(Diagnostic("AQ601", msg, wf.origin.path, branch.pos, hint=hint))
    if not drawn and not walk_branches(wf.tree) and not any(c.workflow == wf.name
                                                            for c in generator.uncovered.values()):
        reason = generator.attempts[wf.name].reasons.most_common(1)
        msg = f"no task could be drawn for workflow '{wf.name}'" + (f": {reason[0][0]}" if reason else "")
        project.diagnostics.add(Diagnostic("AQ604", msg, wf.origin.path, wf.origin.pos))
