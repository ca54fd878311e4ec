"""Full-text indexes (a domain's ``fulltext:``): the FTS5 tables of the SQL view, ranking, read-only access, lint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sql_specs import lint_errors, runner_of, write_tree

from aqwen_spec.check import check_paths, load_specs
from aqwen_spec.resolved import FullTextIR, SpecSet
from aqwen_spec.semantics import ToolRunner, generate_state
from aqwen_spec.semantics.sqlview import build_database, fts_any
from aqwen_spec.serialize import domain_from_json, domain_to_json, tool_from_json, tool_to_json

DOMAIN = """\
kind: Domain
name: help_centre
description: Help articles searched by their words.
types:
  Article:
    id: str
    title: str
    body: str
    tags: "list[str]"
    views: int
state:
  articles: map[Article]
fulltext:
  articles: {columns: [title, body, tags], tokenizer: porter}
initial_state:
  data:
    articles:
      A-1: {id: A-1, title: Returning a bike, body: Dock the bike at a station until the light turns green.,
            tags: [returns], views: 120}
      A-2: {id: A-2, title: Paying with a voucher, body: Enter the voucher code before you unlock a bike.,
            tags: [payments], views: 45}
      A-3: {id: A-3, title: Lost property, body: Items left in a basket are kept at the central station.,
            tags: [stations], views: 3}
      A-4: {id: A-4, title: Lost property, body: Items left in a basket are kept at the central station.,
            tags: [stations], views: 3}
"""

TOOLS = """\
kind: Tool
name: search_articles
domain: help_centre
description: The articles that best match a query, titles first.
access: read
params:
  query: str
implementation:
  sql: >-
    SELECT a.id FROM articles_fts JOIN articles AS a ON a.rowid = articles_fts.rowid
    WHERE articles_fts MATCH fts_any(:query)
    ORDER BY bm25(articles_fts, 10.0, 1.0, 1.0), a.id
---
kind: Tool
name: add_article
domain: help_centre
description: Publish an article.
params:
  article_id: str
  title: str
  body: str
effects: 'articles[article_id] = {id: article_id, title: title, body: body, tags: [], views: 0}'
---
kind: Tool
name: sneaky_write
domain: help_centre
description: A query that tries to write.
access: read
implementation:
  sql: WITH x AS (SELECT 1) INSERT INTO articles_fts (title) SELECT 'spam' FROM x
