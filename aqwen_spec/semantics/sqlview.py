"""A real SQLite database built from a state, for ``sql:`` tools (analytics and search domains).

Every map or list of records becomes a table named after its state field, one column per record field; nested
lists and records are stored as JSON text (query them with SQLite's JSON functions). The connection is read-only
for queries (``PRAGMA query_only``).

The tables come from the declared state (:func:`aqwen_spec.resolved.sql_tables`): a field that holds no records yet
still has its table, and a record field that no row has is a column of NULLs; columns are in declaration order, then
any field the data has beyond the declaration. Without a declaration (``tables=()``) the tables follow the data.

Full-text indexes (a domain's ``fulltext:``) become SQLite FTS5 tables named ``<field>_fts``: one column per indexed
field, and the ``rowid`` of the record's row in ``<field>``, to join the other fields::

    SELECT d.id, d.title FROM documents_fts JOIN documents AS d ON d.rowid = documents_fts.rowid
    WHERE documents_fts MATCH fts_any(:query) ORDER BY bm25(documents_fts), d.id

``fts_any(text)`` turns free text into an FTS5 query that matches any of its words, each quoted, so punctuation and
FTS5 operators typed by a model or a user cannot make the query fail; bm25 then ranks records with more, and rarer,
words first. Order by a unique field after the rank so that ties come out the same way every time.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from aqwen_spec.resolved import FullTextIR, SqlTable

_TOKENIZERS = {"unicode61": "unicode61", "porter": "porter unicode61", "trigram": "trigram"}
_WORD = re.compile(r"\w+")


def _columns(rows: list[dict[str, Any]], declared: tuple[str, ...] = ()) -> list[str]:
    cols: dict[str, None] = dict.fromkeys(declared)
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def fts_any(text: Any) -> str:
    """Free text as an FTS5 query matching any of its words (``'"steel" OR "plant"'``); none: matches nothing."""
    words = _WORD.findall(str(text or ""))
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words)) or '""'


def build_database(state: dict[str, Any], fulltext: Iterable[FullTextIR] = (),
                   tables: Iterable[SqlTable] = ()) -> sqlite3.Connection:
    """The SQL view of ``state``: a table per declared map or list of records (``tables``, from
    :func:`aqwen_spec.resolved.sql_tables`) and per other field whose value is records; the indexes ``fulltext``."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.create_function("fts_any", 1, fts_any, deterministic=True)
    declared = dict(tables)
    made: dict[str, list[str]] = {}
    for name in dict.fromkeys([*declared, *state]):
        value = state.get(name)
        rows = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
        if name in declared:
            rows = [r for r in rows if isinstance(r, dict)]
        elif not rows or not all(isinstance(r, dict) for r in rows):
            continue
        cols = made[name] = _columns(rows, declared.get(name, ()))
        if not cols:
            continue  # a record with no fields: SQLite has no table without columns
        quoted = ", ".join(f'"{c}"' for c in cols)
        conn.execute(f'CREATE TABLE "{name}" ({quoted})')
        marks = ", ".join("?" for _ in cols)
        conn.executemany(
            f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})',
            ([_cell(r.get(c)) for c in cols] for r in rows),
        )
    for index in fulltext:
        # lint checked the field and its columns; the table exists even when the field holds no records yet
        quoted = ", ".join(f'"{c}"' for c in index.columns)
        tokenize = _TOKENIZERS.get(index.tokenizer, "unicode61")
        conn.execute(f"CREATE VIRTUAL TABLE \"{index.field}_fts\" USING fts5({quoted}, tokenize='{tokenize}')")
        present = made.get(index.field, [])
        if present:
            # the same rowid as the record's row in the field's table; a field no record has is indexed as empty
            values = ", ".join(f'"{c}"' if c in present else "NULL" for c in index.columns)
            conn.execute(f'INSERT INTO "{index.field}_fts" (rowid, {quoted}) '
                         f'SELECT rowid, {values} FROM "{index.field}" ORDER BY rowid')
    conn.commit()
    conn.execute("PRAGMA query_only = ON")
    return conn
