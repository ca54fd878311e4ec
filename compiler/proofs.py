"""Verifier proofs at compile time: on every compiled task, doing nothing fails and a harmless extra read passes.

The gold trajectory scoring 1.0 is checked where tasks are drawn (``AQ602``). Here, per task, two more trajectories
are scored with the same semantics the runtime uses:

- **doing nothing**: no tool call and nothing said (the ``noop`` agent): the final state is the initial one and the
  episode ends ``done``. A verifier this satisfies teaches nothing: ``AQ615`` at the verifier. Its mean reward per
  workflow is the partial credit of doing nothing, written to ``manifest.json`` and printed by ``aqwen-compile``;
  above :data:`NOOP_CREDIT_LIMIT` ``AQ617`` warns, because GRPO on partial credit then pulls the policy towards
  doing nothing (docs/training.md).
- **the gold plus a harmless read**: one read-only call (``access: read``) the gold does not make, with valid
  arguments (taken from the gold's calls and the slots by parameter name; it must succeed), made first, then the
  gold's calls; where no read tool fits, the gold's own first read made once more. It must still succeed, else
  ``AQ616`` at the check that broke.

Gold calls are replayed on the generator's pooled state under an undo journal and rolled back (no state copies);
whether doing nothing leaves the gold's final state is read from the journal (``aqwen_spec.semantics.changes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aqwen_spec.diagnostics import Diagnostic, Severity
from aqwen_spec.expr.episode import Episode, install, uninstall
from aqwen_spec.resolved import ResolvedVerifier
from aqwen_spec.semantics import ToolRunner, copy_state, score
from aqwen_spec.semantics.changes import Delta, PathIndex, same_final_state
from aqwen_spec.semantics.verify import CallRecord, Evidence, Score, initial_fields
from compiler.generate import undo

if TYPE_CHECKING:
    from compiler.generate import Task, TaskGenerator
    from compiler.project import CompiledProject

NOOP_CREDIT_LIMIT = 0.3
"""Mean reward of doing nothing on a workflow above which ``aqwen-compile`` warns (AQ617)."""

TRAINING_DOC = "docs/training.md (\"Why the default GRPO stage maximises success\")"


@dataclass
class WorkflowProof:
    """What the proofs found on the tasks of one workflow."""

    workflow: str
    tasks: int = 0
    noop_rewards: dict[str, float] = field(default_factory=dict)
    """The reward of doing nothing, by task id."""
    noop_successes: list[tuple[str, str, list[str]]] = field(default_factory=list)
    """(task id, branch, the checks that passed) of each task that doing nothing succeeds on."""
    extra_read_tried: int = 0
    extra_read_failures: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(task id, verifier, check, the extra call) of each task the gold plus a harmless read fails."""

    @property
    def noop_mean(self) -> float:
        return sum(self.noop_rewards.values()) / len(self.noop_rewards) if self.noop_rewards else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "do_nothing_mean_reward": round(self.noop_mean, 4),
            "do_nothing_succeeds": len(self.noop_successes),
            "extra_read_tried": self.extra_read_tried,
            "extra_read_fails": len(self.extra_read_failures),
        }


def prove(project: CompiledProject, domain: str) -> dict[str, WorkflowProof]:
    """Prove the verifiers of ``domain`` on its compiled tasks; report what fails as diagnostics of ``project``."""
    compiled = project.domains[domain]
    proofs = prove_tasks(compiled.generator, compiled.tasks)
    for proof in proofs.values():
        _report(project, proof)
    return proofs


def prove_tasks(generator: TaskGenerator, tasks: list[Task]) -> dict[str, WorkflowProof]:
    """Run both proofs on every task; results per workflow (sorted by name)."""
    prover = _Prover(generator)
    proofs: dict[str, WorkflowProof] = {}
    for task in tasks:
        name = task.data["workflow"]
        prover.prove(task.data, proofs.setdefault(name, WorkflowProof(name)))
    return dict(sorted(proofs.items()))


