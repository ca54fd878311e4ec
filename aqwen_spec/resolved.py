"""Checked specs (stage 2): names bound, types resolved, expressions parsed and type-checked.

These are what the compiler consumes. Expressions are IR nodes from :mod:`aqwen_spec.expr`; every object keeps the
file and position it came from, so later stages (the compiler's reachability and gold checks) report at
``file:line:col`` too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr.library import Library
from aqwen_spec.results import DEFAULT, ResultFormat
from aqwen_spec.tree import Node
from aqwen_spec.types import ListT, MapT, RecordT, Type, VariantT, unwrap_optional


@dataclass(frozen=True)
class Origin:
    """Where a definition was written."""

    path: str
    pos: Pos


@dataclass
class RecordRuleIR:
    count: Any  # int or Expr
    key: Any  # Expr or None
    fields: dict[str, Any]  # field -> Expr or constant


@dataclass(frozen=True)
class FullTextIR:
    """A full-text index of the SQL view: SQLite FTS5 table ``<field>_fts`` over ``columns`` of ``field``'s records."""

    field: str
    columns: tuple[str, ...]
    tokenizer: str = "unicode61"


SqlTable = tuple[str, tuple[str, ...]]
"""A table of the SQL view: a state field holding a map or list of records, and the records' fields in order."""


def sql_tables(state: RecordT) -> tuple[SqlTable, ...]:
    """The tables of the SQL view of a state declared as ``state``: each map or list of records, with its fields."""
    out: list[SqlTable] = []
    for name, ftype in state.fields.items():
        item = table_item(ftype)
        if isinstance(item, RecordT):
            out.append((name, tuple(item.fields)))
        elif isinstance(item, VariantT):
            cols = dict.fromkeys([item.tag])
            for case in item.cases.values():
                cols.update(dict.fromkeys(case.fields))
            out.append((name, tuple(cols)))
    return tuple(out)


def container_item(ftype: Type) -> Type | None:
    """The item type of a map or list (optional or not), as declared; None for any other type."""
    container = unwrap_optional(ftype)
    return container.value if isinstance(container, MapT) else container.item if isinstance(container, ListT) else None


def table_item(ftype: Type) -> Type | None:
    """The item type of a map or list (optional or not), the rows of a table when they are records; else None."""
    item = container_item(ftype)
    return None if item is None else unwrap_optional(item)


@dataclass
class ResolvedDomain:
    name: str
    description: str
    types: dict[str, Type]
    state: RecordT
    policy: str
    system_prompt: str | None
    initial_data: dict[str, Any]
    generate: dict[str, RecordRuleIR]
    origin: Origin
    data_files: list[str] = field(default_factory=list)
    fulltext: tuple[FullTextIR, ...] = ()
    pressure: dict[str, list[str]] = field(default_factory=dict)
    """Pressure lines per spoken tactic (``tactics.SPOKEN``)."""
    result: ResultFormat = DEFAULT
    """How its tools' results and errors are shown by default (``result:``)."""
    clock: dict[str, str] | None = None
    """``{today, now}`` (either may be missing): the date and time its episodes run at, unless a workflow sets one."""
    random_seed: int | None = None
    """The seed of every episode's generator (``random: {seed}``); None: each task gets its own."""
    transfers: list[str] = field(default_factory=list)
    """Declared transfer destinations."""
    library: Library = field(default_factory=Library)
    """The domain's functions and constants, which every expression of the domain may use."""


@dataclass
class ParamIR:
    name: str
    type: Type
    required: bool
    default: Any
    description: str


@dataclass
class PreconditionIR:
    when: Any  # Expr
    error: str  # Jinja template
    origin: Origin


@dataclass
class ResolvedTool:
    name: str
    domain: str
    description: str
    access: Literal["read", "write"]
    params: dict[str, ParamIR]
    requires: list[PreconditionIR]
    effects: Any  # Program or None
    returns: Any  # Expr or None
    returns_type: Type
    implementation: Literal["declarative", "python", "sql"]
    python: str | None
    sql: str | None
    origin: Origin
    fulltext: tuple[FullTextIR, ...] = ()
    """For a ``sql`` tool: the domain's full-text indexes, which its SQL view builds (a runner sees only tools)."""
    tables: tuple[SqlTable, ...] = ()
    """For a ``sql`` tool: the tables of its SQL view, from the domain's state, there even when they hold no rows."""
    result: ResultFormat = DEFAULT
    """How its results and errors are shown: the domain's ``result:`` with the tool's own keys put over it."""
    draws: bool = False
    """Whether its effects draw from the episode's generator (its domain's tasks then carry a ``random_seed``)."""
    bindings: tuple[tuple[str, Any], ...] = ()
    """The tool's ``let:`` bindings (name, expression), computed in order before the preconditions."""
    locate: Callable[[str, int, Pos], Pos] | None = field(default=None, compare=False, repr=False)
    """Where a position inside the tool's ``requires`` (by index), ``effects`` or ``returns`` text lies in its file
    (set by the checker, for compile-time diagnostics; not part of a bundle)."""
    library: Library | None = field(default=None, compare=False, repr=False)
    """The domain's functions and constants (a runner sees only tools); stored once, in the bundle's domain."""


