"""What became of capture's uploads: the outbox worker's reports, and the catalogue kept true to them.

The catalogue says a file is archived (its blob ``landed``) only once the remote has it: ``!get``
fetches it from there, and a backup skips a file whose blob is queued or landed. An owner's drop
(``!outbox drop``) therefore leaves a blob not archived (``deleted``, the state of bytes the remote
does not hold: whatever brings them back queues them again, and the next backup of its channel
fetches it again from Discord), and frees the spool room it held at once. A segment or a
``channel.json`` dropped is the catalogue's own, and written again at the next flush.
"""

from __future__ import annotations

import asyncio

import structlog

from catalogue import BlobRow, Catalogue, blob_path
from runtime.group_commit import GroupCommit
from sync import Archive, ArchiveResult, NotFoundError, OutboxItem, SyncError

log = structlog.get_logger("helix.capture")
BLOB_KIND = "capture-blob"  # the outbox kind of attachments: content-addressed, so in no order
SEGMENT_KIND = "capture-segment"  # a segment's JSONL and its HTML transcript, one group
MANIFEST_KIND = "capture-manifest"  # a channel's channel.json


class Uploads:
    """The engine's side of the outbox worker's reports (it subscribes at its start)."""

    archive: Archive
    catalogue: Catalogue
    _room: asyncio.Event  # set when the spool may have room again
    _queued: tuple[int, int] | None  # (stamp, bytes) waiting in the outbox, as the catalogue last counted
    _landed_before_row: set[str]  # blobs whose landing was reported before their row was written
    _landings: GroupCommit[str, bool]

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
                    await self._delete_blob(sha)
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
            item = await self.archive.outbox.get(blob.outbox_id) if blob.outbox_id else None
            if item is not None and item.rel_path != blob.path:
                item = None  # another item's id: an outbox started afresh counts from 1 again
            if item is not None and item.state != "done":
                continue  # still on its way: its report will come
            if item is not None or await self._on_remote(blob):
                await self.catalogue.call("set_blob_state", blob.sha256, "landed", only_if="queued")
            else:
                await self._blob_dropped(blob.sha256, blob.outbox_id)

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

    async def _delete_blob(self, sha: str) -> None:
        try:
            await self.archive.service.delete(blob_path(sha))
        except NotFoundError:
            pass  # not there (yet): if it is still queued, its landing deletes it
        except SyncError as exc:
            log.warning("capture_blob_delete_failed", sha256=sha, error=exc.hint, action="retried at the next flush")
            return
        await self.catalogue.call("set_blob_state", sha, "deleted")
        log.info("capture_blob_deleted", sha256=sha)
