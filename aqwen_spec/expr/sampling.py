"""Sampling functions for slots and record-generation rules: ``sample``, ``choice``, ``randint``, ``uniform``, ...

They draw from the random generator installed with :func:`sampling_rng`, so generation is reproducible from a
seed. The checker allows them only in sampling scopes (slots, generation rules); everywhere else evaluation stays
deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from aqwen_spec.expr.functions import ArgError, Builtin, FunctionError, elem_type
from aqwen_spec.types import FLOAT, INT, ListT, Type, is_numeric

if TYPE_CHECKING:  # generators come from the caller: checking specs never imports random
    import random

_RNG: ContextVar[random.Random | None] = ContextVar("aqwen_sampling_rng", default=None)


@contextmanager
def sampling_rng(rng: random.Random) -> Iterator[random.Random]:
    """Install ``rng`` as the source of every sampling function called inside the block."""
    token = _RNG.set(rng)
    try:
        yield rng
    finally:
        _RNG.reset(token)


def _rng() -> random.Random:
    rng = _RNG.get()
    if rng is None:
        raise FunctionError("sampling functions run only while generating states and tasks")
    return rng


def _pool(xs: Any, fn: str) -> list[Any]:
    if isinstance(xs, dict):
        xs = list(xs.values())
    elif isinstance(xs, str):
        xs = list(xs)  # its characters, as Python's random.choice("abc")
    if not isinstance(xs, list):
        raise FunctionError(f"{fn}() needs a list")
    if not xs:
        raise FunctionError(f"{fn}() of an empty list: nothing matches")
    return xs


def _sample(xs: Any, n: Any = None) -> Any:
    pool = _pool(xs, "sample")
    if n is None:
        return _rng().choice(pool)
    if not isinstance(n, int) or n < 0 or n > len(pool):
        raise FunctionError(f"sample(): cannot draw {n} of {len(pool)}")
    return _rng().sample(pool, n)


def _choice(xs: Any) -> Any:
    return _rng().choice(_pool(xs, "choice"))


def _randint(a: Any, b: Any) -> int:
    if not (isinstance(a, int) and isinstance(b, int)) or a > b:
        raise FunctionError(f"randint({a!r}, {b!r}): needs two ints, the first not larger")
    return _rng().randint(a, b)


def _uniform(a: Any, b: Any) -> float:
    return round(_rng().uniform(float(a), float(b)), 6)


def _uniform01() -> float:
    return _rng().random()


def _shuffle(xs: Any) -> list[Any]:
    out = list(_pool(xs, "shuffle"))
    _rng().shuffle(out)
    return out


def _r_pick(a: list[Type], k: dict[str, Type]) -> Type:
    item = elem_type(a[0])
    if item is None:
        raise ArgError(f"needs a list or map, not {a[0].render()}")
    return ListT(item) if len(a) > 1 else item


def _r_randint(a: list[Type], k: dict[str, Type]) -> Type:
    if not all(t == INT or t.render() == "any" for t in a):
        raise ArgError("randint(a, b) takes two ints")
    return INT


def _r_uniform(a: list[Type], k: dict[str, Type]) -> Type:
    if not all(is_numeric(t) for t in a):
        raise ArgError("uniform(a, b) takes two numbers")
    return FLOAT


def _r_random(a: list[Type], k: dict[str, Type]) -> Type:
    return FLOAT


def _r_shuffle(a: list[Type], k: dict[str, Type]) -> Type:
    item = elem_type(a[0])
    if item is None:
        raise ArgError(f"needs a list or map, not {a[0].render()}")
    return ListT(item)


SAMPLING_FUNCTIONS: Mapping[str, Builtin] = {
    f.name: f
    for f in [
        Builtin("sample", _sample, _r_pick, 1, 2, "sample(xs) or sample(xs, n)", collection=True),
        Builtin("choice", _choice, _r_pick, 1, 1, "choice(xs)", collection=True),
        Builtin("randint", _randint, _r_randint, 2, 2, "randint(a, b)"),
        Builtin("uniform", _uniform, _r_uniform, 2, 2, "uniform(a, b)"),
        Builtin("random", _uniform01, _r_random, 0, 0, "random()"),
        Builtin("shuffle", _shuffle, _r_shuffle, 1, 1, "shuffle(xs)", collection=True),
    ]
}
"""Functions that draw from the installed random generator, by name."""
