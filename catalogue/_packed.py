"""Segments read back from the remote, kept whole until something needs their lines one by one.

A rebuild reads every segment on the remote; writing each of its lines as a row of ``records``
would store the archive's text once more, a row and two index entries per line, for lines that
almost never change again. So a segment read into the catalogue is kept as one row of ``packed``
(its text compressed with zlib, and the range of ids in it), and its lines become ``records``
rows only when a deletion must rewrite it (``unpack_for``). Meanwhile a message's current record
is found in its segment's text (``record_text``). Everything here runs in the catalogue's
database thread.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterator
from typing import Any

KINDS = ("message", "revision", "tombstone")


def pack(c: sqlite3.Connection, segment_id: int, channel_id: int, ids: tuple[int, int], packed: bytes) -> None:
    """Keep a segment whole: ``packed`` is its UTF-8 text compressed with zlib."""
    c.execute("INSERT INTO packed (segment_id, channel_id, min_id, max_id, body) VALUES (?, ?, ?, ?, ?)",
              (segment_id, channel_id, ids[0], ids[1], packed))


def unpacked_text(packed: bytes) -> str:
    return zlib.decompress(packed).decode("utf-8")


def lines(body: str | bytes) -> Iterator[tuple[int, str, int, str, dict[str, Any]]]:
    """The lines a segment's records hold (its text, or as packed), as the one-by-one rebuild
    records them: (id, kind, revision, text, object) of each line with an id and a kind the
    catalogue knows."""
    if isinstance(body, bytes):
        body = unpacked_text(body)
    for raw in body.split("\n"):
        text = raw.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
            kind = obj.get("type") or "message"
            mid = int(obj["id"])
            rev = int(obj.get("revision") or 0) if kind == "revision" else 0
        except (ValueError, TypeError, AttributeError, KeyError):
            continue
        if kind in KINDS:
            yield mid, kind, rev, text, obj


def packed_lines(c: sqlite3.Connection, segment_id: int) -> list[dict[str, Any]] | None:
    """A packed segment's lines (None when the segment is not packed)."""
    row = c.execute("SELECT body FROM packed WHERE segment_id = ?", (segment_id,)).fetchone()
    return None if row is None else [obj for *_, obj in lines(row[0])]


def find_line(c: sqlite3.Connection, channel_id: int, mid: int, kind: str | None = "message") -> tuple[int, str] | None:
    """The packed segment and text of a message's line (of ``kind``; of any kind when None)."""
    needle = str(mid)
    for sid, packed in c.execute("SELECT segment_id, body FROM packed WHERE channel_id = ? AND min_id <= ? "
                                 "AND max_id >= ? ORDER BY segment_id", (channel_id, mid, mid)).fetchall():
        body = unpacked_text(packed)
        if needle not in body:
            continue
        for found, found_kind, _, text, _ in lines("\n".join(t for t in body.split("\n") if needle in t)):
            if found == mid and (kind is None or found_kind == kind):
                return sid, text
    return None


def record_text(c: sqlite3.Connection, mid: int) -> str | None:
    """A message's current record as JSON text: its own column once an edit or a deletion changed
    it, else its line, in ``records`` or in its packed segment."""
    row = c.execute("SELECT m.record, m.channel_id, (SELECT r.body FROM records r WHERE r.message_id = m.id "
                    "AND r.kind = 'message' AND r.revision = 0) FROM messages m WHERE m.id = ?", (mid,)).fetchone()
    if row is None:
        return None
    if row[0]:
        return str(row[0])
    if row[2] is not None:
        return str(row[2])
    found = find_line(c, int(row[1]), mid)
    return found[1] if found else None


def unpack_for(c: sqlite3.Connection, channel_id: int, mid: int) -> None:
    """Turn every packed segment that may hold a line of ``mid`` into ``records`` rows, in their
    order, so that a deletion can find, rewrite and mark them as it does for any line."""
    for (sid,) in c.execute("SELECT segment_id FROM packed WHERE channel_id = ? AND min_id <= ? AND max_id >= ?",
                            (channel_id, mid, mid)).fetchall():
        unpack(c, sid)


def unpack(c: sqlite3.Connection, segment_id: int) -> None:
    row = c.execute("SELECT s.guild_id, s.channel_id, p.body FROM packed p JOIN segments s ON s.id = p.segment_id "
                    "WHERE p.segment_id = ?", (segment_id,)).fetchone()
    if row is None:
        return
    gid, cid, body = row
    # A line already recorded (the same line in two segments) stays where it is, as a rebuild
    # reading the lines one by one would have left it.
    c.executemany("INSERT OR IGNORE INTO records (guild_id, channel_id, message_id, kind, revision, body, segment_id) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  [(gid, cid, mid, kind, rev, text, segment_id) for mid, kind, rev, text, _ in lines(body)])
    c.execute("DELETE FROM packed WHERE segment_id = ?", (segment_id,))
