"""Covering a workflow with tasks: every path drawn, rare branches searched for, refusals pushed by a persona.

``cover_workflow`` fills ``tasks_per_branch`` tasks per path of a workflow's tree, in three steps:

1. random draws over the pooled states (what most branches need);
2. a sweep over the pooled states: the values each ``sample``/``choice`` slot can take are enumerated on each
   state (capped), so a rare combination, and a case no branch handles (a gold call failing on a precondition:
   AQ607), is found by construction rather than by luck; it also fills paths the draws left short;
3. a search for every branch still not reached: the same enumeration on the pooled states edited by the branch's
   ``scenario`` (if it has one), then on further states from the domain's generator; only when that budget is
   spent is the branch reported unreachable (AQ601), with the sample that came closest;
4. every refusal or transfer path gets at least one adversarial variant when one of its personas is adversarial.

Personas rotate per path (a branch's ``personas:`` replace the workflow's for the paths through it). What happened
is kept in a :class:`WorkflowCoverage` for the compiler's summary and the manifest.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aqwen_spec.expr import EvalError, sampling_rng
from aqwen_spec.resolved import ResolvedPersona, ResolvedWorkflow, SpecSet
from aqwen_spec.tree import Branch, paths
from compiler.generate import Sample, Task, TaskGenerator, _is_adversarial

SEARCH_BUDGET = 4000
"""Tree runs a workflow may spend searching, beyond the pooled states, for branches not reached on them."""
EXTRA_STATES = 248
"""State seeds the search may draw from the domain's generator beyond the pooled ones (256 states in all); they are
generated only as the search reaches them."""
COMBOS_PER_STATE = 64
"""Slot combinations tried per state in the search (all of them when there are no more)."""


@dataclass
class WorkflowCoverage:
    """What covering one workflow found: tasks per path, adversarial variants per refusal/transfer path, branches
    that needed the search (and where it found them), cases left out of scope, branches never reached."""

    workflow: str
    tasks: dict[str, int] = field(default_factory=dict)
    adversarial: dict[str, int] = field(default_factory=dict)
    searched: dict[str, str] = field(default_factory=dict)
    """Branch -> where the search first found it, for branches no pooled state reached."""
    out_of_scope: list[dict[str, Any]] = field(default_factory=list)
    unreached: dict[str, str] = field(default_factory=dict)
    """Branch -> the hint (the closest sample) for an AQ601."""

    def to_json(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "adversarial": self.adversarial, "searched": self.searched,
                "out_of_scope": self.out_of_scope}


def cover_workflow(specs: SpecSet, generator: TaskGenerator, wf: ResolvedWorkflow, per_path: int,
                   seed: int) -> tuple[list[Task], WorkflowCoverage]:
    """Tasks for every path of the tree (``per_path`` each, fewer where a path is rare) and what coverage found."""
    tree_paths = [list(p) for p in paths(wf.tree)]
    all_paths = [tuple(b.name for b in p) for p in tree_paths]
    buckets: dict[tuple[str, ...], list[Task]] = {p: [] for p in all_paths}
    personas = _path_personas(specs, wf, tree_paths)
    ids: set[str] = set()

    def persona_for(path: list[str]) -> ResolvedPersona | None:
        options = personas.get(tuple(path)) or [None]
        return options[len(buckets.get(tuple(path), ())) % len(options)]

    def offer(task: Task | None) -> bool:
        if task is None:
            return False
        bucket = buckets.setdefault(tuple(task.data["path"]), [])
        if len(bucket) >= per_path or task.id in ids:
            return False
        bucket.append(task)
        ids.add(task.id)
        return True

    rng = random.Random(f"cover:{seed}:{wf.name}")
    budget = 200 + 100 * len(all_paths) * per_path
    while budget > 0 and any(len(b) < per_path for b in buckets.values()):
        budget -= 1
        offer(generator.draw(wf, rng, None, persona_for=persona_for))

    report = WorkflowCoverage(wf.name)
    # every slot combination on the pooled states (capped): uncovered cases found by construction, not by luck
    search_rng = random.Random(f"search:{seed}:{wf.name}")
    pooled: list[tuple[int, Branch | None]] = [(s, None) for s in generator.state_seeds]

    def unfilled(path: list[str]) -> bool:
        return len(buckets.get(tuple(path), ())) < per_path

    states = _sweep(generator, wf, pooled, len(pooled) * COMBOS_PER_STATE, search_rng, unfilled, offer,
                    persona_for, lambda: False)
    branches = {b.name: b for p in tree_paths for b in p}

    def count(name: str) -> int:
        return sum(len(b) for k, b in buckets.items() if name in k)

    # branches short of tasks (rare ones, or never reached): search further
    missing = [b for name, b in branches.items() if count(name) < per_path]
    if missing:
        wanted = {b.name for b in missing}
        unreached = {b.name for b in missing if count(b.name) == 0}

        def wants(path: list[str]) -> bool:
            return bool(wanted & set(path)) and unfilled(path)

        def satisfied() -> bool:
            return all(count(name) >= per_path for name in wanted)

        def found(task: Task, how: str) -> None:
            for name in unreached & set(task.data["path"]):
                report.searched.setdefault(name, how)

        sources: list[tuple[int, Branch | None]] = [
            (s, b) for b in missing if b.name in unreached and b.scenario is not None and b.scenario.expr is not None
            for s in generator.state_seeds]
        sources += [(s, None) for s in generator.extra_state_seeds(EXTRA_STATES)]
        states += _sweep(generator, wf, sources, SEARCH_BUDGET, search_rng, wants, offer, persona_for, satisfied,
                         found)
        reached = _reached(generator, wf, buckets)
        for branch in missing:
            if branch.name not in reached:
                report.unreached[branch.name] = _closest(generator, wf, tree_paths, branch, states)
    tasks = [t for key in all_paths for t in buckets.get(key, [])]
    asked = {tuple(b.name for b in p): any(b.personas for b in p) for p in tree_paths}
    variants = _adversarial_variants(specs, generator, wf, buckets, personas, asked)
    for key in all_paths:
        report.tasks[".".join(key) or "main"] = len(buckets[key])
    for key, bucket in buckets.items():
        if bucket and bucket[0].data["request"] != "legal":
            report.adversarial[".".join(key)] = sum(1 for v in variants if tuple(v.data["path"]) == key)
    stats = generator.attempts[wf.name]
    for entry in wf.out_of_scope:
        hits = sum(stats.out_of_scope[(entry.tool, k)] for k in entry.matches)
        report.out_of_scope.append({"tool": entry.tool, "precondition": entry.precondition, "reason": entry.reason,
                                    "samples": hits})
    return tasks + variants, report


def _reached(generator: TaskGenerator, wf: ResolvedWorkflow, buckets: dict[tuple[str, ...], list[Task]]
             ) -> set[str]:
    """Branches some sample took to the end: with a task, or whose gold failed a verifier (that is AQ602, not an
    unreachable branch)."""
    reached = {name for key, bucket in buckets.items() if bucket for name in key}
    reached |= {name for f in generator.gold_failures if f.workflow == wf.name for name in f.path}
    return reached


def _path_personas(specs: SpecSet, wf: ResolvedWorkflow, tree_paths: list[list[Branch]]
                   ) -> dict[tuple[str, ...], list[ResolvedPersona | None]]:
    """The personas of each path: those the deepest branch with ``personas:`` asks for, else the workflow's."""
    default: list[ResolvedPersona | None] = [*specs.personas_for(wf)] or [None]
    out: dict[tuple[str, ...], list[ResolvedPersona | None]] = {}
    for p in tree_paths:
        asked = next((b.personas for b in reversed(p) if b.personas), None)
        chosen: list[ResolvedPersona | None] = [specs.personas[n] for n in asked or () if n in specs.personas]
        out[tuple(b.name for b in p)] = chosen or default
    return out


