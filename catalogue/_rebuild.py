"""Filling the catalogue back from the remote's segments: the remote is the source of truth.

A segment read back is recorded as already landed, so nothing is written to the remote again,
and kept whole (``_packed.py``) instead of a ``records`` row per line. A segment already read
(its path is known) is read again only if the catalogue holds its lines one by one (a catalogue
that was never lost, under ``!reindex``): then a line already known (same message, kind and
revision) is skipped, so reading it again changes nothing; so is a message or revision line of a
message with a tombstone (the remote's copy predates the rewrite its deletion queued, and would put the
line back into it). Lines that were committed locally but not yet in a segment are never touched.

The lines come parsed into rows (``_rebuild_rows.prepare``, in the reader's thread) and a run
of new message lines is written with one ``executemany`` per table; the messages and their files
are written in id order at the end of the batch, where SQLite's tables and FTS5 append instead
of inserting in the middle (their words follow through the schema's triggers, or all at once
when a rebuild into an empty catalogue ends: ``rebuild_mode``). Everything else (an edit, a deletion, a line already
known) takes the one-by-one path in its place in the order, once the rows before it are
complete, so the outcome is that of reading the lines one by one.

A channel's cursor comes from its ``channel.json`` alone (``restore_channels``), never from its
segments' ids: a segment says what was archived, not how far the history was paged (``!archive``
of one message, live lines, a thread first seen live), and a cursor taken from it would make the
next backup start after history nobody archived. A channel no manifest names keeps the cursor 0:
its next backup pages the whole history, skipping the messages it already holds.
"""

from __future__ import annotations

import contextlib
import json
import operator
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from catalogue._packed import KINDS, pack, record_text
from catalogue._rebuild_rows import Other, Plain, Prepared, prepared
from catalogue._revisions import files_removed
from catalogue._schema import blob_path, file_names, finish_bulk_load, start_bulk_load
from catalogue._schema import record_json as _dumps

Segment = tuple[int, int, str, str, Sequence[str] | Sequence[dict[str, Any]] | Prepared, str | None, int | None]
_CHUNK = 900  # ids per "IN (...)": under SQLite's limit of bound parameters
REBUILD_CACHE_KIB = -65_536  # negative: KiB, as PRAGMA cache_size reads it (64 MiB, SQLite's default is 2)
REBUILD_CHECKPOINT_PAGES = 16_384  # pages of WAL between checkpoints while rebuilding (SQLite's default: 1,000)


