"""Comparing two states that grew from one initial state by journaled changes, in time proportional to the changes.

A run's journal (the undo log of :func:`aqwen_spec.expr.rollback`) names the containers and keys the run changed. A
:class:`PathIndex`, taken of a state while it is as it started, turns those containers into paths from the root.
Two final states of the same initial state are equal exactly when they are equal at the top-most paths either run
changed: everywhere else both still hold the initial values.

Why that is exact: effects copy every value they store, so a container of the initial state never moves; a location
that differs from the initial state therefore lies under a slot some journal entry changed, in a container that is
still at its indexed path (an entry on a container the run made itself lies under the slot that stored it, which is
in the journal too). A change inside a list is compared as the whole list once the list itself was appended to,
extended or removed from (its indices shift), else at the element. Comparing more paths than needed is harmless:
each comparison is of the two final states at one real location.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aqwen_spec.expr.evaluator import copy_value

Path = tuple[Any, ...]


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""What :func:`value_at` gives for a path that leads nowhere (a deleted or never-made entry)."""


class PathIndex:
    """Where each container (dict or list) of a state lives, by identity. Take it while the state is as it started:
    the containers a later run makes are found through the slots that stored them."""

    __slots__ = ("_paths",)

    def __init__(self, state: Mapping[str, Any]) -> None:
        paths: dict[int, Path] = {}
        stack: list[tuple[Any, Path]] = [(state, ())]
        while stack:
            value, path = stack.pop()
            paths[id(value)] = path
            items = value.items() if type(value) is dict else enumerate(value)
            for key, item in items:
                t = type(item)
                if t is dict or t is list:
                    stack.append((item, (*path, key)))
        self._paths = paths

    def __len__(self) -> int:
        return len(self._paths)

    def touched(self, journal: Iterable[tuple[Any, ...]]) -> set[Path]:
        """The paths a journal changed: a map entry or list element set or deleted, or a whole list that grew or
        shrank."""
        out: set[Path] = set()
        where = self._paths.get
        for entry in journal:
            path = where(id(entry[1]))
            if path is None:
                continue  # made by the run: it lies under the slot that stored it, which is touched
            if entry[0] in ("set", "delete"):
                out.add((*path, entry[2]))
            else:  # append, extend, remove: the list's indices shift, so the list is compared whole
                out.add(path)
        return out


def topmost(paths: Iterable[Path]) -> list[Path]:
    """The paths with no other of the given paths above them, shortest first."""
    kept: set[Path] = set()
    for path in sorted(set(paths), key=len):
        if not any(path[:i] in kept for i in range(len(path))):
            kept.add(path)
    return sorted(kept, key=len)


def value_at(state: Any, path: Path) -> Any:
    """The value at ``path``, or :data:`ABSENT` when the path leads nowhere."""
    value = state
    for key in path:
        t = type(value)
        if t is dict:
            value = value.get(key, ABSENT)
            if value is ABSENT:
                return ABSENT
        elif t is list and type(key) is int and -len(value) <= key < len(value):
            value = value[key]
        else:
            return ABSENT
    return value


class Delta:
    """A run's changes to an initial state: the final value (a copy) at each top-most path it touched.

    Captured once (for a task's gold, once per task); much smaller than a copy of the final state."""

    __slots__ = ("values",)

    def __init__(self, values: dict[Path, Any]) -> None:
        self.values = values

    @classmethod
    def capture(cls, state: Mapping[str, Any], touched: Iterable[Path]) -> Delta:
        """The changes of a run that touched ``touched`` and left ``state`` as it is now."""
        return cls({path: copy_value(value_at(state, path)) for path in topmost(touched)})

    def final_value(self, path: Path, initial: Mapping[str, Any]) -> Any:
        """The run's final value at ``path``, given that no touched path lies strictly above it."""
        if path in self.values:
            return self.values[path]
        n = len(path)
        below = [(p[n:], v) for p, v in self.values.items() if len(p) > n and p[:n] == path]
        base = value_at(initial, path)
        if not below:
            return base
        base = copy_value(base)  # the run changed something inside: the initial value with those changes
        for rest, value in below:
            parent = value_at(base, rest[:-1])
            if value is ABSENT:
                if type(parent) is dict:
                    parent.pop(rest[-1], None)
            elif type(parent) is dict or type(parent) is list:
                parent[rest[-1]] = value
        return base


def same_final_state(state: Mapping[str, Any], touched: Iterable[Path], initial: Mapping[str, Any],
                     gold: Delta) -> bool:
    """Whether ``state`` (``initial`` changed at ``touched``) equals ``initial`` changed by ``gold``: the full
    structural comparison's answer, looking only where either run changed something."""
    for path in topmost([*touched, *gold.values]):
        mine, theirs = value_at(state, path), gold.final_value(path, initial)
        if mine is ABSENT or theirs is ABSENT:
            if mine is not theirs:
                return False
        elif mine != theirs:
            return False
    return True
