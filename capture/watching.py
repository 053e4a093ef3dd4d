"""The watch: Discord's live events for the channels a watch covers, and the gaps in them.

A watched channel's new messages, edits and deletions arrive here as they happen (``observe``) and
are archived in order by one consumer. Discord replays nothing it did not deliver, so every gap
(a start, a new gateway session, a server available again) is counted: a live message moves its
channel's cursor only once a catch-up that began after the last gap has paged that channel.
An edit or a deletion whose message is not in the catalogue yet (a backup holds it, or a rebuild
has not read it) is kept and followed again once it is.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

import structlog

from capture.ingest import CaptureCore, Tally
from capture.live import threads_of, watch_covering
from capture.settings import CaptureSettings
from capture.source import ChannelInfo, MessageRecord, SourceError
from catalogue import BackupRow, CatalogueError
from runtime.tasks import one_turn
from sync import Archive, SyncError

log = structlog.get_logger("helix.capture")
AFTER_REBUILD_KEPT = 10_000  # edits and deletions kept to follow again once a rebuild ends
REBUILD_POLL_S = 1.0  # how often work waiting for a rebuild looks whether it ended


class Watching(CaptureCore):
    def __init__(self, settings: CaptureSettings, archive: Archive) -> None:
        super().__init__(settings, archive)
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
        loop = asyncio.get_running_loop()
        due = loop.time() + self.settings.catch_up_retry_s * 2 ** min(self._catch_up_failures[channel_id] - 1, 5)
        if self._look_again is not None and self._look_again.when() <= due:
            return  # an earlier look asks for every watched channel not caught up, this one too
        self._stop_looking_again()
        self._look_again = loop.call_at(due, self._looking_again)
        log.info("capture_catch_up_retry", channel=channel_id, failures=self._catch_up_failures[channel_id],
                 in_s=round(due - loop.time(), 1))

    def _looking_again(self) -> None:
        self._look_again = None
        self._requests.put_nowait(None)  # the scheduler asks for the watched channels not caught up

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
        # Until a rebuild has read the remote, the catalogue does not know the message may be there
        # already: archived now, it would be written to the remote a second time.
        while await self.catalogue.call("rebuilding"):
            tally.waiting = True
            await asyncio.sleep(REBUILD_POLL_S)
        tally.waiting = False
        await self.catalogue.call("upsert_channel", info.as_json())
        await self.ingest([msg], tally)
        await self.flush(info.id)
        return await self.catalogue.call("message", msg.id), tally

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
        """From the bot's event handlers: ``message`` (a MessageRecord), ``edit`` or ``delete``; returns at once."""
        self._live.put_nowait((kind, payload))

    async def _consume_live(self) -> None:
        while True:
            kind, payload = await self._live.get()
            with one_turn(log, "capture_live", kind=kind):
                try:
                    if kind in ("edit", "delete") and payload[0] in self._paging:
                        # its message may be in a backup's hands, not in the catalogue yet: followed again once it is
                        self._held.setdefault(payload[0], []).append((kind, payload))
                    if kind in ("edit", "delete") and await self.catalogue.call("rebuilding"):
                        # its message may be in a segment the rebuild has not read yet: followed again after it
                        self._after_rebuild.append((kind, payload))
                    await self._handle_live(kind, payload)
                except (SyncError, OSError, SourceError, CatalogueError) as exc:
                    log.warning("capture_live_failed", kind=kind, error=getattr(exc, "hint", None) or str(exc))

    async def _handle_live(self, kind: str, payload: Any) -> None:
        if kind == "message":
            msg: MessageRecord = payload
            covered = await watch_covering(self.catalogue, self._info, msg.channel_id)
            if covered is None:
                return
            watch, _own = covered
            await self.ingest([msg], Tally())
            # Only once a catch-up paged this channel (a thread first seen live may hold older messages:
            # one Helix was added to late, say) and none runs: a cursor moved past messages not paged
            # yet would leave them out of every later catch-up.
            if watch.id in self._live_ok and msg.channel_id in self._live_ok and watch.id not in self._jobs:
                await self.catalogue.call("advance_cursor", msg.channel_id, msg.id)
        elif kind == "edit":
            _channel_id, message_id, changes = payload
            if await self.catalogue.call("add_revision", message_id, changes) is not None:
                log.info("capture_revision", message_id=message_id)
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

    async def _follow_held(self, channel_id: int, ids: set[int]) -> None:
        """The edits and deletions that arrived while these messages were in a backup's hands, now that
        the catalogue holds them (one it already knew at the time is followed again, which changes nothing)."""
        held = self._held.get(channel_id)
        if not held:
            return
        now = [e for e in held if e[1][1] in ids]
        self._held[channel_id] = [e for e in held if e[1][1] not in ids]
        for kind, payload in now:
            try:
                await self._handle_live(kind, payload)
            except (SyncError, OSError, SourceError, CatalogueError) as exc:
                log.warning("capture_live_failed", kind=kind, error=getattr(exc, "hint", None) or str(exc))
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
