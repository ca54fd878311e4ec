"""A real SQLite database built from a state, for ``sql:`` tools (analytics domains).

Every map or list of records becomes a table named after its state field, one column per record field; nested
lists and records are stored as JSON text (query them with SQLite's JSON functions). The connection is read-only
for queries (``PRAGMA query_only``).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def build_database(state: dict[str, Any]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    for name, value in state.items():
        rows = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else None
        if not rows or not all(isinstance(r, dict) for r in rows):
            continue
        cols = _columns(rows)
        quoted = ", ".join(f'"{c}"' for c in cols)
        conn.execute(f'CREATE TABLE "{name}" ({quoted})')
        marks = ", ".join("?" for _ in cols)
        conn.executemany(
            f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})',
            ([_cell(r.get(c)) for c in cols] for r in rows),
        )
    conn.commit()
    conn.execute("PRAGMA query_only = ON")
    return conn
