"""What one episode fixes for the expressions run in it: the clock (``today()``, ``now()``) and the random generator
tools draw from (``rng_randint``, ``random_id``, ...).

The compiler's gold run and the runtime's episode install the same :class:`Episode` (from the task: its ``clock`` and
``random_seed``), so both see the same date and draw the same values: never the wall clock, never an unseeded
generator. The draw functions call exactly the :class:`random.Random` method of the same name with the same
arguments, so a Python environment whose generator is ``random.Random(seed)`` and that makes the same calls in the
same order draws the same values. A tool call that fails puts the generator back where it was (:meth:`Episode.undo`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from aqwen_spec.expr.functions import ArgError, Builtin, FunctionError
from aqwen_spec.types import ANY, DATE, DATETIME, FLOAT, INT, STR, ListT, Type, is_numeric, unwrap_optional

__all__ = ["CLOCK_FUNCTIONS", "CURRENT", "DRAW_FUNCTIONS", "Episode", "episode_context", "install", "uninstall"]

_CHECKPOINT = 512
"""Draws an undo replays at most (past them, the next call saves the generator's state once)."""
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
"""The characters ``random_id(n)`` draws from, unless given others."""


class Episode:
    """The clock and the random generator of one episode (or one gold run).

    A failed call's draws are undone by replaying, from the seed, the draws of the calls that stood (each recorded
    as the method and arguments that consume the generator as it did): a call that succeeds costs one list append
    per draw, where saving the generator's state before each call would cost a copy of its 625 words.
    """

    __slots__ = ("_base", "_log", "_mark", "now", "rng", "seed", "today")

    def __init__(self, today: str | None = None, now: str | None = None, seed: int | None = None) -> None:
        self.today = today
        self.now = now
        self.seed = seed
        self.rng = random.Random(seed) if seed is not None else None
        self._log: list[tuple[str, tuple[Any, ...]]] = []
        """The draws since ``_base``: ``(method, arguments)`` that draw as each did (a sequence's length stands in
        for it: a range)."""
        self._base: Any = None
        """The generator's state the log starts from (``None``: the seed's); moved up every ``_CHECKPOINT`` draws,
        so that an undo replays at most that many."""
        self._mark = 0

    @classmethod
    def of(cls, clock: Mapping[str, str] | None, seed: int | None) -> Episode | None:
        """The episode a task's ``clock`` and ``random_seed`` describe; None when it has neither."""
        if not clock and seed is None:
            return None
        clock = clock or {}
        return cls(clock.get("today"), clock.get("now"), seed)

    @classmethod
    def of_task(cls, task: Mapping[str, Any]) -> Episode | None:
        """A fresh episode of a compiled task (its ``clock`` and ``random_seed``, as the compiler's gold run had)."""
        return cls.of(task.get("clock"), task.get("random_seed"))

    def begin(self) -> None:
        """A tool call starts: draws from here on belong to it."""
        log = self._log
        if len(log) > _CHECKPOINT and self.rng is not None:
            self._base = self.rng.getstate()
            log.clear()
        self._mark = len(log)

    def undo(self) -> None:
        """The call failed: its draws never happened (the generator is where the calls before it left it)."""
        log = self._log
        if len(log) > self._mark and self.seed is not None:
            del log[self._mark:]
            rng = random.Random(self.seed)
            if self._base is not None:
                rng.setstate(self._base)
            for method, args in log:
                getattr(rng, method)(*args)
            self.rng = rng

    def draw(self, method: str, replay: tuple[Any, ...], *args: Any) -> Any:
        """``self.rng.<method>(*args)``, recorded as ``(method, replay)`` (arguments that draw the same)."""
        if self.rng is None:
            raise FunctionError("this episode has no random generator: set random: {seed: N} on the domain, or "
                                "recompile (tasks of domains whose tools draw carry a random_seed)")
        value = getattr(self.rng, method)(*args)
        self._log.append((method, replay))
        return value


_EPISODE: ContextVar[Episode | None] = ContextVar("aqwen_episode", default=None)
CURRENT = _EPISODE
"""The episode installed for the expressions evaluated now (set and reset it around a call on a hot path; a
``with episode_context(...)`` block elsewhere)."""


@contextmanager
def episode_context(episode: Episode | None) -> Iterator[Episode | None]:
    """Install ``episode`` for the expressions evaluated inside the block (nothing changes for None)."""
    if episode is None:
        yield None
        return
    token = _EPISODE.set(episode)
    try:
        yield episode
    finally:
        _EPISODE.reset(token)


def install(episode: Episode | None) -> Token[Episode | None]:
    """Install ``episode`` until :func:`uninstall` (for a block that cannot be a ``with``)."""
    return _EPISODE.set(episode)


def uninstall(token: Token[Episode | None]) -> None:
    _EPISODE.reset(token)


# ------------------------------------------------------------------------------------------------------ clock


def _today() -> str:
    episode = _EPISODE.get()
    if episode is None or (episode.today is None and episode.now is None):
        raise FunctionError("today() needs a clock: set clock: {today: ...} on the domain or the workflow")
    return episode.today if episode.today is not None else str(episode.now)[:10]


def _now() -> str:
    episode = _EPISODE.get()
    if episode is None or (episode.today is None and episode.now is None):
        raise FunctionError("now() needs a clock: set clock: {now: ...} on the domain or the workflow")
    return episode.now if episode.now is not None else f"{episode.today}T00:00:00"


CLOCK_FUNCTIONS: Mapping[str, Builtin] = {
    "today": Builtin("today", _today, lambda a, k: DATE, 0, 0, "today()"),
    "now": Builtin("now", _now, lambda a, k: DATETIME, 0, 0, "now()"),
}
"""The episode's fixed date and datetime (ISO text, typed ``date`` and ``datetime``)."""


# ------------------------------------------------------------------------------------------------------ draws


def _draw(method: str, replay: tuple[Any, ...], *args: Any) -> Any:
    episode = _EPISODE.get()
    if episode is None:
        raise FunctionError("draws from the episode's generator run only in tool calls")
    return episode.draw(method, replay, *args)


def _ready() -> Episode:
    """The episode to draw from (checked before a draw's arguments where Python's method would take them first)."""
    episode = _EPISODE.get()
    if episode is None:
        raise FunctionError("draws from the episode's generator run only in tool calls")
    if episode.rng is None:
        episode.draw("random", ())  # raises: no generator
    return episode


def _int(x: Any, fn: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise FunctionError(f"{fn}() takes ints, not {x!r}")
    return x


def _seq(xs: Any, fn: str) -> list[Any] | str:
    if not isinstance(xs, (list, str)):
        raise FunctionError(f"{fn}() needs a list or a string")
    if not xs:
        raise FunctionError(f"{fn}() of an empty sequence")
    return xs


def _randint(a: Any, b: Any) -> int:
    a, b = _int(a, "rng_randint"), _int(b, "rng_randint")
    if a > b:
        raise FunctionError(f"rng_randint({a}, {b}): empty range")
    episode = _ready()
    episode._log.append(("randint", (a, b)))  # Episode.draw, without its lookups (the commonest draws)
    return episode.rng.randint(a, b)  # type: ignore[union-attr]


def _randrange(start: Any, stop: Any = None, step: Any = 1) -> int:
    _ready()
    try:
        if stop is None:
            n = _int(start, "rng_randrange")
            return int(_draw("randrange", (n,), n))
        args = (_int(start, "rng_randrange"), _int(stop, "rng_randrange"), _int(step, "rng_randrange"))
        return int(_draw("randrange", args, *args))
    except ValueError as exc:
        raise FunctionError(f"rng_randrange(): {exc}") from None


def _choice(xs: Any) -> Any:
    episode = _ready()
    xs = _seq(xs, "rng_choice")
    episode._log.append(("choice", (range(len(xs)),)))  # choice draws on the length only
    return episode.rng.choice(xs)  # type: ignore[union-attr]


def _random() -> float:
    episode = _ready()
    episode._log.append(("random", ()))
    return episode.rng.random()  # type: ignore[union-attr]


def _uniform(a: Any, b: Any) -> float:
    return float(_draw("uniform", (a, b), a, b))


def _getrandbits(k: Any) -> int:
    k = _int(k, "rng_getrandbits")
    if k < 0 or k > 4096:
        raise FunctionError(f"rng_getrandbits({k}): between 0 and 4096 bits")
    return int(_draw("getrandbits", (k,), k))


def _sample(xs: Any, k: Any) -> list[Any]:
    if not isinstance(xs, (list, str)):
        raise FunctionError("rng_sample() needs a list or a string")
    k = _int(k, "rng_sample")
    if not 0 <= k <= len(xs):
        raise FunctionError(f"rng_sample(): cannot draw {k} of {len(xs)}")
    return list(_draw("sample", (range(len(xs)), k), xs, k))  # as choice: the length and k decide the draws


def _shuffle(xs: Any) -> list[Any]:
    if not isinstance(xs, list):
        raise FunctionError("rng_shuffle() needs a list")
    out = list(xs)
    _draw("shuffle", (list(range(len(out))),), out)  # a list of the same length shuffles with the same draws
    return out


def _random_id(n: Any, alphabet: Any = ID_ALPHABET) -> str:
    n = _int(n, "random_id")
    if not 0 < n <= 256:
        raise FunctionError(f"random_id({n}): between 1 and 256 characters")
    if not isinstance(alphabet, str) or not alphabet:
        raise FunctionError("random_id(): the alphabet is a non-empty string")
    replay = (range(len(alphabet)),)
    return "".join(_draw("choice", replay, alphabet) for _ in range(n))


def _ints(name: str, result: Type) -> Any:
    def rule(a: list[Type], k: dict[str, Type]) -> Type:
        if not all(unwrap_optional(t) == INT or t.render() == "any" for t in a):
            raise ArgError(f"{name}() takes ints")
        return result
    return rule


def _numbers(a: list[Type], k: dict[str, Type]) -> Type:
    if not all(is_numeric(t) for t in a):
        raise ArgError("rng_uniform(a, b) takes two numbers")
    return FLOAT


def _item(a: list[Type], k: dict[str, Type]) -> Type:
    t = unwrap_optional(a[0])
    if t == STR:
        return STR
    if isinstance(t, ListT):
        return t.item
    if t == ANY:
        return ANY
    raise ArgError(f"needs a list or a string, not {a[0].render()}")


def _items(a: list[Type], k: dict[str, Type]) -> Type:
    item = _item(a[:1], k)
    if len(a) > 1 and not (a[1] == INT or a[1].render() == "any"):
        raise ArgError("the count is an int")
    return ListT(item)


def _id(a: list[Type], k: dict[str, Type]) -> Type:
    if not (a[0] == INT or a[0].render() == "any") or (len(a) > 1 and a[1] != STR and a[1].render() != "any"):
        raise ArgError("random_id(n) or random_id(n, alphabet): an int and a string")
    return STR


DRAW_FUNCTIONS: Mapping[str, Builtin] = {
    f.name: f
    for f in [
        Builtin("rng_randint", _randint, _ints("rng_randint", INT), 2, 2, "rng_randint(a, b)"),
        Builtin("rng_randrange", _randrange, _ints("rng_randrange", INT), 1, 3,
                "rng_randrange(stop) or rng_randrange(start, stop[, step])"),
        Builtin("rng_choice", _choice, _item, 1, 1, "rng_choice(xs)"),
        Builtin("rng_random", _random, lambda a, k: FLOAT, 0, 0, "rng_random()"),
        Builtin("rng_uniform", _uniform, _numbers, 2, 2, "rng_uniform(a, b)"),
        Builtin("rng_getrandbits", _getrandbits, _ints("rng_getrandbits", INT), 1, 1, "rng_getrandbits(k)"),
        Builtin("rng_sample", _sample, _items, 2, 2, "rng_sample(xs, k)"),
        Builtin("rng_shuffle", _shuffle, _items, 1, 1, "rng_shuffle(xs)"),
        Builtin("random_id", _random_id, _id, 1, 2, "random_id(n) or random_id(n, alphabet)"),
    ]
}
"""Draws from the episode's generator, allowed in a tool's effects; ``rng_<m>(...)`` is ``random.Random.<m>(...)``
(``rng_shuffle`` shuffles a copy); ``random_id(n, alphabet)`` is ``"".join(rng.choice(alphabet) for _ in
range(n))``."""
