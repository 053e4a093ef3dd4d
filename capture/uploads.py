"""What became of capture's uploads: the outbox worker's reports, and the catalogue kept true to them.

The catalogue says a file is archived (its blob ``landed``) only once the remote has it: ``!get``
fetches it from there, and a backup skips a file whose blob is queued or landed. An owner's drop
(``!outbox drop``) therefore leaves a blob not archived (``deleted``, the state of bytes the remote
does not hold: whatever brings them back queues them again, and the next backup of its channel
fetches it again from Discord), and frees the spool room it held at once. A segment or a
``channel.json`` dropped is the catalogue's own, and written again at the next flush.

The same bytes may be in several messages, one deleted while another is being archived. A page
holds its blobs from their check until its commit (``Holds``): the catalogue counts only committed
references, and bytes the page found on the remote already would otherwise be deleted under it. A
blob's delete and the check-then-queue of the same bytes take turns, and a copy posted again while
the delete is on its way is queued once it answered: queued before, the delete would take it along.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import structlog

from capture.download import Downloaded
from catalogue import BlobRow, Catalogue, blob_path
from runtime.group_commit import GroupCommit
from sync import Archive, ArchiveResult, NotFoundError, OutboxItem, SyncError

log = structlog.get_logger("helix.capture")
BLOB_KIND = "capture-blob"  # the outbox kind of attachments: content-addressed, so in no order
SEGMENT_KIND = "capture-segment"  # a segment's JSONL and its HTML transcript, one group
MANIFEST_KIND = "capture-manifest"  # a channel's channel.json


@dataclass
class Holds:
    """The blobs a page's records will name, held from their check until the page is committed or fails."""

    shas: Counter[str] = field(default_factory=Counter)
    open: bool = True  # a file that finishes after its page failed holds nothing: no commit will follow


