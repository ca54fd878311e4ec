"""From paths to validated documents: find spec files, parse YAML, validate each document by its ``kind``.

Pydantic's error locations are mapped back to YAML nodes, so every problem points at ``file:line:col``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from aqwen_spec.diagnostics import Diagnostic, Diagnostics, Pos, did_you_mean
from aqwen_spec.documents import KINDS, Document
from aqwen_spec.source import SourceFile, YamlDoc, YPath, parse_yaml, read_source

SPEC_SUFFIXES = (".yaml", ".yml")
SKIPPED_DIRS = frozenset({"data", "node_modules", "__pycache__"})


@dataclass(frozen=True)
class LoadedDocument:
    """A validated document and the YAML it came from (for positions)."""

    doc: Document
    yaml: YamlDoc

    @property
    def path(self) -> str:
        return self.yaml.path


@dataclass
class Broken:
    """Documents that exist but failed to load, by (kind, name), each with why: references to them are not
    reported again, and are counted, so the report can say how many checks a broken file or document held up."""

    reasons: dict[tuple[str, str], tuple[str, Pos, str]] = field(default_factory=dict)
    """(kind, name) -> (path, position, why), ``why`` as in "checks skipped because {why}"."""
    skipped: dict[tuple[str, Pos, str], int] = field(default_factory=dict)
    invalid: list[YamlDoc] = field(default_factory=list)
    """The YAML of documents that failed validation: checks that need only parts of them still run."""

    def add(self, key: tuple[str, str], path: str, pos: Pos, why: str) -> None:
        self.reasons.setdefault(key, (path, pos, why))

    def skip(self, key: tuple[str, str]) -> bool:
        """Whether a reference to ``key`` stems from a broken document; if so, it is counted as skipped."""
        reason = self.reasons.get(key)
        if reason is None:
            return False
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        return True

    def skip_kind(self, kind: str) -> bool:
        """Whether some document of ``kind`` is broken (a check that needs all of them is skipped, and counted)."""
        key = next((k for k in self.reasons if k[0] == kind), None)
        return key is not None and self.skip(key)

    def report(self, diagnostics: Diagnostics) -> None:
        """One AQ109 note per broken file or document that held checks up, at its own problem."""
        for (path, pos, why), n in sorted(self.skipped.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            checks = "check" if n == 1 else "checks"
            diagnostics.warning("AQ109", f"{n} further {checks} skipped because {why}", path, pos,
                                "fix this first: the checks that refer to it run again then")


@dataclass
class LoadResult:
    documents: list[LoadedDocument]
    sources: dict[str, SourceFile]
    diagnostics: Diagnostics
    roots: list[Path]
    broken: Broken
    """Documents that exist but failed to load: references to them are not reported again."""


_TYPE_FORMS = ("enum", "list", "map", "optional")
_KIND_LINE = re.compile(r"^kind:\s*([A-Za-z_]\w*)\s*$", re.MULTILINE)
_NAME_LINE = re.compile(r"^name:\s*([A-Za-z_]\w*)\s*$", re.MULTILINE)


def _declared_names(text: str) -> list[tuple[str, str]]:
    """(kind, name) pairs read off the text of a file that did not parse, document by document."""
    found = []
    for chunk in re.split(r"^---\s*$", text, flags=re.MULTILINE):
        kind, name = _KIND_LINE.search(chunk), _NAME_LINE.search(chunk)
        if kind and name:
            found.append((kind.group(1), name.group(1)))
    return found


def is_spec_file(path: Path) -> bool:
    return path.suffix in SPEC_SUFFIXES and not path.name.endswith((".data.yaml", ".data.yml"))


def find_spec_files(root: Path) -> list[Path]:
    """Spec files under ``root``, sorted; hidden folders and ``data/`` folders (data files) are skipped."""
    if root.is_file():
        return [root]
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") or p in SKIPPED_DIRS for p in rel[:-1]) or rel[-1].startswith("."):
            continue
        if path.is_file() and is_spec_file(path):
            found.append(path)
    return sorted(found)


def display_path(path: Path) -> str:
    """Paths relative to the working directory where possible, as editors and CI annotations expect."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_documents(paths: Iterable[Path]) -> LoadResult:
    """Load and validate every spec document under ``paths``; problems are collected, never raised."""
    diagnostics = Diagnostics()
    documents: list[LoadedDocument] = []
    sources: dict[str, SourceFile] = {}
    broken = Broken()
    roots = list(paths)
    files: list[Path] = []
    for root in roots:
        if not root.exists():
            diagnostics.error("AQ901", f"no such file or directory: {root}", str(root), _p(1, 1))
            continue
        files.extend(find_spec_files(root))
    for file in dict.fromkeys(files):
        source, problems = read_source(file, display_path(file))
        diagnostics.extend(problems)
        if source is None:
            continue
        sources[source.path] = source
        docs, problems = parse_yaml(source)
        diagnostics.extend(problems)
        if problems:
            first = min(problems, key=lambda d: d.pos)
            for key in _declared_names(source.text):
                broken.add(key, source.path, first.pos, f"{Path(source.path).name} does not parse")
        for ydoc in docs:
            before = len(diagnostics)
            loaded = validate_document(ydoc, diagnostics)
            if loaded is not None:
                documents.append(loaded)
            elif isinstance(ydoc.data, dict) and isinstance(ydoc.data.get("name"), str):
                kind, name = str(ydoc.data.get("kind")), ydoc.data["name"]
                broken.invalid.append(ydoc)
                at = min((d.pos for d in diagnostics.items[before:]), default=ydoc.pos)
                broken.add((kind, name), ydoc.path, at, f"{kind} '{name}' is invalid")
    return LoadResult(documents, sources, diagnostics, roots, broken)


