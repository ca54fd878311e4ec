"""Episodes: an agent talks to a simulated user and calls tools on a real state; a verifier scores the end.

``Environment(bundle, task).reset()`` gives the opening messages (system prompt with the policy, the user's first
message); ``step(assistant)`` takes one assistant turn (raw model text, an :class:`AssistantTurn` or an OpenAI-style
message) and returns the observations: tool results, or the user's reply when the agent spoke to the user.
Nothing the model writes can crash an episode: malformed calls become error observations and counted metrics.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aqwen_spec.expr.episode import Episode, episode_context
from aqwen_spec.results import TRANSFERRED, render_error, render_result
from aqwen_spec.semantics import ToolRunner, score
from aqwen_spec.semantics.changes import same_final_state
from aqwen_spec.semantics.state import copy_state
from aqwen_spec.semantics.tools import ERROR_KINDS
from aqwen_spec.semantics.verify import CallRecord, Evidence, Score, initial_fields, outcome_of
from runtime.episodes.bundle import Bundle
from runtime.episodes.parsing import AssistantTurn, from_message, parse_assistant
from runtime.episodes.users import STOP, TRANSFER, ScriptedUser, User

TRANSFER_TOOL = "transfer_to_human"
_record = tuple.__new__


@dataclass
class EpisodeConfig:
    """Budgets and reward shaping for episodes."""

    max_turns: int = 20
    """Assistant turns before the episode is cut off."""
    max_tool_calls: int = 40
    max_tokens: int | None = None
    """Completion tokens across the episode (counted from ``info['tokens']`` passed to ``step``)."""
    malformed_penalty: float = 0.0
    """Subtracted from the reward per malformed tool call (parse problems, unknown tools, bad arguments)."""
    extra_turn_penalty: float = 0.0
    """Subtracted per assistant turn beyond the gold trajectory's."""
    turn_reward: Callable[[TurnInfo], float] | None = None
    """A per-turn reward hook (see :func:`gold_progress`)."""


@dataclass
class TurnInfo:
    """What happened in one assistant turn, for per-turn rewards and metrics."""

    turn: int
    calls: list[CallRecord]
    errors: list[str]
    said: str
    env: Environment


@dataclass(slots=True)
class StepResult:
    observations: list[dict[str, Any]]
    done: bool
    reward: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class EpisodeResult:
    task_id: str
    reward: float
    success: bool
    score: Score
    metrics: dict[str, Any]
    messages: list[dict[str, Any]]
    turn_rewards: list[float]

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "reward": self.reward, "success": self.success,
                "score": self.score.to_json(), "metrics": self.metrics, "turn_rewards": self.turn_rewards,
                "messages": self.messages}


