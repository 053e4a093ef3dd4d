"""The catalogue's blocking operations, each one transaction; they run only in its database thread.

Records come in as the archive format's JSON objects (docs/ARCHIVE_FORMAT.md): the catalogue
indexes what the remote holds, so it reads the same shape the remote's segments do.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

from catalogue._backups import BackupTables
from catalogue._packed import record_text, unpack_for
from catalogue._rebuild import RebuildTables
from catalogue._revisions import ROW_STATES, RevisionTables, blob_row, doom_unreferenced
from catalogue._schema import blob_path, file_names
from catalogue._schema import record_json as _dumps
from catalogue._search import SearchTables
from catalogue._segments import SegmentTables
from catalogue.models import BlobRow, CatalogueStats, ChannelRow, Deletion, Revision


class Tables(SegmentTables, BackupTables, SearchTables, RebuildTables, RevisionTables):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- channels -----------------------------------------------------------------------------

    def upsert_channel(self, info: dict[str, Any]) -> bool:
        """Record a channel's name, topic, type and parent; True when something changed."""
        old = self.channel(int(info["id"]))
        fields = (info.get("name") or "", info.get("topic"), info.get("type") or "text",
                  int(info["parent_id"]) if info.get("parent_id") else None)
        with self._tx() as c:
            if old is None:
                c.execute("INSERT INTO channels (id, guild_id, name, topic, type, parent_id, manifest_dirty, "
                          "updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                          (int(info["id"]), int(info["guild_id"]), *fields, time.time()))
                return True
            if (old.name, old.topic, old.type, old.parent_id) == fields:
                return False
            c.execute("UPDATE channels SET name = ?, topic = ?, type = ?, parent_id = ?, "
                      "manifest_dirty = manifest_dirty + 1, updated_at = ? WHERE id = ?",
                      (*fields, time.time(), old.id))
            return True

    def channel(self, channel_id: int) -> ChannelRow | None:
        row = self.conn.execute("SELECT * FROM channels WHERE id = ?", (channel_id,)).fetchone()
        return _channel(row) if row else None

    def channels(self, *, watched_only: bool = False, guild_id: int | None = None) -> list[ChannelRow]:
        where, args = ["1"], []
        if watched_only:
            where.append("watched = 1")
        if guild_id is not None:
            where.append("guild_id = ?")
            args.append(guild_id)
        rows = self.conn.execute(f"SELECT * FROM channels WHERE {' AND '.join(where)} ORDER BY id", args)
        return [_channel(r) for r in rows]

    def set_watched(self, channel_id: int, watched: bool, by: int | None = None) -> None:
        with self._tx() as c:
            c.execute("UPDATE channels SET watched = ?, watched_by = ?, updated_at = ? WHERE id = ?",
                      (int(watched), by, time.time(), channel_id))

    def advance_cursor(self, channel_id: int, message_id: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE channels SET cursor = MAX(cursor, ?), manifest_dirty = manifest_dirty + 1 "
                      "WHERE id = ?", (message_id, channel_id))

    def manifest_due(self, channel_id: int) -> int:
        """How many changes ``channel.json`` has not shown yet (0: it is current). Counted, not
        flagged, so that a change made while the manifest is written is not cleared with it
        (``manifest_queued``)."""
        row = self.conn.execute("SELECT manifest_dirty FROM channels WHERE id = ?", (channel_id,)).fetchone()
        return int(row[0]) if row else 0

    def manifest_queued(self, channel_id: int, due: int) -> None:
        """The manifest showing ``due`` changes is in the outbox: clean, unless more came since."""
        with self._tx() as c:
            c.execute("UPDATE channels SET manifest_dirty = 0 WHERE id = ? AND manifest_dirty = ?", (channel_id, due))

    def mark_manifest_dirty(self, channel_id: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE channels SET manifest_dirty = manifest_dirty + 1 WHERE id = ?", (channel_id,))

    def manifest_cursor(self, channel_id: int) -> int:
        """The cursor the remote may be told: every message up to it is in a segment. The local
        cursor also covers lines committed here and not in a segment yet; a catalogue lost with its
        volume takes those along, and a rebuild that trusted that cursor would never fetch them again."""
        row = self.conn.execute(
            "SELECT c.cursor, (SELECT MIN(r.message_id) FROM records r WHERE r.channel_id = c.id AND "
            "r.segment_id IS NULL AND r.kind = 'message') FROM channels c WHERE c.id = ?", (channel_id,)).fetchone()
        if row is None:
            return 0
        cursor, unclaimed = int(row[0]), row[1]
        return cursor if unclaimed is None else min(cursor, int(unclaimed) - 1)

    # -- messages -----------------------------------------------------------------------------

    def known_messages(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        return {r[0] for r in self.conn.execute(f"SELECT id FROM messages WHERE id IN ({marks})", list(ids))}

    def message(self, message_id: int) -> dict[str, Any] | None:
        text = record_text(self.conn, message_id)
        return json.loads(text) if text else None

    def add_messages(self, records: Sequence[dict[str, Any]], cursor: tuple[int, int] | None = None) -> int:
        """Archive message records (new ids only) and, in the same transaction, move a channel's cursor.

        Returns how many were new. A record already archived is skipped whole: the id is the key.
        """
        now = time.time()
        added = 0
        with self._tx() as c:
            for rec in records:
                mid = int(rec["id"])
                if c.execute("SELECT 1 FROM messages WHERE id = ?", (mid,)).fetchone():
                    continue
                gid, cid = int(rec["guild_id"]), int(rec["channel_id"])
                body = _dumps(rec)
                author = rec.get("author") or {}
                c.execute("INSERT INTO messages (id, guild_id, channel_id, author_id, author_name, created_at, "
                          "edited_at, content, files, reply_to, revision, record, archived_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                          (mid, gid, cid, int(author.get("id") or 0), str(author.get("name") or ""),
                           rec.get("created_at") or "", rec.get("edited_at"), rec.get("content") or "",
                           file_names(rec), int(rec["reply_to"]) if rec.get("reply_to") else None, "", now))
                self._put_attachments(c, mid, cid, rec.get("attachments") or [])
                c.execute("INSERT INTO records (guild_id, channel_id, message_id, kind, revision, body) "
                          "VALUES (?, ?, ?, 'message', 0, ?)", (gid, cid, mid, body))
                added += 1
            if cursor is not None:
                c.execute("UPDATE channels SET cursor = MAX(cursor, ?), manifest_dirty = manifest_dirty + 1 "
                          "WHERE id = ?", (cursor[1], cursor[0]))
        return added

    def _put_attachments(self, c: sqlite3.Connection, mid: int, cid: int, atts: Sequence[dict[str, Any]]) -> None:
        for a in atts:
            state = a.get("status") or ("saved" if a.get("sha256") else "missing")
            state = ROW_STATES.get(state, state)
            c.execute("INSERT OR REPLACE INTO attachments (id, message_id, channel_id, filename, size, content_type, "
                      "sha256, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (int(a["id"]), mid, cid, str(a.get("filename") or ""), int(a.get("size") or 0),
                       a.get("content_type"), a.get("sha256"), state))

    def add_revision(self, message_id: int, changes: dict[str, Any], *, keep: bool = True) -> Revision | None:
        """Record an edit as a new revision; None when the message is not archived or nothing changed.

        ``attachments`` in the changes lists every file the message still has: the others are removed
        and, unless ``keep``, their bytes doomed where nothing else refers to them (returned: the caller
        deletes those that landed). ``keep`` is the default so that a caller that never removes files (a
        backup recording an edit it paged) need not know the setting."""
        with self._tx() as c:
            row = c.execute("SELECT * FROM messages WHERE id = ? AND deleted_at IS NULL", (message_id,)).fetchone()
            text = record_text(c, message_id) if row is not None else None
            if text is None:
                return None
            current = json.loads(text)
            merged = {**current, **changes}
            if all(current.get(k) == merged.get(k) for k in changes):
                return None
            if changes.get("edited_at") and current.get("edited_at") and changes["edited_at"] < current["edited_at"]:
                return None  # older than what is archived: the message was fetched after this edit
            rev = int(row["revision"]) + 1
            merged["revision"] = rev
            revision = {"type": "revision", "id": current["id"], "channel_id": current["channel_id"],
                        "guild_id": current["guild_id"], "revision": rev, **changes}
            c.execute("UPDATE messages SET content = ?, edited_at = ?, revision = ?, record = ?, files = ? "
                      "WHERE id = ?",
                      (merged.get("content") or "", merged.get("edited_at"), rev, _dumps(merged), file_names(merged),
                       message_id))
            doomed: tuple[BlobRow, ...] = ()
            if "attachments" in changes:
                self._put_attachments(c, message_id, int(row["channel_id"]), changes["attachments"])
                doomed = self._files_removed(c, message_id, changes["attachments"], keep=keep)
            c.execute("INSERT OR IGNORE INTO records (guild_id, channel_id, message_id, kind, revision, body) "
                      "VALUES (?, ?, ?, 'revision', ?, ?)",
                      (row["guild_id"], row["channel_id"], message_id, rev, _dumps(revision)))
            return Revision(revision, doomed)

    def delete_message(self, message_id: int, deleted_at: str, *, keep: bool) -> Deletion:
        """Follow a deletion: a tombstone stays; unless ``keep``, content and now unreferenced blobs go."""
        with self._tx() as c:
            row = c.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None or row["deleted_at"] is not None:
                return Deletion(known=row is not None, doomed_blobs=(), dirty_segments=0)
            gid, cid = row["guild_id"], row["channel_id"]
            tomb = {"type": "tombstone", "id": str(message_id), "channel_id": str(cid), "guild_id": str(gid),
                    "deleted_at": deleted_at}
            if keep:
                c.execute("UPDATE messages SET deleted_at = ? WHERE id = ?", (deleted_at, message_id))
                c.execute("INSERT OR IGNORE INTO records (guild_id, channel_id, message_id, kind, revision, body) "
                          "VALUES (?, ?, ?, 'tombstone', 0, ?)", (gid, cid, message_id, _dumps(tomb)))
                return Deletion(known=True, doomed_blobs=(), dirty_segments=0)
            unpack_for(c, cid, message_id)  # its lines, to rewrite its segments without it
            dirty = c.execute("UPDATE segments SET dirty = dirty + 1 WHERE id IN (SELECT segment_id FROM records "
                              "WHERE message_id = ? AND segment_id IS NOT NULL)", (message_id,)).rowcount
            # The message's own line becomes its tombstone (in place, so its segment keeps its
            # order); its revisions' lines go.
            c.execute("DELETE FROM records WHERE message_id = ? AND kind = 'revision'", (message_id,))
            c.execute("UPDATE records SET kind = 'tombstone', body = ? WHERE message_id = ? AND kind = 'message'",
                      (_dumps(tomb), message_id))
            c.execute("UPDATE messages SET content = '', author_name = '', files = '', deleted_at = ?, record = ? "
                      "WHERE id = ?", (deleted_at, _dumps(tomb), message_id))
            shas = [r[0] for r in c.execute("SELECT DISTINCT sha256 FROM attachments WHERE message_id = ? "
                                            "AND state = 'saved' AND sha256 IS NOT NULL", (message_id,))]
            c.execute("UPDATE attachments SET state = 'removed', filename = '' WHERE message_id = ?", (message_id,))
            doomed = doom_unreferenced(c, shas)
            c.execute("UPDATE channels SET manifest_dirty = manifest_dirty + 1 WHERE id = ?", (cid,))
            return Deletion(known=True, doomed_blobs=doomed, dirty_segments=dirty)

    def attachment_blobs(self, attachment_ids: Sequence[int]) -> dict[int, str]:
        """The sha256 each attachment was already saved as (a message archived again needs no download)."""
        found: dict[int, str] = {}
        for start in range(0, len(attachment_ids), 900):  # under SQLite's limit of bound parameters
            chunk = list(attachment_ids[start:start + 900])
            marks = ",".join("?" * len(chunk))
            found.update(self.conn.execute(f"SELECT id, sha256 FROM attachments WHERE id IN ({marks}) "
                                           "AND state = 'saved'", chunk).fetchall())
        return found

    # -- blobs --------------------------------------------------------------------------------

    def blob(self, sha256: str) -> BlobRow | None:
        row = self.conn.execute("SELECT * FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        return blob_row(row) if row else None

    def add_blob(self, sha256: str, size: int, outbox_id: int | None) -> BlobRow:
        """Record a blob queued for upload (or revive a deleted one, whose bytes come back)."""
        self.add_blobs([(sha256, size, outbox_id)])
        found = self.blob(sha256)
        assert found is not None
        return found

    def add_blobs(self, rows: Sequence[tuple[str, int, int | None]]) -> tuple[int, int]:
        """``add_blob`` for several (sha256, size, outbox id) in one commit; then ``spool_count()``."""
        now = time.time()
        with self._tx() as c:
            c.executemany("INSERT INTO blobs (sha256, size, path, state, outbox_id, created_at) VALUES (?, ?, ?, "
                          "'queued', ?, ?) ON CONFLICT (sha256) DO UPDATE SET state = 'queued', outbox_id = "
                          "excluded.outbox_id", [(sha, size, blob_path(sha), oid, now) for sha, size, oid in rows])
        return self.spool_count()

    def blobs_landed(self, shas: Sequence[str]) -> tuple[list[bool], tuple[int, int]]:
        """Queued blobs marked landed, in one commit: which of them were queued; then ``spool_count()``."""
        with self._tx() as c:
            flags = [c.execute("UPDATE blobs SET state = 'landed' WHERE sha256 = ? AND state = 'queued'",
                               (sha,)).rowcount > 0 for sha in shas]
        return flags, self.spool_count()

    def blob_dropped(self, sha256: str, outbox_id: int | None) -> tuple[int, int]:
        """Its upload given up (its outbox item dropped): the blob is not on the remote, so ``deleted``
        (``add_blobs`` queues it again), while that item is still its own; then ``spool_count()``."""
        with self._tx() as c:
            c.execute("UPDATE blobs SET state = 'deleted' WHERE sha256 = ? AND outbox_id IS ? AND state IN "
                      "('queued', 'doomed')", (sha256, outbox_id))
        return self.spool_count()

    def segment_to_write(self, segment_id: int) -> None:
        """Its upload given up (its outbox items dropped): the next flush writes it again."""
        with self._tx() as c:
            c.execute("UPDATE segments SET dirty = dirty + 1 WHERE id = ?", (segment_id,))

    def spool_count(self) -> tuple[int, int]:
        """``queued_blob_bytes`` stamped with when it was true (a monotonic clock in nanoseconds): of
        answers that reach the event loop out of order, the newest is the one to keep."""
        return time.monotonic_ns(), self.queued_blob_bytes()

    def set_blob_state(self, sha256: str, state: str, *, only_if: str | None = None) -> bool:
        with self._tx() as c:
            sql = "UPDATE blobs SET state = ? WHERE sha256 = ?" + (" AND state = ?" if only_if else "")
            return c.execute(sql, (state, sha256, *((only_if,) if only_if else ()))).rowcount > 0

    def blobs(self, state: str | None = None) -> list[BlobRow]:
        sql, args = ("SELECT * FROM blobs WHERE state = ? ORDER BY sha256", (state,)) if state else (
            "SELECT * FROM blobs ORDER BY sha256", ())
        return [blob_row(r) for r in self.conn.execute(sql, args)]

    def which_doomed(self, shas: Sequence[str]) -> list[str]:
        """Those of the blobs a deletion left nothing referring to (``doomed``)."""
        doomed = "SELECT 1 FROM blobs WHERE sha256 = ? AND state = 'doomed'"
        return [sha for sha in shas if self.conn.execute(doomed, (sha,)).fetchone()]

    def blob_refs(self, sha256: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM attachments WHERE sha256 = ? AND state = 'saved'",
                                 (sha256,)).fetchone()[0]

    def queued_blob_bytes(self) -> int:
        """What waits in the outbox for its upload: the spool limit's measure, asked before each download."""
        return self.conn.execute("SELECT COALESCE(SUM(size), 0) FROM blobs WHERE state = 'queued'").fetchone()[0]

    # -- reading for tests, status and the next tools -----------------------------------------

    def stats(self) -> CatalogueStats:
        one = lambda sql: self.conn.execute(sql).fetchone()[0] or 0  # noqa: E731
        return CatalogueStats(
            channels=one("SELECT COUNT(*) FROM channels"), messages=one("SELECT COUNT(*) FROM messages"),
            attachments=one("SELECT COUNT(*) FROM attachments"),
            blobs=one("SELECT COUNT(*) FROM blobs WHERE state IN ('queued', 'landed')"),
            blob_bytes=one("SELECT SUM(size) FROM blobs WHERE state IN ('queued', 'landed')"),
            segments=one("SELECT COUNT(*) FROM segments"),
            unflushed=one("SELECT COUNT(*) FROM records WHERE segment_id IS NULL"),
            queued_blob_bytes=one("SELECT SUM(size) FROM blobs WHERE state = 'queued'"))

    def search(self, query: str, limit: int = 20) -> list[int]:
        """Message ids matching an FTS5 query, best first: the words index checked without ``!find``'s filters."""
        return [r[0] for r in self.conn.execute("SELECT rowid FROM message_text WHERE message_text MATCH ? "
                                                "ORDER BY rank LIMIT ?", (query, limit))]


def _channel(r: sqlite3.Row) -> ChannelRow:
    return ChannelRow(r["id"], r["guild_id"], r["name"], r["topic"], r["type"], r["parent_id"], r["cursor"],
                      bool(r["watched"]))