def _p(line: int, col: int) -> Any:
    from aqwen_spec.diagnostics import Pos

    return Pos(line, col)


def validate_document(ydoc: YamlDoc, diagnostics: Diagnostics) -> LoadedDocument | None:
    """Validate one YAML document against the model its ``kind`` names."""
    data = ydoc.data
    if not isinstance(data, dict):
        diagnostics.error("AQ101", f"a spec document must be a mapping, not {describe(data)}", ydoc.path, ydoc.pos)
        return None
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        if kind is None:
            msg, pos = "missing 'kind'", ydoc.pos
        elif not isinstance(kind, str):
            msg, pos = f"'kind' should be a name, not {describe(kind)}", ydoc.value_pos(("kind",))
        else:
            msg, pos = f"unknown kind '{kind}'", ydoc.value_pos(("kind",))
        hint = did_you_mean(kind, KINDS) if isinstance(kind, str) and kind else None
        diagnostics.error("AQ102", msg, ydoc.path, pos, hint or "kinds: " + ", ".join(KINDS))
        return None
    model = KINDS[kind]
    try:
        doc = model.model_validate(data)
    except ValidationError as exc:
        for diag in map_validation_errors(exc, ydoc, model):
            diagnostics.add(diag)
        return None
    return LoadedDocument(doc, ydoc)


# --- pydantic errors -> diagnostics -------------------------------------------------------------------------

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def describe(value: Any) -> str:
    """A few words naming a value's YAML type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _resolve_loc(data: Any, loc: tuple[Any, ...]) -> tuple[YPath, bool]:
    """Walk ``loc`` through the data, dropping pydantic's union-member tags. Returns (path, fully resolved)."""
    path: list[str | int] = []
    node: Any = data
    for part in loc:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and part == "for_" and "for" in node:
            node = node["for"]
            path.append("for")
        else:
            # a union tag ('str', 'Param', 'function-after[...]') or a key that is missing
            continue
    return tuple(path), True


def _field_annotation_models(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin in (typing.Union, types.UnionType, list, dict, typing.Annotated):
        out: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            out.extend(_field_annotation_models(arg))
        return out
    return []


def _model_at(model: type[BaseModel], path: YPath, data: Any = None) -> type[BaseModel] | None:
    """The document model class describing the mapping at ``path`` (for did-you-mean on unknown keys); with the
    document's ``data``, a union (the stages of a pipeline) resolves to the member its discriminator names."""
    current: type[BaseModel] | None = model
    node = data
    for i, part in enumerate(path):
        if current is None:
            return None
        node = _get(node, (part,)) if node is not None else None
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part) or current.model_fields.get(part + "_")
        if info is None:
            # dict values: a key of the data, not of the model; stay on the value model
            continue
        models = _field_annotation_models(info.annotation)
        target = _get(data, path[: i + 2]) if i + 1 < len(path) and isinstance(path[i + 1], int) else node
        current = _by_discriminator(models, target) if len(models) > 1 else models[0] if models else None
    return current