class _Prover:
    def __init__(self, generator: TaskGenerator) -> None:
        self.generator = generator
        self.specs = generator.specs
        self.tools = generator.tools
        self._indexes: dict[int, PathIndex] = {}

    def prove(self, task: dict[str, Any], proof: WorkflowProof) -> None:
        verifiers = self.specs.verifiers_of(task["workflow"])
        if not verifiers:
            return
        seed = int(task["initial_state"]["seed"])
        inline = task["initial_state"].get("state")  # a branch scenario's edit of the pooled state
        journaled = self.generator.journaled and inline is None
        pooled = self.generator.state(seed) if inline is None else inline
        gold = task["gold"]
        fields = initial_fields(verifiers)
        before = copy_state(pooled) if "*" in fields or not journaled else \
            {f: copy_state(pooled[f]) for f in fields if f in pooled}
        journal: list[Any] | None = [] if journaled else None
        state = pooled if journaled else copy_state(pooled)
        index = self._index(seed, pooled) if journaled else None
        runner = self.generator.pooled_runner(state, journal) if journal is not None else \
            ToolRunner(self.tools, state, output=self.generator.domain.result)
        runner.episode = Episode.of_task(task)  # the gold's draws again, and its clock
        clock = install(Episode.of(task.get("clock"), None))  # for the verifiers
        try:
            extra = self._extra_read(task, runner)  # made already, on the initial state
            records = [] if extra is None else [CallRecord(extra["name"], extra["arguments"], True)]
            calls = list(gold["calls"])
            if extra is None:  # no read tool fits: the gold's own first read, made once more
                first = next((i for i, c in enumerate(calls) if c["name"] in self.tools
                              and self.tools[c["name"]].access == "read"), None)
                if first is not None:
                    extra = calls[first]
                    calls.insert(first + 1, extra)
            for call in calls:
                ok = runner.call(call["name"], call["arguments"]).ok if call["name"] in self.tools else True
                records.append(CallRecord(call["name"], call["arguments"], ok))
            said = "\n".join(m["content"] for m in gold["messages"] if m["role"] == "assistant")
            slots, path, outcome = task["slots"], list(task["path"]), gold.get("outcome", "done")
            proof.tasks += 1
            if extra is not None:
                proof.extra_read_tried += 1
                ev = Evidence(records, said, state, before, slots, path, state, outcome, outcome)
                for verifier in verifiers:
                    result = score(verifier, ev)
                    if not result.success:
                        broke = result.failed()[0].name if result.failed() else "the threshold"
                        proof.extra_read_failures.append((task["id"], verifier.name, broke, _call_text(extra)))
                        break
            if journal is not None and index is not None:
                delta = Delta.capture(state, index.touched(journal))
                undo(runner, journal)
                gold_state_kept = same_final_state(pooled, (), pooled, delta)
            else:
                gold_state_kept = state == pooled
            nothing = Evidence([], "", pooled, pooled, slots, path, None, "done", outcome,
                               same_final_state=lambda: gold_state_kept)
            scores = [score(v, nothing) for v in verifiers]
            proof.noop_rewards[task["id"]] = min(s.reward for s in scores)
            if all(s.success for s in scores):
                proof.noop_successes.append((task["id"], task.get("branch", ""), _passed(scores)))
        finally:
            uninstall(clock)
            if journal:
                undo(runner, journal)

    def _extra_read(self, task: dict[str, Any], runner: ToolRunner) -> dict[str, Any] | None:
        """A read-only call the gold does not make, with arguments taken from the gold's calls and the slots by
        parameter name, that succeeds on the initial state (made there, as the episode's first call); None when
        no read tool fits."""
        made = {c["name"] for c in task["gold"]["calls"]}
        values: dict[str, Any] = {}
        for call in task["gold"]["calls"]:
            for name, value in call["arguments"].items():
                values.setdefault(name, value)
        for slot in task["slots"].values():
            if isinstance(slot, dict):
                for name, value in slot.items():
                    values.setdefault(name, value)
        values.update({f"{name}_id": slot["id"] for name, slot in task["slots"].items()
                       if isinstance(slot, dict) and "id" in slot and f"{name}_id" not in values})
        for name, tool in sorted(self.tools.items()):
            if tool.access != "read" or name in made:
                continue
            needed = [p for p, param in tool.params.items() if param.required]
            if not all(p in values for p in needed):
                continue
            call = {"name": name, "arguments": {p: values[p] for p in needed}}
            if runner.call(name, call["arguments"]).ok:
                return call
        return None

    def _index(self, seed: int, state: dict[str, Any]) -> PathIndex:
        index = self._indexes.get(seed)
        if index is None:
            index = self._indexes[seed] = PathIndex(state)
        return index


def _passed(scores: list[Score]) -> list[str]:
    return [c.name for s in scores for c in s.checks if c.applicable and c.passed]


def _call_text(call: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in call["arguments"].items())
    return f"{call['name']}({args})"


def _report(project: CompiledProject, proof: WorkflowProof) -> None:
    specs = project.specs
    verifiers = specs.verifiers_of(proof.workflow)
    verifier: ResolvedVerifier = verifiers[0]
    where = verifier.origin
    if proof.noop_successes:
        task_id, _, passed = proof.noop_successes[0]
        branches = ", ".join(repr(b) for b in sorted({b for _, b, _ in proof.noop_successes}) if b)
        msg = (f"doing nothing (no tool call, nothing said) succeeds on verifier '{verifier.name}' for "
               f"{len(proof.noop_successes)} of {proof.tasks} tasks of workflow '{proof.workflow}' ("
               f"{f'branch {branches}; ' if branches else ''}e.g. task {task_id}: passed "
               f"{', '.join(passed) or 'no check'})")
        project.diagnostics.add(Diagnostic(
            "AQ615", msg, where.path, where.pos,
            hint="add a check only real work passes on that branch: require the call that matters, tells_user "
                 "the answer, or same_outcome_as_gold where the gold refuses or transfers"))
    for task_id, vname, check_name, call in proof.extra_read_failures[:1]:
        v = specs.verifiers[vname]
        check = next((c for c in v.checks if c.name == check_name), None)
        origin = check.origin if check is not None and check.origin is not None else v.origin
        msg = (f"the gold plus one harmless read-only call, {call}, fails check '{check_name}' of "
               f"verifier '{vname}' (task {task_id}; {len(proof.extra_read_failures)} of {proof.extra_read_tried} "
               f"tasks tried)")
        project.diagnostics.add(Diagnostic(
            "AQ616", msg, origin.path, origin.pos,
            hint="a verifier must not punish looking things up: check the calls that change or decide something"))
    if proof.noop_mean > NOOP_CREDIT_LIMIT and not proof.noop_successes:
        msg = (f"doing nothing earns {proof.noop_mean:.2f} of the reward on average on workflow "
               f"'{proof.workflow}' (verifier '{verifier.name}', {proof.tasks} tasks): GRPO on partial credit then "
               f"pulls the policy towards doing nothing, since an attempt that goes wrong earns less than not trying")
        project.diagnostics.add(Diagnostic(
            "AQ617", msg, where.path, where.pos, Severity.WARNING,
            hint=f"gate the checks that pass by default (gate: true on the action that matters), or weight the "
                 f"ones only real work passes; see {TRAINING_DOC}"))