"""


def _tree(tmp_path: Path, domain: str = DOMAIN, tools: str = TOOLS) -> Path:
    return write_tree(tmp_path, "help_centre", domain, tools)


def _specs(tmp_path: Path) -> SpecSet:
    return load_specs(_tree(tmp_path))


def _runner(specs: SpecSet) -> ToolRunner:
    return runner_of(specs, "help_centre")


def _ids(runner: ToolRunner, query: str) -> list[str]:
    outcome = runner.call("search_articles", {"query": query})
    assert outcome.ok, outcome.error
    return [row["id"] for row in outcome.value]


# --- the index ---------------------------------------------------------------------------------------------------


def test_the_declaration_reaches_the_sql_tools(tmp_path: Path) -> None:
    specs = _specs(tmp_path)
    index = FullTextIR("articles", ("title", "body", "tags"), "porter")
    assert specs.domains["help_centre"].fulltext == (index,)
    assert specs.tools["search_articles"].fulltext == (index,)
    assert specs.tools["add_article"].fulltext == ()  # declarative tools have no SQL view


def test_the_index_is_an_fts5_table_with_the_records_rowids() -> None:
    state = {"docs": {"b": {"id": "b", "text": "steel plant"}, "a": {"id": "a", "text": "glass works"}},
             "other": [{"id": 1}]}
    conn = build_database(state, [FullTextIR("docs", ("text",))])
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'docs_fts'").fetchone()[0]
    assert "fts5" in sql.lower()
    rows = conn.execute("SELECT d.id, docs_fts.text FROM docs_fts JOIN docs AS d ON d.rowid = docs_fts.rowid "
                        "ORDER BY d.id").fetchall()
    assert rows == [("a", "glass works"), ("b", "steel plant")]
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'other_fts'").fetchone() == (0,)


def test_an_empty_field_still_has_its_index_table() -> None:
    conn = build_database({"docs": {}}, [FullTextIR("docs", ("text",))])
    assert conn.execute("SELECT count(*) FROM docs_fts WHERE docs_fts MATCH fts_any('x')").fetchone() == (0,)


def test_lists_are_indexed_by_their_words(tmp_path: Path) -> None:
    assert _ids(_runner(_specs(tmp_path)), "payments") == ["A-2"]


# --- searching ---------------------------------------------------------------------------------------------------


def test_search_ranks_by_bm25_then_id(tmp_path: Path) -> None:
    runner = _runner(_specs(tmp_path))
    # a title counts ten times a body: A-1 (title and body) before A-2 (body only)
    assert _ids(runner, "bike") == ["A-1", "A-2"]
    # are the same text: equal ranks, ordered by id
    assert _ids(runner, "lost property")[:2] == ["A-3", "A-4"]


def test_search_order_does_not_depend_on_the_order_of_the_records() -> None:
    docs = {f"D-{i}": {"id": f"D-{i}", "text": "steel plant" if i % 2 else "steel plant steel"} for i in range(8)}
    query = ("SELECT d.id FROM docs_fts JOIN docs AS d ON d.rowid = docs_fts.rowid "
             "WHERE docs_fts MATCH fts_any('steel') ORDER BY bm25(docs_fts), d.id")
    index = [FullTextIR("docs", ("text",))]
    forward = build_database({"docs": docs}, index).execute(query).fetchall()
    backward = build_database({"docs": dict(reversed(docs.items()))}, index).execute(query).fetchall()
    assert forward == backward
    assert [r[0] for r in forward] == ["D-0", "D-2", "D-4", "D-6", "D-1", "D-3", "D-5", "D-7"]


def test_the_porter_tokenizer_matches_word_stems(tmp_path: Path) -> None:
    runner = _runner(_specs(tmp_path))
    assert _ids(runner, "returned") == ["A-1"]  # 'returning' and 'returns' share the stem
    conn = build_database({"docs": [{"text": "returning"}]}, [FullTextIR("docs", ("text",), "unicode61")])
    assert conn.execute("SELECT count(*) FROM docs_fts WHERE docs_fts MATCH 'returned'").fetchone() == (0,)


def test_the_trigram_tokenizer_matches_substrings() -> None:
    conn = build_database({"parts": [{"sku": "HX-4471-B"}]}, [FullTextIR("parts", ("sku",), "trigram")])
    assert conn.execute("SELECT count(*) FROM parts_fts WHERE parts_fts MATCH '\"4471\"'").fetchone() == (1,)


@pytest.mark.parametrize("text", ["", "   ", "?!", 'steel AND (NOT "', "A-1", "NEAR(", "title:steel", "*"])
def test_free_text_never_breaks_the_query(tmp_path: Path, text: str) -> None:
    runner = _runner(_specs(tmp_path))
    outcome = runner.call("search_articles", {"query": text})
    assert outcome.ok, outcome.error


def test_fts_any_quotes_every_word_once() -> None:
    # operators are words like any other: quoted, they are inert
    assert fts_any('Steel "plant" steel-works OR') == '"Steel" OR "plant" OR "steel" OR "works" OR "OR"'
    assert fts_any("") == '""'
    assert fts_any(None) == '""'


def test_the_view_follows_writes(tmp_path: Path) -> None:
    runner = _runner(_specs(tmp_path))
    assert _ids(runner, "helmet") == []
    assert runner.call("add_article", {"article_id": "A-9", "title": "Helmets", "body": "Borrow a helmet."}).ok
    assert _ids(runner, "helmet") == ["A-9"]


# --- read-only -----------------------------------------------------------------------------------------------------


def test_the_connection_is_read_only() -> None:
    conn = build_database({"docs": [{"id": "a", "text": "x"}]}, [FullTextIR("docs", ("text",))])
    for statement in ("INSERT INTO docs_fts (text) VALUES ('spam')", "DELETE FROM docs_fts",
                      "INSERT INTO docs_fts (docs_fts) VALUES ('delete-all')", "DROP TABLE docs_fts"):
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM docs_fts").fetchone() == (1,)


def test_a_tool_that_tries_to_write_gets_an_error_and_changes_nothing(tmp_path: Path) -> None:
    runner = _runner(_specs(tmp_path))
    outcome = runner.call("sneaky_write", {})
    assert not outcome.ok and outcome.error_kind == "implementation" and "readonly" in (outcome.error or "")
    assert _ids(runner, "spam") == []


# --- bundles -------------------------------------------------------------------------------------------------------


def test_bundles_carry_the_indexes(tmp_path: Path) -> None:
    specs = _specs(tmp_path)
    domain = specs.domains["help_centre"]
    again = domain_from_json(domain_to_json(domain))
    assert again.fulltext == domain.fulltext
    named = {**again.types, "State": again.state}
    tool = tool_from_json(tool_to_json(specs.tools["search_articles"]), named)
    assert tool.fulltext == domain.fulltext
    runner = ToolRunner({"search_articles": tool}, generate_state(again, 0))
    assert _ids(runner, "voucher") == ["A-2"]
    assert "fulltext" not in tool_to_json(specs.tools["add_article"])  # nothing new where there is no index


# --- lint ----------------------------------------------------------------------------------------------------------


def _diagnostics(tmp_path: Path, fulltext: str, tools: str = "") -> list[tuple[str, int, int, str, str | None]]:
    domain = DOMAIN.replace("fulltext:\n  articles: {columns: [title, body, tags], tokenizer: porter}\n", fulltext)
    return lint_errors(_tree(tmp_path, domain, tools or TOOLS))


@pytest.mark.parametrize(
    ("fulltext", "expected"),
    [
        ("fulltext:\n  articles: [title, bdy]\n",
         ("AQ205", 14, 21, "Article has no field 'bdy'", "did you mean 'body'?")),
        ("fulltext:\n  articls: [title]\n",
         ("AQ205", 14, 3, "the state has no field 'articls' to index", "did you mean 'articles'?")),
        ("fulltext:\n  articles: {columns: [title, views]}\n",
         ("AQ205", 14, 31, "field 'views' of Article is int; only text is indexed (str, an enum, or a list of str)",
          None)),
        ("fulltext:\n  articles: [title, title]\n", ("AQ205", 14, 21, "field 'title' is indexed twice", None)),
        ("fulltext:\n  articles: []\n",
         ("AQ205", 14, 13, "the index of 'articles' names no field", "list the text fields to index")),
    ],
    ids=["unknown_column", "unknown_field", "not_text", "twice", "empty"],
)
def test_lint_reports_a_bad_declaration_where_it_is(tmp_path: Path, fulltext: str,
                                                    expected: tuple[str, int, int, str, str | None]) -> None:
    found = _diagnostics(tmp_path, fulltext)
    assert found[0] == expected, found


def test_lint_reports_an_index_of_something_that_is_not_records(tmp_path: Path) -> None:
    domain = DOMAIN.replace("  articles: map[Article]\n", "  articles: map[Article]\n  motd: str\n")
    domain = domain.replace("  articles: {columns", "  motd: [title]\n  articles: {columns")
    found = [(code, message) for code, _, _, message, _ in lint_errors(_tree(tmp_path, domain))]
    assert found == [("AQ205", "'motd' is str: full-text indexes are over maps or lists of records")]


def test_lint_reports_a_reserved_column_name(tmp_path: Path) -> None:
    domain = DOMAIN.replace("    views: int\n", "    views: int\n    rank: str\n").replace(
        "[title, body, tags]", "[title, rank]").replace("tags: [returns], views: 120}", "tags: [returns], views: 120,"
                                                        " rank: a}")
    found = [(code, message) for code, _, _, message, _ in lint_errors(_tree(tmp_path, domain))]
    assert ("AQ205", "'rank' is a reserved column name of SQLite FTS5") in found


def test_lint_reports_a_query_on_an_index_that_is_not_declared(tmp_path: Path) -> None:
    found = _diagnostics(tmp_path, "")
    assert [f[:4] for f in found] == [
        ("AQ311", 9, 8, "the query uses 'articles_fts', but the domain declares no full-text index of 'articles'"),
        ("AQ311", 30, 8, "the query uses 'articles_fts', but the domain declares no full-text index of 'articles'"),
    ]
    assert found[0][4] == "declare one in the domain: fulltext: {articles: [TEXT_FIELD]}"


def test_the_declaration_has_a_long_and_a_short_form(tmp_path: Path) -> None:
    assert _diagnostics(tmp_path, "fulltext:\n  articles: [title, body]\n") == []
    assert _diagnostics(tmp_path / "b", "fulltext:\n  articles: {columns: [body], tokenizer: trigram}\n") == []
    bad = _diagnostics(tmp_path / "c", "fulltext:\n  articles: {columns: [body], tokenizer: snowball}\n")
    assert bad and bad[0][0] == "AQ106"


# --- the example domain ------------------------------------------------------------------------------------------


def test_the_information_seeking_example_searches_its_documents() -> None:
    root = Path(__file__).resolve().parents[1] / "examples" / "information_seeking" / "specs"
    specs = check_paths([root]).specs
    domain = specs.domains["information_seeking"]
    assert 100 <= len(domain.initial_data["documents"]) <= 300
    runner = ToolRunner(specs.tools_of("information_seeking"), generate_state(domain, 0))
    hits = runner.call("search", {"query": "Crossfell Glass Plant?"}).value
    assert [h["title"] for h in hits[:2]] == ["Crossfell Glass Plant"] * 2  # two plants share the name
    only_people = runner.call("search", {"query": "founded", "kind": "person"}).value
    assert only_people and all(h["kind"] == "person" for h in only_people)