def _by_discriminator(models: list[type[BaseModel]], data: Any) -> type[BaseModel] | None:
    """The model of a union whose Literal field matches ``data`` (``stage: grpo`` picks the GRPO stage)."""
    if isinstance(data, dict):
        for m in models:
            for name, info in m.model_fields.items():
                if typing.get_origin(info.annotation) is Literal and data.get(info.alias or name) in typing.get_args(
                    info.annotation
                ):
                    return m
    return models[0] if models else None


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def map_validation_errors(exc: ValidationError, ydoc: YamlDoc, model: type[BaseModel]) -> list[Diagnostic]:
    """Turn pydantic errors into diagnostics at YAML positions, merging the noise that unions produce."""
    by_path: dict[YPath, list[Any]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] in ("extra_forbidden", "missing"):
            parent, _ = _resolve_loc(ydoc.data, loc[:-1])
            path = (*parent, loc[-1])
        else:
            path, _ = _resolve_loc(ydoc.data, loc)
        by_path.setdefault(path, []).append(err)

    # '{enum: [...]}' where a field or parameter mapping is expected: the type form belongs under 'type:'; say that
    # once, at the form, instead of "missing 'type'" plus "unknown key 'enum'"
    for path, errors in list(by_path.items()):
        form = path[-1] if path else None
        missing_type = (*path[:-1], "type")
        if (
            form in _TYPE_FORMS
            and errors[0]["type"] == "extra_forbidden"
            and missing_type in by_path
            and all(e["type"] == "missing" for e in by_path[missing_type])
        ):
            del by_path[missing_type]
            by_path[path] = [{**errors[0], "type": "type_form_outside_type"}]

    diags: list[Diagnostic] = []
    deepest = set(by_path)
    for path, errors in sorted(by_path.items(), key=lambda kv: (len(kv[0]), str(kv[0]))):
        # a union reports 'not a string' next to the real problem deeper inside the mapping: keep the deeper one
        if any(other[: len(path)] == path and len(other) > len(path) for other in deepest):
            errors = [e for e in errors if e["type"] not in _TYPE_WORDS]
            if not errors:
                continue
        diags.append(_one_diagnostic(path, errors, ydoc, model))
    return diags


def _one_diagnostic(path: YPath, errors: list[Any], ydoc: YamlDoc, model: type[BaseModel]) -> Diagnostic:
    key = path[-1] if path else None
    where = f"'{key}'" if isinstance(key, str) else "this value" if key is None else f"item {key}"
    first = errors[0]
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _keys_of(_model_at(model, path[:-1], ydoc.data))
        hint = did_you_mean(str(key), allowed) or ("allowed keys: " + ", ".join(allowed) if allowed else None)
        return Diagnostic("AQ103", f"unknown key '{key}'", ydoc.path, ydoc.key_pos(path), hint=hint)
    if kind == "type_form_outside_type":
        rest = {k: v for k, v in (_get(ydoc.data, path[:-1]) or {}).items() if k != key}
        more = "".join(f", {k}: ..." for k in rest)
        written = _get(ydoc.data, path)
        shown = "[" + ", ".join(map(str, written)) + "]" if isinstance(written, list) else str(written)
        hint = f"the type goes under 'type': write {{type: {{{key}: {shown if len(shown) < 60 else '...'}}}{more}}}"
        return Diagnostic("AQ103", f"'{key}' is a type, not a key of this mapping", ydoc.path, ydoc.key_pos(path),
                          hint=hint)
    if kind == "missing":
        parent = path[:-1]
        return Diagnostic("AQ104", f"missing required key '{key}'", ydoc.path, ydoc.value_pos(parent))
    value = _get(ydoc.data, path)
    if all(e["type"] in _TYPE_WORDS for e in errors):
        expected = " or ".join(dict.fromkeys(_TYPE_WORDS[e["type"]] for e in errors))
        msg = f"{where} should be {expected}, not {describe(value)}"
        return Diagnostic("AQ105", msg, ydoc.path, ydoc.value_pos(path), hint=ydoc.bool_hint(path))
    err = next(e for e in errors if e["type"] not in _TYPE_WORDS)
    if err["type"] == "string_pattern_mismatch":
        msg = f"{where}: '{value}' is not a valid name (letters, digits and '_', not starting with a digit)"
        return Diagnostic("AQ107", msg, ydoc.path, ydoc.value_pos(path))
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        msg = f"{where} must be {expected}, not {value!r}"
        return Diagnostic("AQ106", msg, ydoc.path, ydoc.value_pos(path))
    msg = f"{where}: {err['msg'][0].lower()}{err['msg'][1:]}"
    return Diagnostic("AQ106", msg, ydoc.path, ydoc.value_pos(path))


def _get(data: Any, path: YPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data
