"""What counts as telling the user a value (``tells_user`` checks and the scripted user's "have I heard it all")."""

from __future__ import annotations

from typing import Any

import pytest

from aqwen_spec.semantics.verify import mentions

STATED = [
    ("how many are in stock: 0", 0),
    ("the change is -5 units", -5),
    ("3.5 units", 3.5),
    ("1,250 units this week", 1250),
    ("the rate is 5%", 5),
    ("in total: 12.", 12),
    ("It is 12, as planned", 12),
    ("weight 12.50 kg", 12.5),
    ("it costs $7.25", 7.25),
    ("x=7", 7),
    ("on line L1.", "L1"),
    ("wo-1002 is closed", "WO-1002"),
    ("(ok)", "ok"),
    ("Ben Okafor is assigned", "Ben Okafor"),
    ("a servo drive fuse.", "servo drive fuse"),
    ("reserved on 2025-03-03", "2025-03-03"),
    ("yes, it is", True),
    ("it is not", False),
    ("stock 0 on L2", [0, "L2"]),
    ("stock 4 of P-11", {"part": "P-11", "stock": 4}),
    ("anything", None),
]

NOT_STATED = [
    ("work order WO-1002", 0),  # a digit of an id is not a number told
    ("work order WO-1002", 1002),
    ("part P-300", 300),
    ("3.5 units", 3),
    ("the 3rd shift", 3),
    ("on 2025-03-03", 3),
    ("on line L10", "L1"),
    ("work order WO-1002", "WO-100"),
    ("it is booked", "ok"),
    ("stock 0 on L2", [0, "L3"]),
    ("nothing to say", 0),
    ("it is", True),
]


@pytest.mark.parametrize(("text", "value"), STATED)
def test_stated(text: str, value: Any) -> None:
    assert mentions(text, value)


@pytest.mark.parametrize(("text", "value"), NOT_STATED)
def test_not_stated(text: str, value: Any) -> None:
    assert not mentions(text, value)
