"""Task generators: draw (state, slots, persona) samples, execute the tree, keep tasks whose gold scores 1.0.

A :class:`TaskGenerator` serves one domain. ``generate(n, seed, ...)`` draws tasks on demand with knobs a flywheel
turns: which workflows and branches, how adversarial, how deep.
"""

from __future__ import annotations

import gc
import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from aqwen_spec.expr import (
    SAMPLING_FUNCTIONS,
    EffectFailed,
    EvalError,
    evaluate,
    execute,
    make_env,
    rollback,
    sampling_rng,
)
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.episode import Episode, episode_context
from aqwen_spec.expr.evaluator import state_env
from aqwen_spec.expr.functions import FunctionError
from aqwen_spec.resolved import ResolvedPersona, ResolvedWorkflow, SpecSet
from aqwen_spec.semantics import ToolRunner, copy_state, generate_state, score
from aqwen_spec.semantics.user import leaves_before_the_end
from aqwen_spec.semantics.verify import CallRecord, Evidence, initial_fields, reward
from aqwen_spec.tactics import TACTICS
from aqwen_spec.templates import render
from aqwen_spec.tree import Branch, walk_branches
from compiler.expand import Rejected, SpecDefectHit, TreeRunner, Uncovered, _reprs_exactly

STATE_POOL = 8  # initial states per domain and seed: tasks share them (by seed), so bundles stay small
CACHE_SIZE = 20_000  # entries per memo of draws, gold runs, verdicts, instructions, tasks (all emptied when one is)


class PersonaFor(Protocol):
    def __call__(self, path: list[str]) -> ResolvedPersona | None: ...


