"""Task generators: draw (state, slots, persona) samples, execute the tree, keep tasks whose gold scores 1.0.

A :class:`TaskGenerator` serves one domain. ``generate(n, seed, ...)`` draws tasks on demand with knobs a flywheel
turns: which workflows and branches, how adversarial, how deep.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aqwen_spec.expr import SAMPLING_FUNCTIONS, EvalError, evaluate, rollback, sampling_rng
from aqwen_spec.expr.evaluator import state_env
from aqwen_spec.expr.functions import FunctionError
from aqwen_spec.resolved import ResolvedPersona, ResolvedWorkflow, SpecSet
from aqwen_spec.semantics import copy_state, generate_state, score
from aqwen_spec.semantics.user import leaves_before_the_end
from aqwen_spec.semantics.verify import CallRecord, Evidence, initial_fields
from aqwen_spec.tactics import TACTICS
from aqwen_spec.templates import render
from aqwen_spec.tree import walk_branches
from compiler.expand import Rejected, SpecDefectHit, TreeRunner

STATE_POOL = 8  # initial states per domain and seed: tasks share them (by seed), so bundles stay small


@dataclass
class Task:
    """One task: everything the runtime needs to run and score an episode, as JSON-ready data."""

    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])


@dataclass
class GoldFailure:
    task_id: str
    workflow: str
    verifier: str
    failed: list[str]


@dataclass
class EarlyLeave:
    """A gold trajectory the scripted user walks out of: it has heard every value it came for once the gold said
    ``told`` (the action at ``pos``), while the gold goes on with ``next`` (a tool call or a question)."""

    task_id: str
    workflow: str
    pos: Any
    told: str
    next: str


@dataclass
class Attempts:
    """Why samples were rejected, per workflow, for diagnostics on unreachable branches."""

    reasons: Counter[str] = field(default_factory=Counter)
    tries: int = 0


def _stable_hash(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha1(blob).hexdigest()


class TaskGenerator:
    """Draws tasks for the workflows of one domain."""

    def __init__(self, specs: SpecSet, domain: str, seed: int = 0) -> None:
        self.specs = specs
        self.domain = specs.domains[domain]
        self.tools = specs.tools_of(domain)
        self.workflows = specs.workflows_of(domain)
        self.seed = seed
        self.state_seeds = [seed * 1000 + k for k in range(STATE_POOL)]
        self._states: dict[int, dict[str, Any]] = {}
        self.attempts: dict[str, Attempts] = {w: Attempts() for w in self.workflows}
        self.gold_failures: list[GoldFailure] = []
        self.early_leaves: list[EarlyLeave] = []
        self.say_problems: dict[tuple[str, Any], tuple[str, str, Any]] = {}  # (workflow, action) -> task, why, pos
        self.spec_defects: list[SpecDefectHit] = []
        """Gold calls that hit a run-time error in a tool's own spec (reported as AQ620)."""
        # python tools change the state behind the journal's back: with one that writes, copy states instead
        self._journaled = not any(t.implementation == "python" and t.access == "write" for t in self.tools.values())
        self._initial_fields: dict[str, set[str]] = {}
        self._poolable: dict[tuple[str, str], tuple[str, Any] | tuple[()]] = {}
        self._pools: dict[tuple[str, str, int], Any] = {}

    def state(self, state_seed: int) -> dict[str, Any]:
        """The initial state of a seed (generated once, then copied)."""
        if state_seed not in self._states:
            self._states[state_seed] = generate_state(self.domain, state_seed)
        return self._states[state_seed]

    def branches(self, workflow: str) -> list[str]:
        return [b.name for b in walk_branches(self.workflows[workflow].tree)]

    # --- drawing ---------------------------------------------------------------------------------------------

    def draw(self, workflow: ResolvedWorkflow, rng: random.Random, persona: ResolvedPersona | None,
             adversarial: bool = False) -> Task | None:
        """One sample: None when it was rejected (the reason is counted)."""
        stats = self.attempts[workflow.name]
        stats.tries += 1
        state_seed = rng.choice(self.state_seeds)
        initial = self.state(state_seed)
        slots: dict[str, Any] = {}
        env = state_env(initial)  # names not set read the state, and `state` is the whole state
        try:
            with sampling_rng(rng):
                for name, expr in workflow.slots.items():
                    env[name] = slots[name] = copy_state(self._sample_slot(workflow, name, expr, state_seed, env))
        except EvalError as exc:
            stats.reasons[f"slot sampling failed: {exc.message}"] += 1
            return None
        if self._journaled:
            # run on the pooled state itself and undo the changes afterwards: much cheaper than a copy
            journal: list[Any] | None = []
            state, before = initial, self._initial_view(workflow, initial)
        else:
            journal, state, before = None, copy_state(initial), initial
        try:
            run = TreeRunner(workflow, self.tools, state, slots, journal).execute()
            return self._task(workflow, persona, state_seed, before, state, slots, run, adversarial)
        except Rejected as exc:
            stats.reasons[exc.reason] += 1
            return None
        except SpecDefectHit as exc:
            stats.reasons[f"a spec defect: {exc.defect.describe()}"] += 1
            self.spec_defects.append(exc)
            return None
        finally:
            if journal is not None:
                rollback(journal)

    def _sample_slot(self, workflow: ResolvedWorkflow, name: str, expr: Any, state_seed: int,
                     env: dict[str, Any]) -> Any:
        """A slot's value. ``sample(xs)``/``choice(xs)`` over a pool that depends only on the pooled state (no other
        slot) evaluate the pool once per state seed and draw from it: same draws, far less work per task."""
        key = (workflow.name, name)
        pooled = self._poolable.get(key)
        if pooled is None:
            pooled = self._poolable[key] = _pool_call(expr, set(workflow.slots))
        if not pooled:
            return evaluate(expr, env)
        func, pool_expr = pooled
        cache_key = (workflow.name, name, state_seed)
        pool = self._pools.get(cache_key)
        if pool is None:
            pool = self._pools[cache_key] = evaluate(pool_expr, env)
        try:
            return SAMPLING_FUNCTIONS[func].impl(pool)
        except FunctionError as exc:
            raise EvalError(f"{func}(): {exc}", getattr(expr, "pos", None)) from None

    def _initial_view(self, workflow: ResolvedWorkflow, initial: dict[str, Any]) -> dict[str, Any]:
        """What verifiers read as ``initial``: copies of just the state fields they name (all, if they name it bare)."""
        fields = self._initial_fields.get(workflow.name)
        if fields is None:
            fields = initial_fields(self.specs.verifiers_of(workflow.name))
            self._initial_fields[workflow.name] = fields
        if "*" in fields:
            return copy_state(initial)
        return {f: copy_state(initial[f]) for f in fields if f in initial}

    def _task(self, wf: ResolvedWorkflow, persona: ResolvedPersona | None, state_seed: int,
              initial: dict[str, Any], final: dict[str, Any], slots: dict[str, Any], run: Any,
              adversarial: bool) -> Task | None:
        persona_data = _persona_context(persona)
        try:
            instruction = render(wf.instruction, {**slots, "persona": persona_data})
        except Exception as exc:  # undefined names in the instruction for this sample
            self.attempts[wf.name].reasons[f"instruction could not be rendered: {exc}"] += 1
            return None
        tactics = list(persona.tactics) if persona else []
        request = {"refused": "violation", "transferred": "escalation"}.get(run.outcome, "legal")
        digest = _stable_hash(wf.name, run.path, persona.name if persona else None, state_seed, slots, adversarial)
        task_id = f"{wf.name}/{'.'.join(run.path) or 'main'}/{persona.name if persona else 'none'}/{digest[:10]}"
        pressure = persona.pressure_lines(self.domain, int(digest[:10], 16)) if adversarial and persona else []
        for action, problem in run.say_problems:
            self.say_problems.setdefault((wf.name, action.ypath), (task_id, problem, action.pos))
        verifiers = self.specs.verifiers_of(wf.name)
        evidence = Evidence(
            calls=[CallRecord(c["name"], c["arguments"], c["ok"]) for c in run.calls],
            assistant_text="\n".join(m["content"] for m in run.messages if m["role"] == "assistant"),
            final_state=final, initial_state=initial, slots=slots, path=run.path, gold_final_state=final,
            outcome=run.outcome, gold_outcome=run.outcome,
        )
        for verifier in verifiers:
            result = score(verifier, evidence)
            if result.reward != 1.0:
                failed = [f"{c.name} ({c.detail})" if c.detail else c.name for c in result.failed()]
                self.gold_failures.append(GoldFailure(task_id, wf.name, verifier.name, failed))
                return None
        gold = {"messages": run.messages, "calls": run.calls, "outcome": run.outcome, "informs": run.informs}
        walkout = leaves_before_the_end(gold)
        if walkout is not None:
            left, needed = walkout
            calls = run.messages[needed].get("tool_calls") or []
            self.early_leaves.append(EarlyLeave(
                task_id, wf.name, run.said_at.get(left, wf.origin.pos), run.messages[left]["content"],
                f"a call to {calls[0]['name']}" if calls else repr(run.messages[needed]["content"])))
        n_branches = len(walk_branches(wf.tree))
        data = {
            "id": task_id,
            "domain": self.domain.name,
            "workflow": wf.name,
            "path": run.path,
            "branch": run.path[-1] if run.path else "",
            "persona": persona.name if persona else None,
            "slots": slots,
            "initial_state": {"seed": state_seed},
            "user": {
                "instruction": instruction,
                "opening": persona_data.get("opening", ""),
                "knows": run.knows,
                "tactics": tactics,
                "pressure": pressure,
                "voice": persona_data.get("voice", ""),
            },
            "gold": gold,
            "verifiers": [v.name for v in verifiers],
            "difficulty": {
                "depth": run.depth,
                "calls": len(run.calls),
                "branches": n_branches,
                "user_turns": 1 + len(run.knows) + sum(1 for m in run.messages if m["role"] == "user"),
                "adversarial": adversarial,
            },
            "request": request,
            "adversarial": adversarial,
        }
        return Task(data)

    def generate(
        self,
        n: int,
        seed: int,
        *,
        workflows: Iterable[str] | None = None,
        branches: Iterable[str] | None = None,
        adversarial: float = 0.0,
        max_depth: int | None = None,
        max_tries: int | None = None,
    ) -> list[Task]:
        """Draw ``n`` tasks (fewer if the knobs exclude too much).

        ``workflows``/``branches`` restrict what is drawn (a branch name matches any task whose path holds it);
        ``adversarial`` is the share of refusal and transfer tasks told to pressure the agent with their persona's
        tactics; ``max_depth`` bounds the tree depth of the tasks.
        """
        rng = random.Random(f"generate:{self.domain.name}:{seed}")
        names = sorted(workflows) if workflows is not None else sorted(self.workflows)
        wanted = set(branches) if branches is not None else None
        out: list[Task] = []
        tries = 0
        limit = max_tries if max_tries is not None else max(200, 50 * n)
        while len(out) < n and tries < limit and names:
            tries += 1
            wf = self.workflows[rng.choice(names)]
            personas = self.specs.personas_for(wf)
            persona = rng.choice(personas) if personas else None
            task = self.draw(wf, rng, persona)
            if task is None:
                continue
            d = task.data
            if wanted is not None and not wanted & set(d["path"]):
                continue
            if max_depth is not None and d["difficulty"]["depth"] > max_depth:
                continue
            pushy = d["request"] != "legal" and persona is not None and _is_adversarial(persona)
            if pushy and rng.random() < adversarial:
                task = self.draw_variant(wf, d, persona)  # type: ignore[arg-type]
            out.append(task)
        return out

    def draw_variant(self, wf: ResolvedWorkflow, data: dict[str, Any], persona: ResolvedPersona) -> Task:
        """The adversarial variant of a refusal or transfer task: same sample, the user pushes with tactics."""
        variant = json.loads(json.dumps(data))
        variant["adversarial"] = True
        variant["difficulty"]["adversarial"] = True
        variant["user"]["pressure"] = persona.pressure_lines(self.domain, int(data["id"].rsplit("/", 1)[1], 16))
        variant["id"] = data["id"].rsplit("/", 1)[0] + "/adv-" + data["id"].rsplit("/", 1)[1]
        return Task(variant)


def _pool_call(expr: Any, slot_names: set[str]) -> tuple[str, Any] | tuple[()]:
    """(function, pool expression) when ``expr`` is ``sample(pool)`` or ``choice(pool)`` and the pool names no slot."""
    from aqwen_spec.expr import ast as A

    if not (isinstance(expr, A.Call) and expr.func in ("sample", "choice") and len(expr.args) == 1
            and not expr.kwargs):
        return ()
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, A.Name):
            names.add(node.id)
        elif isinstance(node, tuple):
            for item in node:
                visit(item)
        elif hasattr(node, "__dataclass_fields__"):
            for field_name in node.__dataclass_fields__:
                visit(getattr(node, field_name))

    visit(expr.args[0])
    return () if names & slot_names else (expr.func, expr.args[0])


def _is_adversarial(persona: ResolvedPersona) -> bool:
    return any(TACTICS[t].adversarial for t in persona.tactics if t in TACTICS)


def _persona_context(persona: ResolvedPersona | None) -> dict[str, Any]:
    if persona is None:
        return {"name": "user", "opening": "", "voice": "", "role": ""}
    return {"name": persona.name, "opening": persona.opening, "voice": persona.voice, "role": persona.role,
            "knows": persona.knows, "tactics": persona.tactics}