@dataclass
class ResolvedPersona:
    name: str
    description: str
    role: str
    voice: str
    opening: str
    knows: list[str]
    tactics: list[str]
    domains: list[str]
    origin: Origin
    pressure: dict[str, list[str]] = field(default_factory=dict)
    """This persona's own pressure lines per spoken tactic; the domain's serve where it has none."""

    def pressure_lines(self, domain: ResolvedDomain, pick: int = 0) -> list[str]:
        """What this user says to push, in ``domain``: one line per spoken tactic it uses that has lines (line
        ``pick`` modulo their number, so a task's digest chooses among several, deterministically)."""
        from aqwen_spec.tactics import SPOKEN

        out = []
        for tactic in self.tactics:
            lines = self.pressure.get(tactic) or domain.pressure.get(tactic) or []
            if tactic in SPOKEN and lines:
                out.append(lines[pick % len(lines)])
        return out

    @property
    def adversarial(self) -> bool:
        from aqwen_spec.tactics import TACTICS

        return any(TACTICS[t].adversarial for t in self.tactics if t in TACTICS)


@dataclass
class OutOfScopeIR:
    """A case left out on purpose: the preconditions (indices into the tool's ``requires``) it names."""

    tool: str
    precondition: str
    reason: str
    matches: list[int]
    origin: Origin


@dataclass
class ResolvedWorkflow:
    name: str
    domain: str
    description: str
    personas: list[str]
    slots: dict[str, Any]  # name -> Expr
    slot_types: dict[str, Type]
    tree: Node
    instruction: str
    origin: Origin
    bindings: dict[str, Type] = field(default_factory=dict)  # names bound by `as:` in the tree
    out_of_scope: list[OutOfScopeIR] = field(default_factory=list)
    clock: dict[str, str] | None = None
    """Its own clock (``{today, now}``), over the domain's."""
    library: Library | None = field(default=None, compare=False, repr=False)
    """The domain's functions and constants, for evaluating the slots and the tree."""


@dataclass
class CheckIR:
    kind: Literal["assert", "require", "forbid", "tells_user", "same_final_state_as_gold", "same_outcome_as_gold"]
    name: str
    expr: Any = None  # assert / tells_user: Expr
    tool: str | None = None  # require / forbid
    args: dict[str, Any] = field(default_factory=dict)  # require / forbid with arguments: name -> Expr
    when: Any = None  # Expr or None
    weight: float = 1.0
    gate: bool = False
    origin: Origin | None = None


@dataclass
class ResolvedVerifier:
    name: str
    workflow: str
    description: str
    checks: list[CheckIR]
    success_threshold: float
    origin: Origin
    library: Library | None = field(default=None, compare=False, repr=False)
    """The domain's functions and constants, for evaluating the checks."""


@dataclass
class KnobIR:
    name: str
    min: float | int
    max: float | int
    default: float | int
    step: float | int
    type: Type  # INT or FLOAT
    description: str = ""


@dataclass
class ResolvedProblem:
    name: str
    domain: str | None
    description: str
    knobs: dict[str, KnobIR]
    params: dict[str, Any]  # name -> Expr (sampling allowed), in order
    param_types: dict[str, Type]
    constraints: list[Any]  # Expr
    question: str  # Jinja template
    answer: Any  # Expr, or None with answer_python
    answer_python: str | None
    answer_type: Type
    check: Literal["exact", "numeric", "set", "list"]
    tolerance: float | None
    solution: str | None  # Jinja template
    origin: Origin


@dataclass
class SpecSet:
    """Every checked definition of a spec tree, by name."""

    domains: dict[str, ResolvedDomain] = field(default_factory=dict)
    tools: dict[str, ResolvedTool] = field(default_factory=dict)
    personas: dict[str, ResolvedPersona] = field(default_factory=dict)
    workflows: dict[str, ResolvedWorkflow] = field(default_factory=dict)
    verifiers: dict[str, ResolvedVerifier] = field(default_factory=dict)
    pipelines: dict[str, Any] = field(default_factory=dict)  # name -> documents.Pipeline (already typed)
    problems: dict[str, ResolvedProblem] = field(default_factory=dict)
    source_files: list[str] = field(default_factory=list)

    def tools_of(self, domain: str) -> dict[str, ResolvedTool]:
        return {n: t for n, t in self.tools.items() if t.domain == domain}

    def problems_of(self, domain: str) -> dict[str, ResolvedProblem]:
        """The domain's problems and those with no domain (which every domain has)."""
        return {n: p for n, p in self.problems.items() if p.domain in (None, domain)}

    def workflows_of(self, domain: str) -> dict[str, ResolvedWorkflow]:
        return {n: w for n, w in self.workflows.items() if w.domain == domain}

    def verifiers_of(self, workflow: str) -> list[ResolvedVerifier]:
        return [v for v in self.verifiers.values() if v.workflow == workflow]

    def personas_for(self, workflow: ResolvedWorkflow) -> list[ResolvedPersona]:
        if workflow.personas:
            return [self.personas[p] for p in workflow.personas if p in self.personas]
        return [p for p in self.personas.values() if not p.domains or workflow.domain in p.domains]
