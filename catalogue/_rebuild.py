"""Filling the catalogue back from the remote's segments: the remote is the source of truth.

A segment read back is recorded as already landed, with its lines claimed by it, so nothing is
written to the remote again; a line already known (same message, kind and revision) is skipped,
so reading the same segment twice, or a segment of a catalogue that was never lost, changes
nothing. Lines that were committed locally but not yet in a segment are never touched.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class RebuildTables:
    conn: sqlite3.Connection

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _put_attachments(self, c: sqlite3.Connection, mid: int, cid: int, atts: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _index(self, c: sqlite3.Connection, mid: int, rec: dict[str, Any]) -> None:
        raise NotImplementedError

    def restore_channel(self, manifest: dict[str, Any]) -> None:
        """A channel from its ``channel.json``: name, topic, type, parent, cursor, watched."""
        ch = manifest.get("channel") or {}
        cid, gid = int(ch["id"]), int(manifest["guild_id"])
        with self._tx() as c:
            c.execute("INSERT INTO channels (id, guild_id, name, topic, type, parent_id, cursor, watched, updated_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                      "topic = excluded.topic, type = excluded.type, parent_id = excluded.parent_id, "
                      "cursor = MAX(cursor, excluded.cursor)",
                      (cid, gid, str(ch.get("name") or ""), ch.get("topic"), str(ch.get("type") or "text"),
                       int(ch["parent_id"]) if ch.get("parent_id") else None, int(manifest.get("cursor") or 0),
                       int(bool(manifest.get("watched"))), time.time()))

    def restore_segment(self, guild_id: int, channel_id: int, path: str, transcript: str,
                        lines: Sequence[dict[str, Any]], sha256: str | None, size: int | None) -> int:
        """One segment's lines into the catalogue, as landed; returns how many lines were new."""
        return self.restore_segments([(guild_id, channel_id, path, transcript, lines, sha256, size)])

    def restore_segments(self, segments: Sequence[tuple[int, int, str, str, Sequence[dict[str, Any]], str | None,
                                                        int | None]]) -> int:
        """Several segments in one transaction (one disk sync for all of them); returns the new lines."""
        added = 0
        with self._tx() as c:
            for guild_id, channel_id, path, transcript, lines, sha256, size in segments:
                if lines:
                    added += self._restore_one(c, guild_id, channel_id, path, transcript, lines, sha256, size)
        return added

    def _restore_one(self, c: sqlite3.Connection, guild_id: int, channel_id: int, path: str, transcript: str,
                     lines: Sequence[dict[str, Any]], sha256: str | None, size: int | None) -> int:
        now = time.time()
        c.execute("INSERT OR IGNORE INTO channels (id, guild_id, updated_at) VALUES (?, ?, ?)",
                  (channel_id, guild_id, now))
        row = c.execute("SELECT id FROM segments WHERE path = ?", (path,)).fetchone()
        if row is None:
            sid = c.execute("INSERT INTO segments (guild_id, channel_id, path, transcript, first_id, last_id, records, "
                            "state, sha256, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'landed', ?, ?, ?)",
                            (guild_id, channel_id, path, transcript, int(lines[0]["id"]), int(lines[-1]["id"]),
                             len(lines), sha256, size, now)).lastrowid
        else:
            sid = row[0]
        added = 0
        for line in lines:
            added += self._restore_line(c, guild_id, channel_id, sid, line, now)
        top = max(int(line["id"]) for line in lines)
        c.execute("UPDATE channels SET cursor = MAX(cursor, ?) WHERE id = ?", (top, channel_id))
        return added

    def _restore_line(self, c: sqlite3.Connection, gid: int, cid: int, sid: int, line: dict[str, Any],
                      now: float) -> int:
        kind = line.get("type") or "message"
        mid, rev = int(line["id"]), int(line.get("revision") or 0)
        if kind not in ("message", "revision", "tombstone"):
            return 0
        body = _dumps(line)
        if c.execute("INSERT OR IGNORE INTO records (guild_id, channel_id, message_id, kind, revision, body, "
                     "segment_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (gid, cid, mid, kind, rev if kind == "revision" else 0, body, sid)).rowcount == 0:
            return 0
        if kind == "message":
            self._restore_message(c, gid, cid, mid, line, body, now)
        elif kind == "revision":
            self._restore_revision(c, mid, line)
        else:
            self._restore_tombstone(c, gid, cid, mid, line)
        return 1

    def _restore_message(self, c: sqlite3.Connection, gid: int, cid: int, mid: int, rec: dict[str, Any], body: str,
                         now: float) -> None:
        author = rec.get("author") or {}
        name = str(author.get("name") or "")
        if c.execute("INSERT OR IGNORE INTO messages (id, guild_id, channel_id, author_id, author_name, created_at, "
                     "edited_at, content, reply_to, revision, record, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                     "0, ?, ?)", (mid, gid, cid, int(author.get("id") or 0), name, rec.get("created_at") or "",
                                  rec.get("edited_at"), rec.get("content") or "",
                                  int(rec["reply_to"]) if rec.get("reply_to") else None, body, now)).rowcount == 0:
            return  # already known (archived here before the rebuild): its state is newer than this line
        atts = rec.get("attachments") or []
        if atts:
            self._put_attachments(c, mid, cid, atts)
            for a in atts:
                if a.get("sha256") and (a.get("status") or "saved") == "saved":
                    sha = str(a["sha256"])
                    c.execute("INSERT OR IGNORE INTO blobs (sha256, size, path, state, created_at) VALUES (?, ?, ?, "
                              "'landed', ?)", (sha, int(a.get("size") or 0), f"blobs/sha256/{sha[:2]}/{sha}", now))
        files = " ".join(str(a.get("filename") or "") for a in atts)
        c.execute("INSERT INTO message_text (rowid, content, author, files) VALUES (?, ?, ?, ?)",
                  (mid, rec.get("content") or "", name, files))

    def _restore_revision(self, c: sqlite3.Connection, mid: int, rev: dict[str, Any]) -> None:
        row = c.execute("SELECT record, revision FROM messages WHERE id = ? AND deleted_at IS NULL", (mid,)).fetchone()
        if row is None or int(row[1]) >= int(rev.get("revision") or 0):
            return
        changes = {k: v for k, v in rev.items() if k not in ("type", "id", "channel_id", "guild_id")}
        merged = {**json.loads(row[0]), **changes}
        c.execute("UPDATE messages SET content = ?, edited_at = ?, revision = ?, record = ? WHERE id = ?",
                  (merged.get("content") or "", merged.get("edited_at"), int(merged["revision"]), _dumps(merged), mid))
        self._index(c, mid, merged)

    def _restore_tombstone(self, c: sqlite3.Connection, gid: int, cid: int, mid: int, tomb: dict[str, Any]) -> None:
        """A message line next to its tombstone means HELIX_KEEP_DELETED kept it; a tombstone alone, that it went."""
        if c.execute("UPDATE messages SET deleted_at = ? WHERE id = ?", (tomb.get("deleted_at") or "", mid)).rowcount:
            return
        c.execute("INSERT INTO messages (id, guild_id, channel_id, author_id, author_name, created_at, content, "
                  "deleted_at, record, archived_at) VALUES (?, ?, ?, 0, '', '', '', ?, ?, ?)",
                  (mid, gid, cid, tomb.get("deleted_at") or "", _dumps(tomb), time.time()))
