"""What the simulated user says that the task itself fixes: values as text, and the opening message.

One place, so the compiler's gold trajectories and exports and the runtime's scripted user agree word for word.
"""

from __future__ import annotations

import json
from typing import Any


def say(value: Any) -> str:
    """A value as a person would write it in a message (``3`` for 3.0, JSON for lists and records)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def opening(task: dict[str, Any]) -> str:
    """The user's first message: the instruction, with what the user knows held back under the
    ``withholds_id_until_asked`` tactic, then the pressure lines of an adversarial variant."""
    user = task.get("user", {})
    text = str(user.get("instruction", ""))
    if "withholds_id_until_asked" in user.get("tactics", []):
        for item in user.get("knows", []):
            value = say(item.get("value"))
            if value and value in text:
                about = str(item.get("about") or "it")
                text = text.replace(f" ({value})", "").replace(value, f"(you can ask me for {about})")
    return f"{text} {' '.join(user.get('pressure', []))}".strip()
