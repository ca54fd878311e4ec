"""Reading spec files: safe YAML with the position of every node, and nothing that can hang or blow up.

PyYAML composes the node graph (C parser when available); we build plain Python data from it ourselves so that:
duplicate keys are errors, aliases are followed under a node budget (no "billion laughs"), unknown tags are refused,
timestamps stay ISO strings, and every value and key keeps its ``line:col`` for diagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aqwen_spec.diagnostics import Diagnostic, Pos

MAX_FILE_BYTES = 5_000_000
MAX_NODES = 200_000  # nodes visited while building data, aliases counted each time they are followed
MAX_DEPTH = 500  # collections nested in each other, as written (PyYAML's C composer recurses once per level)

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_scalars = yaml.SafeLoader.__new__(yaml.SafeLoader)  # only its construct_yaml_* scalar helpers are used

YPath = tuple[str | int, ...]


@dataclass
class SourceFile:
    """A spec file's text, kept for carets under diagnostics."""

    path: str
    text: str

    def line(self, number: int) -> str | None:
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else None


@dataclass(frozen=True)
class ScalarInfo:
    """Where a scalar starts and how it is written, to map positions inside it (expressions) to the file."""

    pos: Pos
    style: str | None  # None (plain), "'", '"', "|", ">"
    indent: int = 0  # the indentation of a block scalar's content


