"""The catalogue's record of work in flight: a restart resumes the running backups and follows the edits
and deletions the watch had heard but not followed."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Collection

from catalogue.models import BackupRow


class BackupTables:
    conn: sqlite3.Connection

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # -- backups ------------------------------------------------------------------------------

    def start_backup(self, guild_id: int, channel_id: int, *, threads: bool, kind: str, requested_by: int | None,
                     reply: tuple[int, int] | None) -> tuple[BackupRow, bool]:
        """A new running backup of a channel, or the one already running (and False)."""
        with self._tx() as c:
            row = c.execute("SELECT * FROM backups WHERE channel_id = ? AND state = 'running'",
                            (channel_id,)).fetchone()
            if row is not None:
                return _backup(row), False
            bid = c.execute("INSERT INTO backups (guild_id, channel_id, threads, kind, state, requested_by, "
                            "reply_channel_id, reply_message_id, started_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, "
                            "?)", (guild_id, channel_id, int(threads), kind, requested_by,
                                   reply[0] if reply else None, reply[1] if reply else None, time.time())).lastrowid
            return _backup(c.execute("SELECT * FROM backups WHERE id = ?", (bid,)).fetchone()), True

    def set_backup_reply(self, backup_id: int, channel_id: int, message_id: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE backups SET reply_channel_id = ?, reply_message_id = ? WHERE id = ?",
                      (channel_id, message_id, backup_id))

    def backup_progress(self, backup_id: int, **counts: int) -> None:
        sets = ", ".join(f"{k} = {k} + ?" for k in counts)
        with self._tx() as c:
            c.execute(f"UPDATE backups SET {sets} WHERE id = ?", (*counts.values(), backup_id))

    def finish_backup(self, backup_id: int, state: str, error: str | None = None) -> BackupRow | None:
        """A catch-up that failed replaces the failed catch-ups of its channel before it: during a long
        outage they are retried every few minutes, and each would otherwise stay on record, pushing the
        backups people asked for out of ``!backup status``."""
        with self._tx() as c:
            c.execute("UPDATE backups SET state = ?, error = ?, finished_at = ? WHERE id = ? AND state = 'running'",
                      (state, error, time.time(), backup_id))
            if state == "failed":
                c.execute("DELETE FROM backups WHERE kind = 'catchup' AND state = 'failed' AND id < ? AND channel_id = "
                          "(SELECT channel_id FROM backups WHERE id = ? AND kind = 'catchup')", (backup_id, backup_id))
        return self.backup(backup_id)

    def backup(self, backup_id: int) -> BackupRow | None:
        row = self.conn.execute("SELECT * FROM backups WHERE id = ?", (backup_id,)).fetchone()
        return _backup(row) if row else None

    def backups(self, *, running: bool = False, limit: int = 20,
                channel_ids: Collection[int] | None = None) -> list[BackupRow]:
        """The latest backups, newest first; ``channel_ids``: only those channels' (what an asker may see)."""
        where, args = ["1"], []
        if running:
            where.append("state = 'running'")
        if channel_ids is not None:
            # One JSON parameter, not one per id: a server may have more channels than SQLite allows parameters.
            where.append("channel_id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(sorted(channel_ids)))
        sql = f"SELECT * FROM backups WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        return [_backup(r) for r in self.conn.execute(sql, (*args, limit))]

    def backed_up_channels(self, guild_id: int) -> list[int]:
        """Every channel of a server with a backup on record: the candidates ``!backup status`` filters."""
        rows = self.conn.execute("SELECT DISTINCT channel_id FROM backups WHERE guild_id = ?", (guild_id,))
        return [r[0] for r in rows]

    def backed_up_before(self, channel_id: int, backup_id: int) -> bool:
        """Whether a backup of the channel finished before this one, or its messages were archived
        before (a catalogue rebuilt from the remote has them, not the backups that made them):
        "nothing new" then means up to date, not an empty channel."""
        row = self.conn.execute("SELECT 1 FROM backups WHERE channel_id = ? AND id < ? AND state = 'done' "
                                "UNION ALL SELECT 1 FROM messages WHERE channel_id = ? LIMIT 1",
                                (channel_id, backup_id, channel_id)).fetchone()
        return row is not None

    # -- what the watch heard, until it is followed ----------------------------------------------

    def note_heard(self, events: list[tuple[str, str]], followed: list[int]) -> list[int]:
        """Rows for (kind, payload as JSON), in the order heard, and their numbers; the rows of events
        followed since (``followed``) go in the same commit."""
        with self._tx() as c:
            c.executemany("DELETE FROM heard WHERE seq = ?", [(seq,) for seq in followed])
            return [c.execute("INSERT INTO heard (kind, payload) VALUES (?, ?)", e).lastrowid for e in events]

    def heard_rows(self) -> list[tuple[int, str, str]]:
        """Every event kept and not yet followed, oldest first: (seq, kind, payload as JSON)."""
        return [(r[0], r[1], r[2]) for r in self.conn.execute("SELECT seq, kind, payload FROM heard ORDER BY seq")]

def _backup(r: sqlite3.Row) -> BackupRow:
    return BackupRow(r["id"], r["guild_id"], r["channel_id"], bool(r["threads"]), r["kind"], r["state"],
                     r["requested_by"], r["reply_channel_id"], r["reply_message_id"], r["scanned"], r["archived"],
                     r["files"], r["bytes"], r["missing"], r["too_big"], r["error"], r["started_at"],
                     r["finished_at"])