@dataclass
class _Deleting:
    """A blob's delete on its way: who waits for its end, and copies of its bytes posted again meanwhile."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    again: list[tuple[Downloaded, int]] = field(default_factory=list)  # (the copy, its message id)


class Uploads:
    """The engine's side of the outbox worker's reports (it subscribes at its start), and the blobs'
    lifecycle around them: queued, held by pages, deleted."""

    archive: Archive
    catalogue: Catalogue
    _room: asyncio.Event  # set when the spool may have room again
    _queued: tuple[int, int] | None  # (stamp, bytes) waiting in the outbox, as the catalogue last counted
    _landed_before_row: set[str]  # blobs whose landing was reported before their row was written
    _landings: GroupCommit[str, bool]
    _blob_rows: GroupCommit[tuple[str, int, int | None], None]
    _blob_locks: dict[str, tuple[asyncio.Lock, list[int]]]  # sha256 -> its lock, its users
    _blob_holds: Counter[str]  # sha256 -> how many files of pages not committed yet name it
    _deleting: dict[str, _Deleting]  # sha256 -> its delete on its way

    async def archive_done(self, item: OutboxItem, result: ArchiveResult) -> None:
        if item.kind == BLOB_KIND:
            sha = item.rel_path.rsplit("/", 1)[-1]
            if not await self._landings.submit(sha):
                blob = await self.catalogue.call("blob", sha)
                if blob is None:  # landed before its row was written: that write marks it landed
                    self._landed_before_row.add(sha)
                elif blob.state == "queued":  # its row was written in between
                    await self.catalogue.call("set_blob_state", sha, "landed", only_if="queued")
                elif blob.state in ("doomed", "deleted"):  # deleted on Discord while uploading
                    await self._delete_blob(sha, landed=True)
            self._room.set()
        elif item.kind == SEGMENT_KIND and item.rel_path.endswith(".jsonl"):
            await self.catalogue.call("segment_landed", item.rel_path)

    async def archive_failed(self, item: OutboxItem, error: SyncError) -> None:
        self._room.set()

    async def archive_dropped(self, item: OutboxItem) -> None:
        if item.state == "done":
            return  # it landed: only its row was forgotten
        if item.kind == BLOB_KIND:
            await self._blob_dropped(item.rel_path.rsplit("/", 1)[-1], item.id)
        elif item.kind == SEGMENT_KIND and item.meta.get("segment_id"):
            # Its lines are committed and the cursor is past them: unwritten, the remote would lack them.
            await self.catalogue.call("segment_to_write", int(item.meta["segment_id"]))
        elif item.kind == MANIFEST_KIND:
            await self.catalogue.call("mark_manifest_dirty", int(item.rel_path.split("/")[2]))

    async def _blob_dropped(self, sha: str, outbox_id: int | None) -> None:
        self._counted(await self.catalogue.call("blob_dropped", sha, outbox_id))
        self._room.set()

    async def _reconcile_blobs(self) -> None:
        """Blobs still queued whose outcome never reached the catalogue (a kill before the report).

        A landed item keeps its outbox row for 30 days, so an item done is a blob landed. An item
        gone was dropped, or landed longer ago than that (or its outbox was moved aside, corrupt):
        the remote has the last word. A blob it lacks, or cannot answer for now, is not archived: a
        later backup fetches it again, and one upload too many costs less than a catalogue naming a
        file the remote does not have.
        """
        for blob in await self.catalogue.call("blobs", "queued"):
            state = await self._outcome(blob)
            if state == "landed":
                await self.catalogue.call("set_blob_state", blob.sha256, "landed", only_if="queued")
            elif state == "deleted":
                await self._blob_dropped(blob.sha256, blob.outbox_id)
            # "queued": still on its way, its report will come

    async def _outcome(self, blob: BlobRow) -> str:
        """Where bytes stand whose report may not have reached the catalogue: "queued" (the upload is on
        its way), "landed" (its outbox item is done, or the remote has them) or "deleted"."""
        item = await self.archive.outbox.get(blob.outbox_id) if blob.outbox_id else None
        if item is not None and item.rel_path != blob.path:
            item = None  # another item's id: an outbox started afresh counts from 1 again
        if item is not None and item.state != "done":
            return "queued"
        return "landed" if item is not None or await self._on_remote(blob) else "deleted"

    async def _on_remote(self, blob: BlobRow) -> bool:
        try:
            found = await self.archive.service.remote.stat(blob.path)
        except SyncError as exc:
            log.warning("capture_blob_unchecked", sha256=blob.sha256, error=exc.hint,
                        action="counted as not archived: the next backup of its channel fetches it again")
            return False
        return found is not None and not found.is_dir and found.size == blob.size

    def _counted(self, count: tuple[int, int]) -> None:
        if self._queued is None or count[0] > self._queued[0]:
            self._queued = count

    async def _blobs_landed(self, shas: list[str]) -> list[bool]:
        flags, count = await self.catalogue.call("blobs_landed", shas)
        self._counted(count)
        return flags

    # -- the same bytes in several messages -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _one_check_per_blob(self, sha: str) -> AsyncIterator[None]:
        """One check-then-queue (or delete) at a time for the same bytes; different files queue side by
        side (each queueing waits for its disk sync, and one at a time would make those the pace)."""
        lock, users = self._blob_locks.setdefault(sha, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._blob_locks[sha]

    async def _queue_blob(self, got: Downloaded, message_id: int) -> None:
        """Queue downloaded bytes for upload (the outbox takes the file) and record the blob as queued."""
        item = await self.archive.outbox.enqueue(got.path, blob_path(got.sha256), kind=BLOB_KIND,
                                                 meta={"message_id": message_id}, move=True,
                                                 sha256=got.sha256)  # hashed as it was written
        await self._blob_rows.submit((got.sha256, got.size, item.id))
        if got.sha256 in self._landed_before_row:  # its report came before this row
            self._landed_before_row.discard(got.sha256)
            await self.catalogue.call("set_blob_state", got.sha256, "landed", only_if="queued")

    async def _keep_or_queue(self, got: Downloaded, message_id: int, holds: Holds | None) -> bool:
        """Downloaded bytes: kept as the blob they already are, or queued; True when queued (now or
        once the delete on its way answered). Call with the bytes' lock (``_one_check_per_blob``)."""
        deleting = self._deleting.get(got.sha256)
        if deleting is not None:
            deleting.again.append((got, message_id))
            queued = True
        else:
            blob = await self.catalogue.call("blob", got.sha256)
            queued = blob is None or blob.state not in ("queued", "landed")
            if queued:
                await self._queue_blob(got, message_id)
            else:
                await asyncio.to_thread(got.path.unlink, True)
        self._hold(got.sha256, holds)
        return queued

    async def _reuse(self, sha: str, holds: Holds | None) -> bool:
        """Whether the bytes are queued or on the remote (and not on their way out): held then for the page."""
        async with self._one_check_per_blob(sha):
            if sha in self._deleting:
                return False
            blob = await self.catalogue.call("blob", sha)
            if blob is None or blob.state not in ("queued", "landed"):
                return False
            self._hold(sha, holds)
            return True

    def _hold(self, sha: str, holds: Holds | None) -> None:
        if holds is not None and holds.open:
            holds.shas[sha] += 1
            self._blob_holds[sha] += 1

    def _release(self, holds: Holds, sha: str) -> None:
        self._blob_holds[sha] -= holds.shas.pop(sha, 0)
        if self._blob_holds[sha] <= 0:
            del self._blob_holds[sha]

    @contextlib.asynccontextmanager
    async def _holding(self) -> AsyncIterator[Holds]:
        """The holds of one page of records: dropped if it fails, committed after it is."""
        holds = Holds()
        try:
            yield holds
        except BaseException:
            self._drop_holds(holds)
            raise
        await self._holds_committed(holds)

    async def _named_by_nothing(self, holds: Holds, doomed: Sequence[BlobRow], message_id: int) -> None:
        """Bytes a page fetched for a message that was deleted before they were recorded, doomed with
        nothing referring to them: the page lets go of them (its commit would archive them again), a
        copy waiting for a delete on its way is not queued after it, and they leave the remote as a
        deleted message's do (one still uploading once it lands) unless another page holds them."""
        for blob in doomed:
            async with self._one_check_per_blob(blob.sha256):
                self._release(holds, blob.sha256)
                if (busy := self._deleting.get(blob.sha256)) is not None:
                    mine = [got for got, mid in busy.again if mid == message_id]
                    busy.again[:] = [(got, mid) for got, mid in busy.again if mid != message_id]
                    for got in mine:
                        await asyncio.to_thread(got.path.unlink, True)
        for blob in doomed:
            await self._delete_blob(blob.sha256)

    def _drop_holds(self, holds: Holds) -> None:
        """The page failed: its blobs are held no more. A delete they put off is the next flush's
        (it deletes every doomed blob)."""
        holds.open = False
        for sha in list(holds.shas):
            self._release(holds, sha)

    async def _holds_committed(self, holds: Holds) -> None:
        """The page is committed: its records are the blobs' references now. One doomed meanwhile (the
        other message with the same bytes deleted) was spared its delete and is archived again."""
        holds.open = False
        try:
            for sha in await self.catalogue.call("which_doomed", sorted(holds.shas)) if holds.shas else ():
                async with self._one_check_per_blob(sha):
                    self._release(holds, sha)
                    await self._revive(sha)
        finally:
            self._drop_holds(holds)

    async def _revive(self, sha: str) -> None:
        """A doomed blob a committed record names: queued if its upload is still on its way, landed if
        the remote has it, else not archived (the next backup of its channel fetches it again). One
        whose delete is on its way is left to it: the page's copy is queued once it answered."""
        blob = await self.catalogue.call("blob", sha)
        if blob is None or blob.state != "doomed" or sha in self._deleting:
            return
        state = await self._outcome(blob)
        await self.catalogue.call("set_blob_state", sha, state, only_if="doomed")
        log.info("capture_blob_kept", sha256=sha, state=state)

    async def _delete_blob(self, sha: str, *, landed: bool = False) -> None:
        """Delete bytes nothing refers to any more from the remote; ``landed``: an upload of them was
        just reported landed (a delete already on its way may have started before, so it is waited for).

        Not while a page being archived holds them: its commit archives them again. The references are
        not counted again here: the catalogue dooms a blob in the same transaction that leaves no saved
        file naming it (a deletion, an edit removing files), and a file naming it later comes only from
        a page, which holds it until its commit revives it."""
        while landed and (busy := self._deleting.get(sha)) is not None:
            await busy.done.wait()
        async with self._one_check_per_blob(sha):
            if self._blob_holds[sha] or sha in self._deleting:
                return
            blob = await self.catalogue.call("blob", sha)
            if blob is None or blob.state not in ("doomed", "deleted"):
                if landed and blob is not None and blob.state == "queued":  # revived as its landing came
                    await self.catalogue.call("set_blob_state", sha, "landed", only_if="queued")
                return
            busy = self._deleting[sha] = _Deleting()
        removed = False
        try:
            await self.archive.service.delete(blob_path(sha))
            removed = True
        except NotFoundError:
            removed = True  # not there (yet): if it is still queued, its landing deletes it
        except SyncError as exc:
            log.warning("capture_blob_delete_failed", sha256=sha, error=exc.hint, action="retried at the next flush")
        finally:
            await self._delete_answered(sha, busy, blob.state if removed else None)

    async def _delete_answered(self, sha: str, busy: _Deleting, was: str | None) -> None:
        """``was``: the state the blob was deleted in, None if the delete failed. A copy posted meanwhile
        is queued now (the others are the same bytes)."""
        async with self._one_check_per_blob(sha):
            del self._deleting[sha]
            try:
                if busy.again:
                    got, message_id = busy.again[0]
                    await self._queue_blob(got, message_id)
                    for other, _ in busy.again[1:]:
                        await asyncio.to_thread(other.path.unlink, True)
                    log.info("capture_blob_posted_again", sha256=sha)
                elif was is not None and await self.catalogue.call("set_blob_state", sha, "deleted", only_if=was):
                    log.info("capture_blob_deleted", sha256=sha)
            finally:
                busy.done.set()
