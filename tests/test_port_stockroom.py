"""A second port replayed against its Python original (``tests/fixtures/stockroom``): a counter written by name,
zero-padded ids, ``let:`` bindings, ``try_int``, a domain function and a constant table, a set, ``group_by``,
slices and format specs. Every result string, error string and the final state must be the original's."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from port_originals import load_original

from aqwen_spec.check import check_paths
from aqwen_spec.semantics.tools import ToolRunner

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "stockroom"


def _original() -> Any:
    return load_original(FIXTURE / "original.py", "Stockroom")


def _port() -> tuple[ToolRunner, dict[str, Any]]:
    result = check_paths([FIXTURE / "specs"])
    assert not result.diagnostics.has_errors(), [d.render() for d in result.diagnostics.errors]
    specs = result.specs
    state = {"stock": {"bolt": 100, "nut": 250, "gear": 4, "belt": 0}, "orders": {}, "order_counter": 0,
             "flags": []}
    return ToolRunner(specs.tools_of("stockroom"), state), state


def _random_call(rng: random.Random, orders: list[str]) -> tuple[str, dict[str, Any]]:
    name = rng.choice(["order", "order", "order", "cancel", "flag", "by_customer", "stock_value"])
    if name == "order":
        return name, {"part": rng.choice(["bolt", "nut", "gear", "belt", "washer"]),
                      "qty": rng.choice(["1", "3", "12", "007", "0", "-2", "x", "", "2.5", "400"]),
                      "customer": rng.choice(["ana", "ben", "Łukasz Wiśniewski-Kowalczyk", "chen"])}
    if name == "cancel":
        return name, {"order_id": rng.choice([*orders, "O-00099", ""])}
    if name == "flag":
        return name, {"customer": rng.choice(["ana", "ben", "zoë"])}
    return name, {}


def test_the_stockroom_port_shows_what_the_python_original_shows() -> None:
    rng = random.Random(7)
    kinds: dict[str, int] = {"ok": 0, "error": 0}
    for episode in range(3):
        runner, state = _port()
        room = _original()
        for _ in range(150):
            name, args = _random_call(rng, list(room.orders))
            expected = room.call(name, args)
            outcome = runner.call(name, args)
            assert outcome.render() == expected, (episode, name, args)
            assert outcome.ok == (not expected.startswith("Error:")), (name, args, expected)
            kinds["ok" if outcome.ok else "error"] += 1
        assert state == room.state()
    assert kinds["ok"] > 100 and kinds["error"] > 50, kinds
