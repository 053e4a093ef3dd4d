"""The catalogue's segments: lines fixed in one transaction before any file is written, so a rewrite is identical.

A segment's ``dirty`` counts the changes to its lines (a deletion, a dropped upload) that no write has
shown yet; a write clears only the changes it read, so one made while the segment is being written
leaves it to write again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time

from catalogue._packed import find_line, packed_lines
from catalogue.models import SegmentClaim, SegmentRow


class SegmentTables:
    conn: sqlite3.Connection

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # -- segments -----------------------------------------------------------------------------

    def claim_segment(self, channel_id: int, limit: int) -> SegmentClaim | None:
        """Fix the next segment of a channel from its unclaimed lines, in one transaction."""
        with self._tx() as c:
            rows = c.execute("SELECT seq, guild_id, message_id, body FROM records WHERE channel_id = ? AND "
                             "segment_id IS NULL ORDER BY seq LIMIT ?", (channel_id, limit)).fetchall()
            if not rows:
                return None
            gid = rows[0]["guild_id"]
            first, last = rows[0]["message_id"], rows[-1]["message_id"]
            base = f"discord/{gid}/{channel_id}"
            stem, n = f"{first}-{last}", 1
            while c.execute("SELECT 1 FROM segments WHERE path = ?", (f"{base}/messages/{stem}.jsonl",)).fetchone():
                n += 1
                stem = f"{first}-{last}.{n}"
            path, transcript = f"{base}/messages/{stem}.jsonl", f"{base}/transcript/{stem}.html"
            sid = c.execute("INSERT INTO segments (guild_id, channel_id, path, transcript, first_id, last_id, records, "
                            "state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'writing', ?)",
                            (gid, channel_id, path, transcript, first, last, len(rows), time.time())).lastrowid
            c.execute(f"UPDATE records SET segment_id = ? WHERE seq IN ({','.join('?' * len(rows))})",
                      (sid, *(r["seq"] for r in rows)))
            c.execute("UPDATE channels SET manifest_dirty = manifest_dirty + 1 WHERE id = ?", (channel_id,))
        return SegmentClaim(sid, gid, channel_id, path, transcript, first, last,
                            tuple(json.loads(r["body"]) for r in rows))

    def segment_claim(self, segment_id: int) -> SegmentClaim | None:
        """A segment's lines as committed now (after a crash, or a redaction, to write it again)."""
        seg = self.conn.execute("SELECT * FROM segments WHERE id = ?", (segment_id,)).fetchone()
        if seg is None:
            return None
        lines = packed_lines(self.conn, segment_id)
        if lines is None:
            lines = [json.loads(r[0]) for r in self.conn.execute("SELECT body FROM records WHERE segment_id = ? "
                                                                  "ORDER BY seq", (segment_id,))]
        return SegmentClaim(seg["id"], seg["guild_id"], seg["channel_id"], seg["path"], seg["transcript"],
                            seg["first_id"], seg["last_id"], tuple(lines))

    def segment_of(self, message_id: int) -> str | None:
        """The segment holding a message's line, once it is in one."""
        row = self.conn.execute("SELECT s.path FROM records r JOIN segments s ON s.id = r.segment_id WHERE "
                                "r.message_id = ? ORDER BY r.seq LIMIT 1", (message_id,)).fetchone()
        if row is not None:
            return row[0]
        channel = self.conn.execute("SELECT channel_id FROM messages WHERE id = ?", (message_id,)).fetchone()
        found = find_line(self.conn, channel[0], message_id, None) if channel else None
        if found is None:
            return None
        return self.conn.execute("SELECT path FROM segments WHERE id = ?", (found[0],)).fetchone()[0]

    def segments_to_write(self) -> list[int]:
        """Segments a crash left half-written, and segments a deletion made dirty."""
        return [sid for sid, _channel in self.segments_to_rewrite()]

    def segments_to_rewrite(self) -> list[tuple[int, int]]:
        """``segments_to_write`` with each one's channel (whose flush lock a rewrite takes)."""
        return [(r[0], r[1]) for r in self.conn.execute("SELECT id, channel_id FROM segments WHERE state = "
                                                        "'writing' OR dirty != 0 ORDER BY id")]

    def segment_rewrite(self, segment_id: int) -> tuple[SegmentClaim, int] | None:
        """A segment still to write, as committed now, and its ``dirty`` as its lines were read (for
        ``segment_written``); None once written (a flush got to it first)."""
        seg = self.conn.execute("SELECT state, dirty FROM segments WHERE id = ?", (segment_id,)).fetchone()
        if seg is None or (seg["state"] != "writing" and not seg["dirty"]):
            return None
        claim = self.segment_claim(segment_id)
        return (claim, int(seg["dirty"])) if claim is not None else None

    def segment_written(self, segment_id: int, sha256: str, size: int, records: int | None = None,
                        dirty: int = 0) -> None:
        """``records``: the lines written, which a redaction may have made fewer than the segment first held.
        ``dirty``: the segment's as its lines were read (0 for a new claim); a change since keeps it dirty.
        The channel's manifest lists the segment's hash and size, so it is due again."""
        with self._tx() as c:
            c.execute("UPDATE segments SET state = 'queued', dirty = CASE WHEN dirty = ? THEN 0 ELSE dirty END, "
                      "sha256 = ?, size = ?, records = COALESCE(?, records) WHERE id = ?",
                      (dirty, sha256, size, records, segment_id))
            c.execute("UPDATE channels SET manifest_dirty = manifest_dirty + 1 WHERE id = (SELECT channel_id FROM "
                      "segments WHERE id = ?)", (segment_id,))

    def segment_landed(self, path: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE segments SET state = 'landed' WHERE path = ? AND state = 'queued'", (path,))

    def segments(self, channel_id: int) -> list[SegmentRow]:
        return [SegmentRow(r["id"], r["path"], r["transcript"], r["first_id"], r["last_id"], r["records"],
                           r["state"], r["sha256"], r["size"])
                for r in self.conn.execute("SELECT * FROM segments WHERE channel_id = ? ORDER BY id", (channel_id,))]

    def unclaimed_channels(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT channel_id FROM records WHERE segment_id IS NULL")]

    def unclaimed(self, channel_id: int) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM records WHERE channel_id = ? AND segment_id IS NULL",
                                 (channel_id,)).fetchone()[0]
