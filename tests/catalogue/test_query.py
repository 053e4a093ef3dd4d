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


def test_minus_leaves_out_and_an_upper_case_or_takes_either(fts: sqlite3.Connection) -> None:
    assert search(fts, "archive -landed") == [3]
    assert search(fts, 'archive -"the remote"') == [3]
    assert search(fts, "archiv* -carol") == [1]  # a left-out word is searched in author names too
    assert search(fts, "archive -archiv*") == []
    assert search(fts, "landed OR noon") == [1, 2]
    assert search(fts, "landed OR noon OR archiving") == [1, 2, 3]
    assert search(fts, "landed OR noon -alice") == [2]
    assert search(fts, "the archive OR minutes") == [1, 2, 3]
    assert search(fts, "landed or noon") == []  # only an upper-case OR is an operator: "or" is a word
    assert search(fts, '"OR" noon') == []  # and a quoted one is a word too


@pytest.mark.parametrize(("text", "terms", "note"), [
    ("archive OR", ("archive",), "`OR` goes between two words"),
    ("OR archive", ("archive",), "`OR` goes between two words"),
    ("archive OR from:bob noon", ("archive", "noon"), "`OR` goes between two words"),
    ("archive OR -noon", ("archive",), "`OR` goes between two words"),
])
def test_an_or_without_a_word_on_each_side_is_left_out_and_said(text: str, terms: tuple, note: str) -> None:
    q = parse_query(text)
    assert q.terms == terms and not q.either and any(note in n for n in q.notes), q


def test_during_is_that_day_and_dates_narrow_each_other() -> None:
    q = parse_query("during:2026-01-15")
    assert (q.after, q.before) == (date(2026, 1, 14), date(2026, 1, 16))  # the day after the 14th, before the 16th
    q = parse_query("after:2026-01-01 during:2026-01-15 before:2026-03-01")
    assert (q.after, q.before) == (date(2026, 1, 14), date(2026, 1, 16))
    q = parse_query("before:2026-03-01 before:2026-02-01 after:2025-01-01 after:2025-06-01")
    assert (q.after, q.before) == (date(2025, 6, 1), date(2026, 2, 1))
    assert (parse_query("during:0001-01-01").after, parse_query("during:9999-12-31").before) == (None, None)
    assert not parse_query("during:9999-12-31").empty


@pytest.mark.parametrize("hostile", ['"', "*", "NEAR(", "-", "AND", "OR NOT", '"unclosed phrase', "a:b:c",
                                     "{content}:x", "^start", "x" * 4000, '""""', "NEAR(archive noon, 3)",
                                     "OR", "OR OR", "x OR OR y", "x -", 'x -"', "x -*", "x -NOT", "x - -y",
                                     "x -(y", "x -NEAR(y", 'x OR "', "x OR * y", "-- x", "x -ـ"])
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
    ("during:2026-02-30", "`during:` takes a date"),
    ("during:2026-01-15 after:2026-01-15", "Those dates leave no day to search"),
    ("during:2026-01-15 during:2026-01-16", "Those dates leave no day to search"),
    ("after:2026-01-01 before:2026-01-02", "Those dates leave no day to search"),
    ("from:99999999999999999999", "`from:` got a number that is no Discord id"),
    ("from:<@9223372036854775808>", "no Discord id"),  # one past SQLite's largest integer
    ("from:0", "no Discord id"),
    ("in:99999999999999999999", "`in:` got a number that is no Discord id"),
    ("in:<#00000000000000000000>", "no Discord id"),
    ("-rocket", "`-word` only leaves words out"),
    ('-"rocket launch" -pad has:image', "`-word` only leaves words out"),
    ("launch -from:bob", "`-` leaves out words, not filters"),
])
def test_a_bad_filter_is_one_sentence_with_an_example(text: str, says: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_query(text)
    assert says in str(err.value) and "for example `!find" in str(err.value)


def test_punctuation_alone_is_no_query() -> None:
    assert parse_query(' " * - ').empty
    assert not parse_query("has:file").empty


def test_the_largest_ids_and_the_calendar_s_ends_are_understood() -> None:
    assert parse_query("from:9223372036854775807").author_ids == {2**63 - 1}
    assert parse_query("in:<#1>").channel_ids == {1}
    assert parse_query("launch after:9999-12-31").after == date.max  # the catalogue finds nothing after it
    assert parse_query("before:0001-01-01").before == date.min


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["OR", "-", '"', "*", "(", ")", "NOT", "NEAR", "archive", "-landed", "noon*",
                                 '-"', "AND", "or", "\u0640", "from:bob", " ", "--"]), max_size=12),
       st.booleans())
def test_operators_in_any_order_are_answered_or_refused_with_a_sentence(fts: sqlite3.Connection, words: list[str],
                                                                        spaced: bool) -> None:
    try:
        search(fts, (" " if spaced else "").join(words))
    except QueryError as exc:
        assert str(exc).endswith(".") and "for example `!find" in str(exc)