def _sweep(generator: TaskGenerator, wf: ResolvedWorkflow, sources: list[tuple[int, Branch | None]],
           budget: int, rng: random.Random, keep: Any, offer: Any, persona_for: Any, done: Any,
           found: Any = None) -> int:
    """Run the tree on the enumerated slot values of each source state (a state seed, edited by a branch's scenario
    when one is given) until ``done()`` or the budget is spent; returns how many states it ran on. A sample whose
    path ``keep`` wants becomes a task and is offered (``found(task, how)`` is told when one is taken); every
    sample counts towards the uncovered cases and the closest-sample hints."""
    visited = 0
    for state_seed, scenario in sources:
        if budget <= 0 or done():
            break
        visited += 1
        state_key: Any
        if scenario is None:
            initial, state_key, how = generator.state(state_seed), state_seed, f"state seed {state_seed}"
        else:
            edited = generator.scenario_state(wf, scenario, state_seed)
            if isinstance(edited, str):
                generator.attempts[wf.name].reasons[edited] += 1
                continue
            initial, state_key = edited, (state_seed, scenario.name)
            how = f"the scenario of '{scenario.name}' on state seed {state_seed}"
        for slots in _combinations(generator, wf, initial, state_key, rng, min(COMBOS_PER_STATE, budget)):
            budget -= 1
            generator.attempts[wf.name].tries += 1
            sample = Sample(state_seed, slots, scenario.name if scenario else None)
            task = generator.run_sample(wf, sample, None, persona_for=persona_for, keep=keep,
                                        initial=initial if scenario is not None else None)
            if offer(task) and found is not None:
                found(task, how)
    return visited


