"""What the simulated user says that the task itself fixes: values as text, and the opening message.

One place, so the compiler's gold trajectories and exports and the runtime's scripted user agree word for word.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aqwen_spec.semantics.verify import REFUSAL, mentions


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
                text = hold_back(text, value, str(item.get("about") or ""))
    return f"{text} {' '.join(user.get('pressure', []))}".strip()


CONFIRM = re.compile(r"\b(confirm|shall i|should i|go ahead|proceed|ok to|okay to)\b", re.I)
"""What makes the scripted user read a question as asking for its go-ahead."""


def reads_as(text: str) -> str:
    """How the scripted user reads an agent's message: ``refusal``, ``confirmation``, ``question`` or ``statement``."""
    if REFUSAL.search(text):
        return "refusal"
    if "?" in text:
        return "confirmation" if CONFIRM.search(text) else "question"
    return "statement"


_SAY_READS = {"ask_user": ("question", "confirmation"), "confirm": ("confirmation",), "inform_user": ("statement",),
              "refuse": ("refusal",)}
_SAY_NEEDS = {"question": "a question (with a '?', and no refusal words)",
              "confirmation": "a question asking for the go-ahead (a '?' and 'confirm', 'shall I', 'go ahead', "
                              "'proceed' ...)",
              "statement": "a statement (no '?', and no refusal words such as can't or unable to)",
              "refusal": "a refusal (with can't, cannot, unable to, not allowed, must decline ...)"}


def say_problem(kind: str, text: str, value: Any = None) -> str | None:
    """Why a gold message written by a ``say:`` template would not work with the simulated user and the verifiers
    (None when it does): it must read as what its action is, and an ``inform_user`` text must state its value."""
    wanted = _SAY_READS.get(kind)
    if not text.strip():
        return "it renders to an empty message"
    if wanted is not None and reads_as(text) not in wanted:
        return f"it must read as {_SAY_NEEDS[wanted[0]]}, but reads as a {reads_as(text)}: {text!r}"
    if kind == "inform_user" and not mentions(text, value):
        return f"it does not state the value {say(value)!r}: {text!r}"
    return None
_AMOUNTS = ("qty", "quantity", "amount", "count", "number", "units", "how many")
_FUNCTION_WORDS = ("on", "in", "to", "for", "of", "the", "a", "an", "with", "at", "by", "from", "and", "or", "into")


def hold_back(text: str, value: str, about: str) -> str:
    """``text`` with ``value`` held back as a person would: named by its kind, with an offer to tell it when asked.

    ``please book I-13 for me`` about ``the instrument id`` reads ``please book the instrument for me. I'll tell you
    which instrument if you ask.``; ``on work order WO-7`` reads ``on the work order``; a value in parentheses after a
    name (``Ana (T-1)``) is just left out. ``value`` may also be a template's ``{{ ... }}``."""
    text = text.replace(f" ({value})", "")
    if value not in text:
        return text
    thing = re.sub(r"^(?:the|a|an|your|my)\s+", "", about.strip(), flags=re.I)
    noun = re.sub(r"\s+(?:id|ids|number|code|key|reference|name)$", "", thing, flags=re.I) or "one"
    if noun.lower() in _AMOUNTS:  # "I need 3 x filters" -> "I need some filters ... how many"
        text = re.sub(rf"{re.escape(value)}(?:\s+x\b)?", "some", text, count=1)
        end = "" if text.rstrip().endswith((".", "!", "?")) else "."
        return f"{text.rstrip()}{end} I'll tell you how many if you ask."
    last = re.escape(noun.split()[-1]) if noun.split() else "one"
    # the words before the value that already name its kind ("work order WO-7") become the kind ("the work order")
    word = rf"(?!(?:{'|'.join(_FUNCTION_WORDS)})\b)[\w-]+\s+"
    named = re.compile(rf"(?:\b(?:the|a|an)\s+)?(?P<kind>\b(?:{word})?{last}\s+)?{re.escape(value)}", re.I)
    kinds: list[str] = []

    def name_it(m: re.Match[str]) -> str:
        kinds.append((m.group("kind") or noun).strip())
        return f"the {kinds[-1]}"

    text = named.sub(name_it, text)
    end = "" if text.rstrip().endswith((".", "!", "?")) else "."
    return f"{text.rstrip()}{end} I'll tell you which {kinds[0] if kinds else noun} if you ask."


def heard_everything(informs: list[dict[str, Any]], heard: str) -> bool:
    """Whether ``heard`` (what the agent has told the user so far) states every value the task's gold informs the user
    of: the scripted user then ends a conversation whose gold outcome is ``done``."""
    return all(mentions(heard, item.get("value")) for item in informs)


def leaves_before_the_end(gold: dict[str, Any]) -> tuple[int, int] | None:
    """Where the scripted user would walk out of a gold trajectory: the index of the message after which it has
    heard every value it came for, and the index of the first later message that still needs it (a tool call or a
    question); None when nothing that matters comes after (statements of values already told may). Only statements
    count as heard: assistant text without tool calls, a question or a refusal."""
    if gold.get("outcome", "done") != "done":
        return None
    messages = gold.get("messages", [])
    # the last message that still needs the user: a statement after it cannot be followed by one (its walk-out
    # would be harmless), so the search stops there (most golds state their values last: found from the end)
    last_need = -1
    for back in range(len(messages) - 1, -1, -1):
        m = messages[back]
        if m["role"] == "assistant" and (m.get("tool_calls") or "?" in str(m.get("content") or "")):
            last_need = back
            break
    heard: list[str] = []
    for i in range(max(last_need, 0)):
        message = messages[i]
        if message["role"] != "assistant" or message.get("tool_calls"):
            continue
        text = str(message.get("content") or "")
        if "?" in text or REFUSAL.search(text):
            continue
        heard.append(text)
        if heard_everything(gold.get("informs", []), "\n".join(heard)):
            later = (j for j, m in enumerate(messages[i + 1 :], i + 1) if m["role"] == "assistant"
                     and (m.get("tool_calls") or "?" in str(m.get("content") or "")))
            j = next(later, None)
            return None if j is None else (i, j)
    return None
