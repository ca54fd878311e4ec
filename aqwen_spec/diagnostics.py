"""Diagnostics: what is wrong, where (file:line:col), and a hint.

Every problem found in specs becomes a :class:`Diagnostic` with a stable code from :data:`CODES`. Checks collect
diagnostics into a :class:`Diagnostics` bag instead of raising, so one run reports every problem in every file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based line and column in a file."""

    line: int
    col: int


# Stable codes. Never renumber: CI configurations and docs refer to them. New codes are appended.
CODES: dict[str, str] = {
    # files and YAML
    "AQ001": "YAML syntax error",
    "AQ002": "tab character used for indentation",
    "AQ003": "duplicate key in a mapping",
    "AQ004": "file is empty",
    "AQ005": "file is not valid UTF-8",
    "AQ006": "file too large",
    "AQ007": "too many aliases or nodes (alias bomb)",
    "AQ008": "unsupported YAML tag or non-string key",
    "AQ009": "cannot read file",
    # documents
    "AQ101": "document is not a mapping",
    "AQ102": "missing or unknown 'kind'",
    "AQ103": "unknown key",
    "AQ104": "missing required key",
    "AQ105": "wrong value type",
    "AQ106": "invalid value",
    "AQ107": "invalid name",
    "AQ108": "invalid knob range or default",
    "AQ109": "checks skipped because a file does not parse or a document is invalid",
    "AQ110": "pipeline settings the trainer rejects",
    "AQ111": "a domain function, constant or parameter hides another name",
    "AQ115": "task split leaves no training tasks",
    "AQ116": "validation tasks needed but none kept",
    "AQ117": "checkpoint selection with LoRA",
    "AQ118": "a stage starts from no earlier training stage",
    # types and schemas
    "AQ201": "unknown type",
    "AQ202": "invalid type declaration",
    "AQ203": "value does not match its declared type",
    "AQ204": "data file cannot be read",
    "AQ205": "invalid full-text index",
    # expressions and templates
    "AQ301": "expression syntax error",
    "AQ302": "unknown name",
    "AQ303": "unknown field",
    "AQ304": "type mismatch",
    "AQ305": "unknown function",
    "AQ306": "wrong arguments to a function",
    "AQ307": "invalid assignment target",
    "AQ308": "template syntax error",
    "AQ309": "template uses an unknown name",
    "AQ310": "invalid python escape hatch reference",
    "AQ311": "invalid SQL",
    "AQ312": "answer does not fit its check",
    "AQ313": "a value that may be null is used where null fails",
    "AQ314": "a local needs a declared type",
    "AQ315": "a variant's field used outside its case",
    "AQ320": "today() or now() where no clock is set",
    "AQ321": "a clock value that is not a date or datetime",
    "AQ322": "a draw from the episode's generator outside a tool's effects",
    "AQ323": "unknown transfer destination",
    "AQ325": "a format spec that does not parse or does not fit its value",
    "AQ330": "a tool binding hides a parameter or state field",
    "AQ340": "a function without a declared return type that needs one (recursive, or a statement body)",
    "AQ341": "a write into a constant",
    "AQ342": "`return` outside the body of a domain function",
    "AQ343": "a domain function's body that changes something or fails",
    "AQ344": "a domain function's body that can end without returning",
    # cross-document references
    "AQ401": "duplicate name",
    "AQ402": "unknown domain",
    "AQ403": "unknown tool",
    "AQ404": "unknown persona",
    "AQ405": "unknown workflow",
    "AQ406": "unknown tactic",
    "AQ407": "unknown verifier check or reference",
    "AQ408": "wrong tool call arguments",
    "AQ409": "unknown branch",
    "AQ410": "no problems for a reasoning stage",
    "AQ411": "unknown problem",
    # warnings
    "AQ501": "unused definition",
    "AQ502": "branch condition contradicts an earlier one",
    "AQ503": "branch can never be taken",
    "AQ504": "a parameter named 'state' hides the whole state",
    "AQ505": "a name in a predicate is an element's field that hides an outer name",
    "AQ506": "a lookup by an argument that no earlier check guards",
    "AQ510": "a spoken tactic has no pressure line in a domain that uses it",
    "AQ520": "a JSON option of a result shown in format python",
    # compilation (aqwen-compile)
    "AQ601": "branch never reached by any sampled state",
    "AQ602": "gold trajectory does not earn full reward",
    "AQ603": "initial state generation failed",
    "AQ604": "no task could be drawn for a workflow",
    "AQ605": "no instance could be drawn for a problem",
    "AQ606": "the simulated user leaves before the gold trajectory ends",
    "AQ607": "a reachable case no branch handles (a gold call fails on a precondition)",
    "AQ608": "an out-of-scope entry matches no precondition of a tool the workflow calls",  # from aqwen-lint
    "AQ615": "doing nothing succeeds on a verifier",
    "AQ616": "a harmless extra read makes the gold fail a verifier",
    "AQ617": "doing nothing earns much partial credit",
    "AQ620": "a gold call hits a run-time error in a tool's spec",
    "AQ623": "a say text does not read as its action, or does not state its value",
    # command line
    "AQ901": "path not found",
}