@dataclass
class YamlDoc:
    """One YAML document of a spec file, as plain data plus the position of every value and key in it."""

    source: SourceFile
    index: int
    data: Any
    pos: Pos
    values: dict[YPath, Pos] = field(default_factory=dict)
    keys: dict[YPath, Pos] = field(default_factory=dict)
    scalars: dict[YPath, ScalarInfo] = field(default_factory=dict)
    bool_words: dict[YPath, str] = field(default_factory=dict)
    """Unquoted scalars YAML read as booleans, as written (``off``, ``yes``, ``True``)."""

    @property
    def path(self) -> str:
        return self.source.path

    def bool_hint(self, ypath: YPath) -> str | None:
        """A hint for a boolean found where text was meant: YAML 1.1 reads ``off``, ``on``, ``yes``, ``no``
        unquoted as booleans."""
        word = self.bool_words.get(ypath)
        return f"`{word}` is read as a boolean by YAML: quote it" if word is not None else None

    def value_pos(self, ypath: YPath) -> Pos:
        """The position of the value at ``ypath``, or of its nearest existing ancestor."""
        while ypath not in self.values and ypath:
            ypath = ypath[:-1]
        return self.values.get(ypath, self.pos)

    def key_pos(self, ypath: YPath) -> Pos:
        return self.keys.get(ypath) or self.value_pos(ypath)

    def text_pos(self, ypath: YPath, rel: Pos) -> Pos:
        """Map a position inside the string at ``ypath`` (1-based, relative to the string) to the file."""
        info = self.scalars.get(ypath)
        if info is None:
            return self.value_pos(ypath)
        if info.style in ("|", ">"):
            return Pos(info.pos.line + rel.line, info.indent + rel.col)
        if rel.line == 1:
            return Pos(info.pos.line, info.pos.col + rel.col - 1 + (1 if info.style in ("'", '"') else 0))
        return Pos(info.pos.line + rel.line - 1, rel.col)

    def word_pos(self, ypath: YPath, word: str, nth: int = 0) -> Pos:
        """The file position of the ``nth`` (from 0) whole-word ``word`` in the string at ``ypath``.

        Found in the file's text from where the string starts, so it works for every style, folded ones included
        (folding changes only the spaces between words); the string's own position when it is not found.
        """
        info = self.scalars.get(ypath)
        if info is None:
            return self.value_pos(ypath)
        text = self.source.text
        block = info.style in ("|", ">")
        first = info.pos.line if block else info.pos.line - 1  # a block's text starts on the next line
        offset = sum(len(line) + 1 for line in text.split("\n")[:first]) + (0 if block else info.pos.col - 1)
        for i, m in enumerate(re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", text[offset:])):
            if i == nth:
                at = offset + m.start()
                return Pos(text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1)
        return self.value_pos(ypath)


class _TooManyNodes(Exception):
    pass


class _BadNode(Exception):
    def __init__(self, code: str, message: str, mark: Any, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.mark, self.hint = code, message, mark, hint


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1)


_YAML = "tag:yaml.org,2002:"
_TAG_HINT = "specs use plain YAML values; remove the tag"


def _tag(tag: str) -> str:
    """A tag as it was written: ``!!python/object`` rather than ``tag:yaml.org,2002:python/object``."""
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


class _Builder:
    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.budget = MAX_NODES
        self.problems: list[Diagnostic] = []
        self.lines = doc.source.text.splitlines()

    def build(self, node: yaml.Node, ypath: YPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooManyNodes
        self.doc.values.setdefault(ypath, _pos(node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, ypath)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _YAML + "seq":
                raise _BadNode("AQ008", f"unsupported tag '{_tag(node.tag)}'", node.start_mark, hint=_TAG_HINT)
            return [self.build(item, (*ypath, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != _YAML + "map":
                raise _BadNode("AQ008", f"unsupported tag '{_tag(node.tag)}'", node.start_mark, hint=_TAG_HINT)
            return self.mapping(node, ypath)
        raise _BadNode("AQ008", "unsupported YAML node", node.start_mark)

    def mapping(self, node: yaml.MappingNode, ypath: YPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        seen: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _YAML + "merge":
                for source in value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]:
                    data = self.build(source, ypath)
                    if not isinstance(data, dict):
                        raise _BadNode("AQ008", "a merge key '<<' needs a mapping", value_node.start_mark)
                    merged.update({k: v for k, v in data.items() if k not in merged})
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _BadNode("AQ008", "mapping keys must be plain strings", key_node.start_mark)
            key = key_node.value
            if key in seen:
                first = _pos(seen[key].start_mark)
                self.problems.append(
                    Diagnostic(
                        "AQ003",
                        f"duplicate key '{key}' (first defined at line {first.line})",
                        self.doc.path,
                        _pos(key_node.start_mark),
                        hint="YAML keeps only one of them; remove or rename one",
                    )
                )
                continue
            seen[key] = key_node
            self.doc.keys[(*ypath, key)] = _pos(key_node.start_mark)
            out[key] = self.build(value_node, (*ypath, key))
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    def scalar(self, node: yaml.ScalarNode, ypath: YPath) -> Any:
        style = node.style or None
        indent = 0
        if style in ("|", ">"):
            content_line = node.start_mark.line + 1
            if content_line < len(self.lines):
                text = self.lines[content_line]
                indent = len(text) - len(text.lstrip(" "))
        self.doc.scalars[ypath] = ScalarInfo(_pos(node.start_mark), style, indent)
        tag = node.tag
        if tag in (_YAML + "str", _YAML + "timestamp"):
            return node.value
        if tag == _YAML + "null":
            return None
        if tag == _YAML + "bool":
            if style is None:
                self.doc.bool_words[ypath] = node.value
            return _scalars.construct_yaml_bool(node)
        if tag == _YAML + "int":
            return _scalars.construct_yaml_int(node)
        if tag == _YAML + "float":
            return _scalars.construct_yaml_float(node)
        raise _BadNode("AQ008", f"unsupported tag '{_tag(tag)}'", node.start_mark, hint=_TAG_HINT)


def read_source(path: Path, display: str | None = None) -> tuple[SourceFile | None, list[Diagnostic]]:
    """Read a file as UTF-8 text, refusing huge, unreadable or non-UTF-8 files with a diagnostic."""
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            msg = f"file is {size:,} bytes; spec files may be at most {MAX_FILE_BYTES:,}"
            return None, [Diagnostic("AQ006", msg, name, hint="split it, or move data into a data file")]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Diagnostic("AQ009", f"cannot read file: {exc.strerror or exc}", name)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Diagnostic("AQ005", f"invalid UTF-8 byte 0x{raw[exc.start]:02x}", name, Pos(line, col))]
    if text.startswith("\ufeff"):
        text = text[1:]
    return SourceFile(name, text), []


def _tab_problem(source: SourceFile) -> Diagnostic | None:
    for number, line in enumerate(source.text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            col = len(line) - len(stripped) + 1
            return Diagnostic(
                "AQ002",
                "tab character in indentation",
                source.path,
                Pos(number, col),
                hint="YAML indents with spaces only",
            )
    return None


_YAML_WORDS = {
    "a quoted scalar": "a quoted string",
    "a flow sequence": "a '[' list",
    "a flow mapping": "a '{' mapping",
}


def parse_yaml(source: SourceFile) -> tuple[list[YamlDoc], list[Diagnostic]]:
    """Parse every document of a spec file. Problems come back as diagnostics, never as exceptions."""
    if not source.text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in source.text.splitlines()
    ):
        return [], [Diagnostic("AQ004", "file is empty: it holds no spec document", source.path)]
    tab = _tab_problem(source)
    if tab is not None:
        return [], [tab]
    deep = _too_deep(source.text)
    if deep is not None:
        msg = f"collections are nested more than {MAX_DEPTH} levels deep"
        return [], [Diagnostic("AQ007", msg, source.path, deep, hint="flatten the document")]
    docs: list[YamlDoc] = []
    problems: list[Diagnostic] = []
    doc_pos = Pos(1, 1)  # where the document being built starts (for problems of the whole document)
    try:
        for index, node in enumerate(_compose_all(source.text)):
            if node is None:
                continue
            doc_pos = _pos(node.start_mark)
            doc = YamlDoc(source, index, None, doc_pos)
            builder = _Builder(doc)
            doc.data = builder.build(node, ())
            problems.extend(builder.problems)
            docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = _clamp(_pos(mark), source.text) if mark is not None else Pos(1, 1)
        problem = exc.problem or "invalid YAML"
        at_end = exc.problem_mark is not None and not source.text[exc.problem_mark.index :].strip()
        what = (exc.context or "").removeprefix("while scanning ").removeprefix("while parsing ")
        if what in _YAML_WORDS and exc.context_mark is not None and (at_end or "end of stream" in problem):
            # an unclosed quote or bracket: the end of the file says nothing; point at where it opens
            msg = f"{_YAML_WORDS[what]} is never closed: the file ends first"
            closing = "add the closing quote or bracket"
            return docs, [Diagnostic("AQ001", msg, source.path, _pos(exc.context_mark), hint=closing)]
        hint: str | None = None
        if exc.context and exc.context_mark:
            hint = f"{exc.context} at line {exc.context_mark.line + 1}"
        if problem.startswith("mapping values are not allowed"):
            hint = _over_indented(source.text, pos) or "a value holding ': ' must be quoted"
        return docs, [Diagnostic("AQ001", problem, source.path, pos, hint=hint)]
    except yaml.YAMLError as exc:
        return docs, [Diagnostic("AQ001", str(exc).splitlines()[0], source.path)]
    except _TooManyNodes:
        msg = f"the document expands to more than {MAX_NODES:,} nodes (aliases followed)"
        return docs, [Diagnostic("AQ007", msg, source.path, doc_pos, hint="avoid deeply nested aliases")]
    except _BadNode as exc:
        return docs, [Diagnostic(exc.code, exc.message, source.path, _pos(exc.mark), hint=exc.hint)]
    except RecursionError:
        return docs, [Diagnostic("AQ007", "the document is nested too deeply", source.path, doc_pos)]
    return docs, problems


_KEY_LINE = re.compile(r"^(\s*(?:-\s+)*)([A-Za-z_][\w-]*):(?:\s+(\S.*))?$")


def _over_indented(text: str, pos: Pos) -> str | None:
    """The hint for ': ' found in a plain value when the real mistake is a key indented deeper than the key above
    it: YAML then reads the line as more of that key's value (``- when: x`` over ``      error: ...``)."""
    lines = text.splitlines()
    if not 0 < pos.line <= len(lines):
        return None
    line = lines[pos.line - 1]
    m = re.match(r"^(\s*(?:-\s+)*)([A-Za-z_][\w-]*)$", line[: pos.col - 1])
    if m is None:
        return None
    previous = next(
        (lines[i] for i in range(pos.line - 2, -1, -1) if lines[i].strip() and not lines[i].lstrip().startswith("#")),
        None,
    )
    above = _KEY_LINE.match(previous) if previous is not None else None
    if above is None or above.group(3) is None or above.group(3)[0] in "\"'[{|>&*!":
        return None
    key, key_col, above_col = m.group(2), len(m.group(1)), len(above.group(1))
    if key_col <= above_col:
        return None
    return (
        f"'{key}:' is indented deeper than '{above.group(2)}:' above it, so YAML reads it as more of that value; "
        f"line it up with '{above.group(2)}' (column {above_col + 1})"
    )


def _clamp(pos: Pos, text: str) -> Pos:
    """A position past the last line (the parser's end of stream) moves to the end of the last line."""
    lines = text.splitlines()
    if pos.line <= len(lines):
        return pos
    if not lines:
        return Pos(1, 1)
    return Pos(len(lines), len(lines[-1]) + 1)


def _too_deep(text: str) -> Pos | None:
    """Where collections first nest deeper than MAX_DEPTH, or None.

    PyYAML's C composer recurses once per nesting level and crashes the interpreter (a segfault, not an exception)
    somewhere past 20,000 levels, which a 100 kB file reaches. This scan reads the event stream, which needs no
    recursion, and runs only when the text holds enough '[', '{', '-', '?' and ':' to open that many collections.
    """
    if sum(text.count(c) for c in "[{-?:") <= MAX_DEPTH:
        return None
    loader = _Loader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return _pos(event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None  # composing reports it, with its position
    finally:
        loader.dispose()
    return None


def _compose_all(text: str) -> Iterator[yaml.Node | None]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()
