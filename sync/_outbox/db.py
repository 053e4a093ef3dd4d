"""The outbox's database: its SQLite file (opened, checked, repaired) and the items in it.

Everything here blocks. ``ItemStore`` runs only in the outbox's one database thread, which owns
the connection (``files.py`` takes the files in, in worker threads). ``store.py`` is the async face of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.sqlite_file import connect_checked
from sync._outbox.files import fsync_dir

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    local_path TEXT NOT NULL,
    rel_path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'uploading', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    remote_path TEXT,
    grp TEXT,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS items_state_id ON items (state, id);
"""


_COLUMNS = ("id, kind, local_path, rel_path, sha256, size, state, attempts, next_attempt_at, last_error, "
            "created_at, updated_at, remote_path, grp, meta")


@dataclass(frozen=True)
class OutboxItem:
    """One archive request; ``id`` is what users see as #N. ``meta`` is the caller's, opaque here."""

    id: int
    kind: str
    local_path: Path
    rel_path: str
    sha256: str
    size: int
    state: str  # pending | uploading | done | failed
    attempts: int
    next_attempt_at: float  # unix time
    last_error: str | None  # the sentence for people, never raw rclone text
    created_at: float
    updated_at: float
    remote_path: str | None
    group: str | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    uploading: int
    failed: int
    done: int
    oldest_pending_age_s: float | None  # over pending and uploading items: how long the oldest has waited


DONE_KEPT_S = 30 * 86400  # how long a landed item's row is kept (for !outbox and "already landed")


def connect(db_path: Path) -> tuple[sqlite3.Connection, int]:
    """Open, check and migrate the database; return it and how many crashed uploads went back to pending.

    Raises Corrupt for a file to move aside, and sqlite3.OperationalError for trouble that moving
    would not fix (a read-only folder, a full disk, a lock held by another process).
    """
    recovered = 0

    def recover(conn: sqlite3.Connection) -> None:
        nonlocal recovered
        now = time.time()
        recovered = conn.execute(
            "UPDATE items SET state = 'pending', next_attempt_at = ?, updated_at = ? WHERE state = 'uploading'",
            (now, now)).rowcount
        # A long-lived bot archives forever: rows of items that landed long ago are history, not state.
        conn.execute("DELETE FROM items WHERE state = 'done' AND updated_at < ?", (now - DONE_KEPT_S,))

    conn = connect_checked(db_path, _SCHEMA, SCHEMA_VERSION, recover)
    return conn, recovered


def move_aside(db_path: Path, files_dir: Path) -> tuple[Path, Path | None]:
    """Rename the database (and its WAL) and its item files to ``*.corrupt-<UTC time>``; return where."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = db_path.with_name(f"{db_path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{db_path}{suffix}")
        if src.exists():
            os.replace(src, Path(f"{target}{suffix}"))
    # The item files go too: a fresh database would reuse their ids and could overwrite them.
    files_aside: Path | None = None
    if files_dir.exists() and any(files_dir.iterdir()):
        files_aside = files_dir.with_name(f"{files_dir.name}.corrupt-{stamp}")
        os.replace(files_dir, files_aside)
    files_dir.mkdir(parents=True, exist_ok=True)
    return target, files_aside


def sweep_orphans(files_dir: Path) -> None:
    """Delete half-copied files of enqueues that died before their commit: nobody was told they were queued.

    Numbered files without a row are kept: they may be the only copy of an item whose database
    was lost, and a few stray bytes cost less than a lost ritual.
    """
    for path in files_dir.glob(".incoming-*"):
        with contextlib.suppress(OSError):
            path.unlink()


def short_name(rel: str) -> str:
    """The archive name's last part, short enough for any filesystem once prefixed with the item id."""
    name = rel.rsplit("/", 1)[-1]
    return name if len(name.encode()) <= 120 else name[-60:]