def _combinations(generator: TaskGenerator, wf: ResolvedWorkflow, initial: dict[str, Any], state_key: Any,
                  rng: random.Random, limit: int) -> Iterator[dict[str, Any]]:
    """Slot values on one state: every combination of the enumerable slots' values when there are at most
    ``limit``, else ``limit`` drawn at random; the other slots are drawn as usual."""
    candidates = generator.slot_candidates(wf, initial, state_key)
    names = list(candidates)
    sizes = [len(candidates[n]) for n in names]
    indices: Iterator[tuple[int, ...]]
    if math.prod(sizes) <= limit:
        indices = itertools.product(*(range(k) for k in sizes))
    else:
        indices = (tuple(rng.randrange(k) for k in sizes) for _ in range(limit))
    for index in indices:
        fixed = {n: candidates[n][i] for n, i in zip(names, index, strict=True)}
        try:
            with sampling_rng(rng):
                yield generator.sample_slots(wf, initial, state_key, fixed)
        except EvalError:
            continue


def _closest(generator: TaskGenerator, wf: ResolvedWorkflow, tree_paths: list[list[Branch]], branch: Branch,
             states: int) -> str:
    """The hint of an unreachable branch: the sample that got furthest towards it, and what it did instead."""
    stats = generator.attempts[wf.name]
    chain = next([b.name for b in p[: p.index(branch) + 1]] for p in tree_paths if branch in p)
    before = chain[:-1]
    best: tuple[int, tuple[str, ...]] | None = None
    for key in stats.examples:
        taken = [k for k in key if k != "!"]
        common = next((i for i, (a, b) in enumerate(zip(taken, before, strict=False)) if a != b),
                      min(len(taken), len(before)))
        rank = (common * 2 + (0 if key and key[-1] == "!" else 1), key)
        if best is None or rank[0] > best[0]:
            best = (rank[0], key)
    searched = f"{stats.tries} samples on {states} states searched"
    if best is None:
        top = stats.reasons.most_common(1)
        return f"no sample got this far ({searched})" + (f": {top[0][0]}" if top else "")
    key = best[1]
    sample = stats.examples[key]
    if key and key[-1] == "!":
        what = f"was rejected ({sample.reason})"
    else:
        at = len(before)
        what = f"took branch '{key[at]}' instead" if at < len(key) else f"took {'.'.join(key) or 'no branch'}"
    hint = f"closest sample ({sample.describe()}) {what}; {searched}"
    if branch.scenario is None:
        hint += "; give the branch a scenario: (a state edit that makes its condition hold) if the state " \
                "generator cannot reach it"
    return hint


def _adversarial_variants(specs: SpecSet, generator: TaskGenerator, wf: ResolvedWorkflow,
                          buckets: dict[tuple[str, ...], list[Task]],
                          personas: dict[tuple[str, ...], list[ResolvedPersona | None]],
                          asked: dict[tuple[str, ...], bool]) -> list[Task]:
    """An adversarial variant of every refusal or transfer task drawn with an adversarial persona; a refusal or
    transfer path that has none gets one: its first task, replayed with the path's first adversarial persona, or,
    when its personas have none and no branch on it asked for particular personas, the domain's first."""
    variants: list[Task] = []
    for key, bucket in buckets.items():
        if not bucket or bucket[0].data["request"] == "legal":
            continue
        before = len(variants)
        for task in bucket:
            known = specs.personas.get(task.data["persona"] or "")
            if known is not None and _is_adversarial(known):
                variants.append(generator.draw_variant(wf, task.data, known))
        pushy = [p for p in personas.get(key, ()) if p is not None and _is_adversarial(p)]
        if not pushy and not asked.get(key):
            pushy = [p for p in specs.personas.values()
                     if _is_adversarial(p) and (not p.domains or wf.domain in p.domains)]
        if len(variants) == before and pushy:
            first = bucket[0].data
            initial = None
            scenario = first["initial_state"].get("scenario")
            if scenario is not None:
                initial = first["initial_state"]["state"]
            sample = Sample(first["initial_state"]["seed"], first["slots"], scenario)
            replayed = generator.run_sample(wf, sample, pushy[0], initial=initial)
            if replayed is not None:
                variants.append(generator.draw_variant(wf, replayed.data, pushy[0]))
    return variants
