"""A pool of mutable initial states, so a fresh episode costs a rollback, not a copy of a large state.

An episode borrows a state for its task's seed, changes it through journaled tool calls, and gives it back; the
pool undoes the journal. A state changed behind the journal (a ``python:`` write tool) is dropped instead.
Thread-safe: concurrent episodes of the same seed get their own copies. The pool also keeps, per state it lends,
a :class:`PathIndex` (taken while the state is clean), so a reward compares only what the journals touched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aqwen_spec.expr import rollback
from aqwen_spec.semantics import copy_state
from aqwen_spec.semantics.changes import PathIndex
from aqwen_spec.types import Type
from aqwen_spec.values import from_json

State = dict[str, Any]


class StatePool:
    def __init__(self, make: Callable[[int], State], schema: Type | None = None, max_idle: int = 4) -> None:
        self._make = make
        self._schema = schema
        """The state's type: an inline state read from a task (JSON) is put in the form tools work on."""
        self._pristine: dict[int, State] = {}
        self._idle: dict[int, list[State]] = {}
        self._indexes: dict[int, PathIndex] = {}  # by id() of a state the pool lends or keeps
        self._lock = threading.Lock()
        self.max_idle = max_idle

    def inline(self, state: State) -> State:
        """A fresh copy of a task's inline state, int-keyed maps and sets in the form tools work on."""
        fresh = copy_state(state)
        return from_json(fresh, self._schema) if self._schema is not None else fresh

    def pristine(self, seed: int) -> State:
        """The untouched initial state of a seed (never hand it out for changes)."""
        with self._lock:
            if seed not in self._pristine:
                self._pristine[seed] = self._make(seed)
            return self._pristine[seed]

    def acquire(self, task: dict[str, Any]) -> tuple[State, list[Any]]:
        spec = task["initial_state"]
        if "state" in spec:  # inline states are small: copy
            return self.inline(spec["state"]), []
        seed = int(spec["seed"])
        with self._lock:
            idle = self._idle.get(seed)
            if idle:
                return idle.pop(), []
        state = copy_state(self.pristine(seed))
        with self._lock:
            self._indexes.pop(id(state), None)  # an index of a state gone without release, whose id this one got
        return state, []

    def index(self, task: dict[str, Any], state: State) -> PathIndex | None:
        """Where each container of a state lent for ``task`` lives (built once per state, the first time it is
        asked for: ask before the state changes). None for an inline state (not pooled)."""
        if "state" in task["initial_state"]:
            return None
        with self._lock:
            index = self._indexes.get(id(state))
        if index is None:
            index = PathIndex(state)
            with self._lock:
                self._indexes[id(state)] = index
        return index

    def release(self, task: dict[str, Any], state: State, journal: list[Any], dirty: bool = False) -> None:
        spec = task["initial_state"]
        if "state" in spec:
            return
        if dirty:
            with self._lock:
                self._indexes.pop(id(state), None)
            return
        rollback(journal)
        seed = int(spec["seed"])
        with self._lock:
            idle = self._idle.setdefault(seed, [])
            if len(idle) < self.max_idle:
                idle.append(state)
            else:
                self._indexes.pop(id(state), None)
