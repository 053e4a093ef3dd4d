"""The durable outbox: every archive request is on disk before anyone is told it was accepted.

An item is a file Helix owns plus a row in SQLite (WAL) at ``<data_dir>/outbox.sqlite3``.
``enqueue`` always takes its own copy of the file into ``<data_dir>/outbox/<id>-<name>`` (or
moves it there with ``move=True``), fsyncs it and commits the row with ``synchronous=FULL``
before it returns: the caller's file may then change or vanish and the item still lands, and the
worker may delete its copy after upload without touching anything of the caller's. Enqueues
that arrive while one is being committed share the next commit (``runtime.group_commit``): a
backup's files each wait for one disk sync, not for everyone else's in turn.

All SQLite work runs in one dedicated thread that owns the connection (``ItemStore``), so the
event loop never waits on the disk. On open, items a crash left "uploading" go back to "pending",
and a database SQLite cannot read is moved aside (with the item files it referred to) with one
loud log line and a fresh one is started: a corrupt file must never become a crash loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from runtime.group_commit import GroupCommit
from runtime.sqlite_file import Corrupt
from sync._outbox.db import ItemStore, OutboxCounts, OutboxItem, connect, move_aside, sweep_orphans
from sync._outbox.files import take_file
from sync._outbox.lock import Held, take
from sync._paths import clean_relative
from sync.errors import PathError, SyncError

log = structlog.get_logger("helix.sync.outbox")
T = TypeVar("T")

STATES = ("pending", "uploading", "done", "failed")
OPEN_STATES = ("pending", "uploading", "failed")


class OutboxError(SyncError):
    """The outbox could not record or change an item (disk, permissions, unknown id)."""

    kind = "outbox"


class Outbox:
    """The queue of files waiting to be archived. ``await open()`` (or ``async with``) before use; ``close()`` once."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.db_path = self.data_dir / "outbox.sqlite3"
        self.files_dir = self.data_dir / "outbox"
        self._executor: ThreadPoolExecutor | None = None
        self._store: ItemStore | None = None
        self._listeners: list[Callable[[], None]] = []
        self.recovered = 0  # items put back to pending on open
        self.moved_aside: Path | None = None  # where a corrupt database went, if it did
        self._owner: int | None = None  # the lock file's descriptor while this process owns the outbox
        # Enqueues that arrive together (a backup's files) share one transaction and one disk sync.
        self._inserts: GroupCommit[Any, list[OutboxItem]] = GroupCommit(self._insert_groups)
        self._landings: GroupCommit[tuple[int, str], OutboxItem | None] = GroupCommit(self._mark_done)

    async def open(self) -> Outbox:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helix-outbox-db")
        try:
            await self._run(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            self._disown()
            raise
        if self.recovered:
            log.warning("outbox_recovered_uploads", items=self.recovered)
        return self

    def _open_sync(self) -> None:
        try:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            self._own()
            try:
                conn, self.recovered = connect(self.db_path)
            except Corrupt as exc:
                self.moved_aside, files_aside = move_aside(self.db_path, self.files_dir)
                log.error("outbox_database_corrupt_moved_aside", reason=str(exc), moved_to=str(self.moved_aside),
                          files_moved_to=str(files_aside) if files_aside else None,
                          action="started a fresh outbox; the old one's items are not retried, their files are kept")
                conn, self.recovered = connect(self.db_path)
            sweep_orphans(self.files_dir)
        except (OSError, sqlite3.Error) as exc:
            self._disown()
            raise self._unwritable(exc) from None
        self._store = ItemStore(conn, self.data_dir, self.files_dir)

    def _own(self) -> None:
        """One process per outbox (``lock.take`` says why)."""
        try:
            self._owner = take(self.data_dir)
        except Held as held:
            raise OutboxError(f"Another Helix process (pid {held.pid}) is already using HELIX_DATA_DIR "
                              f"{self.data_dir}: stop it first, or give this one a data folder of its own.") from None

    def _disown(self) -> None:
        if self._owner is not None:
            os.close(self._owner)  # closing the descriptor releases the lock
            self._owner = None

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._run(self._store.close)
            self._store = None
        self._executor.shutdown(wait=False)  # idle by now: nothing to wait for on the loop
        self._executor = None
        self._disown()

    async def __aenter__(self) -> Outbox:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_listener(self, callback: Callable[[], None]) -> None:
        """``callback()`` runs on the loop after an enqueue or retry: how a worker learns of new work."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def _notify(self) -> None:
        for cb in list(self._listeners):
            try:
                cb()
            except Exception:
                log.exception("outbox_listener_failed")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise OutboxError("The outbox is not open: Helix is starting or shutting down; try again in a minute.")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _db(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call an ItemStore method in the database thread; database trouble becomes one sentence."""
        def call() -> Any:
            if self._store is None:
                raise OutboxError("The outbox is closed: Helix is shutting down; try again after the restart.")
            return getattr(self._store, method)(*args, **kwargs)
        try:
            return await self._run(call)
        except (OSError, sqlite3.Error) as exc:
            raise self._unwritable(exc) from None

    async def _insert_groups(self, groups: list[Any]) -> list[list[OutboxItem]]:
        return await self._db("insert_groups", groups)

    async def _mark_done(self, landed: list[tuple[int, str]]) -> list[OutboxItem | None]:
        return await self._db("mark_done", landed)

    def _unwritable(self, exc: BaseException) -> OutboxError:
        reason = getattr(exc, "strerror", None) or str(exc)
        full = getattr(exc, "errno", None) == errno.ENOSPC or "full" in reason.lower()
        fix = "free some space there" if full else "make HELIX_DATA_DIR point to a writable folder"
        return OutboxError(f"Helix cannot write its data directory {self.data_dir} ({reason}): {fix}.",
                           detail=str(exc))

    # -- the public API ------------------------------------------------------------------------

    async def enqueue(self, src: str | os.PathLike[str], rel_path: str, *, kind: str,
                      group: str | None = None, meta: dict[str, Any] | None = None,
                      move: bool = False, sha256: str | None = None) -> OutboxItem:
        """Record one archive request durably and return it: tell the user "queued as #N" only after this.

        ``sha256`` with ``move``: the file's hash, computed as it was written, spares reading it again.
        """
        items = await self.enqueue_many([(src, rel_path)], kind=kind, group=group, meta=meta, move=move,
                                        _sha256=sha256)
        return items[0]

    async def enqueue_many(self, files: Sequence[tuple[str | os.PathLike[str], str]], *, kind: str,
                           group: str | None = None, meta: dict[str, Any] | None = None,
                           move: bool = False, _sha256: str | None = None) -> list[OutboxItem]:
        """Record several files in ONE transaction (a ritual's PNG and JSON): all are queued, or none.

        Items upload in id order, so files enqueued together go out together. With several files
        and no ``group``, one is made up so the caller can find the set again (``group_items``).
        Raises PathError for a bad archive path or a missing file, OutboxError when the data
        directory cannot take the copy.
        """
        if not kind or len(kind) > 40:
            raise OutboxError("An outbox item needs a short kind such as 'ritual' or 'heartbeat'.")
        cleaned = [(Path(src), clean_relative(rel)) for src, rel in files]
        if not cleaned:
            return []
        if group is None and len(cleaned) > 1:
            group = secrets.token_hex(6)
        meta_json = json.dumps(meta or {})
        staged: list[tuple[Path, str, str, int]] = []
        try:
            for src, rel in cleaned:
                tmp = self.files_dir / f".incoming-{secrets.token_hex(8)}"
                try:
                    taken = await asyncio.to_thread(take_file, src, tmp, move, _sha256 if len(cleaned) == 1 else None)
                except OSError as exc:
                    raise self._unwritable(exc) from None
                if taken is None:
                    raise PathError.missing_file(src)
                staged.append((tmp, rel, *taken))
            items = await self._inserts.submit((staged, kind, group, meta_json))
        except BaseException:
            for tmp, *_ in staged:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            raise
        if move:  # a move across filesystems was a copy: the original goes only now, after the commit
            for src, _ in cleaned:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(src.unlink, True)
        for it in items:
            log.debug("outbox_enqueued", id=it.id, kind=kind, rel_path=it.rel_path, size=it.size, group=group)
        self._notify()
        return items

    async def get(self, item_id: int) -> OutboxItem | None:
        return await self._db("get", item_id)

    async def list(self, states: Iterable[str] = OPEN_STATES, limit: int = 25) -> list[OutboxItem]:
        """Items in the given states, oldest first (for ``!outbox``)."""
        wanted = [s for s in states if s in STATES] or ["pending"]
        marks = ",".join("?" * len(wanted))
        return await self._db("select", f"state IN ({marks})", (*wanted, int(limit)), "ORDER BY id LIMIT ?")

    async def group_items(self, group: str) -> list[OutboxItem]:
        """Every item enqueued with ``group`` (e.g. to tell when a ritual's PNG and JSON have both landed)."""
        return await self._db("select", "grp = ?", (group,))

    async def counts(self) -> OutboxCounts:
        return await self._db("counts")

    async def next_pending(self) -> OutboxItem | None:
        """The lowest-id pending item, due or not: the queue is strictly ordered."""
        found = await self._db("select", "state = 'pending'", (), "ORDER BY id LIMIT 1")
        return found[0] if found else None

    async def claim_next(self, kinds: frozenset[str] | None = None, *, more: int = 0,
                         more_kinds: frozenset[str] = frozenset()) -> tuple[OutboxItem | None, list[OutboxItem]]:
        """The lowest-id pending item, and it claimed (as ``claim``) when it is due and of ``kinds``
        (any kind when None), with up to ``more`` due items of ``more_kinds`` right behind it: the
        worker's one database call for all the uploads it starts at once."""
        return await self._db("claim_next", time.time(), kinds, more, more_kinds)

    async def claim(self, item_id: int) -> OutboxItem | None:
        """Mark a pending item uploading and count the attempt; None if it is no longer pending."""
        return await self._db("claim", item_id)

    async def mark_done(self, item_id: int, remote_path: str) -> OutboxItem | None:
        return await self._landings.submit((item_id, remote_path))

    async def mark_retry(self, item_id: int, error: str, next_attempt_at: float) -> OutboxItem | None:
        return await self._db("update", item_id, state="pending", last_error=error, next_attempt_at=next_attempt_at)

    async def requeue(self, item_id: int) -> OutboxItem | None:
        """Put an interrupted upload back to pending, due now (a graceful stop cut it short)."""
        return await self._db("update", item_id, only_if="uploading", state="pending", next_attempt_at=time.time())

    async def mark_failed(self, item_id: int, error: str, *, also_pending: bool = False) -> list[OutboxItem]:
        """Fail an item for good; with ``also_pending``, every pending item too (the remote refuses them all)."""
        where = "id = ? OR state = 'pending'" if also_pending else "id = ?"
        return await self._db("set_state_where", where, (item_id,), "failed", last_error=error)

    async def update_meta(self, item_id: int, **changes: Any) -> OutboxItem:
        """Merge keys into an item's meta (e.g. the progress message id, known only after "queued" was sent)."""
        item = await self._db("merge_meta", item_id, changes)
        if item is None:
            raise OutboxError(f"There is no outbox item #{item_id}: check the number with !outbox.")
        return item

    async def retry(self, which: int | str) -> list[OutboxItem]:
        """``retry(N)`` or ``retry("all")``: failed items go back to pending, waiting ones are due now.

        An item of a group (a ritual's image and its manifest) is retried with its whole group: the
        group means something only when every part of it lands, so retrying one part alone would
        leave the rest failed and whoever waits on the group (the ritual's message) waiting forever.

        A failed item that a later item of the same remote path replaces (in any state) is an older copy:
        landing now, it would undo the newer one (a segment rewritten without a deleted message, a newer
        ``channel.json``). It is dropped, logged as a drop is but not reported (``archive_dropped``):
        whoever waits on a path waits on its latest item (capture records a segment landed by its path, a
        blob's row names its latest item), and the report would only have capture write either again.
        """
        if which == "all":
            where, args = "state IN ('failed', 'pending')", ()
        elif isinstance(which, int) or (str(which).isascii() and str(which).isdigit()):
            where, args = ("(id = ? OR (grp IS NOT NULL AND grp = (SELECT grp FROM items WHERE id = ?))) "
                           "AND state IN ('failed', 'pending')", (int(which), int(which)))
        else:
            raise OutboxError(f"'{which}' is not an item number: use !outbox retry <number> or !outbox retry all.")
        items, replaced = await self._db("retry", where, args)
        for old, latest in replaced:
            log.warning("outbox_dropped", id=old.id, state=old.state, rel_path=old.rel_path, replaced_by=latest)
        if which != "all" and not items:
            if replaced:
                old, latest = next((r for r in replaced if r[0].id == int(which)), replaced[0])
                raise OutboxError(f"Outbox item #{old.id} was an older copy of `{old.rel_path}`, which #{latest} "
                                  "replaces: it was dropped, not retried.")
            item = await self.get(int(which))
            state = "does not exist" if item is None else f"is {item.state}"
            raise OutboxError(f"Outbox item #{which} {state}: only failed or waiting items can be retried.")
        if items:
            log.info("outbox_retry_requested", which=str(which), items=len(items))
            self._notify()
        return items

    async def drop(self, item_id: int) -> OutboxItem:
        """``drop_group``, answering with the item named."""
        return next(it for it in await self.drop_group(item_id) if it.id == item_id)

    async def drop_group(self, item_id: int) -> list[OutboxItem]:
        """Forget an item and every part of its group that has not landed, deleting their local copies:
        as for ``retry``, a group means something only whole. Nothing goes while one of them uploads.
        Returns them as they were, in id order; ``OutboxWorker.drop`` tells whoever waits on them."""
        items: list[OutboxItem] = await self._db("drop", item_id)
        if not items:
            raise OutboxError(f"There is no outbox item #{item_id}: check the number with !outbox.")
        if busy := [it.id for it in items if it.state == "uploading"]:
            raise OutboxError(f"Outbox item #{busy[0]} is uploading right now: wait for it to land or fail, "
                              "then drop it.")
        named = next(it for it in items if it.id == item_id)
        log.warning("outbox_dropped", id=item_id, state=named.state, rel_path=named.rel_path,
                    with_it=[it.id for it in items if it.id != item_id])
        return items


def remove_local(item: OutboxItem) -> None:
    """Delete an item's local copy (after it landed); a file already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        item.local_path.unlink()


__all__ = ["OPEN_STATES", "STATES", "Outbox", "OutboxCounts", "OutboxError", "OutboxItem", "remove_local"]