class Keep(Protocol):
    def __call__(self, path: list[str]) -> bool: ...


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
    failed: list[tuple[int, str]]
    """The failing checks: (index into the verifier's checks, detail)."""
    path: list[str] = field(default_factory=list)


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
    """Why samples were rejected, per workflow, for diagnostics on unreachable branches; and where samples went."""

    reasons: Counter[str] = field(default_factory=Counter)
    tries: int = 0
    examples: dict[tuple[str, ...], Sample] = field(default_factory=dict)
    """The first sample per path taken (a rejected sample's path ends with ``!``), for the closest-sample hint."""
    out_of_scope: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Samples dropped by an ``out_of_scope`` entry, per (tool, precondition index)."""


@dataclass(frozen=True)
class Sample:
    """A drawn case: the initial state it starts from (a state seed, maybe edited by a branch's scenario), the slot
    values, and what became of it (``reason`` when rejected)."""

    state_seed: int
    slots: dict[str, Any]
    scenario: str | None = None
    reason: str = ""

    def __init__(self, state_seed: int, slots: dict[str, Any], scenario: str | None = None, reason: str = ""
                 ) -> None:
        # the frozen dataclass's own __init__, without its object.__setattr__ per field (one is made per draw)
        values = self.__dict__
        values["state_seed"], values["slots"], values["scenario"], values["reason"] = \
            state_seed, slots, scenario, reason

    def describe(self) -> str:
        where = f"state seed {self.state_seed}" + (f" with scenario '{self.scenario}'" if self.scenario else "")
        values = ", ".join(f"{k}={_short(v)}" for k, v in self.slots.items())
        return f"{where}, {values or 'no slots'}"


@dataclass
class UncoveredCase:
    """Samples whose gold call failed on a precondition no branch catches (and no out_of_scope entry names)."""

    workflow: str
    tool: str
    precondition: int
    pos: Any
    error: str
    sample: Sample
    count: int = 0


@dataclass(slots=True)
class _SampleBase:
    """What the tasks of one sample share, whatever their persona: built once, with the sample's first task."""

    id_prefix: str
    branch: str
    initial_state: dict[str, Any]
    episode: dict[str, Any]
    gold: dict[str, Any]
    verifiers: list[str]
    request: str
    counts: dict[str, Any]
    _plain: dict[str, Any] | None = None
    _pushed: dict[str, Any] | None = None

    def difficulty(self, adversarial: bool) -> dict[str, Any]:
        """The task's ``difficulty`` (shared by the sample's tasks of the same ``adversarial``)."""
        if adversarial:
            if self._pushed is None:
                self._pushed = {**self.counts, "adversarial": True}
            return self._pushed
        if self._plain is None:
            self._plain = {**self.counts, "adversarial": False}
        return self._plain


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
        self.journaled = not any(t.implementation == "python" and t.access == "write" for t in self.tools.values())
        self._initial_fields: dict[str, set[str]] = {}
        self._views: dict[tuple[str, int], tuple[dict[str, Any], dict[str, Any]]] = {}
        self._poolable: dict[tuple[str, str], tuple[str, Any] | tuple[()]] = {}
        self._pools: dict[tuple[str, str, Any], Any] = {}
        self._closed: dict[tuple[str, str], bool] = {}  # slots drawn without an env (see _closed_last)
        self._scenario_states: dict[tuple[str, str, int], dict[str, Any] | str] = {}
        self.uncovered: dict[tuple[str, str, int, Any], UncoveredCase] = {}
        self._runners: dict[int, ToolRunner] = {}  # by id of the pooled state they run on
        self._reads: dict[int, dict[tuple[str, str], Any]] = {}  # their memos of read outcomes (see TreeRunner)
        # memos per distinct sample (workflow, state seed, scenario, slots' JSON): a generator draws the same sample
        # again and again (3,000 tasks of specs/ hold under 1,000 distinct samples), and what a sample gives does not
        # change; emptied together (see _trim_memos)
        self._drawn: dict[tuple[str, int, tuple[Any, ...]], tuple[dict[str, Any], str]] = {}
        self._instructions: dict[tuple[str, str | None, str], str] = {}
        self._verdicts: dict[tuple[str, int, str | None, str], bool] = {}
        self._runs: dict[tuple[str, int, str | None, str], Any] = {}  # gold runs (or rejections) by sample
        self._bases: dict[tuple[str, int, str | None, str], _SampleBase] = {}  # for samples whose gold passes
        self._tasks: dict[tuple[tuple[str, int, str | None, str], str | None, bool], dict[str, Any]] = {}
        # the tasks of draw() by (workflow, state seed, the draw's key, persona): a repeated draw is known at once
        self._hits: dict[tuple[str, int, tuple[Any, ...], str | None], dict[str, Any]] = {}
        self._memos: list[dict[Any, Any]] = [self._drawn, self._instructions, self._verdicts, self._runs,
                                             self._bases, self._tasks, self._hits]
        self._memos_full = False
        self._copies: dict[int, tuple[Any, Any, str]] = {}  # a drawn record's copy and JSON, by its id
        self._scalar_json: dict[tuple[type, Any], str] = {}
        self._json_keys: dict[tuple[str, ...], list[tuple[str, str]]] = {}  # slot names -> sorted, with their keys
        self._heads: dict[tuple[str, tuple[str, ...], str | None, int, str | None], str] = {}
        self._n_branches: dict[str, int] = {}
        self.draws = any(t.draws for t in self.tools.values())
        """Whether a tool of the domain draws from the episode's generator (tasks then carry a random_seed)."""
        self._verifiers: dict[str, list[Any]] = {}
        self._names: dict[str, list[str]] = {}
        self._personas: dict[int, tuple[ResolvedPersona | None, dict[str, Any]]] = {}
        self._tactic_lists: dict[int, tuple[ResolvedPersona, list[str]]] = {}

    def state(self, state_seed: int) -> dict[str, Any]:
        """The initial state of a seed (generated once, then copied)."""
        if state_seed not in self._states:
            self._states[state_seed] = generate_state(self.domain, state_seed)
        return self._states[state_seed]

    def extra_state_seeds(self, n: int) -> list[int]:
        """``n`` state seeds beyond the pooled ones, for the search for rare branches (any seed is a valid state:
        a task records its seed and the runtime rebuilds the same state from it)."""
        return [self.seed * 1000 + STATE_POOL + k for k in range(n)]

    def scenario_state(self, workflow: ResolvedWorkflow, branch: Branch, state_seed: int) -> dict[str, Any] | str:
        """The initial state of ``state_seed`` with the branch's scenario applied (cached), or why it failed."""
        key = (workflow.name, branch.name, state_seed)
        if key not in self._scenario_states:
            state = copy_state(self.state(state_seed))
            try:
                execute(branch.scenario.expr, state_env(state, library=workflow.library), state)  # type: ignore[union-attr]
                self._scenario_states[key] = state
            except (EffectFailed, EvalError) as exc:
                self._scenario_states[key] = f"scenario of branch '{branch.name}' failed: {exc.message}"
        return self._scenario_states[key]

    def branches(self, workflow: str) -> list[str]:
        return [b.name for b in walk_branches(self.workflows[workflow].tree)]

    # --- drawing ---------------------------------------------------------------------------------------------

    def draw(self, workflow: ResolvedWorkflow, rng: random.Random, persona: ResolvedPersona | None,
             adversarial: bool = False, persona_for: PersonaFor | None = None) -> Task | None:
        """One sample: None when it was rejected (the reason is counted)."""
        with sampling_rng(rng):
            return self._draw(workflow, rng, persona, adversarial, persona_for)

    def _draw(self, workflow: ResolvedWorkflow, rng: random.Random, persona: ResolvedPersona | None,
              adversarial: bool = False, persona_for: PersonaFor | None = None) -> Task | None:
        """:meth:`draw` with ``rng`` installed as the sampling rng (only slots draw from it)."""
        self.attempts[workflow.name].tries += 1
        self._trim_memos()
        state_seed = rng.choice(self.state_seeds)
        initial = self._states.get(state_seed)
        if initial is None:
            initial = self.state(state_seed)
        try:
            drawn, key = self._draw_slots(workflow, initial, state_seed, rng)
        except EvalError as exc:
            self.attempts[workflow.name].reasons[f"slot sampling failed: {exc.message}"] += 1
            return None
        persona_name = persona.name if persona else None
        # a task drawn before (what run_sample would find in its memos, doing nothing else)
        hit = key is not None and not adversarial and persona_for is None and self.journaled
        if hit:
            data = self._hits.get((workflow.name, state_seed, key, persona_name))  # type: ignore[arg-type]
            if data is not None:
                return Task(dict(data))
        # a sample drawn before: its slots (copied once) and their JSON are known
        known = self._drawn.get((workflow.name, state_seed, key)) if key is not None else None
        if known is None:
            known = self._copy_slots(drawn)
            if key is not None:
                self._remember(self._drawn, (workflow.name, state_seed, key), known)
        task = self.run_sample(workflow, Sample(state_seed, known[0]), persona, adversarial, persona_for,
                               slots_json=known[1])
        if hit and task is not None:
            data = self._tasks.get(((workflow.name, state_seed, None, known[1]), persona_name, False))
            if data is not None:
                self._remember(self._hits, (workflow.name, state_seed, key, persona_name), data)
        return task

    def _copy_slots(self, drawn: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The drawn values copied, and their JSON (``_slots_json`` of the copies): a record or list is copied and
        encoded once however many samples draw it (pooled records are the pooled states' own, which every run
        rolls back, so a copy made once stays equal to a fresh one). Samples share these copies: read-only."""
        slots: dict[str, Any] = {}
        texts: dict[str, str] = {}
        copies = self._copies
        scalars = self._scalar_json
        for name, value in drawn.items():
            t = type(value)
            if t is dict or t is list:
                entry = copies.get(id(value))
                if entry is not None and entry[0] is value:
                    slots[name], texts[name] = entry[1], entry[2]
                    continue
                copy = slots[name] = copy_state(value)
                text = texts[name] = _SLOTS_JSON.encode(copy)
                if len(copies) >= CACHE_SIZE:
                    copies.clear()
                copies[id(value)] = (value, copy, text)  # the value is kept: its id names no other while here
            elif t in _SCALARS:  # immutable: the value is its own copy; its JSON by type and value
                slots[name] = value
                known = scalars.get((t, value))
                if known is None:
                    if len(scalars) >= CACHE_SIZE:
                        scalars.clear()
                    known = scalars[(t, value)] = _SLOTS_JSON.encode(value)
                texts[name] = known
            else:
                copy = slots[name] = copy_state(value)
                texts[name] = _SLOTS_JSON.encode(copy)
        # sort_keys: the names in order, each with its value's JSON (what encoding the whole dict gives)
        names = tuple(texts)
        keys = self._json_keys.get(names)
        if keys is None:
            if len(self._json_keys) >= 1000:
                self._json_keys.clear()
            keys = self._json_keys[names] = [(name, ("{" if i == 0 else ",") + _json_key(name) + ":")
                                             for i, name in enumerate(sorted(names))]
        return slots, "".join([key + texts[name] for name, key in keys]) + "}" if keys else "{}"

    def _draw_slots(self, workflow: ResolvedWorkflow, initial: dict[str, Any], state_seed: int, rng: random.Random
                    ) -> tuple[dict[str, Any], tuple[Any, ...] | None]:
        """Slot values drawn as :meth:`sample_slots` draws them (the same random calls), not yet copied, and a key
        that is equal for two draws exactly when their values are: a pooled slot by which item of its pool it took
        (pools are kept, so their items stay put), any other by the ``repr`` of its value. None when a value has
        no such key (an object of another type). ``rng`` is the sampling rng installed."""
        slots: dict[str, Any] = {}
        key: list[Any] = []
        env: dict[str, Any] | None = None  # made when an expression needs it, as sample_slots makes it
        for name, expr in workflow.slots.items():
            pooled = self._poolable.get((workflow.name, name))
            pool = self._pools.get((workflow.name, name, state_seed)) if pooled else None
            if pool is not None:  # the common case: a draw from a pool known already, no expression to evaluate
                if type(pool) is list and pool:  # what sample(pool) and choice(pool) do with a list
                    value = rng.choice(pool)
                else:
                    func = pooled[0]  # type: ignore[index, misc]
                    try:
                        value = SAMPLING_FUNCTIONS[func].impl(pool)
                    except FunctionError as exc:
                        raise EvalError(f"{func}(): {exc}", getattr(expr, "pos", None)) from None
            elif pooled == () and self._closed.get((workflow.name, name)):
                value = evaluate(expr, make_env({}))  # reads no name: no env of the state and slots to make
            else:
                if env is None:
                    env = state_env(initial, slots)
                value = self._sample_slot(workflow, name, expr, state_seed, env)
                pooled = self._poolable[(workflow.name, name)]
                if pooled == () and (workflow.name, name) not in self._closed:
                    self._closed[(workflow.name, name)] = _closed_last(workflow, name, expr)
            slots[name] = value
            if env is not None:
                env[name] = value
            if pooled:
                key.append(id(value))
            elif _reprs_exactly(value):
                key.append(repr(value))
            else:
                return slots, None
        return slots, tuple(key)

    def sample_slots(self, workflow: ResolvedWorkflow, initial: dict[str, Any], state_key: Any,
                     fixed: dict[str, Any] | None = None) -> dict[str, Any]:
        """Slot values drawn on ``initial`` (under the caller's sampling rng); ``fixed`` values are taken as given.
        Raises :class:`EvalError` when a slot cannot be drawn."""
        slots: dict[str, Any] = {}
        env = state_env(initial, library=workflow.library)  # names not set read the state; `state` is the state
        with episode_context(Episode.of(self.clock(workflow), None)):  # slots may read the clock
            for name, expr in workflow.slots.items():
                if fixed is not None and name in fixed:
                    value = fixed[name]
                else:
                    value = self._sample_slot(workflow, name, expr, state_key, env)
                env[name] = slots[name] = copy_state(value)
        return slots

    def clock(self, workflow: ResolvedWorkflow) -> dict[str, str] | None:
        """The clock a workflow's tasks run at: its own, else the domain's."""
        return workflow.clock or self.domain.clock

    def random_seed(self, workflow: ResolvedWorkflow, sample: Sample, slots_json: str) -> int | None:
        """The seed of a task's generator: the domain's, else (when its tools draw) one of the sample's own, the
        same every time the sample is drawn again (its gold run is memoised by the same key)."""
        if self.domain.random_seed is not None or not self.draws:
            return self.domain.random_seed
        blob = f"{workflow.name}:{sample.state_seed}:{sample.scenario}:{slots_json}"
        return int(hashlib.sha1(blob.encode()).hexdigest()[:8], 16)

    def slot_candidates(self, workflow: ResolvedWorkflow, initial: dict[str, Any], state_key: Any
                        ) -> dict[str, list[Any]]:
        """Every value a ``sample(pool)``/``choice(pool)`` slot can take on this state (pools naming no other slot):
        the search enumerates these instead of waiting for a random draw to hit a rare case."""
        out: dict[str, list[Any]] = {}
        env = state_env(initial, library=workflow.library)
        for name, expr in workflow.slots.items():
            key = (workflow.name, name)
            pooled = self._poolable.get(key)
            if pooled is None:
                pooled = self._poolable[key] = _pool_call(expr, set(workflow.slots))
            if not pooled:
                continue
            cache_key = (workflow.name, name, state_key)
            pool = self._pools.get(cache_key)
            if pool is None:
                try:
                    pool = self._pools[cache_key] = evaluate(pooled[1], env)
                except EvalError:
                    continue
            items = list(pool.values()) if isinstance(pool, dict) else pool
            if isinstance(items, list) and items:
                out[name] = items
        return out

    def run_sample(self, workflow: ResolvedWorkflow, sample: Sample, persona: ResolvedPersona | None,
                   adversarial: bool = False, persona_for: PersonaFor | None = None,
                   initial: dict[str, Any] | None = None, keep: Keep | None = None,
                   slots_json: str | None = None) -> Task | None:
        """Execute the tree on a sample; the task, or None when rejected (counted, with an example per path).

        ``initial`` is the state to start from when it is not the pooled state of ``sample.state_seed`` (a
        scenario's edit of it). ``persona_for(path)``, when given, picks the persona once the path is known;
        ``keep(path)``, when given and false, skips building the task (the sample still counts). ``slots_json``
        is the slots' JSON when the caller has it.

        A task drawn again shares its values (slots, gold, user, ...) with the first one, and tasks of other samples
        share drawn records and lists such as the verifier names: treat them as read-only (:meth:`draw_variant`
        copies)."""
        stats = self.attempts[workflow.name]
        slots = sample.slots
        if slots_json is None:  # not from draw(), which trimmed them
            self._trim_memos()
        # the slots as JSON once: the key of the memos (a sample's gold run does not depend on the persona, and is
        # the same every time the sample is drawn again) and part of the task's hash
        if slots_json is None:
            slots_json = _slots_json(slots)
        memo_key = (workflow.name, sample.state_seed, sample.scenario, slots_json)
        known = self._runs.get(memo_key) if self.journaled else None
        if known is not None and not isinstance(known, Rejected) and memo_key not in self._verdicts:
            known = None  # the verdict memo was cleared: run it again
        if isinstance(known, Rejected):
            self._rejected(workflow, sample, known)
            return None
        if known is not None:
            stats.examples.setdefault(tuple(known.path), sample)
            if keep is not None and not keep(known.path):
                return None
            if persona_for is not None:
                persona = persona_for(known.path)
            return self._task(workflow, persona, sample, None, None, slots, known, adversarial, slots_json,
                              memo_key)
        if initial is None:
            initial = self.state(sample.state_seed)
        if self.journaled:
            # run on the pooled state itself and undo the changes afterwards: much cheaper than a copy
            journal: list[Any] | None = []
            state, before = initial, self._initial_view(workflow, initial)
        else:
            journal, state, before = None, copy_state(initial), initial
        runner = self.pooled_runner(state, journal) if journal is not None else None
        try:
            episode = Episode.of(self.clock(workflow), self.random_seed(workflow, sample, slots_json))
            # read results shared per pooled state hold for every task on it, unless a workflow's own clock moves
            # today() for its tasks alone
            reads = self._reads[id(state)] if runner is not None and not workflow.clock else None
            run = TreeRunner(workflow, self.tools, state, slots, journal, runner, episode, reads).execute()
            stats.examples.setdefault(tuple(run.path), sample)
            if keep is not None and not keep(run.path):
                return None
            if persona_for is not None:
                persona = persona_for(run.path)
            task = self._task(workflow, persona, sample, before, state, slots, run, adversarial, slots_json,
                              memo_key)
            if self.journaled and memo_key in self._verdicts:
                self._remember(self._runs, memo_key, run)
            return task
        except Rejected as exc:
            if self.journaled:  # kept without its traceback: its frames (the run, its state) need not live on
                self._remember(self._runs, memo_key, exc.with_traceback(None))
            self._rejected(workflow, sample, exc)
            return None
        except SpecDefectHit as exc:
            stats.reasons[f"a spec defect: {exc.defect.describe()}"] += 1
            self.spec_defects.append(exc)
            return None
        finally:
            if journal:
                undo(runner, journal)  # type: ignore[arg-type]

    def pooled_runner(self, state: dict[str, Any], journal: list[Any]) -> ToolRunner:
        """The runner kept for a pooled state, recording into ``journal``: a SQL tool's view of the state is built
        once per state, not once per run (undo with :func:`undo`, which makes the view rebuild)."""
        runner = self._runners.get(id(state))
        if runner is None or runner.state is not state:
            runner = self._runners[id(state)] = ToolRunner(self.tools, state, output=self.domain.result)
            self._reads[id(state)] = {}
        runner.journal = journal
        return runner

    def _rejected(self, workflow: ResolvedWorkflow, sample: Sample, exc: Rejected) -> None:
        """Count a rejected sample: an uncovered case, or the reason (with an example per path)."""
        if isinstance(exc, Uncovered):
            self._uncovered(workflow, sample, exc)
            return
        stats = self.attempts[workflow.name]
        stats.reasons[exc.reason] += 1
        stats.examples.setdefault((*exc.path, "!"), Sample(sample.state_seed, sample.slots, sample.scenario,
                                                            exc.reason))

    def _uncovered(self, workflow: ResolvedWorkflow, sample: Sample, exc: Uncovered) -> None:
        stats = self.attempts[workflow.name]
        stats.examples.setdefault((*exc.path, "!"), Sample(sample.state_seed, sample.slots, sample.scenario,
                                                            exc.reason))
        if any(o.tool == exc.tool and exc.precondition in o.matches for o in workflow.out_of_scope):
            stats.out_of_scope[(exc.tool, exc.precondition)] += 1
            stats.reasons[f"out of scope: {exc.reason}"] += 1
            return
        stats.reasons[exc.reason] += 1
        key = (workflow.name, exc.tool, exc.precondition, exc.pos)
        case = self.uncovered.get(key)
        if case is None:
            case = self.uncovered[key] = UncoveredCase(workflow.name, exc.tool, exc.precondition, exc.pos, exc.error,
                                                       sample)
        case.count += 1

    def _sample_slot(self, workflow: ResolvedWorkflow, name: str, expr: Any, state_key: Any,
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
        cache_key = (workflow.name, name, state_key)
        pool = self._pools.get(cache_key)
        if pool is None:
            pool = self._pools[cache_key] = evaluate(pool_expr, env)
        try:
            return SAMPLING_FUNCTIONS[func].impl(pool)
        except FunctionError as exc:
            raise EvalError(f"{func}(): {exc}", getattr(expr, "pos", None)) from None

    def _initial_view(self, workflow: ResolvedWorkflow, initial: dict[str, Any]) -> dict[str, Any]:
        """What verifiers read as ``initial``: copies of just the state fields they name (all, if they name it bare).

        Made once per workflow and pooled state (which every run starts from, and is rolled back to): verifiers
        only read it."""
        key = (workflow.name, id(initial))
        known = self._views.get(key)
        if known is not None and known[0] is initial:
            return known[1]
        fields = self._initial_fields.get(workflow.name)
        if fields is None:
            fields = initial_fields(self.specs.verifiers_of(workflow.name))
            self._initial_fields[workflow.name] = fields
        view = copy_state(initial) if "*" in fields else {f: copy_state(initial[f]) for f in fields if f in initial}
        if len(self._views) >= CACHE_SIZE:
            self._views.clear()
        self._views[key] = (initial, view)  # the state is kept alive: its id names no other while here
        return view

    def _task(self, wf: ResolvedWorkflow, persona: ResolvedPersona | None, sample: Sample,
              initial: dict[str, Any] | None, final: dict[str, Any] | None, slots: dict[str, Any], run: Any,
              adversarial: bool, slots_json: str, verdict_key: tuple[str, int, str | None, str] | None = None
              ) -> Task | None:
        """The task of a gold run; ``initial`` and ``final`` are None when the run came from the memo (its gold
        verdict is known then). ``verdict_key`` is the sample's memo key when the caller has it."""
        state_seed = sample.state_seed
        persona_name = persona.name if persona else None
        # the gold of a sample does not depend on the persona: score it once per distinct sample
        if verdict_key is None:
            verdict_key = (wf.name, state_seed, sample.scenario, slots_json)
        task_key = (verdict_key, persona_name, adversarial)
        data = self._tasks.get(task_key)
        if data is not None:  # drawn before: everything below would come out the same, and do nothing else
            return Task(dict(data))
        persona_data = self._persona_data(persona)
        instruction = self._instructions.get((wf.name, persona_name, slots_json))
        if instruction is None:
            try:
                instruction = render(wf.instruction, {**slots, "persona": persona_data})
            except Exception as exc:  # undefined names in the instruction for this sample
                self.attempts[wf.name].reasons[f"instruction could not be rendered: {exc}"] += 1
                return None
            self._remember(self._instructions, (wf.name, persona_name, slots_json), instruction)
        # sha1 of the JSON of [workflow, path, persona, state_ref, slots, adversarial], the slots' JSON reused
        head_key = (wf.name, tuple(run.path), persona_name, state_seed, sample.scenario)
        head = self._heads.get(head_key)
        if head is None:
            state_ref: Any = state_seed if sample.scenario is None else [state_seed, sample.scenario]
            head = json.dumps([wf.name, run.path, persona_name, state_ref], sort_keys=True, separators=(",", ":"))
            if len(self._heads) >= CACHE_SIZE:
                self._heads.clear()
            self._heads[head_key] = head
        blob = f"{head[:-1]},{slots_json},{'true' if adversarial else 'false'}]"
        digest = hashlib.sha1(blob.encode()).hexdigest()
        base = self._bases.get(verdict_key)
        if base is None:  # the first task of this sample: what its gold gives every task of it
            base = self._base(wf, sample, initial, final, slots, run, slots_json, verdict_key,
                              f"{wf.name}/{'.'.join(run.path) or 'main'}/{persona_name or 'none'}/{digest[:10]}")
            if base is None:
                return None
        pressure = persona.pressure_lines(self.domain, int(digest[:10], 16)) if adversarial and persona else []
        data = {
            "id": f"{base.id_prefix}{persona_name or 'none'}/{digest[:10]}",
            "domain": self.domain.name,
            "workflow": wf.name,
            "path": run.path,
            "branch": base.branch,
            "persona": persona_name,
            "slots": slots,
            "initial_state": base.initial_state,
            **base.episode,
            "user": {
                "instruction": instruction,
                "opening": persona_data.get("opening", ""),
                "knows": run.knows,
                "tactics": self._tactics(persona),
                "pressure": pressure,
                "voice": persona_data.get("voice", ""),
            },
            "gold": base.gold,
            "verifiers": base.verifiers,
            "difficulty": base.difficulty(adversarial),
            "request": base.request,
            "adversarial": adversarial,
        }
        self._remember(self._tasks, task_key, data)
        return Task(dict(data))  # the memo's dict stays as it is when a caller adds to the task's

    def _base(self, wf: ResolvedWorkflow, sample: Sample, initial: dict[str, Any] | None,
              final: dict[str, Any] | None, slots: dict[str, Any], run: Any, slots_json: str,
              verdict_key: tuple[str, int, str | None, str], task_id: str) -> _SampleBase | None:
        """What every task of a sample shares (built with its first task, ``task_id``, which its findings name: say
        problems, a gold failure, an early leave); None when the gold does not score 1.0."""
        for action, problem in run.say_problems:
            self.say_problems.setdefault((wf.name, action.ypath), (task_id, problem, action.pos))
        verifiers = self._verifiers.get(wf.name)
        if verifiers is None:
            verifiers = self._verifiers[wf.name] = self.specs.verifiers_of(wf.name)
        if verdict_key not in self._verdicts:
            assert initial is not None and final is not None
            self._remember(self._verdicts, verdict_key, self._gold_verdict(wf, verifiers, task_id, initial, final,
                                                                            slots, run))
        if not self._verdicts[verdict_key]:
            return None
        gold = {"messages": run.messages, "calls": run.calls, "outcome": run.outcome, "informs": run.informs}
        walkout = leaves_before_the_end(gold)  # the walk-out check too depends on the gold alone
        if walkout is not None:
            left, needed = walkout
            calls = run.messages[needed].get("tool_calls") or []
            self.early_leaves.append(EarlyLeave(
                task_id, wf.name, run.said_at.get(left, wf.origin.pos), run.messages[left]["content"],
                f"a call to {calls[0]['name']}" if calls else repr(run.messages[needed]["content"])))
        n_branches = self._n_branches.get(wf.name)
        if n_branches is None:
            n_branches = self._n_branches[wf.name] = len(walk_branches(wf.tree))
        base = _SampleBase(
            id_prefix=f"{wf.name}/{'.'.join(run.path) or 'main'}/",
            branch=run.path[-1] if run.path else "",
            initial_state=self._initial_ref(wf, sample),
            episode=_episode_keys(self.clock(wf), self.random_seed(wf, sample, slots_json)),
            gold=gold,
            verifiers=self._verifier_names(wf.name, verifiers),
            request=_REQUESTS.get(run.outcome, "legal"),
            counts={"depth": run.depth, "calls": len(run.calls), "branches": n_branches,
                    "user_turns": 1 + len(run.knows) + [m["role"] for m in run.messages].count("user")},
        )
        self._remember(self._bases, verdict_key, base)
        return base

    def _persona_data(self, persona: ResolvedPersona | None) -> dict[str, Any]:
        """What the instruction template sees as ``persona`` (made once per persona; read-only)."""
        known = self._personas.get(id(persona))
        if known is None or known[0] is not persona:
            known = self._personas[id(persona)] = (persona, _persona_context(persona))  # kept: its id names it
        return known[1]

    def _tactics(self, persona: ResolvedPersona | None) -> list[str]:
        """A task's ``user.tactics``: one list per persona that its tasks share (read-only)."""
        if persona is None:
            return []
        known = self._tactic_lists.get(id(persona))
        if known is None or known[0] is not persona:
            known = self._tactic_lists[id(persona)] = (persona, list(persona.tactics))  # kept: its id names it
        return known[1]

    def _verifier_names(self, workflow: str, verifiers: list[Any]) -> list[str]:
        """The names of a workflow's verifiers: one list its tasks share (read-only, as all their values)."""
        names = self._names.get(workflow)
        if names is None:
            names = self._names[workflow] = [v.name for v in verifiers]
        return names

    def _gold_verdict(self, wf: ResolvedWorkflow, verifiers: list[Any], task_id: str, initial: dict[str, Any],
                      final: dict[str, Any], slots: dict[str, Any], run: Any) -> bool:
        """Whether every verifier scores the gold 1.0 (a failure is recorded for AQ602)."""
        evidence = Evidence(
            calls=[CallRecord(c["name"], c["arguments"], c["ok"]) for c in run.calls],
            assistant_text="\n".join([m["content"] for m in run.messages if m["role"] == "assistant"]),
            final_state=final, initial_state=initial, slots=slots, path=run.path, gold_final_state=final,
            outcome=run.outcome, gold_outcome=run.outcome,
        )
        clock = self.clock(wf)
        for verifier in verifiers:
            if clock is None:  # no episode to install (episode_context(None) changes nothing)
                if reward(verifier, evidence) == 1.0:
                    continue
                result = score(verifier, evidence)  # again, for which checks failed
            else:
                with episode_context(Episode.of(clock, None)):
                    if reward(verifier, evidence) == 1.0:
                        continue
                    result = score(verifier, evidence)
            if result.reward != 1.0:
                failed = [(i, c.detail) for i, c in enumerate(result.checks) if c.applicable and not c.passed]
                self.gold_failures.append(GoldFailure(task_id, wf.name, verifier.name, failed, list(run.path)))
                return False
        return True

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        """Store into one of the per-sample memos (emptied by :meth:`_trim_memos` between samples)."""
        cache[key] = value
        if len(cache) >= CACHE_SIZE:
            self._memos_full = True

    def _trim_memos(self) -> None:
        """Empty every per-sample memo once one is full: together, as a memoised task implies its verdict, walk-out
        check and instruction are, and a memoised gold run its verdict (which the memo hits rely on)."""
        if self._memos_full:
            for memo in self._memos:
                memo.clear()
            self._memos_full = False

    def _initial_ref(self, wf: ResolvedWorkflow, sample: Sample) -> dict[str, Any]:
        """How the runtime rebuilds the task's initial state: its seed, or the scenario's edit of it inline."""
        if sample.scenario is None:
            return {"seed": sample.state_seed}
        state = self._scenario_states[(wf.name, sample.scenario, sample.state_seed)]
        return {"seed": sample.state_seed, "scenario": sample.scenario, "state": copy_state(state)}

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
        personas_of = {name: self.specs.personas_for(self.workflows[name]) for name in names}
        pushes = {id(p): _is_adversarial(p) for ps in personas_of.values() for p in ps}
        # the rng is the sampling rng of every draw (the checker keeps sampling functions out of everything else
        # that runs in between: trees, tools, verifiers), installed once
        with sampling_rng(rng), _collector_paused():
            while len(out) < n and tries < limit and names:
                tries += 1
                if tries % _YOUNG_EVERY == 0:  # what the few cycles hold (a replaced SQL view's connection)
                    gc.collect(2 if tries % _FULL_EVERY == 0 else 0)
                name = rng.choice(names)
                wf = self.workflows[name]
                personas = personas_of[name]
                persona = rng.choice(personas) if personas else None
                task = self._draw(wf, rng, persona)
                if task is None:
                    continue
                d = task.data
                if wanted is not None and not wanted & set(d["path"]):
                    continue
                if max_depth is not None and d["difficulty"]["depth"] > max_depth:
                    continue
                pushy = d["request"] != "legal" and persona is not None and pushes[id(persona)]
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


_YOUNG_EVERY = 500
_FULL_EVERY = 20_000


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while tasks are drawn, and restore it after.

    What a draw drops is nearly all freed by reference counting (plant specs' draws make no reference cycles at all:
    tests pin it), and what it keeps lives on (tasks, memos), so the collector's passes during ``generate()`` find
    little: its young collections re-scan the growing memos, and their count (one per 700 new containers) soon calls
    a full collection over the whole heap, compiled specs included (about 100,000 objects, 30 to 60 ms, about every
    second ``generate(3000)``). Paused, a young collection every 500 draws and one at the end take their place (each
    counts once toward a full one), and a full one every 20,000 draws frees the few cycles that outlive a young one
    (a SQL view replaced after the state changed is one: about one per 12 draws in ``production_analytics``; the
    runner closes its database when it replaces it, so only the small Python objects wait for the collection).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect(0)  # the young collection the pause put off, here, where the draw pays for it


def undo(runner: ToolRunner, journal: list[Any]) -> None:
    """Roll a pooled state back to where ``journal`` began; the runner's views of the state are rebuilt next time."""
    rollback(journal)
    runner.version += 1


def _pool_call(expr: Any, slot_names: set[str]) -> tuple[str, Any] | tuple[()]:
    """(function, pool expression) when ``expr`` is ``sample(pool)`` or ``choice(pool)`` and the pool names no slot."""
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


def _closed_last(workflow: ResolvedWorkflow, name: str, expr: Any) -> bool:
    """Whether slot ``name`` is the workflow's last and ``expr`` a sampling function's call on
    literals (``randint(1, 4)``): it reads no name, and no slot after it shares the step budget of the env it would
    be drawn in, so a bare env gives the same value, the same random calls and the same errors."""
    if name != next(reversed(workflow.slots)) or not (isinstance(expr, A.Call) and expr.func in SAMPLING_FUNCTIONS):
        return False
    return all(type(v) is A.Lit for v in [*expr.args, *(v for _, v in expr.kwargs)])


_SCALARS = frozenset({str, int, float, bool, type(None)})
_SLOTS_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


@lru_cache(maxsize=1024)
def _json_key(name: str) -> str:
    """A slot name as a JSON object key (as ``_SLOTS_JSON`` writes it)."""
    return _SLOTS_JSON.encode(name)


def _slots_json(slots: dict[str, Any]) -> str:
    """``json.dumps(slots, sort_keys=True, separators=(",", ":"), default=str)``, with one encoder made once."""
    return _SLOTS_JSON.encode(slots)


def _short(value: Any) -> str:
    """A slot value in a hint: a record by its id (or first field), anything else as JSON, cut short."""
    if isinstance(value, dict):
        key = "id" if "id" in value else next(iter(value), None)
        if key is not None and not isinstance(value[key], (dict, list)):
            return f"{{{key}: {json.dumps(value[key])}, ...}}"
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_adversarial(persona: ResolvedPersona) -> bool:
    return any(TACTICS[t].adversarial for t in persona.tactics if t in TACTICS)


def _persona_context(persona: ResolvedPersona | None) -> dict[str, Any]:
    if persona is None:
        return {"name": "user", "opening": "", "voice": "", "role": ""}
    return {"name": persona.name, "opening": persona.opening, "voice": persona.voice, "role": persona.role,
            "knows": persona.knows, "tactics": persona.tactics}


_REQUESTS = {"refused": "violation", "transferred": "escalation"}
"""A task's ``request`` by its gold's outcome (any other: ``legal``)."""


def _episode_keys(clock: dict[str, str] | None, seed: int | None) -> dict[str, Any]:
    """A task's ``clock`` and ``random_seed``, only when set (other tasks stay byte for byte the same)."""
    if not clock and seed is None:
        return {}
    return {**({"clock": clock} if clock else {}), **({"random_seed": seed} if seed is not None else {})}
