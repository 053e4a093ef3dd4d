"""What a member types after !find becomes a search that never fails, whatever they type."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalogue.query import MAX_TERMS, QueryError, parse_query


@pytest.fixture(scope="module")
def fts() -> sqlite3.Connection:
    """A real FTS5 table shaped like the catalogue's search index, with a few messages in it."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE message_text USING fts5(content, author, files, "
               "tokenize = 'unicode61 remove_diacritics 2')")
    db.executemany("INSERT INTO message_text (rowid, content, author, files) VALUES (?, ?, ?, ?)", [
        (1, "the archive landed on the remote", "alice", "cat.png"),
        (2, "Café meeting NEAR noon, bring the minutes", "bob", "minutes.pdf"),
        (3, "archiving is not the same as archive", "carol", ""),
    ])
    return db


def search(db: sqlite3.Connection, text: str) -> list[int]:
    expression = parse_query(text).match_expression()
    if expression is None:
        return []
    rows = db.execute("SELECT rowid FROM message_text WHERE message_text MATCH ? ORDER BY rowid", (expression,))
    return [r[0] for r in rows]


def test_words_phrases_and_prefixes_find_what_a_member_means(fts: sqlite3.Connection) -> None:
    assert search(fts, "archive") == [1, 3]
    assert search(fts, '"the archive landed"') == [1]
    assert search(fts, "archiv*") == [1, 3]
    assert search(fts, "cafe") == [2]  # accents do not matter
    assert search(fts, "minutes.pdf") == [2]  # file names are searched too
    assert search(fts, "archive alice") == [1]  # author names too; all words must match


@pytest.mark.parametrize("hostile", ['"', "*", "NEAR(", "-", "AND", "OR NOT", '"unclosed phrase', "a:b:c",
                                     "{content}:x", "^start", "x" * 4000, '""""', "NEAR(archive noon, 3)"])
def test_fts5_syntax_is_just_text(fts: sqlite3.Connection, hostile: str) -> None:
    search(fts, hostile)  # an answer (possibly empty), never an error


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_input_is_answered_or_refused_with_a_sentence(text: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE message_text USING fts5(content, author, files)")
    try:
        query = parse_query(text)
    except QueryError as exc:
        assert str(exc).endswith(".") and "`" in str(exc)  # one sentence with an example
        return
    expression = query.match_expression()
    if expression is not None:
        db.execute("SELECT rowid FROM message_text WHERE message_text MATCH ?", (expression,)).fetchall()
    assert len(query.terms) <= MAX_TERMS


def test_filters_are_taken_out_of_the_words() -> None:
    q = parse_query("budget in:<#111> from:<@!222> has:image before:2026-02-01 after:2026-01-01 in:#General")
    assert q.terms == ("budget",)
    assert q.channel_ids == {111} and q.channel_names == {"general"}
    assert q.author_ids == {222}
    assert q.has == {"image"}
    assert (q.after, q.before) == (date(2026, 1, 1), date(2026, 2, 1))


@pytest.mark.parametrize(("text", "says"), [
    ("has:video", "`has:` takes file or image"),
    ("before:yesterday", "`before:` takes a date as YYYY-MM-DD"),
    ("after:2026-13-01", "`after:` takes a date"),
    ("after:2026-02-01 before:2026-01-01", "`after:` must be earlier"),
    ("in:", "`in:` needs a channel"),
    ("before:٢٠٢٦-٠١-٠١", "YYYY-MM-DD"),  # digits from another script are not a date
])
def test_a_bad_filter_is_one_sentence_with_an_example(text: str, says: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_query(text)
    assert says in str(err.value) and "for example `!find" in str(err.value)


def test_punctuation_alone_is_no_query() -> None:
    assert parse_query(' " * - ').empty
    assert not parse_query("has:file").empty
