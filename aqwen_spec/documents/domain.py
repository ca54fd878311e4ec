"""``kind: Domain``: the typed state, the policy, and how initial states are made."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from aqwen_spec.documents.base import Clock, Document, ExprText, Model, Name, ResultSpec

TypeText = str | dict[str, Any]
"""A type as written: ``int``, ``str?``, ``list[Machine]``, ``{enum: [...]}``, ``{list: T}``, ``{map: T}``..."""


class FieldSpec(Model):
    """The long form of a record field: its type plus a description and an optional default."""

    type: TypeText
    description: str = ""
    default: Any = None


class DataFile(Model):
    """A data file next to the spec (JSON, YAML or CSV) loaded into one state field (or the whole state)."""

    path: str
    into: Name | None = Field(None, description="State field to fill; omit for a file holding the whole state.")
    key: Name | None = Field(None, description="For a map field filled from a list or CSV: the id column.")


class RecordRule(Model):
    """How to generate records of one map or list field: a count and an expression per field."""

    count: int | ExprText = Field(description="How many records (a number or an expression).")
    key: ExprText | None = Field(None, description="For map fields: the key of record ``i`` (e.g. f\"WO-{1000 + i}\").")
    fields: dict[Name, ExprText | int | float | bool | None] = Field(default_factory=dict)


class InitialState(Model):
    """Initial states: inline data, data files, then generated records (in that order)."""

    data: dict[Name, Any] = Field(default_factory=dict)
    files: list[DataFile] = Field(default_factory=list)
    generate: dict[Name, RecordRule] = Field(default_factory=dict)


class FullTextIndex(Model):
    """The long form of a full-text index: the text fields to index and how words are split."""

    columns: list[Name] = Field(min_length=1, description="The text fields of the records to index.")
    tokenizer: Literal["unicode61", "porter", "trigram"] = Field(
        "unicode61",
        description="unicode61: words (case and accents folded); porter: words reduced to their stems "
        "('plants' finds 'plant'); trigram: any substring of three or more characters.",
    )


class RandomSpec(Model):
    """The generator tools draw from (rng_randint, random_id, ...)."""

    seed: int = Field(description="Every episode's generator is random.Random(seed), as a Python environment "
                      "seeded so; without it each task gets a seed of its own.")
class FunctionSpec(Model):
    """A domain function: typed parameters, an optional declared return type, and an expression body."""

    params: dict[Name, TypeText] = Field(default_factory=dict, description="Parameter name -> type, in order.")
    returns: TypeText | None = Field(None, description="The return type (required for recursive functions).")
    body: ExprText | int | float | bool = Field(description="An expression of the parameters, state and constants.")
    description: str = ""


class ConstantSpec(Model):
    """A named constant: its type and either an inline value or a data file (JSON, YAML or CSV)."""

    type: TypeText
    value: Any = None
    file: str | None = Field(None, description="A data file next to the spec holding the value.")
    key: Name | None = Field(None, description="For a map filled from a list or CSV: the id column.")
    description: str = ""


class Domain(Document):
    kind: Literal["Domain"] = "Domain"
    types: dict[Name, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named record types (field: type) and tagged variants ({variant: {case: {field: type}}}).",
    )
    state: dict[Name, TypeText | FieldSpec] = Field(description="The state schema: top-level field -> type.")
    policy: str = Field("", description="The policy text the agent must follow (shown in the system prompt).")
    pressure: dict[Name, str | list[str]] = Field(
        default_factory=dict,
        description="The domain's own pressure lines per spoken tactic (tactic -> a line or lines): what an "
                    "adversarial user says here. Personas may declare their own.")
    system_prompt: str | None = Field(None, description="A Jinja2 template for the agent's system prompt.")
    initial_state: InitialState = Field(default_factory=InitialState)
    result: ResultSpec | None = Field(
        None, description="How the model sees results and errors of this domain's tools (tools may override it).")
    clock: Clock | None = Field(None, description="The date and time episodes run at (today(), now()); "
                                "workflows may set their own.")
    random: RandomSpec | None = Field(None, description="The seed of the generator tools draw from.")
    transfers: list[Name] = Field(
        default_factory=list, description="Where the agent can transfer a user (e.g. billing, emergency_line): the "
        "transfer tool then takes a destination, and workflows' transfers name one.")
    fulltext: dict[Name, list[Name] | FullTextIndex] = Field(
        default_factory=dict,
        description="Full-text indexes for sql: tools: a map or list field of records -> the text fields to index "
        "(or {columns, tokenizer}); each becomes an SQLite FTS5 table named <field>_fts.",
    )
    functions: dict[Name, FunctionSpec] = Field(
        default_factory=dict,
        description="Functions any expression of the domain may call: name -> {params, returns, body}.",
    )
    constants: dict[Name, ConstantSpec] = Field(
        default_factory=dict,
        description="Read-only named values (tables) in the bundle, not in the state: name -> {type, value | file}.",
    )