@dataclass(frozen=True)
class Diagnostic:
    """One problem at one place."""

    code: str
    message: str
    path: str
    pos: Pos = Pos(1, 1)
    severity: Severity = Severity.ERROR
    hint: str | None = None
    source_line: str | None = None

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.pos.line, self.pos.col, self.code)

    def location(self) -> str:
        return f"{self.path}:{self.pos.line}:{self.pos.col}"

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.pos.line,
            "col": self.pos.col,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class Diagnostics:
    """A bag of diagnostics, filled by checks and read by reporters."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        assert diagnostic.code in CODES, diagnostic.code
        self.items.append(diagnostic)

    def error(self, code: str, message: str, path: str, pos: Pos, hint: str | None = None) -> None:
        self.add(Diagnostic(code, message, path, pos, Severity.ERROR, hint))

    def warning(self, code: str, message: str, path: str, pos: Pos, hint: str | None = None) -> None:
        self.add(Diagnostic(code, message, path, pos, Severity.WARNING, hint))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for d in diagnostics:
            self.add(d)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(set(self.items), key=lambda d: d.sort_key)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class SpecError(Exception):
    """Raised by APIs that cannot go on with invalid specs; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: d.sort_key)
        first = self.diagnostics[0] if self.diagnostics else None
        summary = f"{first.location()}: {first.code} {first.message}" if first else "invalid specs"
        more = f" (and {len(self.diagnostics) - 1} more)" if len(self.diagnostics) > 1 else ""
        super().__init__(summary + more)


_NEGATIONS = ("dis", "un", "in", "im", "ir", "il", "non", "non_", "non-", "not_", "no_", "de", "anti")


def is_opposite(a: str, b: str) -> bool:
    """Whether one word is the other with a negating prefix (``connected``/``disconnected``, ``active``/``inactive``):
    close in spelling, opposite in meaning, so never a suggestion for each other."""
    a, b = a.lower(), b.lower()
    short, long = sorted((a, b), key=len)
    return any(long == p + short for p in _NEGATIONS)


def named_like(word: str, options: Iterable[str]) -> str | None:
    """A hint naming an option that is ``word`` with an id-like suffix, or a field named ``word`` (``crew_id`` or
    ``job.crew_id``, ``job.crew`` for ``crew``; options may be dotted fields): a closer fit than a collection
    spelled like it (``crews``), which :func:`did_you_mean` would pick."""
    import re

    suffixed = re.compile(rf"(?:\w+\.)?{re.escape(word)}_(?:id|name|code|no|number)")
    fits = [o for o in options if suffixed.fullmatch(o) or o.endswith("." + word)]
    return f"did you mean '{min(fits, key=len)}'?" if fits else None


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """A hint naming the closest option, if one is close enough (and not its opposite)."""
    import difflib  # only error paths need it

    candidates = [o for o in options if not is_opposite(word, o)]
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
