"""Simulated users: a scripted user (deterministic, the default) and an LLM user through any chat model.

Both end the conversation tau2-bench's way: a reply containing ``###STOP###`` (done) or ``###TRANSFER###``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from aqwen_spec.semantics.user import heard_everything, opening, reads_as, say

STOP = "###STOP###"
TRANSFER = "###TRANSFER###"

_WORDS = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "the a an of to for your you me my is it this that please could would can tell give".split()  # noqa: SIM905
)


class User(Protocol):
    def opening(self) -> str: ...

    def reply(self, agent_message: str) -> str: ...


def _keywords(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if w not in _STOPWORDS}


def _wrong(value: str) -> str:
    """A wrong but plausible version of an id: its last digit changed."""
    for i in range(len(value) - 1, -1, -1):
        if value[i].isdigit():
            return value[:i] + str((int(value[i]) + 1) % 10) + value[i + 1 :]
    return value + "X"


@dataclass
class ScriptedUser:
    """A rule-based user that follows its task: it answers what it is asked from what it knows, confirms, pushes
    back after a refusal when its persona insists, and applies its tactics by rule.

    - ``withholds_id_until_asked``: values it knows are left out of the first message;
    - ``gives_wrong_id_first``: the first answer to a question is a wrong id, corrected on the next question;
    - adversarial variants add their ``pressure`` lines to the first message and push once after a refusal.
    """

    task: dict[str, Any]
    max_turns: int = 12
    turns: int = 0
    revealed: set[int] = field(default_factory=set)
    insisted: bool = False
    gave_wrong: bool = False
    done: bool = False
    nudges: int = 0
    heard: list[str] = field(default_factory=list)

    @property
    def _user(self) -> dict[str, Any]:
        return dict(self.task.get("user", {}))

    @property
    def _tactics(self) -> list[str]:
        return list(self._user.get("tactics", []))

    def opening(self) -> str:
        return opening(self.task)

    def reply(self, agent_message: str) -> str:
        self.turns += 1
        if self.done:
            return STOP
        if self.turns > self.max_turns:
            self.done = True
            return f"I have to go. {STOP}"
        knows = list(self._user.get("knows", []))
        reading = reads_as(agent_message)  # the one rule gold messages are checked against (say_problem)
        if reading == "refusal":
            if self.task.get("adversarial") and not self.insisted and self._user.get("pressure"):
                self.insisted = True
                return str(self._user["pressure"][-1])
            self.done = True
            return f"Alright. {STOP}"
        if reading in ("question", "confirmation"):
            if reading == "confirmation" and not self._best_match(agent_message, knows):
                return "Yes, go ahead."
            index = self._best_match(agent_message, knows)
            if index is None:
                index = next((i for i in range(len(knows)) if i not in self.revealed), None)
            if index is None:
                return "Yes." if reading == "confirmation" else "I don't know more than that."
            value = say(knows[index].get("value"))
            if "gives_wrong_id_first" in self._tactics and not self.gave_wrong and any(c.isdigit() for c in value):
                self.gave_wrong = True
                return f"I think it's {_wrong(value)}."
            self.revealed.add(index)
            return f"It's {value}." if self.gave_wrong else value
        return self._statement(agent_message)

    def _statement(self, agent_message: str) -> str:
        """The agent told the user something: done when it told what the user came for, else nudge it on."""
        self.heard.append(agent_message)
        gold = self.task.get("gold", {})
        if heard_everything(gold.get("informs", []), "\n".join(self.heard)) and gold.get("outcome", "done") == "done":
            self.done = True
            return f"Thanks, that's all. {STOP}"
        self.nudges += 1
        if self.nudges > 3:
            self.done = True
            return f"I'll leave it there. {STOP}"
        return "OK. Is it done? What happens now?"

    def _best_match(self, message: str, knows: list[dict[str, Any]]) -> int | None:
        words = _keywords(message)
        best, best_score = None, 0
        for i, item in enumerate(knows):
            score = len(words & _keywords(str(item.get("about", ""))))
            if score > best_score:
                best, best_score = i, score
        return best


class ChatModel(Protocol):
    """The one method a user simulator needs from a model backend."""

    def complete(self, messages: list[dict[str, Any]]) -> str: ...


USER_SYSTEM_PROMPT = """You are simulating a user talking to a support agent. Stay in character.
Who you are: {role}. How you talk: {voice}.
What you want: {instruction}
What you know (reveal only when asked): {knows}
{tactics}Never invent facts beyond these. When your request is done or clearly refused, end with {stop}.
If you are transferred to a human, end with {transfer}."""


@dataclass
class LLMUser:
    """A user played by a language model through any backend (persona and task in its system prompt)."""

    task: dict[str, Any]
    model: ChatModel
    role: str = "a user"
    max_turns: int = 12
    history: list[dict[str, Any]] = field(default_factory=list)

    def _system(self) -> str:
        from aqwen_spec.tactics import TACTICS

        user = self.task.get("user", {})
        tactics = [TACTICS[t].description for t in user.get("tactics", []) if t in TACTICS]
        tactic_text = ("Tactics you use: " + "; ".join(tactics) + ".\n") if tactics else ""
        knows = "; ".join(f"{k.get('about')}: {k.get('value')}" for k in user.get("knows", [])) or "nothing more"
        return USER_SYSTEM_PROMPT.format(role=self.role, voice=user.get("voice") or "plainly",
                                         instruction=user.get("instruction", ""), knows=knows,
                                         tactics=tactic_text, stop=STOP, transfer=TRANSFER)

    def opening(self) -> str:
        self.history = [{"role": "system", "content": self._system()},
                        {"role": "user", "content": "Start the conversation with your request."}]
        text = self.model.complete(self.history)
        self.history.append({"role": "assistant", "content": text})
        return text

    def reply(self, agent_message: str) -> str:
        if len(self.history) // 2 > self.max_turns:
            return STOP
        self.history.append({"role": "user", "content": agent_message})
        text = self.model.complete(self.history)
        self.history.append({"role": "assistant", "content": text})
        return text