class Environment:
    """One episode of one task."""

    def __init__(self, bundle: Bundle, task: dict[str, Any], user: User | None = None,
                 config: EpisodeConfig | None = None) -> None:
        self.bundle = bundle
        self.task = task
        self.config = config or EpisodeConfig()
        self.user: User = user if user is not None else ScriptedUser(task)
        self.verifiers = [bundle.verifiers[v] for v in task.get("verifiers", [])]
        self._compares_states = any(c.kind == "same_final_state_as_gold" for v in self.verifiers for c in v.checks)
        self._messages: list[dict[str, Any]] = []
        self._calls: list[CallRecord] = []
        self._pending: list[tuple[str, Any, str, Any]] = []
        """Calls made by :meth:`call_tool` and not yet written into the messages, the call records and the counts
        (``(name, arguments, text, outcome)``): :meth:`_flush` writes them when any of those is read."""
        self.done = True
        self._state: dict[str, Any] | None = None
        self.last_call_ok = False

    # --- lifecycle -------------------------------------------------------------------------------------------

    def reset(self) -> list[dict[str, Any]]:
        """Start (or restart) the episode; returns the system prompt and the user's first message."""
        self._release()
        bundle, task = self.bundle, self.task
        self._state, self._journal = bundle.states.acquire(task)
        # taken while the state is clean: the reward then compares only what the journals touched
        self._index = bundle.states.index(task, self._state) if self._compares_states else None
        fields = initial_fields(self.verifiers)
        if "*" in fields:
            self._initial = copy_state(self._state)
        else:
            self._initial = {f: copy_state(self._state[f]) for f in fields if f in self._state}
        self.runner = ToolRunner(bundle.tools, self._state, self._journal, output=bundle.domain.result)
        self.runner.keep_values = False  # the step path shows each result's text and nothing else: no copies
        self.runner.episode = Episode.of_task(task)  # the task's clock, and its generator from its seed again
        self._calls = []
        self._pending = []
        self.said: list[str] = []
        self.turn = 0
        self.tokens = 0
        self._counts: dict[str, int] = {}  # a plain dict: counted on every call (a Counter is 3x slower to bump)
        self.turn_rewards: list[float] = []
        self.terminated_by = ""
        self.done = False
        self._result: EpisodeResult | None = None
        opening = self.user.opening()
        self._messages = [
            {"role": "system", "content": bundle.render_system_prompt()},
            {"role": "user", "content": opening},
        ]
        return list(self._messages)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far (system prompt, user and assistant turns, tool results), up to date when read:
        calls made by :meth:`call_tool` are written into it (as an assistant message with the call and a tool
        message with its result) only when it, :attr:`calls` or :attr:`counts` is read."""
        if self._pending:
            self._flush()
        return self._messages

    @property
    def calls(self) -> list[CallRecord]:
        """The episode's tool calls, in order (up to date when read, as :attr:`messages`)."""
        if self._pending:
            self._flush()
        return self._calls

    @property
    def tool_calls(self) -> int:
        """How many tool calls the episode made so far (without writing out what :meth:`call_tool` recorded)."""
        return len(self._calls) + len(self._pending)

    @property
    def counts(self) -> Counter[str]:
        """What the episode counted so far (tool calls, errors by kind, malformed calls, user turns): a copy."""
        if self._pending:
            self._flush()
        return Counter(self._counts)

    def _flush(self) -> None:
        """Write the calls :meth:`call_tool` recorded into the call records, the counts and the messages, as
        :meth:`_call` and :meth:`call_tool` would have at the time of each call (same values, the counts' keys in
        the same order: ``tool_calls`` first, then each error's keys where it first happened)."""
        pending, self._pending = self._pending, []
        counts = self._counts
        counts["tool_calls"] = counts.get("tool_calls", 0) + len(pending)
        add_call, add = self._calls.append, self._messages.append
        for name, arguments, text, outcome in pending:
            ok = outcome.ok
            add_call(_record(CallRecord, (name, arguments, ok)))
            if not ok:
                _count_error(counts, str(outcome.error_kind))
            add({"role": "assistant", "content": "", "tool_calls": [{"name": name, "arguments": arguments}]})
            add({"role": "tool", "name": name, "content": text})

    def close(self) -> None:
        """Give the state back to the pool (changes rolled back). Called when the episode ends."""
        self._release()

    def _release(self) -> None:
        if self._state is not None:
            self.bundle.states.release(self.task, self._state, self._journal, dirty=self.runner.dirty)
            self._state = None

    @property
    def state(self) -> dict[str, Any]:
        if self._state is None:
            raise RuntimeError("the episode has not started (call reset) or is over")
        return self._state

    # --- stepping --------------------------------------------------------------------------------------------

    def step(self, action: str | AssistantTurn | dict[str, Any], tokens: int = 0) -> StepResult:
        """Take one assistant turn."""
        if self.done:
            return StepResult([], True, 0.0, {"error": "the episode is over"})
        turn = (parse_assistant(action) if isinstance(action, str)
                else from_message(action) if isinstance(action, dict) else action)
        if self._pending:
            self._flush()
        self.turn += 1
        self.tokens += tokens
        self._messages.append(turn.to_message())
        observations: list[dict[str, Any]] = []
        errors: list[str] = []
        calls: list[CallRecord] = []
        for problem in turn.problems:
            _bump(self._counts, f"parse_error.{problem.kind}")
            _bump(self._counts, "malformed")
            errors.append(problem.kind)
            observations.append({"role": "tool", "name": "error",
                                 "content": self._error(f"could not parse a tool call: {problem.message}", "parse")})
        for call in turn.tool_calls:
            made = self._call(call.name, call.arguments)
            if made is None:
                break
            record, content, error = made
            calls.append(record)
            if error:
                errors.append(error)
            observations.append({"role": "tool", "name": call.name, "content": content})
            if self.done:
                break
        said = ""
        if not self.done and not turn.tool_calls and not turn.problems and not turn.content.strip():
            self._end("agent_end")  # an empty turn: the agent has nothing more to say
        elif not self.done and not turn.tool_calls and not turn.problems:
            said = turn.content
            self.said.append(said)
            reply = self.user.reply(said)
            _bump(self._counts, "user_turns")
            ended = STOP in reply or TRANSFER in reply
            text = reply.replace(STOP, "").replace(TRANSFER, "").strip()
            observations.append({"role": "user", "content": text or "(the user has left)"})
            if ended:
                self._end("user_stop")
        self._messages.extend(observations)
        if not self.done:
            if self.turn >= self.config.max_turns:
                self._end("turn_budget")
            elif self.config.max_tokens is not None and self.tokens >= self.config.max_tokens:
                self._end("token_budget")
        reward = 0.0
        if self.config.turn_reward is not None:
            reward = float(self.config.turn_reward(TurnInfo(self.turn, calls, errors, said, self)))
        self.turn_rewards.append(reward)
        info: dict[str, Any] = {"turn": self.turn, "errors": errors,
                                "spec_error": self._counts.get("spec_error", 0)}
        if self.done:
            result = self.result()
            info["result"] = result
            info["reward"] = result.reward
        return StepResult(observations, self.done, reward, info)

    def _call(self, name: str, arguments: dict[str, Any]) -> tuple[CallRecord, str, str] | None:
        """Run one tool call: its record, the result text and the error kind ("" when it succeeded); None when the
        tool-call budget is spent (the episode ends)."""
        if self._pending:
            self._flush()
        if len(self._calls) >= self.config.max_tool_calls:
            self._end("tool_budget")
            return None
        if name == TRANSFER_TOOL:
            wrong = self._wrong_destination(arguments)
            if wrong:  # an error the agent can correct, as for any tool: the episode goes on
                record = CallRecord(name, arguments, False)
                self._calls.append(record)
                _bump(self._counts, "tool_calls")
                _count_error(self._counts, "bad_arguments")
                return record, render_error(wrong, self.bundle.domain.result, name, "bad_arguments"), "bad_arguments"
            record = CallRecord(name, arguments, True)
            self._calls.append(record)
            self._end("transfer")
            return record, render_result(TRANSFERRED, self.bundle.domain.result), ""
        outcome = self.runner.call(name, arguments)
        ok = outcome.ok
        record = _record(CallRecord, (name, arguments, ok))  # CallRecord(...) without its Python-level __new__
        self._calls.append(record)
        counts = self._counts
        counts["tool_calls"] = counts.get("tool_calls", 0) + 1
        if ok:
            return record, outcome.render(), ""
        error = str(outcome.error_kind)
        _count_error(counts, error)
        return record, outcome.render(), error

    def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """One tool call outside an assistant turn, for tool loops that run each call themselves (TRL's
        ``environment_factory``); returns the result text the model sees. The call is recorded and counted as in
        :meth:`step` (written into :attr:`messages`, :attr:`calls` and :attr:`counts` when one of them is next read).
        ``last_call_ok`` then says whether the call succeeded (the text alone cannot tell, in a domain whose error
        format is its own)."""
        if self.done or name == TRANSFER_TOOL or len(self._calls) + len(self._pending) >= self.config.max_tool_calls:
            return self._call_tool(name, arguments)
        self.last_call_ok = False
        runner = self.runner
        step = runner.plain_steps.get(name)  # ToolRunner.call without its frame, for a tool that needs no episode
        outcome = step(runner, arguments) if step is not None else runner.call(name, arguments)
        self.last_call_ok = outcome.ok
        text = outcome._text
        if text is None:
            text = outcome.render()
        self._pending.append((name, arguments, text, outcome))
        return text

    def _call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """:meth:`call_tool` of the transfer tool, or past the episode's end or its tool-call budget."""
        self.last_call_ok = False
        if self.done:
            return self._error("the episode is over", "episode", name)
        made = self._call(name, arguments)
        if made is None:
            return self._error("the tool-call budget of this episode is spent", "episode", name)
        record, text, _ = made
        self.last_call_ok = record[2]
        messages = self._messages
        messages.append({"role": "assistant", "content": "", "tool_calls": [{"name": name, "arguments": arguments}]})
        messages.append({"role": "tool", "name": name, "content": text})
        return text

    def _wrong_destination(self, arguments: Any) -> str:
        """Why a transfer's ``destination`` is not one of the domain's (``""`` when it is, or when the domain
        declares none: then any transfer goes to "a human")."""
        known = self.bundle.domain.transfers
        if not known:
            return ""
        where = arguments.get("destination") if isinstance(arguments, dict) else None
        if where in known:
            return ""
        if where is None:
            return f"{TRANSFER_TOOL} is missing argument 'destination' (one of: {', '.join(known)})"
        return f"unknown destination {json.dumps(where)[:60]}; destinations: {', '.join(known)}"

    def _error(self, message: str, kind: str, tool: str = "") -> str:
        """An error of the episode itself (a call that does not parse, a spent budget) in the domain's error format."""
        return render_error(message, self.bundle.domain.result, tool, kind)

    def end_with(self, said: list[str], turns: int | None = None) -> EpisodeResult:
        """End the episode on what the agent said, with no user reply in between (TRL's own tool loop), and score
        it: every text in ``said`` counts as told to the user, even after a transfer ended the episode; ``turns``
        sets the number of assistant turns the caller ran (for the extra-turn penalty)."""
        if self._result is None:
            messages = self.messages
            for text in said:
                if text.strip():
                    self.said.append(text)
                    messages.append({"role": "assistant", "content": text})
            if turns is not None:
                self.turn = turns
        self._end("agent_end")
        return self.result()

    def _end(self, why: str) -> None:
        if not self.done:
            self.done = True
            self.terminated_by = why

    # --- scoring ---------------------------------------------------------------------------------------------

    def result(self) -> EpisodeResult:
        """Score the episode (once; ends it first if it is still running) and give the state back."""
        if self._result is not None:
            return self._result
        self._end(self.terminated_by or "scored")
        self._result = self.score()
        self._release()
        return self._result

    def score(self) -> EpisodeResult:
        """Score the episode as it stands, without ending it (for progress checks; :meth:`result` ends it)."""
        state = self.state
        if self._pending:
            self._flush()
        outcome = outcome_of(self._calls, self.said)
        evidence = Evidence(self._calls, "\n".join(self.said), state, self._initial, self.task.get("slots", {}),
                            list(self.task.get("path", [])), None, outcome,
                            self.task.get("gold", {}).get("outcome", "done"))
        if self._compares_states:
            index, journal = self._index, self._journal
            gold = self.bundle.gold_changes(self.task) if index is not None and not self.runner.dirty else None
            if index is not None and gold is not None:
                pristine = self.bundle.states.pristine(int(self.task["initial_state"]["seed"]))
                evidence.same_final_state = lambda: same_final_state(state, index.touched(journal), pristine, gold)
            else:
                evidence.gold_final_state = self.bundle.gold_final_state(self.task)
        with episode_context(Episode.of(self.task.get("clock"), None)):
            scores = [score(v, evidence) for v in self.verifiers]
        main = scores[0] if scores else Score(0.0, False)
        if len(scores) > 1:
            main = Score(min(s.reward for s in scores), all(s.success for s in scores),
                         [c for s in scores for c in s.checks], any(s.gate_failed for s in scores))
        gold_turns = sum(1 for m in self.task.get("gold", {}).get("messages", []) if m["role"] == "assistant")
        penalty = self.config.malformed_penalty * self._counts.get("malformed", 0)
        penalty += self.config.extra_turn_penalty * max(0, self.turn - gold_turns)
        reward = max(0.0, main.reward - penalty)
        metrics = {"turns": self.turn, "tool_calls": self._counts.get("tool_calls", 0), "tokens": self.tokens,
                   "outcome": outcome, "spec_error": self._counts.get("spec_error", 0),
                   "terminated_by": self.terminated_by, "penalty": penalty, **self._counts}
        return EpisodeResult(str(self.task.get("id")), reward, main.success and penalty == 0.0, main,
                             metrics, list(self._messages), list(self.turn_rewards))


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _count_error(counts: dict[str, int], error: str) -> None:
    """Count a failed call by its kind (and as malformed, or as the environment's defect, where it is one)."""
    for key in _ERROR_KEYS.get(error) or _error_keys(error):
        counts[key] = counts.get(key, 0) + 1


def _error_keys(error: str) -> tuple[str, ...]:
    """The counts a failed call of this kind bumps, in order."""
    if error in ("unknown_tool", "bad_arguments"):
        return "tool_error." + error, "malformed"
    if error == "spec_error":  # the environment's defect, not the agent's: counted apart, never a refusal
        return "tool_error." + error, "spec_error"
    return ("tool_error." + error,)


_ERROR_KEYS = {kind: _error_keys(kind) for kind in ERROR_KINDS}


def gold_progress(info: TurnInfo) -> float:
    """A per-turn reward: +1/len(gold calls) for each call this turn that matches the next gold call, -0.1 per error.

    Dense credit for long episodes; the verifier's final reward still decides success.
    """
    gold = [c for c in info.env.task.get("gold", {}).get("calls", [])]
    if not gold:
        return -0.1 * len(info.errors)
    done_before = len(info.env.calls) - len(info.calls)
    reward = 0.0
    for offset, call in enumerate(info.calls):
        index = done_before + offset
        if index < len(gold) and call.ok and call.name == gold[index]["name"] and \
                call.arguments == gold[index]["arguments"]:
            reward += 1.0 / len(gold)
    return reward - 0.1 * len(info.errors)

