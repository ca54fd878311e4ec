"""The id renaming of benchmarks/sft_levers.py: a consistent permutation of a state's map keys over messages."""

import importlib.util
import random
from pathlib import Path

_spec = importlib.util.spec_from_file_location("sft_levers", Path(__file__).parents[1] / "benchmarks" / "sft_levers.py")
assert _spec is not None and _spec.loader is not None
levers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(levers)

ORDERS = {"WO-100": {"machine_id": "M-1"}, "WO-1005": {"machine_id": "M-2"}, "WO-1006": {}}
MACHINES: dict[str, dict[str, str]] = {"M-1": {}, "M-2": {}}
STATE = {
    "work_orders": ORDERS,
    "machines": MACHINES,
    "counter": 3,
    "log": [],
}


def test_renaming_permutes_each_map_of_ids_and_nothing_else() -> None:
    for seed in range(20):
        mapping = levers.id_renaming(STATE, random.Random(seed))
        assert all(a != b for a, b in mapping.items())
        for family in (set(ORDERS), set(MACHINES)):
            moved = {a for a in mapping if a in family}
            assert {mapping[a] for a in moved} <= family  # ids stay in their own map
            assert len({mapping[a] for a in moved}) == len(moved)  # and stay distinct
        assert set(mapping) <= set(ORDERS) | set(MACHINES)


def test_rename_replaces_whole_ids_everywhere_at_once() -> None:
    mapping = {"WO-100": "WO-1005", "WO-1005": "WO-100", "M-1": "M-2", "M-2": "M-1"}
    messages = [
        {"role": "user", "content": "Close WO-1005, not WO-100 (machine M-1; WO-10050 is no id, nor XM-1)."},
        {"role": "assistant", "tool_calls": [{"name": "get", "arguments": {"order_id": "WO-100"}}]},
        {"role": "tool", "content": '{"id": "WO-100", "machine_id": "M-2", "qty": 100}'},
    ]
    out = levers.rename(messages, mapping)
    assert out[0]["content"] == "Close WO-100, not WO-1005 (machine M-2; WO-10050 is no id, nor XM-1)."
    assert out[1]["tool_calls"][0]["arguments"] == {"order_id": "WO-1005"}
    assert out[2]["content"] == '{"id": "WO-1005", "machine_id": "M-1", "qty": 100}'
    assert levers.rename(out, mapping) == messages  # a swap undone by itself
    assert levers.rename(messages, {}) is messages
