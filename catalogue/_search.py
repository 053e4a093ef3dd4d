"""The catalogue's read side: search, channel summaries and one archived message, for ``!find``/``!get``.

Every read takes the set of channel ids the asker may read, and that set is a condition of the
SQL itself (``channel_id IN (...)``): a page is cut from what the asker may see, never filtered
after paging, so neither a count nor a "next page" can reveal that hidden results exist.
Snippets mark a match with ``HIT_START``/``HIT_END`` (private-use characters nobody types), which
the bot turns into bold after escaping the archived text.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from catalogue._packed import record_text
from catalogue._schema import blob_path
from catalogue.query import MAX_ID

HIT_START, HIT_END, ELLIPSIS = "\ue000", "\ue001", "…"
SNIPPET_TOKENS = 24
PLAIN_SNIPPET_CHARS = 200  # of a message found by filters alone (``has:file``): no words to cut around
DISCORD_EPOCH_MS = 1_420_070_400_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".avif")


@dataclass(frozen=True)
class SearchFilters:
    """What narrows a search, already resolved to ids (the bot resolves names and intersects ``in:``)."""

    match: str | None = None  # an FTS5 MATCH expression from SearchQuery.match_expression()
    author_ids: frozenset[int] = frozenset()
    author_names: frozenset[str] = frozenset()  # lower case, compared with the archived display name
    has: frozenset[str] = frozenset()  # "file", "image"
    before: date | None = None  # created before this day
    after: date | None = None  # created after this day
    # Only messages older than this id (the asking message's or interaction's): the answer is the
    # archive as it was when asked, so the question itself is not among its results, and pages
    # turned later do not shift as new messages arrive.
    before_id: int | None = None


@dataclass(frozen=True)
class SearchHit:
    message_id: int
    guild_id: int
    channel_id: int
    author_id: int
    author_name: str
    created_at: str
    snippet: str  # archived text: escape it before showing it; matches between HIT_START and HIT_END
    files: int


@dataclass(frozen=True)
class SearchPage:
    hits: tuple[SearchHit, ...]
    offset: int
    more: bool  # another page exists (among what the asker may read)


@dataclass(frozen=True)
class ChannelSummary:
    channel_id: int
    guild_id: int
    name: str
    messages: int
    files: int
    bytes: int
    first_at: str | None
    last_at: str | None
    last_backup_at: float | None  # when the last finished backup ended (epoch seconds)
    watched: bool
    type: str = "text"  # text | forum | public_thread | private_thread ...
    # A thread's (or forum post's) channel when that channel is listed too: the thread comes right
    # after it, and a forum's counts are its posts' (its messages are all in them).
    parent_id: int | None = None
    threads: int = 0  # of those listed, how many are this channel's threads (a forum's posts)


@dataclass(frozen=True)
class ArchivedFile:
    id: int
    filename: str
    size: int
    content_type: str | None
    sha256: str | None
    state: str  # saved | missing | too_big | removed

    @property
    def blob(self) -> str | None:
        return blob_path(self.sha256) if self.sha256 and self.state == "saved" else None


@dataclass(frozen=True)
class ArchivedMessage:
    id: int
    guild_id: int
    channel_id: int
    author_name: str
    created_at: str
    content: str
    deleted: bool
    record: dict[str, Any]
    files: tuple[ArchivedFile, ...]


def first_id_of(day: date) -> int:
    """The smallest Discord id (snowflake) of a message created on ``day`` or later (UTC).

    Ids run out in 2084 while dates go on to 9999: a later day gets the largest id SQLite holds,
    a bound no message reaches, instead of a number SQLite cannot take."""
    ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000) - DISCORD_EPOCH_MS
    return min(max(ms, 0) << 22, MAX_ID)


# Which backups covered channel ``c``: its own, and for a thread its parent's when that backup took
# the threads too (``!backup #channel threads``; a forum's backup always takes its posts). A thread
# backed up that way has no backup row of its own, and "no backup finished yet" would be untrue.
BACKED_UP_WITH_PARENT = (
    "(b.channel_id = c.id OR (c.parent_id IS NOT NULL AND b.channel_id = c.parent_id AND c.type LIKE '%thread' "
    "AND (b.threads = 1 OR EXISTS (SELECT 1 FROM channels p WHERE p.id = c.parent_id AND p.type = 'forum'))))")


def _marks(values: Collection[Any]) -> str:
    return ",".join("?" * len(values))


# What search reads by that the capture's schema does not index; created when the catalogue opens.
READ_INDEXES = ("CREATE INDEX IF NOT EXISTS messages_author_name ON messages (lower(author_name), id)",)


class SearchTables:
    conn: sqlite3.Connection

    _name_index = False
    _author_index = True  # False while a rebuild into an empty catalogue goes without it

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def ensure_read_indexes(self) -> None:
        """Create them once; a disk that refuses only makes ``from:name`` slower, so it is not fatal."""
        try:
            for sql in READ_INDEXES:
                self.conn.execute(sql)
            self._name_index = True
        except sqlite3.OperationalError:
            self._name_index = False

    def find(self, channel_ids: Collection[int], filters: SearchFilters, *, offset: int = 0,
             limit: int = 5) -> SearchPage:
        """One page of archived messages from ``channel_ids`` only, newest first."""
        if not channel_ids or filters.after == date.max:  # nothing is after the calendar's last day
            return SearchPage((), offset, False)
        since = filters.after + timedelta(days=1) if filters.after else None
        chans = sorted({int(c) for c in channel_ids})
        where = [f"m.channel_id IN ({_marks(chans)})", "m.deleted_at IS NULL"]
        args: list[Any] = list(chans)
        if filters.author_ids:
            where.append(f"m.author_id IN ({_marks(filters.author_ids)})")
            args += sorted(filters.author_ids)
        if filters.author_names:
            where.append(f"lower(m.author_name) IN ({_marks(filters.author_names)})")
            args += sorted(filters.author_names)
        # A Discord id starts with its creation time, so a date is also a range of ids: FTS5 and the
        # primary key then skip what is out of range instead of reading it.
        if filters.before:
            where += ["m.created_at < ?", "m.id < ?"]
            args += [filters.before.isoformat(), first_id_of(filters.before)]
        if since:
            where += ["m.created_at >= ?", "m.id >= ?"]
            args += [since.isoformat(), first_id_of(since)]
        if filters.before_id is not None:
            where.append("m.id < ?")
            args.append(int(filters.before_id))
        if "image" in filters.has:
            likes = " OR ".join("lower(a.filename) LIKE ?" for _ in IMAGE_SUFFIXES)
            where.append("EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id AND a.state != 'removed' "
                         f"AND (a.content_type LIKE 'image/%' OR {likes}))")
            args += [f"%{s}" for s in IMAGE_SUFFIXES]
        elif "file" in filters.has:
            where.append("EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id AND a.state != 'removed')")
        files = "(SELECT COUNT(*) FROM attachments a WHERE a.message_id = m.id AND a.state != 'removed')"
        cols = "m.id, m.guild_id, m.channel_id, m.author_id, m.author_name, m.created_at"
        snip = f"snippet(message_text, -1, ?, ?, ?, {SNIPPET_TOKENS})"
        if filters.match and filters.author_names and not filters.author_ids and self._name_index:
            sql = (f"SELECT {cols}, {snip} AS snip, {files} AS files FROM messages m INDEXED BY messages_author_name "
                   "CROSS JOIN message_text ON message_text.rowid = m.id "
                   f"WHERE message_text MATCH ? AND {' AND '.join(where)} ORDER BY m.id DESC LIMIT ? OFFSET ?")
            params = [HIT_START, HIT_END, ELLIPSIS, filters.match, *args, limit + 1, offset]
        elif filters.match and filters.author_ids and self._author_index:
            # One member's messages are usually far fewer than a word's: walk those (newest first)
            # and ask FTS5 about each one, instead of walking every message with the word.
            sql = (f"SELECT {cols}, {snip} AS snip, {files} AS files FROM messages m INDEXED BY messages_author "
                   "CROSS JOIN message_text ON message_text.rowid = m.id "
                   f"WHERE message_text MATCH ? AND {' AND '.join(where)} ORDER BY m.id DESC LIMIT ? OFFSET ?")
            params = [HIT_START, HIT_END, ELLIPSIS, filters.match, *args, limit + 1, offset]
        elif filters.match:
            ranged = " AND message_text.rowid < ?" if filters.before else ""
            ranged += " AND message_text.rowid >= ?" if since else ""
            bounds = [first_id_of(filters.before)] if filters.before else []
            bounds += [first_id_of(since)] if since else []
            sql = (f"SELECT {cols}, {snip} AS snip, {files} AS files "
                   "FROM message_text JOIN messages m ON m.id = message_text.rowid "
                   f"WHERE message_text MATCH ?{ranged} AND {' AND '.join(where)} "
                   "ORDER BY message_text.rowid DESC LIMIT ? OFFSET ?")
            params = [HIT_START, HIT_END, ELLIPSIS, filters.match, *bounds, *args, limit + 1, offset]
        else:
            # No words to centre a snippet on: the message's start, marked as cut as FTS5's snippets are.
            start = (f"CASE WHEN length(m.content) > {PLAIN_SNIPPET_CHARS} "
                     f"THEN rtrim(substr(m.content, 1, {PLAIN_SNIPPET_CHARS})) || ? ELSE m.content END")
            sql = (f"SELECT {cols}, {start} AS snip, {files} AS files FROM messages m "
                   f"WHERE {' AND '.join(where)} ORDER BY m.id DESC LIMIT ? OFFSET ?")
            params = [ELLIPSIS, *args, limit + 1, offset]
        try:
            rows = self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc).lower() or "syntax" in str(exc).lower():
                return SearchPage((), offset, False)  # an expression FTS5 refused matches nothing
            raise
        hits = tuple(SearchHit(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "", r[7]) for r in rows[:limit])
        return SearchPage(hits, offset, len(rows) > limit)

    def channel_summaries(self, channel_ids: Collection[int], *, offset: int = 0,
                          limit: int = 10) -> tuple[list[ChannelSummary], bool]:
        """What is archived of each of ``channel_ids`` that the catalogue knows; and whether more follow.

        Ordered by name, each thread (or forum post) right after its channel when that is listed too. A
        forum holds no message of its own, so its counts are those of its posts among ``channel_ids``
        (never of one the caller left out)."""
        if not channel_ids:
            return [], False
        shown = json.dumps(sorted({int(c) for c in channel_ids}))
        # The channels a row's counts cover: itself, and for a forum its listed posts.
        scope = ("(SELECT c.id UNION ALL SELECT t.id FROM channels t WHERE c.type = 'forum' AND t.parent_id = c.id "
                 "AND t.type LIKE '%thread' AND t.id IN shown)")
        live = f"m.channel_id IN {scope} AND m.deleted_at IS NULL"
        saved = f"a.channel_id IN {scope} AND a.state = 'saved'"
        rows = self.conn.execute(
            "WITH shown(id) AS (SELECT value FROM json_each(?)) "
            "SELECT c.id, c.guild_id, c.name, c.watched, "
            f"(SELECT COUNT(*) FROM messages m WHERE {live}), "
            f"(SELECT MIN(created_at) FROM messages m WHERE {live}), "
            f"(SELECT MAX(created_at) FROM messages m WHERE {live}), "
            f"(SELECT COUNT(*) FROM attachments a WHERE {saved}), "
            f"(SELECT COALESCE(SUM(size), 0) FROM attachments a WHERE {saved}), "
            f"(SELECT MAX(finished_at) FROM backups b WHERE b.state = 'done' AND {BACKED_UP_WITH_PARENT}), "
            "c.type, p.id, "
            "(SELECT COUNT(*) FROM channels t WHERE t.parent_id = c.id AND t.type LIKE '%thread' AND t.id IN shown) "
            "FROM channels c LEFT JOIN channels p ON c.type LIKE '%thread' AND p.id = c.parent_id "
            "AND p.id IN shown "
            "WHERE c.id IN shown "
            "ORDER BY lower(COALESCE(p.name, c.name)), COALESCE(p.id, c.id), p.id IS NOT NULL, lower(c.name), c.id "
            "LIMIT ? OFFSET ?", [shown, limit + 1, offset]).fetchall()
        out = [ChannelSummary(r[0], r[1], r[2], r[4], r[7], r[8], r[5], r[6], r[9], bool(r[3]), r[10], r[11], r[12])
               for r in rows[:limit]]
        return out, len(rows) > limit

    def archived_message(self, message_id: int, channel_ids: Collection[int]) -> ArchivedMessage | None:
        """The message as archived, only if it is in one of ``channel_ids`` (else None, as if unknown)."""
        if not channel_ids:
            return None
        chans = sorted({int(c) for c in channel_ids})
        row = self.conn.execute(
            "SELECT m.id, m.guild_id, m.channel_id, m.author_name, m.created_at, m.content, m.deleted_at "
            f"FROM messages m WHERE m.id = ? AND m.channel_id IN ({_marks(chans)})", [message_id, *chans]).fetchone()
        if row is None:
            return None
        files = tuple(ArchivedFile(a[0], a[1], a[2], a[3], a[4], a[5]) for a in self.conn.execute(
            "SELECT id, filename, size, content_type, sha256, state FROM attachments WHERE message_id = ? "
            "ORDER BY id", (message_id,)))
        return ArchivedMessage(row[0], row[1], row[2], row[3], row[4], row[5], row[6] is not None,
                               json.loads(record_text(self.conn, message_id) or "{}"), files)

    def archived_channel_of(self, message_id: int) -> int | None:
        """Which channel an archived message is in (to decide whether the asker may see it)."""
        row = self.conn.execute("SELECT channel_id FROM messages WHERE id = ?", (message_id,)).fetchone()
        return row[0] if row else None

    def thread_parents(self, guild_id: int) -> dict[int, tuple[int, bool]]:
        """Each archived thread (or forum post) of a server that was not deleted: its channel, and
        whether it is private."""
        return {r[0]: (r[1], r[2] == "private_thread") for r in self.conn.execute(
            "SELECT id, parent_id, type FROM channels WHERE guild_id = ? AND parent_id IS NOT NULL "
            "AND type LIKE '%thread' AND id NOT IN (SELECT id FROM gone_threads)", (guild_id,))}

    def thread_gone(self, thread_id: int) -> bool:
        """Discord deleted the thread: from now on nobody reads its archive (see ``thread_parents``). Its
        ``channel.json`` is to say so too (``gone_at``), or a catalogue rebuilt from the remote would show
        the thread again to its channel's readers. True when the catalogue holds the thread, whose
        manifest is then due."""
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO gone_threads (id, gone_at) VALUES (?, ?)", (thread_id, time.time()))
            return c.execute("UPDATE channels SET manifest_dirty = manifest_dirty + 1 WHERE id = ?",
                             (thread_id,)).rowcount > 0

    def thread_gone_at(self, thread_id: int) -> float | None:
        """When Helix heard that Discord deleted the thread (``time.time()``), for its ``channel.json``;
        None for a thread, or a channel, still there."""
        row = self.conn.execute("SELECT gone_at FROM gone_threads WHERE id = ?", (thread_id,)).fetchone()
        return float(row[0]) if row else None

    def archived_channel_ids(self, guild_id: int) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT id FROM channels WHERE guild_id = ? ORDER BY id",
                                                (guild_id,))]


def page_ids(pages: Sequence[SearchPage]) -> list[int]:
    """Message ids of several pages in order (tests and benchmarks compare result sets with it)."""
    return [h.message_id for p in pages for h in p.hits]
