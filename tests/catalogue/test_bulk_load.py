"""A rebuild into an empty catalogue goes without its indexes and builds them once at the end: same catalogue."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from catalogue import Catalogue
from catalogue._schema import BULK_DROPPED, BULK_INDEXES
from catalogue._search import SearchFilters
from tests.catalogue.test_catalogue import rec
from tests.catalogue.test_rebuild import captured, dump

QUERIES = ("annual", "noon", "alice", "png", "gone", "quarterly", '"another channel"')


def schema_names(data_dir: Path) -> set[str]:
    conn = sqlite3.connect(data_dir / "catalogue.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM bulk_load").fetchone()[0] == 0
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


async def searched(cat: Catalogue) -> dict[str, list[int]]:
    return {q: await cat.call("search", q) for q in QUERIES}


async def test_a_rebuild_into_an_empty_catalogue_gives_what_the_row_by_row_path_gives(tmp_path: Path):
    segments = await captured(tmp_path / "live")
    async with Catalogue(tmp_path / "rows") as cat:
        await cat.call("add_messages", [rec(500, "hello there")])  # not empty: no bulk load
        await cat.call("rebuild_mode", True)
        await cat.call("restore_segments", segments)
        await cat.call("rebuild_mode", False)
        await cat.call("delete_message", 500, "2026-02-01T00:00:00Z", keep=False)
        by_rows = await searched(cat)
    async with Catalogue(tmp_path / "bulk") as cat:
        await cat.call("rebuild_mode", True)
        assert await cat.call("restore_segments", segments) == sum(len(s[4]) for s in segments)
        # Search, capture and deletions go on meanwhile, without the indexes the load dropped.
        page = await cat.call("find", [10, 11], SearchFilters(match='"report"', author_ids=frozenset({7})))
        named = await cat.call("find", [10, 11], SearchFilters(match='"report"', author_names=frozenset({"alice"})))
        assert [h.message_id for h in page.hits] == [h.message_id for h in named.hits]
        await cat.call("add_messages", [rec(500, "hello there")])
        await cat.call("delete_message", 500, "2026-02-01T00:00:00Z", keep=False)
        await cat.call("rebuild_mode", False)
        assert await searched(cat) == by_rows and by_rows["annual"] == [100] and by_rows["quarterly"] == []
        assert await cat.call("search", "hello") == []
        page = await cat.call("find", [10, 11], SearchFilters(match='"annual"', author_ids=frozenset({7})))
        assert [h.message_id for h in page.hits] == [100] and "\ue000annual\ue001" in page.hits[0].snippet
    assert dump(tmp_path / "bulk") == dump(tmp_path / "rows")
    names = schema_names(tmp_path / "bulk")
    assert set(BULK_DROPPED) <= names and set(BULK_INDEXES) <= names


async def test_a_bulk_load_cut_short_is_finished_when_the_catalogue_opens_again(tmp_path: Path):
    segments = await captured(tmp_path / "live")
    async with Catalogue(tmp_path / "cut") as cat:
        await cat.call("rebuild_mode", True)
        await cat.call("restore_segments", segments)  # then Helix stops before the load ends
    async with Catalogue(tmp_path / "cut") as cat:
        assert await cat.call("search", "annual") == [100] and await cat.call("search", "noon") == [101]
        await cat.call("add_revision", 101, {"content": "lunch at two", "edited_at": "2026-01-05T00:00:00Z"})
        assert await cat.call("search", "noon") == [] and await cat.call("search", "two") == [101]
    names = schema_names(tmp_path / "cut")
    assert set(BULK_DROPPED) <= names and set(BULK_INDEXES) <= names


async def test_a_catalogue_from_an_older_version_is_moved_aside_and_rebuilt(tmp_path: Path):
    segments = await captured(tmp_path / "live")
    data = tmp_path / "old"
    data.mkdir()
    conn = sqlite3.connect(data / "catalogue.sqlite3")
    conn.executescript("CREATE TABLE messages (id INTEGER PRIMARY KEY, content TEXT NOT NULL);"
                       "CREATE VIRTUAL TABLE message_text USING fts5(content, author, files);"
                       "INSERT INTO messages VALUES (1, 'from before'); PRAGMA user_version = 1;")
    conn.close()
    async with Catalogue(data) as cat:
        assert cat.moved_aside is not None and cat.moved_aside.exists()
        assert await cat.call("rebuild_reason") == "the catalogue is empty"  # Helix rebuilds it at start-up
        await cat.call("rebuild_mode", True)
        await cat.call("restore_segments", segments)
        await cat.call("rebuild_mode", False)
        assert await cat.call("search", "annual") == [100]
