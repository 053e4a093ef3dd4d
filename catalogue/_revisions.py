"""The catalogue's operations on messages it already holds: edits, files fetched again, and the
bytes nothing refers to any more once a file is gone, or that the remote turned out not to hold.

A mixin of ``Tables``: every operation is one transaction in the database thread.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from catalogue._packed import record_text, unpack_for
from catalogue._schema import file_names
from catalogue._schema import record_json as _dumps
from catalogue.models import BlobRow

# An attachment Discord's CDN failed to send (``failed`` in the archive format) is a ``missing`` row:
# the attachments table's CHECK predates it, and a catalogue already on a volume keeps that CHECK.
# Its message's record says which it is (``unarchived_files``).
ROW_STATES = {"failed": "missing"}


class RevisionTables:
    conn: sqlite3.Connection

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _put_attachments(self, c: sqlite3.Connection, mid: int, cid: int, atts: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def known_edits(self, ids: Sequence[int]) -> dict[int, str | None]:
        """The archived messages among ``ids``, each with the time of the last edit the archive shows
        (None: never edited): a backup paging them again sees which were edited since."""
        found: dict[int, str | None] = {}
        for start in range(0, len(ids), 900):  # under SQLite's limit of bound parameters
            chunk = list(ids[start:start + 900])
            marks = ",".join("?" * len(chunk))
            found.update(self.conn.execute(f"SELECT id, edited_at FROM messages WHERE id IN ({marks})", chunk))
        return found

    def _files_removed(self, c: sqlite3.Connection, message_id: int, left: Sequence[dict[str, Any]], *,
                       keep: bool) -> tuple[BlobRow, ...]:
        """The message's files an edit no longer lists (``left``: those it still has) are ``removed``, as a
        deleted message's are: a row still ``saved`` would count as a use of the bytes, so deleting the
        other message with the same bytes would leave them on the remote, and would be fetched again by
        every backup once the bytes are gone. Unless ``keep``, the bytes nothing else refers to are doomed."""
        shas = files_removed(c, message_id, left)
        return () if keep else doom_unreferenced(c, shas)

    def unarchived_files(self, channel_id: int) -> dict[int, set[int]]:
        """The channel's attachments whose bytes the remote lacks though Discord may still have them, as
        message id -> attachment ids: what its next backup fetches again. Those are saved files whose
        upload was dropped, and files Discord's CDN failed to send (a ``missing`` row whose record says
        ``failed``: rare, so their records are read one by one)."""
        found: dict[int, set[int]] = {}
        for message_id, attachment_id in self.conn.execute(
                "SELECT a.message_id, a.id FROM blobs b JOIN attachments a ON a.sha256 = b.sha256 "
                "WHERE b.state = 'deleted' AND a.state = 'saved' AND a.channel_id = ?", (channel_id,)):
            found.setdefault(message_id, set()).add(attachment_id)
        candidates = {r[0] for r in self.conn.execute(
            "SELECT a.message_id FROM attachments a JOIN messages m ON m.id = a.message_id WHERE a.channel_id = ? "
            "AND a.state = 'missing' AND m.deleted_at IS NULL", (channel_id,))}
        for message_id in sorted(candidates):
            for att in _failed(self.conn, message_id):
                found.setdefault(message_id, set()).add(int(att["id"]))
        return found

    def blobs_not_held(self, held: Iterable[str]) -> int:
        """After a rebuild, which takes every saved file's bytes for landed: those the remote's listing
        (``held``: the sha256 of every blob it holds) lacks are ``deleted``, as bytes the remote lacks, so
        the same bytes posted again are uploaded, not taken for archived, and ``unarchived_files`` names
        the saved files that need them. A blob the outbox took (``outbox_id``) is left as its upload says.
        The listing goes through a temporary table: it can hold more hashes than a statement takes."""
        with self._tx() as c:
            c.execute("CREATE TEMP TABLE IF NOT EXISTS held_blobs (sha256 TEXT PRIMARY KEY) WITHOUT ROWID")
            c.execute("DELETE FROM temp.held_blobs")
            c.executemany("INSERT OR IGNORE INTO temp.held_blobs (sha256) VALUES (?)", ((sha,) for sha in held))
            gone = c.execute("UPDATE blobs SET state = 'deleted' WHERE state = 'landed' AND outbox_id IS NULL "
                             "AND sha256 NOT IN (SELECT sha256 FROM temp.held_blobs)").rowcount
            c.execute("DROP TABLE temp.held_blobs")
        return gone

    def files_fetched_again(self, message_id: int,
                            entries: Sequence[dict[str, Any]]) -> tuple[bool, tuple[BlobRow, ...]]:
        """What became of files that Discord's CDN had failed to send (``entries``: their new archive
        entries, by id; others are left as they are): written into the message's own line, where the
        failure was, so the archive reads as if the first download had worked. Returns whether a segment
        already holding that line is to be written again (``segments_to_rewrite``), and the blobs doomed.

        A message deleted while its files downloaded has no line left to name them (its deletion made it
        a tombstone; one kept under HELIX_KEEP_DELETED still has it, and takes them): the bytes just
        queued for it are then doomed as a deleted message's are, unless another file refers to them."""
        by_id = {str(e["id"]): e for e in entries if e.get("status") != "failed"}
        if not by_id:
            return False, ()
        with self._tx() as c:
            row = c.execute("SELECT channel_id, record FROM messages WHERE id = ?", (message_id,)).fetchone()
            cid = int(row["channel_id"]) if row is not None else 0
            unpack_for(c, cid, message_id)
            line = c.execute("SELECT seq, body, segment_id FROM records WHERE message_id = ? AND kind = 'message'",
                             (message_id,)).fetchone()
            if row is None or line is None:
                return False, doom_unreferenced(c, sorted({str(e["sha256"]) for e in by_id.values()
                                                           if e.get("status") == "saved" and e.get("sha256")}))
            changed = _refreshed(json.loads(line["body"]), by_id)
            if changed is None:
                return False, ()
            c.execute("UPDATE records SET body = ? WHERE seq = ?", (_dumps(changed), line["seq"]))
            if row["record"]:  # an edit made its own copy of the record: the files change there too
                current = _refreshed(json.loads(row["record"]), by_id) or json.loads(row["record"])
                c.execute("UPDATE messages SET record = ?, files = ? WHERE id = ?",
                          (_dumps(current), file_names(current), message_id))
            fixed = [e for e in changed["attachments"] if str(e.get("id")) in by_id]
            self._put_attachments(c, message_id, cid, fixed)
            if line["segment_id"] is None:
                return False, ()
            c.execute("UPDATE segments SET dirty = dirty + 1 WHERE id = ?", (line["segment_id"],))
            c.execute("UPDATE channels SET manifest_dirty = manifest_dirty + 1 WHERE id = ?", (cid,))
            return True, ()