class RebuildTables:
    conn: sqlite3.Connection
    _name_index: bool
    _author_index: bool

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _put_attachments(self, c: sqlite3.Connection, mid: int, cid: int, atts: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def ensure_read_indexes(self) -> None:
        raise NotImplementedError

    def rebuild_mode(self, on: bool) -> None:
        """While a rebuild writes: a bigger page cache and fewer checkpoints, so its inserts stay in
        memory instead of spilling and re-reading pages (every commit still syncs: nothing is less
        durable); into an empty catalogue, without the secondary indexes and the words index, which
        are then built once at the end (``_schema.start_bulk_load``). Off again afterwards, with
        the grown WAL checkpointed and truncated."""
        cache, checkpoint = (REBUILD_CACHE_KIB, REBUILD_CHECKPOINT_PAGES) if on else (-2000, 1000)
        self.conn.execute(f"PRAGMA cache_size = {int(cache)}")
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint)}")
        if on and start_bulk_load(self.conn):
            self._name_index = self._author_index = False  # dropped until the load ends
        if not on:
            finish_bulk_load(self.conn)
            self._author_index = True
            self.ensure_read_indexes()
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rebuild_begin(self) -> None:
        """A rebuild starts: until ``rebuild_end``, the catalogue may hold only part of the remote."""
        with self._tx() as c:
            if c.execute("SELECT 1 FROM rebuild_due LIMIT 1").fetchone() is None:
                c.execute("INSERT INTO rebuild_due (started_at) VALUES (?)", (time.time(),))

    def rebuild_end(self) -> None:
        """Every segment on the remote was read."""
        with self._tx() as c:
            c.execute("DELETE FROM rebuild_due")

    def rebuilding(self) -> bool:
        """A rebuild began and has not ended (it runs, or it was cut short): cursors and known lines
        may not all be back yet, so a backup now would take old messages for new ones."""
        return self.conn.execute("SELECT 1 FROM rebuild_due LIMIT 1").fetchone() is not None

    def rebuild_reason(self) -> str | None:
        """Why the catalogue should be rebuilt at start-up, or None: empty (a fresh volume), or a
        rebuild that began and never ended (the process was stopped, or the remote failed)."""
        if self.conn.execute("SELECT 1 FROM rebuild_due LIMIT 1").fetchone() is not None:
            return "a rebuild was cut short"
        if self.conn.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is None:
            return "the catalogue is empty"
        return None

    def cap_cursors(self, caps: dict[int, int]) -> None:
        """Lower channels' cursors to at most ``caps[channel]`` (``capture.rebuild.cursor_caps``)."""
        with self._tx() as c:
            c.executemany("UPDATE channels SET cursor = MIN(cursor, ?) WHERE id = ?",
                          [(cap, cid) for cid, cap in caps.items()])

    def restore_channel(self, manifest: dict[str, Any]) -> None:
        """A channel from its ``channel.json``: name, topic, type, parent, cursor, watched."""
        self.restore_channels([manifest])

    def restore_channels(self, manifests: Sequence[dict[str, Any]]) -> None:
        """Several channels in one transaction (one disk sync, however many channels a server has).

        The manifest's cursor is the only one a rebuild takes: every message up to it is in a
        segment it lists (``capture.rebuild.cursor_caps`` lowers it where one is missing)."""
        with self._tx() as c:
            for manifest in manifests:
                _restore_channel(c, manifest)

    def restore_segment(self, guild_id: int, channel_id: int, path: str, transcript: str,
                        lines: Sequence[str] | Sequence[dict[str, Any]], sha256: str | None, size: int | None) -> int:
        """One segment's lines into the catalogue, as landed; returns how many lines were new."""
        return self.restore_segments([(guild_id, channel_id, path, transcript, lines, sha256, size)])

    def restore_segments(self, segments: Sequence[Segment]) -> int:
        """Several segments in one transaction (one disk sync for all of them); returns the new lines.

        A segment's lines are its file's lines as text, ``_rebuild_rows.prepare``'s output for them,
        or parsed objects (written as Helix writes them).
        """
        added = 0
        with self._tx() as c:
            pending = Pending()
            for guild_id, channel_id, path, transcript, lines, sha256, size in segments:
                added += self._restore_one(c, pending, guild_id, channel_id, path, transcript,
                                           prepared(lines, guild_id, channel_id), sha256, size)
            _flush(c, pending)
        return added - pending.known  # a message line read before, in another segment, is not new

    def _restore_one(self, c: sqlite3.Connection, pending: Pending, guild_id: int,
                     channel_id: int, path: str, transcript: str, segment: Prepared, sha256: str | None,
                     size: int | None) -> int:
        lines = segment.lines
        if not lines:
            return 0
        now = time.time()
        # Its cursor is left as it is, 0 for a channel no manifest named (see the module's docstring).
        c.execute("INSERT OR IGNORE INTO channels (id, guild_id, updated_at) VALUES (?, ?, ?)",
                  (channel_id, guild_id, now))
        row = c.execute("SELECT s.id, p.segment_id FROM segments s LEFT JOIN packed p ON p.segment_id = s.id "
                        "WHERE s.path = ?", (path,)).fetchone()
        if row is not None and row[1] is not None:
            return 0  # read before and kept whole: its lines are known
        if row is None:
            sid = c.execute("INSERT INTO segments (guild_id, channel_id, path, transcript, first_id, last_id, records, "
                            "state, sha256, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'landed', ?, ?, ?)",
                            (guild_id, channel_id, path, transcript, lines[0].mid, lines[-1].mid, len(lines), sha256,
                             size, now)).lastrowid
            pack(c, sid, channel_id, segment.ids, segment.packed)
            return self._restore_packed(c, pending, guild_id, channel_id, lines, now)
        return self._restore_known(c, pending, guild_id, channel_id, row[0], segment, now)

    def _restore_packed(self, c: sqlite3.Connection, pending: Pending, gid: int, cid: int,
                        lines: Sequence[Plain | Other], now: float) -> int:
        """A new segment's lines: message rows in bulk, each other line in its place in the order."""
        added = 0
        for line in lines:
            if isinstance(line, Plain):
                pending.append(line)  # its message, files and words: in the next flush
                added += 1
                continue
            kind = line.line.get("type") or "message"
            if kind not in KINDS:
                continue
            _flush(c, pending)  # an edit or a deletion finds its message complete
            self._apply(c, gid, cid, kind, line.line, now)
            added += 1
        return added

    def _restore_known(self, c: sqlite3.Connection, pending: Pending, gid: int, cid: int,
                       sid: int, segment: Prepared, now: float) -> int:
        """A segment the catalogue holds line by line: only the lines it does not know yet."""
        added, run = 0, []
        for line, text in [*zip(segment.lines, segment.texts(), strict=True), (None, "")]:
            if isinstance(line, Plain):
                run.append((line, text))
                continue
            if run:
                added += self._restore_run(c, pending, gid, cid, sid, run, now)
                run = []
            if line is not None:
                _flush(c, pending)
                added += self._restore_line(c, gid, cid, sid, line.line, text, now)
        return added

    def _restore_run(self, c: sqlite3.Connection, pending: Pending, gid: int, cid: int,
                     sid: int, run: list[tuple[Plain, str]], now: float) -> int:
        """Message lines in a row: their records now, in bulk when every one of them is new and not deleted."""
        c.execute("SAVEPOINT rebuild_run")
        if c.executemany("INSERT OR IGNORE INTO records (guild_id, channel_id, message_id, kind, revision, body, "
                         f"segment_id) SELECT ?, ?, ?, 'message', 0, ?, ? WHERE NOT {_TOMBSTONED}",
                         [(gid, cid, p.mid, text, sid, p.mid) for p, text in run]).rowcount == len(run):
            c.execute("RELEASE rebuild_run")
            pending.extend(p for p, _ in run)
            return len(run)
        # Some are known already, or deleted: one by one, as the order says.
        c.execute("ROLLBACK TO rebuild_run")
        c.execute("RELEASE rebuild_run")
        _flush(c, pending)
        return sum(self._restore_line(c, gid, cid, sid, json.loads(text), text, now) for _, text in run)

    def _restore_line(self, c: sqlite3.Connection, gid: int, cid: int, sid: int, line: dict[str, Any], body: str,
                      now: float) -> int:
        kind = line.get("type") or "message"
        mid, rev = int(line["id"]), int(line.get("revision") or 0)
        if kind not in KINDS:
            return 0
        if kind != "tombstone" and c.execute(f"SELECT {_TOMBSTONED}", (mid,)).fetchone()[0]:
            return 0  # its deletion took the line out: the remote's copy is older than the rewrite
        if c.execute("INSERT OR IGNORE INTO records (guild_id, channel_id, message_id, kind, revision, body, "
                     "segment_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (gid, cid, mid, kind, rev if kind == "revision" else 0, body, sid)).rowcount == 0:
            return 0
        self._apply(c, gid, cid, kind, line, now)
        return 1

    def _apply(self, c: sqlite3.Connection, gid: int, cid: int, kind: str, line: dict[str, Any], now: float) -> None:
        mid = int(line["id"])
        if kind == "message":
            self._restore_message(c, gid, cid, mid, line, now)
        elif kind == "revision":
            self._restore_revision(c, mid, line)
        else:
            self._restore_tombstone(c, gid, cid, mid, line)

    def _restore_message(self, c: sqlite3.Connection, gid: int, cid: int, mid: int, rec: dict[str, Any],
                         now: float) -> None:
        author = rec.get("author") or {}
        name = str(author.get("name") or "")
        if c.execute("INSERT OR IGNORE INTO messages (id, guild_id, channel_id, author_id, author_name, created_at, "
                     "edited_at, content, files, reply_to, revision, record, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
                     "?, ?, ?, 0, ?, ?)", (mid, gid, cid, int(author.get("id") or 0), name, rec.get("created_at") or "",
                                           rec.get("edited_at"), rec.get("content") or "", file_names(rec),
                                           int(rec["reply_to"]) if rec.get("reply_to") else None, "",
                                           now)).rowcount == 0:
            return  # already known (archived here before the rebuild): its state is newer than this line
        atts = rec.get("attachments") or []
        if atts:
            self._put_attachments(c, mid, cid, atts)
            for a in atts:
                if a.get("sha256") and (a.get("status") or "saved") == "saved":
                    sha = str(a["sha256"])
                    c.execute("INSERT OR IGNORE INTO blobs (sha256, size, path, state, created_at) VALUES (?, ?, ?, "
                              "'landed', ?)", (sha, int(a.get("size") or 0), blob_path(sha), now))

    def _restore_revision(self, c: sqlite3.Connection, mid: int, rev: dict[str, Any]) -> None:
        row = c.execute("SELECT m.revision FROM messages m WHERE m.id = ? AND m.deleted_at IS NULL", (mid,)).fetchone()
        if row is None or int(row[0]) >= int(rev.get("revision") or 0):
            return
        current = record_text(c, mid)
        if current is None:
            return
        changes = {k: v for k, v in rev.items() if k not in ("type", "id", "channel_id", "guild_id")}
        merged = {**json.loads(current), **changes}
        c.execute("UPDATE messages SET content = ?, edited_at = ?, revision = ?, record = ?, files = ? WHERE id = ?",
                  (merged.get("content") or "", merged.get("edited_at"), int(merged["revision"]), _dumps(merged),
                   file_names(merged), mid))
        if isinstance(changes.get("attachments"), list):  # an edit removed files: as ``add_revision`` left them
            files_removed(c, mid, changes["attachments"])

    def _restore_tombstone(self, c: sqlite3.Connection, gid: int, cid: int, mid: int, tomb: dict[str, Any]) -> None:
        """A message line next to its tombstone means HELIX_KEEP_DELETED kept it; a tombstone alone, that it went."""
        if c.execute("UPDATE messages SET deleted_at = ? WHERE id = ?", (tomb.get("deleted_at") or "", mid)).rowcount:
            return
        c.execute("INSERT INTO messages (id, guild_id, channel_id, author_id, author_name, created_at, content, "
                  "deleted_at, record, archived_at) VALUES (?, ?, ?, 0, '', '', '', ?, ?, ?)",
                  (mid, gid, cid, tomb.get("deleted_at") or "", _dumps(tomb), time.time()))


_FIRST = operator.itemgetter(0)
_TOMBSTONED = "EXISTS (SELECT 1 FROM records WHERE message_id = ? AND kind = 'tombstone')"
_INSERT_MESSAGES = ("INSERT OR IGNORE INTO messages (id, guild_id, channel_id, author_id, author_name, created_at, "
                    "edited_at, content, reply_to, files, archived_at, revision, record) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '')")


class Pending(list[Plain]):
    """Message lines waiting for the next flush, and how many flushed so far were known already."""

    def __init__(self) -> None:
        super().__init__()
        self.known = 0


def _flush(c: sqlite3.Connection, pending: Pending) -> None:
    """The messages and files of the new lines so far, in id order; a message already known (a
    deletion read earlier, or a second copy of its line) keeps its state, as ``INSERT OR IGNORE``
    one by one would leave it, and its line adds no files."""
    if not pending:
        return
    rows = sorted((p.row for p in pending), key=_FIRST)  # by id alone: the first copy of a line stays first
    c.execute("SAVEPOINT rebuild_flush")
    if c.executemany(_INSERT_MESSAGES, rows).rowcount == len(rows):
        fresh = pending  # the common case: every message is new, as the files of each line
    else:
        c.execute("ROLLBACK TO rebuild_flush")
        ids = [p.mid for p in pending]
        known = {r[0] for i in range(0, len(ids), _CHUNK) for r in c.execute(
            f"SELECT id FROM messages WHERE id IN ({','.join('?' * len(ids[i:i + _CHUNK]))})", ids[i:i + _CHUNK])}
        fresh = []
        for p in pending:
            if p.mid not in known:
                known.add(p.mid)
                fresh.append(p)
        c.executemany(_INSERT_MESSAGES, sorted((p.row for p in fresh), key=_FIRST))
        pending.known += len(pending) - len(fresh)
    c.execute("RELEASE rebuild_flush")
    c.executemany("INSERT OR REPLACE INTO attachments (id, message_id, channel_id, filename, size, content_type, "
                  "sha256, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [f for p in fresh for f in p.files])
    c.executemany("INSERT OR IGNORE INTO blobs (sha256, size, path, state, created_at) VALUES (?, ?, ?, 'landed', ?)",
                  [b for p in fresh for b in p.blobs])
    pending.clear()


def _restore_channel(c: sqlite3.Connection, manifest: dict[str, Any]) -> None:
    ch = manifest.get("channel") or {}
    cid, gid = int(ch["id"]), int(manifest["guild_id"])
    c.execute("INSERT INTO channels (id, guild_id, name, topic, type, parent_id, cursor, watched, updated_at) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
              "topic = excluded.topic, type = excluded.type, parent_id = excluded.parent_id, "
              "cursor = MAX(cursor, excluded.cursor)",
              (cid, gid, str(ch.get("name") or ""), ch.get("topic"), str(ch.get("type") or "text"),
               int(ch["parent_id"]) if ch.get("parent_id") else None, int(manifest.get("cursor") or 0),
               int(bool(manifest.get("watched"))), time.time()))
    if manifest.get("gone_at"):  # a thread Discord deleted: readable by nobody, as before the volume was lost
        c.execute("INSERT OR IGNORE INTO gone_threads (id, gone_at) VALUES (?, ?)", (cid, _when(manifest["gone_at"])))
    else:  # deleted while the rebuild ran, before its row was back: its manifest is still to say so
        c.execute("UPDATE channels SET manifest_dirty = manifest_dirty + 1 WHERE id = ? AND id IN "
                  "(SELECT id FROM gone_threads)", (cid,))


def _when(stamp: object) -> float:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return time.time()  # when matters less than that it was deleted
