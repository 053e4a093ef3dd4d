"""The heart of capture: messages in, blobs and committed records out, segments flushed from them.

Order of durability, for every message: its attachments are downloaded and queued in the outbox
(durable), then the message and its attachments' blob names are committed to the catalogue
(with the channel's cursor, in the same transaction), and only committed records are ever
written into segments. A kill -9 anywhere repeats at most a download or an upload, never a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from capture.download import Downloaded, Downloader, DownloadFailed, LinkDead, TooBig
from capture.segments import write_manifest, write_segment
from capture.settings import CaptureSettings
from capture.source import AttachmentRef, MessageRecord, Source, SourceError
from capture.uploads import Holds, Uploads
from catalogue import Catalogue, blob_path
from runtime.group_commit import GroupCommit
from runtime.units import human_size
from sync import Archive

log = structlog.get_logger("helix.capture")
SPOOL_POLL_S = 0.5
SPOOL_TELL_EVERY_S = 60.0


@dataclass
class Tally:
    """What one run archived, for the progress message."""

    scanned: int = 0
    archived: int = 0
    files: int = 0
    bytes: int = 0
    missing: int = 0
    failed: int = 0  # Discord's CDN failed to send them: the next backup of their channel tries again
    too_big: int = 0
    too_big_names: list[str] = field(default_factory=list)
    paused: bool = False  # waiting for room on the spool (HELIX_SPOOL_MAX_GB) right now
    waiting: bool = False  # not started: the catalogue is being rebuilt from the remote


class CaptureCore(Uploads):
    def __init__(self, settings: CaptureSettings, archive: Archive) -> None:
        self.settings = settings
        self.archive = archive
        data_dir = Path(archive.settings.data_dir)
        self.catalogue = Catalogue(data_dir)
        self.spool = data_dir / "spool"
        self.downloader = Downloader(self.spool)
        self.source: Source | None = None
        self._blob_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # sha256 -> its lock, its users
        self._blob_holds: Counter[str] = Counter()  # blobs that pages not committed yet name
        self._deleting = {}  # sha256 -> its delete on its way
        self._flush_locks: dict[int, asyncio.Lock] = {}
        self._in_flight_bytes = 0
        self._room = asyncio.Event()
        self.spool_pauses = 0  # how often the downloads waited for the spool, since start
        self._paused = False
        self._last_told_full = -SPOOL_TELL_EVERY_S
        self._told_full_at: float | None = None  # when the log last said the spool was full
        self._landed_before_row: set[str] = set()  # blobs whose landing was reported before add_blob
        # What waits in the outbox, as the catalogue last counted it (stamp, bytes): every write of a
        # blob's state answers with the new count, so no download has to ask for it.
        self._queued: tuple[int, int] | None = None
        # A backup's files finish side by side: their rows share commits (one disk sync per group).
        self._blob_rows: GroupCommit[tuple[str, int, int | None], None] = GroupCommit(self._add_blobs)
        self._landings: GroupCommit[str, bool] = GroupCommit(self._blobs_landed)

    async def _add_blobs(self, rows: list[tuple[str, int, int | None]]) -> list[None]:
        self._counted(await self.catalogue.call("add_blobs", rows))
        return [None] * len(rows)

    async def _spool_used(self, *, fresh: bool) -> int:
        """Bytes downloading or waiting for upload; ``fresh`` asks the catalogue (a deletion may have
        freed room no write of this class counted)."""
        if fresh or self._queued is None:
            self._counted(await self.catalogue.call("spool_count"))
        assert self._queued is not None
        return self._queued[1] + self._in_flight_bytes

    # -- attachments ------------------------------------------------------------------------------

    async def spool_paused(self, tally: Tally) -> None:
        """The run behind ``tally`` just started waiting for the spool; the engine tells its listeners."""

    async def _wait_for_room(self, size: int, tally: Tally) -> None:
        """Pause while what waits on the local disk would pass HELIX_SPOOL_MAX_GB (said once per pause)."""
        limit = self.settings.spool_max_bytes
        waited = False
        while True:
            used = await self._spool_used(fresh=False)
            if used and used + size > limit:  # full by the last count: the catalogue has the last word
                used = await self._spool_used(fresh=True)
            if used == 0 or used + size <= limit:
                tally.paused = False
                if waited and self._paused:
                    self._paused = False
                    if self._told_full_at is not None:
                        log.info("capture_spool_resumed", used=used, limit=limit)
                        self._told_full_at = None
                return
            if not tally.paused:
                tally.paused = True
                await self.spool_paused(tally)
            if not self._paused:  # the downloads waiting side by side are one pause
                self._paused = True
                self.spool_pauses += 1
            now = time.monotonic()
            # Told once, and again only after a while: with uploads freeing room file by file, the
            # spool hovers at its limit and every file would otherwise be a pause of its own.
            if self._told_full_at is None and now - self._last_told_full >= SPOOL_TELL_EVERY_S:
                self._told_full_at = self._last_told_full = now
                log.warning("capture_spool_full", used=used, limit=limit,
                            hint=f"The spool is full ({human_size(used)} of {human_size(limit)} downloading or "
                                 "waiting for upload): the backup pauses until uploads free it; raise "
                                 "HELIX_SPOOL_MAX_GB to keep more on disk.")
            waited = True
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SPOOL_POLL_S):
                    await self._room.wait()

    async def _save_attachment(self, msg: MessageRecord, att: AttachmentRef, tally: Tally, known: str | None,
                               downloads: asyncio.Semaphore, holds: Holds | None = None) -> dict[str, Any]:
        """``known``: the blob this attachment was saved as before, if it was (downloaded again if the
        remote may no longer have it). ``downloads`` bounds the downloads only: queueing a finished file
        waits for disk syncs, and holding a download's place meanwhile would leave the network idle.
        ``holds``: the page's, which holds the blob until the page is committed."""
        entry: dict[str, Any] = {"id": str(att.id), "filename": att.filename, "size": att.size,
                                 "content_type": att.content_type, "sha256": None, "blob": None}
        if known and await self._reuse(known, holds):
            return {**entry, "sha256": known, "blob": blob_path(known), "status": "saved"}
        limit = min(self.settings.max_attachment_bytes, self.settings.spool_max_bytes)
        if att.size > limit:
            if att.size > self.settings.spool_max_bytes:  # waiting for room would wait for ever
                log.warning("capture_bigger_than_spool", attachment_id=att.id, size=att.size,
                            limit=self.settings.spool_max_bytes,
                            hint=f"{att.filename} ({human_size(att.size)}) is bigger than the whole spool "
                                 f"({human_size(self.settings.spool_max_bytes)}): it is recorded, not "
                                 "downloaded; raise HELIX_SPOOL_MAX_GB above its size to archive it.")
            tally.too_big += 1
            tally.too_big_names.append(att.filename)
            return {**entry, "status": "too_big"}
        # Counted as in flight until the blob is queued (then the catalogue counts it): a gap between
        # the two would let another download start into space that is already taken.
        counted = 0
        try:
            async with downloads:
                await self._wait_for_room(att.size, tally)
                self._in_flight_bytes += att.size
                counted = att.size
                got = await self._download(msg, att, limit)
            if got == "too_big":
                tally.too_big += 1
                tally.too_big_names.append(att.filename)
                return {**entry, "status": "too_big"}
            if got in ("missing", "failed"):
                setattr(tally, got, getattr(tally, got) + 1)
                return {**entry, "status": got}
            assert isinstance(got, Downloaded)
            async with self._one_check_per_blob(got.sha256):  # the same bytes twice are one blob
                if await self._keep_or_queue(got, msg.id, holds):
                    tally.bytes += got.size
        finally:
            if counted:
                self._in_flight_bytes -= counted
                self._room.set()
        tally.files += 1
        return {**entry, "size": got.size, "sha256": got.sha256, "blob": blob_path(got.sha256), "status": "saved"}

    async def _download(self, msg: MessageRecord, att: AttachmentRef, limit: int) -> Downloaded | str:
        """Download, refreshing an expired link once through the source; else "missing" (Discord says
        the file is gone), "failed" (its CDN kept failing: a moment's outage says nothing of the file,
        so it is tried again at the next backup) or "too_big" (it turned out bigger than announced)."""
        url = att.url
        for attempt in range(3):
            try:
                return await self.downloader.fetch(url, limit)
            except TooBig:
                return "too_big"
            except LinkDead as dead:
                fresh = await self.source.refetch(msg.channel_id, msg.id) if self.source else None
                new = next((a for a in (fresh.attachments if fresh else ()) if a.id == att.id), None)
                if new is None or (new.url == url and attempt > 0):
                    log.warning("capture_attachment_missing", message_id=msg.id, attachment_id=att.id,
                                status=dead.status)
                    return "missing"
                url = new.url
            except DownloadFailed as exc:
                log.warning("capture_download_retry", message_id=msg.id, attachment_id=att.id, error=str(exc))
                await asyncio.sleep(0.5 * (attempt + 1))
        return "failed"

    async def fetch_again(self, channel_id: int, tally: Tally) -> None:
        """The files of the channel's archived messages the remote lacks: those whose upload an owner
        dropped, and those Discord's CDN failed to send, downloaded and queued again while Discord still
        has them (a message it no longer has is asked for again at the next backup). What became of a
        file the CDN failed to send goes into its message's line, and a segment holding it is written again;
        bytes fetched for a message deleted meanwhile leave the remote as a deleted message's do."""
        source = self.source
        lost = await self.catalogue.call("unarchived_files", channel_id) if source is not None else {}
        downloads = asyncio.Semaphore(self.settings.downloads_per_page)
        rewrite = False
        for message_id, attachment_ids in lost.items():
            try:
                msg = await source.refetch(channel_id, message_id)  # type: ignore[union-attr]
            except SourceError as exc:
                log.warning("capture_fetch_again_failed", message_id=message_id, error=str(exc))
                continue
            if msg is None:
                continue
            async with self._holding() as holds:  # a failed file's bytes are named once its line is rewritten
                entries = [await self._save_attachment(msg, att, tally, None, downloads, holds)
                           for att in msg.attachments if att.id in attachment_ids]
                rewritten, doomed = await self.catalogue.call("files_fetched_again", message_id, entries)
                rewrite |= rewritten
                if doomed:
                    await self._named_by_nothing(holds, doomed, message_id)
        if rewrite:
            await self.rewrite_pending()

    # -- messages ---------------------------------------------------------------------------------

    async def ingest(self, messages: Sequence[MessageRecord], tally: Tally, *,
                     cursor_channel: int | None = None) -> int:
        """Archive new messages (attachments first, then one catalogue commit); move the cursor if asked."""
        tally.scanned += len(messages)
        if not messages:
            return 0
        known = await self.catalogue.call("known_edits", [m.id for m in messages])
        await self._edited_meanwhile([m for m in messages if m.id in known], known)
        fresh = [m for m in messages if m.id not in known]
        limit = asyncio.Semaphore(self.settings.downloads_per_page)
        saved_before = await self.catalogue.call("attachment_blobs", [a.id for m in fresh for a in m.attachments])
        async with self._holding() as holds:  # until the commit, nothing else names the blobs these records will

            async def one(att_msg: MessageRecord, att: AttachmentRef) -> dict[str, Any]:
                return await self._save_attachment(att_msg, att, tally, saved_before.get(att.id), limit, holds)

            # The whole page's files at once (bounded): a channel posts one file per message, and one message
            # at a time would leave the downloads, the disk and the uploads waiting on each other.
            saved = iter(await asyncio.gather(*(one(m, a) for m in fresh for a in m.attachments)))
            records = [m.as_json([next(saved) for _ in m.attachments]) for m in fresh]
            cursor = (cursor_channel, max(m.id for m in messages)) if cursor_channel is not None else None
            added = await self.catalogue.call("add_messages", records, cursor)
        tally.archived += added
        return added

    async def _edited_meanwhile(self, messages: Sequence[MessageRecord], archived: dict[int, str | None]) -> None:
        """Archived messages paged again with a later edit than the archive shows (edited while Helix heard
        nothing: offline, a gap in what Discord delivered): the edit is recorded as a revision, as the
        watch records one it hears."""
        for m in messages:
            if m.edited_at and (archived[m.id] is None or m.edited_at > str(archived[m.id])):
                changes = {"edited_at": m.edited_at, "content": m.content, "embeds": list(m.embeds),
                           **({"mentions": m.extra["mentions"]} if m.extra.get("mentions") else {})}
                if await self.catalogue.call("add_revision", m.id, changes) is not None:
                    log.info("capture_revision", message_id=m.id, seen="paged again")

    # -- segments ---------------------------------------------------------------------------------

    async def flush(self, channel_id: int, *, full: bool = True) -> int:
        """Write the channel's committed, unclaimed lines into segments; with ``full=False`` whole segments only.

        Nothing while the catalogue is being rebuilt: its manifest would list only what the rebuild
        read so far and replace the remote's whole one, and a segment written now would sort before
        the older ones still to be read. The lines wait, committed, for the flush after it."""
        if await self.catalogue.call("rebuilding"):
            return 0
        lock = self._flush_locks.setdefault(channel_id, asyncio.Lock())
        written = 0
        async with lock:
            size = self.settings.segment_records
            while True:
                if not full and await self.catalogue.call("unclaimed", channel_id) < size:
                    break
                claim = await self.catalogue.call("claim_segment", channel_id, size)
                if claim is None:
                    break
                await write_segment(self.catalogue, self.archive.outbox, self.spool, claim)
                written += 1
            await write_manifest(self.catalogue, self.archive.outbox, self.spool, channel_id)
        return written

    async def flush_all(self) -> None:
        """Everything committed and not yet in a segment, and segments a crash or a deletion left to write
        (none while the catalogue is being rebuilt: see ``flush``)."""
        if await self.catalogue.call("rebuilding"):
            return
        await self.rewrite_pending()
        for blob in await self.catalogue.call("blobs", "doomed"):
            await self._delete_blob(blob.sha256)
        for channel_id in await self.catalogue.call("unclaimed_channels"):
            await self.flush(channel_id)
        for ch in await self.catalogue.call("channels"):
            async with self._flush_locks.setdefault(ch.id, asyncio.Lock()):  # not beside a segment half-written
                await write_manifest(self.catalogue, self.archive.outbox, self.spool, ch.id)

    async def rewrite_pending(self) -> None:
        """Segments a crash left half-written, or a deletion made dirty, written again. Each is read under
        its channel's flush lock: a flush that was writing it meanwhile has done so, or left it to write."""
        for segment_id, channel_id in await self.catalogue.call("segments_to_rewrite"):
            async with self._flush_locks.setdefault(channel_id, asyncio.Lock()):
                found = await self.catalogue.call("segment_rewrite", segment_id)
                if found is not None:
                    claim, dirty = found
                    await write_segment(self.catalogue, self.archive.outbox, self.spool, claim, dirty)