def files_removed(c: sqlite3.Connection, message_id: int, left: Sequence[dict[str, Any]]) -> list[str]:
    """``_files_removed`` without the dooming, shared with the rebuild, which reads the edit's revision
    line after the bytes already left the remote (or stayed, under HELIX_KEEP_DELETED): the bytes the
    removed files were saved as, for the caller to doom or not."""
    ids = [int(a["id"]) for a in left]
    gone = f"message_id = ? AND id NOT IN ({','.join('?' * len(ids))})"
    shas = [r[0] for r in c.execute(f"SELECT DISTINCT sha256 FROM attachments WHERE {gone} AND state = 'saved' "
                                    "AND sha256 IS NOT NULL", (message_id, *ids))]
    c.execute(f"UPDATE attachments SET state = 'removed', filename = '' WHERE {gone}", (message_id, *ids))
    return shas


def doom_unreferenced(c: sqlite3.Connection, shas: Sequence[str]) -> tuple[BlobRow, ...]:
    """Those of the bytes that no saved file refers to any more, marked ``doomed`` and returned as they
    were: a landed blob is deleted now, a queued one when it lands."""
    doomed = []
    for sha in shas:
        if c.execute("SELECT 1 FROM attachments WHERE sha256 = ? AND state = 'saved' LIMIT 1", (sha,)).fetchone():
            continue  # another file refers to the same bytes
        blob = c.execute("SELECT * FROM blobs WHERE sha256 = ?", (sha,)).fetchone()
        if blob is not None:
            doomed.append(blob_row(blob))
            c.execute("UPDATE blobs SET state = 'doomed' WHERE sha256 = ?", (sha,))
    return tuple(doomed)


def blob_row(r: sqlite3.Row) -> BlobRow:
    return BlobRow(r["sha256"], r["size"], r["path"], r["state"], r["outbox_id"])


def _failed(c: sqlite3.Connection, message_id: int) -> Iterator[dict[str, Any]]:
    text = record_text(c, message_id)
    for att in (json.loads(text).get("attachments") or []) if text else ():
        if att.get("status") == "failed":
            yield att


def _refreshed(record: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The record with its ``failed`` files replaced by their entries in ``by_id``; None if none was."""
    atts = record.get("attachments") or []
    new = [by_id.get(str(a.get("id")), a) if a.get("status") == "failed" else a for a in atts]
    return None if new == atts else {**record, "attachments": new}