class ItemStore:
    """The items table, through one connection used only by the thread that created this object."""

    def __init__(self, conn: sqlite3.Connection, data_dir: Path, files_dir: Path) -> None:
        self.conn = conn
        self.data_dir = data_dir
        self.files_dir = files_dir

    def close(self) -> None:
        self.conn.close()

    def _row(self, row: tuple) -> OutboxItem:
        (id_, kind, local, rel, sha, size, state, attempts, nxt, err, created, updated, remote, grp, meta) = row
        return OutboxItem(id_, kind, self.data_dir / local, rel, sha, size, state, attempts, nxt, err, created,
                          updated, remote, grp, json.loads(meta or "{}"))

    def select(self, where: str, args: Sequence[Any] = (), tail: str = "ORDER BY id") -> list[OutboxItem]:
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM items WHERE {where} {tail}", args).fetchall()
        return [self._row(r) for r in rows]

    def get(self, item_id: int) -> OutboxItem | None:
        found = self.select("id = ?", (item_id,))
        return found[0] if found else None

    def _by_ids(self, ids: Sequence[int]) -> list[OutboxItem]:
        return self.select(f"id IN ({','.join('?' * len(ids))})", ids)

    def insert_groups(self, groups: Sequence[tuple[Sequence[tuple[Path, str, str, int]], str, str | None, str]]
                      ) -> list[list[OutboxItem]]:
        """Add the rows of several enqueues (staged files, kind, group, meta each) and rename each
        staged file to ``<id>-<name>``, all in ONE transaction: one disk sync for all of them."""
        now = time.time()
        ids: list[list[int]] = []
        finals: list[Path] = []
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for staged, kind, group, meta in groups:
                ids.append([])
                for tmp, rel, sha, size in staged:
                    cur = self.conn.execute(
                        "INSERT INTO items (kind, local_path, rel_path, sha256, size, state, next_attempt_at, "
                        "created_at, updated_at, grp, meta) VALUES (?, '', ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                        (kind, rel, sha, size, now, now, now, group, meta))
                    item_id = int(cur.lastrowid or 0)
                    final = self.files_dir / f"{item_id}-{short_name(rel)}"
                    if final.exists():  # a file kept from a lost database: never overwrite it
                        final = self.files_dir / f"{item_id}-{os.urandom(3).hex()}-{short_name(rel)}"
                    os.replace(tmp, final)
                    finals.append(final)
                    self.conn.execute("UPDATE items SET local_path = ? WHERE id = ?",
                                      (str(final.relative_to(self.data_dir)), item_id))
                    ids[-1].append(item_id)
            fsync_dir(self.files_dir)
            self.conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            for final in finals:
                with contextlib.suppress(OSError):
                    final.unlink()
            raise
        found = {it.id: it for it in self._by_ids([i for one in ids for i in one])}
        return [[found[i] for i in one] for one in ids]

    def counts(self) -> OutboxCounts:
        by_state = dict(self.conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
        oldest = self.conn.execute(
            "SELECT MIN(created_at) FROM items WHERE state IN ('pending', 'uploading')").fetchone()[0]
        return OutboxCounts(by_state.get("pending", 0), by_state.get("uploading", 0), by_state.get("failed", 0),
                            by_state.get("done", 0), None if oldest is None else max(0.0, time.time() - oldest))

    def update(self, item_id: int, only_if: str | None = None, **values: Any) -> OutboxItem | None:
        """Set columns of one item (``only_if``: the state it must be in); None if it is not there (any more)."""
        values["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in values)
        where, args = "id = ?", [item_id]
        if only_if:
            where, args = "id = ? AND state = ?", [item_id, only_if]
        cur = self.conn.execute(f"UPDATE items SET {sets} WHERE {where}", (*values.values(), *args))
        return self.get(item_id) if cur.rowcount else None

    def claim_next(self, now: float, kinds: frozenset[str] | None, more: int = 0,
                   more_kinds: frozenset[str] = frozenset()) -> tuple[OutboxItem | None, list[OutboxItem]]:
        """The queue's head, and the items claimed: the head when it is due and of ``kinds`` (None:
        any kind), and when it is of ``more_kinds``, up to ``more`` due items of those kinds that
        follow it with nothing else between (what claiming one at a time would have taken)."""
        found = self.select("state = 'pending'", (), f"ORDER BY id LIMIT {1 + max(0, int(more))}")
        if not found:
            return None, []
        head = found[0]
        if head.next_attempt_at > now or (kinds is not None and head.kind not in kinds):
            return head, []
        run = [head]
        if head.kind in more_kinds:
            for item in found[1:]:
                if item.kind not in more_kinds or item.next_attempt_at > now:
                    break
                run.append(item)
        return head, self.claim_many([it.id for it in run])

    def claim(self, item_id: int) -> OutboxItem | None:
        claimed = self.claim_many([item_id])
        return claimed[0] if claimed else None

    def claim_many(self, ids: Sequence[int]) -> list[OutboxItem]:
        """Mark pending items uploading (one transaction); those no longer pending are left out."""
        marks = ",".join("?" * len(ids))
        with self._unsynced():
            rows = self.conn.execute(f"UPDATE items SET state = 'uploading', attempts = attempts + 1, updated_at = ? "
                                     f"WHERE id IN ({marks}) AND state = 'pending' RETURNING id",
                                     (time.time(), *ids)).fetchall()
        return self._by_ids([r[0] for r in rows]) if rows else []

    def mark_done(self, landed: Sequence[tuple[int, str]]) -> list[OutboxItem | None]:
        """Items landed at their remote paths, in one transaction; None for one that is gone."""
        now = time.time()
        with self._unsynced():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                hit = [self.conn.execute("UPDATE items SET state = 'done', remote_path = ?, last_error = NULL, "
                                         "updated_at = ? WHERE id = ?", (path, now, item_id)).rowcount > 0
                       for item_id, path in landed]
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        found = {it.id: it for it in self._by_ids([i for (i, _), ok in zip(landed, hit, strict=True) if ok])}
        return [found.get(item_id) for item_id, _ in landed]

    @contextlib.contextmanager
    def _unsynced(self) -> Iterator[None]:
        """A commit that need not wait for the disk: losing it in a power cut only repeats work
        (a claim lost is an item still pending; a landing lost is found on the remote at the next
        start, as after a kill). The WAL keeps commits in order, so no later synced commit can
        survive without it."""
        self.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            self.conn.execute("PRAGMA synchronous = FULL")

    def set_state_where(self, where: str, args: Sequence[Any], state: str, **values: Any) -> list[OutboxItem]:
        """Move every item matching ``where`` to ``state``; return them, oldest first."""
        ids = [r[0] for r in self.conn.execute(f"SELECT id FROM items WHERE {where} ORDER BY id", args)]
        values.update(state=state, updated_at=time.time())
        sets = ", ".join(f"{k} = ?" for k in values)
        marks = ",".join("?" * len(ids))
        self.conn.execute(f"UPDATE items SET {sets} WHERE id IN ({marks})", (*values.values(), *ids))
        return self._by_ids(ids)

    def retry(self, where: str, args: Sequence[Any]) -> tuple[list[OutboxItem], list[tuple[OutboxItem, int]]]:
        """Items matching ``where`` due now, but for a failed one that a later item of the same remote
        path replaces (in whatever state): that one is deleted, with its local copy. Returns the items
        due, oldest first, and each one deleted with the id of the latest item of its path."""
        ids = [r[0] for r in self.conn.execute(f"SELECT id FROM items WHERE {where} ORDER BY id", args)]
        latest = dict(self.conn.execute(
            "SELECT i.id, MAX(l.id) FROM items i JOIN items l ON l.rel_path = i.rel_path AND l.id > i.id "
            f"WHERE i.state = 'failed' AND i.id IN ({','.join('?' * len(ids))}) GROUP BY i.id", ids))
        replaced = self._by_ids(list(latest)) if latest else []
        self.conn.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(latest))})", list(latest))
        for it in replaced:
            with contextlib.suppress(OSError):
                it.local_path.unlink()
        due = [i for i in ids if i not in latest]
        return (self.set_state_where(f"id IN ({','.join('?' * len(due))})", due, "pending",
                                     next_attempt_at=time.time()), [(it, latest[it.id]) for it in replaced])

    def merge_meta(self, item_id: int, changes: dict[str, Any]) -> OutboxItem | None:
        item = self.get(item_id)
        return None if item is None else self.update(item_id, meta=json.dumps({**item.meta, **changes}))

    def drop(self, item_id: int) -> list[OutboxItem]:
        """Delete an item and the parts of its group that have not landed, and their local copies,
        unless one of them is uploading; return them as they were, in id order ([]: no such item)."""
        item = self.get(item_id)
        if item is None:
            return []
        found = self.select("id = ? OR (grp = ? AND state != 'done')", (item_id, item.group)) if item.group else [item]
        if all(it.state != "uploading" for it in found):
            self.conn.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(found))})", [it.id for it in found])
            for it in found:
                with contextlib.suppress(OSError):
                    it.local_path.unlink()
        return found
