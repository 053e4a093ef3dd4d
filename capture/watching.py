"""The watch: Discord's live events for the channels a watch covers, and the gaps in them.

A watched channel's new messages, edits and deletions arrive here as they happen (``observe``) and
are archived in order by one consumer. Discord replays nothing it did not deliver, so every gap
(a start, a new gateway session, a server available again) is counted: a live message moves its
channel's cursor only once a catch-up that began after the last gap has paged that channel.
An edit or a deletion whose message is not in the catalogue yet (a backup or ``!archive`` holds it,
or a rebuild has not read it) is kept and followed again once it is.

Nothing heard is dropped for a moment's failure (a full disk, the outbox unable to take a file): a
live message that could not be archived is left to a catch-up of its watch, which pages it again
from the cursor it never moved, and an edit or a deletion is followed again later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import structlog

from capture.heard import KEPT, HeardKeeping
from capture.ingest import CaptureCore, Tally
from capture.live import files_left, threads_of, watch_covering
from capture.settings import CaptureSettings
from capture.source import ChannelInfo, MessageRecord, SourceError
from catalogue import BackupRow, CatalogueError
from runtime.tasks import cancelled_by_stop, one_turn
from sync import Archive, SyncError

log = structlog.get_logger("helix.capture")
AFTER_REBUILD_KEPT = 10_000  # edits and deletions kept to follow again once a rebuild ends
FAILED_KEPT = 10_000  # edits and deletions whose following failed, kept to follow again later
REBUILD_POLL_S = 1.0  # how often work waiting for a rebuild looks whether it ended


class Watching(CaptureCore, HeardKeeping):
    def __init__(self, settings: CaptureSettings, archive: Archive) -> None:
        super().__init__(settings, archive)
        self._keep_heard_init()
        self._requested: set[int] = set()  # watched channels whose catch-up was asked for since the last gap
        self._live_ok: set[int] = set()  # channels a catch-up paged since the last gap
        self._gaps = 0  # how many times Discord may have left events undelivered (see ``attach``)
        self._paging: Counter[int] = Counter()  # channel -> how many backups page it right now
        self._held: dict[int, list[tuple[str, Any]]] = {}  # channel -> its edits and deletions while paged
        # edits and deletions heard while the catalogue was being rebuilt, the newest kept
        self._after_rebuild: deque[tuple[str, Any]] = deque(maxlen=AFTER_REBUILD_KEPT)
        self._live: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._jobs: dict[int, asyncio.Task[None]] = {}  # channel id -> its running backup
        self._requests: asyncio.Queue[BackupRow | None] = asyncio.Queue()  # None: look for work to resume
        self._catch_up_failures: Counter[int] = Counter()  # channel -> its catch-ups failed in a row
        self._look_again: asyncio.TimerHandle | None = None  # when failed catch-ups are asked for again
        # edits and deletions whose following failed (the newest kept), followed again at the next look
        self._follow_again: deque[tuple[str, Any]] = deque(maxlen=FAILED_KEPT)
        self._follow_failures = 0  # edits and deletions failed in a row since one was followed

    async def request_backup(self, info: ChannelInfo, *, threads: bool, requested_by: int | None,
                             reply: tuple[int, int] | None = None, kind: str = "backup") -> tuple[BackupRow, bool]:
        raise NotImplementedError  # the engine's: a watch's catch-up is a backup

    async def _info(self, channel_id: int) -> ChannelInfo | None:
        try:
            return await self.source.channel_info(channel_id) if self.source else None
        except SourceError:
            return None

    def _gap(self) -> None:
        self._gaps += 1
        self._live_ok.clear()
        self._requested.clear()

    async def _catch_up(self, channel_id: int) -> None:
        ch = await self.catalogue.call("channel", channel_id)
        info = await self._info(channel_id) if ch is not None and ch.watched else None
        if info is not None:
            await self.request_backup(info, threads=True, requested_by=None, kind="catchup")

    def _catch_up_failed(self, channel_id: int) -> None:
        """A catch-up that failed (Discord's errors come with the outage that made the gap) is asked
        for again, later each time: what was posted in the gap must not wait for the next gap."""
        self._requested.discard(channel_id)
        self._catch_up_failures[channel_id] += 1
        in_s = self._look_again_after(self._catch_up_failures[channel_id])
        log.info("capture_catch_up_retry", channel=channel_id, failures=self._catch_up_failures[channel_id],
                 in_s=in_s)

    def _look_again_after(self, failures: int) -> float:
        """Look again (catch-ups asked for, edits and deletions followed) after the wait that ``failures``
        in a row earn, unless an earlier look is due: that one does it all. Returns the seconds left."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.settings.catch_up_retry_s * 2 ** min(failures - 1, 5)
        if self._look_again is None or self._look_again.when() > due:
            self._stop_looking_again()
            self._look_again = loop.call_at(due, self._looking_again)
        return round(self._look_again.when() - loop.time(), 1)

    def _looking_again(self) -> None:
        self._look_again = None
        self._requests.put_nowait(None)  # the scheduler asks for the watched channels not caught up
        while self._follow_again:
            self._live.put_nowait(self._follow_again.popleft())

    def _stop_looking_again(self) -> None:
        if self._look_again is not None:
            self._look_again.cancel()
            self._look_again = None

    async def archive_message(self, info: ChannelInfo, msg: MessageRecord,
                              tally: Tally | None = None) -> tuple[dict[str, Any], Tally]:
        """Archive one message now (``!archive``) and flush its channel; returns its record as archived.

        The caller may pass the tally to watch it fill while the files download (its progress message).
        """
        tally = tally if tally is not None else Tally()
        # The message is in hand from here, as a backup's page is: an edit or a deletion heard before
        # it is in the catalogue is held and followed after, not dropped as of a message never archived.
        with self._in_hand(info.id):
            # Until a rebuild has read the remote, the catalogue does not know the message may be there
            # already: archived now, it would be written to the remote a second time.
            while await self.catalogue.call("rebuilding"):
                tally.waiting = True
                await asyncio.sleep(REBUILD_POLL_S)
            tally.waiting = False
            # Asked again now that it is in hand: a deletion heard before found nothing to follow.
            fresh = await self.source.refetch(info.id, msg.id) if self.source is not None else msg
            if fresh is None:
                raise SourceError("That message was deleted on Discord meanwhile: there is nothing to archive.",
                                  gone=True)
            await self.catalogue.call("upsert_channel", info.as_json())
            await self.ingest([fresh], tally)
            await self._follow_held(info.id, {msg.id})
        await self.flush(info.id)
        return await self.catalogue.call("message", msg.id), tally

    @contextlib.contextmanager
    def _in_hand(self, channel_id: int) -> Iterator[None]:
        """While messages of the channel are fetched and not yet in the catalogue: its edits and
        deletions are held (``_follow_held`` follows those of the messages that made it)."""
        self._paging[channel_id] += 1
        try:
            yield
        finally:
            self._paging[channel_id] -= 1
            if self._paging[channel_id] <= 0:  # a thread may be paged by its own backup and its channel's
                del self._paging[channel_id]
                self._held.pop(channel_id, None)  # the rest were of messages known before: followed as they came

    async def watch(self, info: ChannelInfo, by: int | None) -> bool:
        """Watch a channel and catch it up since its last backup; False, and nothing done, if it is
        watched already (a second catch-up would only scan what the first one did)."""
        known = await self.catalogue.call("channel", info.id)
        if known is not None and known.watched:
            return False
        self._live_ok.discard(info.id)  # what was posted while it was not watched comes with the catch-up first
        await self.catalogue.call("upsert_channel", info.as_json())
        await self.catalogue.call("set_watched", info.id, True, by)
        await self.request_backup(info, threads=True, requested_by=by, kind="catchup")
        return True

    async def unwatch(self, channel_id: int) -> bool:
        ch = await self.catalogue.call("channel", channel_id)
        if ch is None or not ch.watched:
            return False
        self._live_ok.discard(channel_id)
        await self.catalogue.call("set_watched", channel_id, False)
        for known in [ch, *await threads_of(self.catalogue, channel_id)]:
            await self.flush(known.id)
        return True

    def observe(self, kind: str, payload: Any) -> None:
        """From the bot's event handlers: ``message`` (a MessageRecord), ``edit`` (channel id, message id,
        changes: ``attachments`` lists the files left by id) or ``delete``; returns at once. An edit or a
        deletion reaches the consumer once the catalogue keeps it (``heard.py``)."""
        if kind in KEPT:
            self._note(kind, payload)
        else:
            self._live.put_nowait((kind, payload))

    async def _consume_live(self) -> None:
        while True:
            kind, payload = await self._live.get()
            with one_turn(log, "capture_live", kind=kind):
                try:
                    if kind in KEPT and await self.catalogue.call("rebuilding"):
                        # Followed once the rebuild has read every segment, not before: a segment it reads later
                        # may hold the message's edits, which a deletion followed now would leave there.
                        self._after_rebuild.append((kind, payload))
                        continue
                    again = kind in KEPT and payload[0] in self._paging
                    if again:  # its message may be in a backup's hands, not in the catalogue yet: followed again then
                        self._held.setdefault(payload[0], []).append((kind, payload))
                    await self._handle_live(kind, payload)
                    if kind != "message":
                        self._follow_failures = 0
                    if kind in KEPT and not again:
                        self._heard_followed(payload)
                except (SyncError, OSError, SourceError, CatalogueError) as exc:
                    self._live_failed(kind, payload, exc)

    def _live_failed(self, kind: str, payload: Any, exc: Exception) -> None:
        """Said, and an edit or a deletion kept to follow again later (a deletion dropped would leave
        what a member deleted on the remote); a message is its watch's catch-up's (``_missed``)."""
        log.warning("capture_live_failed", kind=kind, error=getattr(exc, "hint", None) or str(exc))
        if kind != "message":
            self._follow_again.append((kind, payload))
            self._follow_failures += 1
            in_s = self._look_again_after(self._follow_failures)
            log.info("capture_live_retry", kind=kind, message_id=payload[1], in_s=in_s)

    async def _handle_live(self, kind: str, payload: Any) -> None:
        if kind == "message":
            await self._live_message(payload)
        elif kind == "edit":
            await self._follow_edit(*payload)
        elif kind == "forget":  # the files an edit removed, whose forgetting failed after the edit was recorded
            await self._forget_files(payload[2])
        elif kind == "delete":
            channel_id, message_id = payload
            deleted_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            gone = await self.catalogue.call("delete_message", message_id, deleted_at,
                                             keep=self.settings.keep_deleted)
            if not gone.known:
                return
            for blob in gone.doomed_blobs:
                if blob.state == "landed":
                    await self._delete_blob(blob.sha256)
            if not self.settings.keep_deleted:
                await self.rewrite_pending()  # the content leaves the remote now, not at the next flush
            log.info("capture_deleted", message_id=message_id, blobs_removed=len(gone.doomed_blobs))

    async def _live_message(self, msg: MessageRecord) -> None:
        watch_id: int | None = None
        try:
            covered = await watch_covering(self.catalogue, self._info, msg.channel_id)
            if covered is None:
                return
            watch_id = covered[0].id
            await self.ingest([msg], Tally())
        except (Exception, asyncio.CancelledError):
            if not cancelled_by_stop():  # a stop: the cursor did not move past it, the next start pages it
                await self._missed(msg.channel_id, watch_id)
            raise
        # Only once a catch-up paged this channel (a thread first seen live may hold older messages:
        # one Helix was added to late, say) and none runs: a cursor moved past messages not paged
        # yet would leave them out of every later catch-up.
        if watch_id in self._live_ok and msg.channel_id in self._live_ok and watch_id not in self._jobs:
            await self.catalogue.call("advance_cursor", msg.channel_id, msg.id)

    async def _missed(self, channel_id: int, watch_id: int | None) -> None:
        """A live message that could not be archived is, for its watch, a gap of its own: no live
        message moves a cursor of the watch until a catch-up asked for now has paged it (the message
        with it), and a catch-up already running lets none move either, since it may have paged the
        channel before the message came (counted as a gap, any running catch-up is followed by
        another). A catch-up that cannot be asked for now is asked for again later, as a failed one is."""
        self._live_ok.discard(channel_id)
        if watch_id is None:  # the catalogue could not say which watch covers it: all of them catch up
            self._gap()
            self._requests.put_nowait(None)
            return
        self._gaps += 1
        self._live_ok.discard(watch_id)
        try:
            await self._catch_up(watch_id)
        except (SyncError, OSError, SourceError, CatalogueError) as exc:
            log.warning("capture_catch_up_not_asked", channel=watch_id, error=getattr(exc, "hint", None) or str(exc))
            self._catch_up_failed(watch_id)

    async def _follow_edit(self, channel_id: int, message_id: int, changes: dict[str, Any]) -> None:
        removed: list[dict[str, Any]] = []
        if "attachments" in changes:  # Discord's list of the files left: mapped onto what was archived of them
            record = await self.catalogue.call("message", message_id)
            changes, removed = files_left(record, changes)
        revision = await self.catalogue.call("add_revision", message_id, changes, keep=self.settings.keep_deleted)
        if revision is None:
            return
        log.info("capture_revision", message_id=message_id, files_removed=len(removed))
        if revision.doomed_blobs:
            try:
                await self._forget_files(revision.doomed_blobs)
            except (SyncError, OSError, SourceError, CatalogueError) as exc:
                # the edit is recorded: followed again, it would no longer name the files it removed
                self._live_failed("forget", (channel_id, message_id, revision.doomed_blobs), exc)

    async def _forget_files(self, doomed: tuple[Any, ...]) -> None:
        """The bytes of files an edit removed leave the remote, as a deleted message's do: ``doomed`` holds
        the blobs (``BlobRow``) the catalogue doomed with the edit, those no other file refers to. One
        still uploading is deleted when it lands."""
        for blob in doomed:
            if blob.state == "landed":
                await self._delete_blob(blob.sha256)

    async def _follow_held(self, channel_id: int, ids: set[int]) -> None:
        """The edits and deletions that arrived while these messages were in a backup's (or ``!archive``'s)
        hands, now that the catalogue holds them (one it already knew at the time is followed again, which
        changes nothing)."""
        held = self._held.get(channel_id)
        if not held:
            return
        now = [e for e in held if e[1][1] in ids]
        self._held[channel_id] = [e for e in held if e[1][1] not in ids]
        for kind, payload in now:
            try:
                await self._handle_live(kind, payload)
                self._heard_followed(payload)
            except (SyncError, OSError, SourceError, CatalogueError) as exc:
                self._live_failed(kind, payload, exc)
            except Exception:
                log.exception("capture_live_crashed", kind=kind)

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.settings.watch_flush_s)
            with one_turn(log, "capture_flush"):
                try:
                    await self.flush_all()
                except (SyncError, OSError, CatalogueError) as exc:
                    log.warning("capture_flush_failed", error=str(exc))
