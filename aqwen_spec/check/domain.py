"""Checking a Domain: named types, the state schema, inline data, data files and record-generation rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.check.episode import checked_clock
from aqwen_spec.check.library import check_library
from aqwen_spec.check.pressure import checked_pressure
from aqwen_spec.check.results import check_result
from aqwen_spec.check.scopes import state_scope
from aqwen_spec.diagnostics import did_you_mean
from aqwen_spec.documents.domain import Domain, FieldSpec, FullTextIndex
from aqwen_spec.expr.library import Library
from aqwen_spec.resolved import FullTextIR, Origin, RecordRuleIR, ResolvedDomain, container_item
from aqwen_spec.results import DEFAULT
from aqwen_spec.source import YPath
from aqwen_spec.types import (
    ANY,
    INT,
    STR,
    EnumT,
    ListT,
    MapT,
    OptionalT,
    RecordT,
    Type,
    TypeSyntaxError,
    VariantT,
    is_assignable,
    parse_type_text,
    set_type,
    unwrap_optional,
)
from aqwen_spec.values import SET_ORDER, check_value, coerce_text, from_json, with_defaults

_TYPE_FORMS = ("enum", "list", "map", "optional", "set")


def type_from_yaml(value: Any, named: dict[str, Type], checker: DocChecker, ypath: YPath) -> Type | None:
    """A type written as a string or a mapping; problems are reported and give None."""
    if isinstance(value, str):
        try:
            return parse_type_text(value, named)
        except TypeSyntaxError as exc:
            checker.report("AQ201", str(exc), ypath, exc.hint)
            return None
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TYPE_FORMS:
        form, inner = next(iter(value.items()))
        if form == "enum":
            if not isinstance(inner, list) or not inner or not all(isinstance(v, str) for v in inner):
                bad = next((i for i, v in enumerate(inner) if not isinstance(v, str)), None) if inner else None
                at = (*ypath, form) if bad is None or not isinstance(inner, list) else (*ypath, form, bad)
                hint = checker.loaded.yaml.bool_hint(at) or (
                    f'quote it: "{inner[bad]}"' if isinstance(inner, list) and bad is not None else None
                )
                checker.report("AQ202", "an enum lists its values as strings", at, hint)
                return None
            if len(set(inner)) != len(inner):
                checker.report("AQ202", "an enum lists a value twice", (*ypath, form))
            return EnumT(tuple(inner))
        sub = type_from_yaml(inner, named, checker, (*ypath, form))
        if sub is None:
            return None
        if form == "set":
            try:
                return set_type(sub)
            except TypeSyntaxError as exc:
                checker.report("AQ201", str(exc), (*ypath, form), exc.hint)
                return None
        return ListT(sub) if form == "list" else MapT(sub) if form == "map" else OptionalT(sub)
    if isinstance(value, dict) and "type" in value:
        return type_from_yaml(value["type"], named, checker, (*ypath, "type"))
    forms = [k for k in value if k in _TYPE_FORMS] if isinstance(value, dict) else []
    if forms and len(value) > 1:  # {enum: [...], description: ...}: the long form keeps the type under 'type'
        rest = "".join(f", {k}: ..." for k in value if k != forms[0])
        inner = value[forms[0]]
        shown = "[" + ", ".join(map(str, inner)) + "]" if isinstance(inner, list) else str(inner)
        shown = shown if len(shown) < 60 else "..."
        checker.report("AQ202", f"'{forms[0]}' with other keys is not a type", (*ypath, forms[0]),
                       f"the type goes under 'type': write {{type: {{{forms[0]}: {shown}}}{rest}}}", key=True)
        return None
    hint = ("write a type name (str, int, list[T], map[T], map[int, T], set[T], T?) or {enum: [...]}, {list: T}, "
            "{map: T}, {set: T}, {optional: T}")
    checker.report("AQ202", "not a type", ypath, hint)
    return None


def _fill_record(
    record: RecordT, fields: dict[str, Any], named: dict[str, Type], checker: DocChecker, ypath: YPath
) -> None:
    for fname, fvalue in fields.items():
        fpath = (*ypath, fname)
        if isinstance(fvalue, dict) and "type" in fvalue:
            unknown = [k for k in fvalue if k not in ("type", "description", "default")]
            if unknown:
                hint = did_you_mean(str(unknown[0]), ["type", "description", "default"]) or (
                    "a field is {type: T, description: ..., default: ...}; in a flow mapping, quote values "
                    "holding ',' or ': '")
                checker.report("AQ103", f"unknown key '{unknown[0]}' in field '{fname}'", (*fpath, unknown[0]), hint,
                               key=True)
                continue
            try:
                spec = FieldSpec.model_validate(fvalue)
            except Exception:
                checker.report("AQ202", "a field is {type: T, description: ..., default: ...}", fpath)
                continue
            ftype = type_from_yaml(spec.type, named, checker, (*fpath, "type"))
            if "default" in fvalue:
                record.defaults[fname] = spec.default
        else:
            ftype = type_from_yaml(fvalue, named, checker, fpath)
        record.fields[fname] = ftype if ftype is not None else ANY


def check_domain(checker: DocChecker, doc: Domain, base_dir: Path) -> ResolvedDomain:
    named: dict[str, Type] = {}
    # declare every named type first, so types may refer to each other in any order
    for tname, decl in doc.types.items():
        if "variant" in decl:
            named[tname] = VariantT(tname, "kind")
        elif set(decl) == {"enum"}:
            named[tname] = EnumT(())
        else:
            named[tname] = RecordT(tname)
    for tname, decl in doc.types.items():
        tpath: YPath = ("types", tname)
        target = named[tname]
        if isinstance(target, VariantT):
            _check_variant(target, decl, named, checker, tpath)
        elif isinstance(target, EnumT):
            enum = type_from_yaml(decl, named, checker, tpath)
            named[tname] = enum if enum is not None else ANY
        else:
            assert isinstance(target, RecordT)
            _fill_record(target, decl, named, checker, tpath)
    state = RecordT("State")
    _fill_record(state, {k: (v.model_dump() if isinstance(v, FieldSpec) else v) for k, v in doc.state.items()},
                 named, checker, ("state",))
    initial = _initial_data(checker, doc, state, base_dir)
    clock = checked_clock(checker, doc.clock)
    checker.clock = clock is not None  # generation rules may read it
    library = check_library(checker, doc, named, state, base_dir)
    generate = _generation_rules(checker, doc, state, library)
    fulltext = _fulltext_indexes(checker, doc, state)
    if doc.system_prompt:
        checker.template(doc.system_prompt, ("system_prompt",), {"policy", "domain", "tools"})
    origin = Origin(checker.path, checker.pos(()))
    data_files = [f.path for f in doc.initial_state.files] + [c.file for c in doc.constants.values() if c.file]
    return ResolvedDomain(
        doc.name, doc.description, named, state, doc.policy, doc.system_prompt, initial, generate, origin,
        data_files, fulltext, checked_pressure(checker, doc.pressure),
        check_result(checker, doc.result, DEFAULT), clock, doc.random.seed if doc.random else None,
        _transfers(checker, doc.transfers), library=library,
    )


def _transfers(checker: DocChecker, names: list[str]) -> list[str]:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            checker.report("AQ106", f"transfer destination '{name}' is listed twice", ("transfers", i))
        seen.add(name)
    return list(dict.fromkeys(names))


_FTS5_RESERVED = ("rank", "rowid")


def _fulltext_indexes(checker: DocChecker, doc: Domain, state: RecordT) -> tuple[FullTextIR, ...]:
    """``fulltext:``: each names a map or list of records and text fields of those records (AQ205 otherwise)."""
    out: list[FullTextIR] = []
    for fname, decl in doc.fulltext.items():
        ypath: YPath = ("fulltext", fname)
        columns, tokenizer = (decl.columns, decl.tokenizer) if isinstance(decl, FullTextIndex) else (decl, "unicode61")
        cpath: YPath = (*ypath, "columns") if isinstance(decl, FullTextIndex) else ypath
        ftype = state.fields.get(fname)
        if ftype is None:
            checker.report("AQ205", f"the state has no field '{fname}' to index", ypath,
                           did_you_mean(fname, state.fields), key=True)
            continue
        if f"{fname}_fts" in state.fields:
            checker.report("AQ205", f"the index table '{fname}_fts' would hide the state field of that name", ypath,
                           key=True)
            continue
        item = container_item(ftype)
        if not isinstance(item, RecordT):
            checker.report("AQ205", f"'{fname}' is {ftype.render()}: full-text indexes are over maps or lists of "
                           "records", ypath, key=True)
            continue
        if not columns:
            checker.report("AQ205", f"the index of '{fname}' names no field", ypath, "list the text fields to index")
            continue
        good: list[str] = []
        for i, column in enumerate(columns):
            ctype = item.fields.get(column)
            if ctype is None:
                checker.report("AQ205", f"{item.name} has no field '{column}'", (*cpath, i),
                               did_you_mean(column, item.fields))
            elif not _is_text(ctype):
                checker.report("AQ205", f"field '{column}' of {item.name} is {ctype.render()}; only text is indexed "
                               "(str, an enum, or a list of str)", (*cpath, i))
            elif column in _FTS5_RESERVED:
                checker.report("AQ205", f"'{column}' is a reserved column name of SQLite FTS5", (*cpath, i))
            elif column in good:
                checker.report("AQ205", f"field '{column}' is indexed twice", (*cpath, i))
            else:
                good.append(column)
        if good:
            out.append(FullTextIR(fname, tuple(good), tokenizer))
    return tuple(out)


def _is_text(t: Type) -> bool:
    t = unwrap_optional(t)
    if isinstance(t, ListT):
        t = unwrap_optional(t.item)
    return t == STR or isinstance(t, EnumT)


def _check_variant(target: VariantT, decl: dict[str, Any], named: dict[str, Type], checker: DocChecker,
                   ypath: YPath) -> None:
    extra = [k for k in decl if k != "variant"]
    for k in extra:
        checker.report("AQ103", f"unknown key '{k}' next to 'variant'", (*ypath, k), key=True)
    cases = decl["variant"]
    vpath = (*ypath, "variant")
    if not isinstance(cases, dict) or not cases:
        checker.report("AQ202", "a variant maps each case name to its fields", vpath)
        return
    tag = cases.get("tag", "kind")
    if not isinstance(tag, str):
        checker.report("AQ202", "a variant's 'tag' names the field that holds the case", (*vpath, "tag"))
        tag = "kind"
    target.tag = tag
    for case, fields in cases.items():
        if case == "tag":
            continue
        cpath = (*vpath, case)
        if not isinstance(fields, dict):
            checker.report("AQ202", f"case '{case}' should map field names to types", cpath)
            fields = {}
        record = RecordT(f"{target.name}.{case}")
        record.fields[tag] = EnumT((case,))
        _fill_record(record, fields, named, checker, cpath)
        target.cases[case] = record


def _initial_data(checker: DocChecker, doc: Domain, state: RecordT, base_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for fname, value in doc.initial_state.data.items():
        ypath: YPath = ("initial_state", "data", fname)
        if fname not in state.fields:
            checker.report("AQ303", f"the state has no field '{fname}'", ypath, did_you_mean(fname, state.fields),
                           key=True)
            continue
        _report_value_problems(checker, value, state.fields[fname], ypath)
        data[fname] = value
    for i, spec in enumerate(doc.initial_state.files):
        ypath = ("initial_state", "files", i)
        loaded = _read_data_file(checker, base_dir / spec.path, spec.into, spec.key, state, (*ypath, "path"))
        if loaded is None:
            continue
        for fname, value in loaded.items():
            if fname not in state.fields:
                checker.report("AQ303", f"data file fills unknown state field '{fname}'", (*ypath, "path"),
                               did_you_mean(fname, state.fields))
                continue
            problems = [p for p in check_value(from_json(value, state.fields[fname], sort_sets=False),
                                               state.fields[fname]) if p.message != SET_ORDER]
            for p in problems[:5]:
                where = ".".join(str(x) for x in (fname, *p.path))
                checker.report("AQ203", f"{spec.path}: {where}: {p.message}", (*ypath, "path"))
            data[fname] = value
    # fill record defaults so the runtime sees complete records
    for fname, value in data.items():
        data[fname] = _apply_defaults(value, state.fields[fname])
    return data


def _apply_defaults(value: Any, t: Type) -> Any:
    if isinstance(t, OptionalT):
        return None if value is None else _apply_defaults(value, t.inner)
    if isinstance(t, MapT) and isinstance(value, dict):
        return {k: _apply_defaults(v, t.value) for k, v in value.items()}
    if isinstance(t, ListT) and isinstance(value, list):
        return [_apply_defaults(v, t.item) for v in value]
    if isinstance(t, RecordT) and isinstance(value, dict):
        return with_defaults({k: _apply_defaults(v, t.fields.get(k, ANY)) for k, v in value.items()}, t)
    if isinstance(t, VariantT) and isinstance(value, dict) and value.get(t.tag) in t.cases:
        return _apply_defaults(value, t.cases[value[t.tag]])
    return value


def _report_value_problems(checker: DocChecker, value: Any, t: Type, ypath: YPath) -> None:
    for p in check_value(from_json(value, t, sort_sets=False), t):
        if p.message == SET_ORDER:
            continue  # sorted when the state is made
        at = (*ypath, *_as_written(value, p.path))
        checker.report("AQ203", p.message, at, checker.loaded.yaml.bool_hint(at))


def _as_written(value: Any, path: tuple[Any, ...]) -> tuple[Any, ...]:
    """A path into a value read from JSON, with the keys an int-keyed map gave as ints as the text it holds."""
    out: list[Any] = []
    for step in path:
        if isinstance(value, dict) and step not in value and str(step) in value:
            step = str(step)
        out.append(step)
        value = value.get(step) if isinstance(value, dict) else value[step] if isinstance(value, list) and \
            isinstance(step, int) and -len(value) <= step < len(value) else None
    return tuple(out)


def _read_data_file(checker: DocChecker, path: Path, into: str | None, key: str | None, state: RecordT,
                    ypath: YPath) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > 50_000_000:
            checker.report("AQ204", f"data file {path.name} is larger than 50 MB", ypath)
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        checker.report("AQ204", f"cannot read data file '{path.name}': {getattr(exc, 'strerror', None) or exc}",
                       ypath)
        return None
    target = state.fields.get(into) if into else state
    if into and target is None:
        checker.report("AQ303", f"the state has no field '{into}'", ypath, did_you_mean(into, state.fields))
        return None
    try:
        if path.suffix == ".json":
            value: Any = json.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            from aqwen_spec.source import SourceFile, parse_yaml

            docs, problems = parse_yaml(SourceFile(str(path), text))
            if problems:
                checker.report("AQ204", f"data file '{path.name}': {problems[0].message} at line "
                               f"{problems[0].pos.line}", ypath)
                return None
            value = docs[0].data if docs else None
        elif path.suffix == ".csv":
            value = _read_csv(text, target)
        else:
            checker.report("AQ204", f"data file '{path.name}' is not .json, .yaml or .csv", ypath)
            return None
    except (ValueError, KeyError) as exc:
        checker.report("AQ204", f"data file '{path.name}': {exc}", ypath)
        return None
    if into is None:
        if not isinstance(value, dict):
            checker.report("AQ204", f"data file '{path.name}' should hold a mapping of state fields", ypath)
            return None
        return value
    if key is not None and isinstance(value, list):
        if not all(isinstance(row, dict) and key in row for row in value):
            checker.report("AQ204", f"every row of '{path.name}' needs the key column '{key}'", ypath)
            return None
        value = {str(row[key]): row for row in value}
    return {into: value}


def _read_csv(text: str, target: Type | None) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(text.splitlines()))
    item = target.value if isinstance(target, MapT) else target.item if isinstance(target, ListT) else None
    if not isinstance(item, RecordT):
        return rows
    out = []
    for number, row in enumerate(rows, start=2):
        rec: dict[str, Any] = {}
        for col, cell in row.items():
            ftype = item.fields.get(col)
            if ftype is None:
                raise ValueError(f"column '{col}' is not a field of {item.name}")
            try:
                rec[col] = coerce_text(cell or "", ftype)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"line {number}, column '{col}': {exc}") from None
        out.append(rec)
    return out


def _generation_rules(checker: DocChecker, doc: Domain, state: RecordT, library: Library) -> dict[str, RecordRuleIR]:
    rules: dict[str, RecordRuleIR] = {}
    for fname, rule in doc.initial_state.generate.items():
        ypath: YPath = ("initial_state", "generate", fname)
        ftype = state.fields.get(fname)
        if ftype is None:
            checker.report("AQ303", f"the state has no field '{fname}'", ypath, did_you_mean(fname, state.fields),
                           key=True)
            continue
        container = ftype.inner if isinstance(ftype, OptionalT) else ftype
        if not isinstance(container, (MapT, ListT)):
            checker.report("AQ304", f"records are generated into maps and lists; '{fname}' is {ftype.render()}",
                           ypath, key=True)
            continue
        item = container.value if isinstance(container, MapT) else container.item
        scope = state_scope(state, {"i": INT}, sampling=True, library=library)
        count: Any = rule.count
        if isinstance(count, str):
            count = checker.expr(count, (*ypath, "count"), scope, INT, "'count'")
        fields: dict[str, Any] = {}
        record = item if isinstance(item, RecordT) else None
        for field_name, text in rule.fields.items():
            fpath = (*ypath, "fields", field_name)
            if record is not None and field_name not in record.fields:
                checker.report("AQ303", f"{record.name} has no field '{field_name}'", fpath,
                               did_you_mean(field_name, record.fields), key=True)
                continue
            expected = record.fields[field_name] if record is not None else ANY
            if isinstance(text, str):
                fields[field_name] = checker.expr(text, fpath, scope, expected, f"field '{field_name}'")
                scope.define(field_name, expected)  # later fields may use this one
            else:
                if not is_assignable(_const_type(text), expected):
                    checker.report("AQ304", f"field '{field_name}' should be {expected.render()}", fpath)
                fields[field_name] = text
        key = None
        if isinstance(container, MapT):  # checked after the fields: a key may use them
            if rule.key is None:
                checker.report("AQ104", "missing required key 'key' (records of a map need a key)", ypath)
            else:
                key = checker.expr(rule.key, (*ypath, "key"), scope, None, "'key'")
        if record is not None:
            for name, t in record.fields.items():
                if (name not in fields and name not in record.defaults and not isinstance(t, OptionalT)
                        and not (name == "id" and key is not None)):
                    checker.report("AQ104", f"the rule does not give {record.name} field '{name}' "
                                   "(and it has no default)", (*ypath, "fields") if rule.fields else ypath)
        rules[fname] = RecordRuleIR(count, key, fields)
    return rules


def _const_type(value: Any) -> Type:
    from aqwen_spec.types import BOOL, FLOAT, NULL, STR

    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, str):
        return STR
    return ANY
