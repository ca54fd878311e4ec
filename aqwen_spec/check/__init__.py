"""Static checking of a spec tree (stage 2): from validated documents to a :class:`~aqwen_spec.resolved.SpecSet`.

Per-kind checks live in their own modules; this one orders them (domains, tools, personas, workflows, verifiers) and
adds the checks across documents: duplicate names, unknown references, unused definitions, unreachable branches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aqwen_spec.check.conditions import atoms, contradicts, implies
from aqwen_spec.check.context import DocChecker
from aqwen_spec.check.domain import check_domain
from aqwen_spec.check.pipeline import check_pipeline
from aqwen_spec.check.pressure import check_unvoiced_tactics, checked_pressure
from aqwen_spec.check.problem import check_problem
from aqwen_spec.check.tool import check_tool
from aqwen_spec.check.verifier import check_verifier
from aqwen_spec.check.workflow import check_workflow
from aqwen_spec.diagnostics import Diagnostics, SpecError, did_you_mean
from aqwen_spec.documents.pipeline import Pipeline
from aqwen_spec.loader import Broken, LoadedDocument, load_documents
from aqwen_spec.resolved import Origin, ResolvedPersona, SpecSet
from aqwen_spec.source import SourceFile
from aqwen_spec.tactics import TACTICS
from aqwen_spec.tree import Node, Select, Sequence, walk_actions


@dataclass
class CheckResult:
    specs: SpecSet
    diagnostics: Diagnostics
    sources: dict[str, SourceFile]

    @property
    def ok(self) -> bool:
        return not self.diagnostics.has_errors()


def check_paths(paths: Iterable[Path]) -> CheckResult:
    """Load and check every spec under ``paths``; all problems are collected in the result."""
    loaded = load_documents(paths)
    specs = check_documents(loaded.documents, loaded.diagnostics, loaded.broken)
    specs.source_files = sorted(loaded.sources)
    return CheckResult(specs, loaded.diagnostics, loaded.sources)


def load_specs(path: Path | str) -> SpecSet:
    """Checked specs, or :class:`SpecError` carrying every diagnostic when there are errors."""
    result = check_paths([Path(path)])
    if result.diagnostics.has_errors():
        raise SpecError(result.diagnostics.errors)
    return result.specs


def check_documents(
    documents: list[LoadedDocument], diagnostics: Diagnostics, broken: Broken | None = None
) -> SpecSet:
    """Check validated documents together. References to ``broken`` documents (which failed to load, and were
    reported then) are not reported again, so one mistake gives one diagnostic (and a count of what it held up)."""
    broken = broken if broken is not None else Broken()
    by_kind: dict[str, dict[str, LoadedDocument]] = {}
    for item in documents:
        seen = by_kind.setdefault(item.doc.kind, {})
        if item.doc.name in seen:
            first = seen[item.doc.name]
            diagnostics.error(
                "AQ401",
                f"{item.doc.kind} '{item.doc.name}' is defined twice "
                f"(first at {first.path}:{first.yaml.value_pos(('name',)).line})",
                item.path,
                item.yaml.value_pos(("name",)),
            )
            continue
        seen[item.doc.name] = item

    def checker(item: LoadedDocument) -> DocChecker:
        return DocChecker(item, diagnostics)

    specs = SpecSet()
    for name, item in by_kind.get("Domain", {}).items():
        base = Path(item.yaml.source.path).parent
        specs.domains[name] = check_domain(checker(item), item.doc, base)  # type: ignore[arg-type]

    def domain_of(item: LoadedDocument, field: str = "domain") -> Any:
        name = getattr(item.doc, field)
        if name not in specs.domains:
            if not broken.skip(("Domain", name)):
                hint = did_you_mean(name, specs.domains)
                checker(item).report("AQ402", f"unknown domain '{name}'", (field,), hint)
            return None
        return specs.domains[name]

    for name, item in by_kind.get("Tool", {}).items():
        specs.tools[name] = check_tool(checker(item), item.doc, domain_of(item))  # type: ignore[arg-type]
    for name, item in by_kind.get("Persona", {}).items():
        specs.personas[name] = _check_persona(checker(item), item, specs)
    for name, item in by_kind.get("Workflow", {}).items():
        c = checker(item)
        for i, persona in enumerate(item.doc.personas):  # type: ignore[attr-defined]
            if persona not in specs.personas and not broken.skip(("Persona", persona)):
                hint = did_you_mean(persona, specs.personas)
                c.report("AQ404", f"unknown persona '{persona}'", ("personas", i), hint)
        wf = check_workflow(c, item.doc, domain_of(item), specs.tools, broken,  # type: ignore[arg-type]
                            specs.personas)
        if wf is not None:
            specs.workflows[name] = wf
            _check_branches(c, wf.tree)
    for name, item in by_kind.get("Verifier", {}).items():
        c = checker(item)
        target = item.doc.for_  # type: ignore[attr-defined]
        workflow = specs.workflows.get(target)
        if workflow is None and target not in by_kind.get("Workflow", {}) and not broken.skip(("Workflow", target)):
            c.report("AQ405", f"unknown workflow '{target}'", ("for",), did_you_mean(target, specs.workflows))
        domain = specs.domains.get(workflow.domain) if workflow else None
        specs.verifiers[name] = check_verifier(c, item.doc, workflow, domain, specs.tools,  # type: ignore[arg-type]
                                               broken)
    check_unvoiced_tactics(specs, {name: checker(item) for name, item in by_kind.get("Persona", {}).items()})
    for name, item in by_kind.get("Problem", {}).items():
        c = checker(item)
        if item.doc.domain is not None:  # type: ignore[attr-defined]
            domain_of(item)
        specs.problems[name] = check_problem(c, item.doc)  # type: ignore[arg-type]
    for name, item in by_kind.get("Pipeline", {}).items():
        check_pipeline(checker(item), item.yaml.data, specs, broken)
        specs.pipelines[name] = item.doc
    for ydoc in broken.invalid:  # a pipeline with a schema error still gets its other problems reported
        if ydoc.data.get("kind") == "Pipeline":
            unchecked = Pipeline.model_construct()  # type: ignore[call-arg]  # only its YAML is read
            check_pipeline(checker(LoadedDocument(unchecked, ydoc)), ydoc.data, specs, broken)
    _unused(by_kind, specs, diagnostics, broken)
    broken.report(diagnostics)
    return specs


def _check_persona(c: DocChecker, item: LoadedDocument, specs: SpecSet) -> ResolvedPersona:
    doc: Any = item.doc
    for i, tactic in enumerate(doc.tactics):
        if tactic not in TACTICS:
            hint = did_you_mean(tactic, TACTICS) or "tactics: " + ", ".join(TACTICS)
            c.report("AQ406", f"unknown tactic '{tactic}'", ("tactics", i), hint)
    for i, domain in enumerate(doc.domains):
        if domain not in specs.domains:
            c.report("AQ402", f"unknown domain '{domain}'", ("domains", i), did_you_mean(domain, specs.domains))
    c.template(doc.opening, ("opening",), set())
    return ResolvedPersona(
        doc.name, doc.description, doc.role, doc.voice, doc.opening, list(doc.knows), list(doc.tactics),
        list(doc.domains), Origin(c.path, c.pos(())), checked_pressure(c, doc.pressure),
    )


def _check_branches(c: DocChecker, node: Node) -> None:
    """Warn about branch conditions that contradict themselves or that earlier branches always catch."""
    if isinstance(node, Sequence):
        for child in node.children:
            _check_branches(c, child)
        return
    if not isinstance(node, Select):
        return
    earlier: list[list[Any]] = []
    for branch in node.branches:
        if branch.when is not None and branch.when.expr is not None:
            conj = atoms(branch.when.expr)
            if conj is not None:
                if contradicts(conj):
                    c.report("AQ502", f"the condition of branch '{branch.name}' can never be true",
                             branch.when.ypath, warning=True)
                elif any(implies(conj, prev) for prev in earlier):
                    c.report("AQ503", f"branch '{branch.name}' is never taken: an earlier branch catches every case",
                             branch.when.ypath, warning=True)
                earlier.append(conj)
        _check_branches(c, branch.body)


def _unused(by_kind: dict[str, dict[str, LoadedDocument]], specs: SpecSet, diagnostics: Diagnostics,
            broken: Broken) -> None:
    """Warn about definitions nothing uses; a broken document that could use them holds the warning back."""
    called = {a.tool for wf in specs.workflows.values() for a in walk_actions(wf.tree) if a.kind == "call"}
    called |= {c.tool for v in specs.verifiers.values() for c in v.checks if c.tool}
    verified = {v.workflow for v in specs.verifiers.values()}
    used_personas = {p.name for wf in specs.workflows.values() for p in specs.personas_for(wf)}

    def warn(kind: str, name: str, message: str) -> None:
        item = by_kind[kind][name]
        diagnostics.warning("AQ501", message, item.path, item.yaml.value_pos(("name",)))

    for name in specs.tools:
        if name not in called and not (broken.skip_kind("Workflow") or broken.skip_kind("Verifier")):
            warn("Tool", name, f"tool '{name}' is never called by a workflow or named by a verifier")
    for name in specs.workflows:
        if name not in verified and not broken.skip_kind("Verifier"):
            warn("Workflow", name, f"workflow '{name}' has no verifier, so its tasks cannot be scored")
    for name in specs.personas:
        if name not in used_personas and not broken.skip_kind("Workflow"):
            warn("Persona", name, f"persona '{name}' is not used by any workflow")
    for name in specs.domains:
        if not specs.workflows_of(name) and not broken.skip_kind("Workflow"):
            warn("Domain", name, f"domain '{name}' has no workflow")
