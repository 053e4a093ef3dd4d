"""Capture: the engine as one unit to start and stop, with its backups, its watch and its flusher.

Whoever owns the Archive owns this too (``python -m bot run``, the simulated guild) and hands it
to the bot; the bot attaches its discord.py source once connected. The engine's own tasks are
started here, outside the bot, so they outlive a command and never hold up the bot: commands
only record a request (durable, in the catalogue) and wake the engine.

- Backups run ``HELIX_BACKUP_CONCURRENCY`` channels at once, oldest first from the channel's
  cursor; a backup that was running when the process died is resumed on the next start.
- Watched channels catch up from their cursor on start and after every gap in what Discord
  delivered, then every new message is archived as it arrives (``watching.py``); records are
  flushed every ``HELIX_WATCH_FLUSH_S`` and at a graceful stop. A catch-up pages the channel's
  threads (a forum's posts) too, as ``!backup #channel threads`` does.
- No backup runs while the catalogue is being rebuilt from the remote: without its cursors and
  known lines it would archive the whole history a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from capture.backup_wait import BackupCancelled, BackupWaits, Turns
from capture.ingest import Tally
from capture.settings import CaptureSettings
from capture.source import ChannelInfo, Source, SourceError
from capture.uploads import BLOB_KIND
from capture.watching import Watching
from catalogue import BackupRow, CatalogueError
from runtime.tasks import cancelled_by_stop, one_turn
from sync import Archive, SyncError

log = structlog.get_logger("helix.capture")
# Finished backups whose tallies are kept: a command that records its answer after its backup ended
# still needs the names of the files too big to keep. Older ones go, so a bot up for months does not
# hold one per backup it ever ran; their rows keep the counts.
FINISHED_TALLIES_KEPT = 64
ProgressListener = Callable[[BackupRow, Tally, bool], Any]


class Capture(BackupWaits, Watching):
    def __init__(self, settings: CaptureSettings, archive: Archive) -> None:
        super().__init__(settings, archive)
        self._catch_up_after: set[int] = set()  # watched channels to catch up once their running backup ends
        self._cancelled: set[int] = set()
        self._turns = Turns(settings.backup_concurrency)  # backups paging at once
        self._job_rows: dict[int, int] = {}  # channel id -> the backup its task runs
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: list[ProgressListener] = []
        self.tallies: dict[int, Tally] = {}  # backup id -> what it did so far, live (its row lags a page)
        self._rows: dict[int, BackupRow] = {}  # backup id -> its row, while it runs

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        # Backup ids belong to the catalogue opened now (a new volume counts from 1 again): nothing
        # counted for an earlier run may be taken for one of its backups.
        self.tallies.clear()
        self._rows.clear()
        self._gap()  # a start after a stop is a new run: what changed meanwhile is caught up again
        await self.catalogue.open()
        try:
            await asyncio.to_thread(self.downloader.sweep) if self.spool.exists() else None
            await self.downloader.open()
            self.archive.worker.subscribe(self)
            self.archive.worker.unordered(BLOB_KIND)
            await self.rewrite_pending()  # segments a crash left half-written go out first
            await self._reconcile_blobs()
            await self.follow_heard()  # what the last stop heard and had not followed goes first
        except BaseException:
            await self.downloader.close()
            await self.catalogue.close()
            raise
        for name, coro in (("scheduler", self._schedule()), ("live", self._consume_live()),
                           ("flusher", self._flush_every())):
            self._tasks.append(asyncio.create_task(coro, name=f"helix-capture-{name}"))

    async def close(self) -> None:
        """Stop the jobs (a running backup resumes at the next start), flush what is committed, close."""
        self._stop_looking_again()
        for task in [*self._jobs.values(), *self._tasks]:
            task.cancel()
        for task in [*self._jobs.values(), *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        with contextlib.suppress(CatalogueError):  # a catalogue that takes no write is said by the flush
            await self.keep_heard()
        try:
            await self.flush_all()
        except (SyncError, OSError, CatalogueError) as exc:
            log.warning("capture_final_flush_failed", error=str(exc), action="the records are flushed at next start")
        finally:
            self.archive.worker.unsubscribe(self)
            await self.downloader.close()
            await self.catalogue.close()

    async def __aenter__(self) -> Capture:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def attach(self, source: Source, *, gap: bool = False) -> None:
        """The bot's discord.py source, when connected or a server becomes available: resumes start then.

        ``gap``: Discord may not have delivered every event since the source was last attached (a new
        gateway session after an outage, a server back from being unavailable). Every watched channel
        is caught up again then, and until its catch-up ends no live message moves its cursor.
        """
        self.source = source
        if gap:
            self._gap()
        self._requests.put_nowait(None)

    def rebuilt(self) -> None:
        """The catalogue was rebuilt from the remote: the watched channels it brought back are caught up,
        and the edits and deletions heard meanwhile are followed again, now that it holds their messages."""
        self._gap()
        self._requests.put_nowait(None)
        while self._after_rebuild:
            self._live.put_nowait(self._after_rebuild.popleft())

    def subscribe(self, listener: ProgressListener) -> None:
        """``listener(backup, tally, finished)`` after each page of a backup and at its end."""
        self._listeners.append(listener)

    # -- backups ----------------------------------------------------------------------------------

    async def request_backup(self, info: ChannelInfo, *, threads: bool, requested_by: int | None,
                             reply: tuple[int, int] | None = None, kind: str = "backup") -> tuple[BackupRow, bool]:
        """Record a backup of a channel (durable) and wake the scheduler; False if one is already running."""
        await self.catalogue.call("upsert_channel", info.as_json())
        row, new = await self.catalogue.call("start_backup", info.guild_id, info.id, threads=threads, kind=kind,
                                             requested_by=requested_by, reply=reply)
        if new or info.id not in self._jobs:  # a row a stop left and nothing resumed (its channel was out of sight)
            self._requests.put_nowait(row)
        if not new and kind == "catchup":
            # the running backup may have paged before the gap, or not the threads: a catch-up follows it
            self._catch_up_after.add(info.id)
        return row, new

    async def cancel_backup(self, channel_id: int) -> BackupRow | None:
        running = [b for b in await self.catalogue.call("backups", running=True) if b.channel_id == channel_id]
        if not running:
            return None
        task = self._jobs.get(channel_id)
        if task is None:  # left running by a stop, not resumed yet: nothing to tell, or its next backup would stop
            return await self.catalogue.call("finish_backup", running[0].id, "cancelled")
        self._cancelled.add(channel_id)
        self._turns.leave(channel_id)  # one waiting for its turn ends now, told, and never runs
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait({task}, timeout=30)
        return await self.catalogue.call("backup", running[0].id)

    async def _schedule(self) -> None:
        while True:
            request = await self._requests.get()
            with one_turn(log, "capture_schedule"):
                try:
                    if request is not None:
                        self._spawn(request)
                    else:
                        await self._resume()
                except CatalogueError as exc:  # a moment of a full disk must not end the scheduling for good
                    log.warning("capture_schedule_failed", error=str(exc),
                                action="it is tried again at the next request")

    async def _resume(self) -> None:
        """Attached (or a server became available): resume what a stop or a crash left running, and
        catch watched channels up, once each channel can be seen again."""
        for row in reversed(await self.catalogue.call("backups", running=True)):
            if row.channel_id not in self._jobs and await self._info(row.channel_id) is not None:
                log.info("capture_backup_resumed", backup=row.id, channel=row.channel_id)
                self._spawn(row)
        for ch in await self.catalogue.call("channels", watched_only=True):
            info = await self._info(ch.id) if ch.id not in self._requested else None
            if info is not None:
                self._requested.add(ch.id)
                # its threads too: what was posted in them while Helix was down is caught up as well
                await self.request_backup(info, threads=True, requested_by=None, kind="catchup")

    def _spawn(self, row: BackupRow) -> None:
        running = self._jobs.get(row.channel_id)
        if running is not None:
            if self._job_rows.get(row.channel_id) != row.id:  # asked for as the one before ends: it follows
                running.add_done_callback(lambda _t: self._requests.put_nowait(row))
            return
        task = asyncio.create_task(self._run_backup(row), name=f"helix-backup-{row.channel_id}")
        self._jobs[row.channel_id] = task
        self._job_rows[row.channel_id] = row.id
        task.add_done_callback(lambda _t, cid=row.channel_id: self._ended(cid))

    def _ended(self, channel_id: int) -> None:
        self._jobs.pop(channel_id, None)
        self._job_rows.pop(channel_id, None)
        self._cancelled.discard(channel_id)  # a cancel that came as it ended: not for the channel's next backup

    async def spool_paused(self, tally: Tally) -> None:
        for row_id, known in list(self.tallies.items()):
            if known is tally and row_id in self._rows:
                row = self._rows[row_id]
                if row.reply_message_id is None:  # the command records its answer after the backup started
                    row = self._rows[row_id] = await self.catalogue.call("backup", row_id) or row
                await self._tell(row, tally, False)  # "paused", at once, not after the page

    async def _run_backup(self, row: BackupRow) -> None:
        # A backup resumed after a stop goes on from what its row counted: what the listeners and
        # ``tallies`` show is the whole backup, not this process's share of it.
        tally = self.tallies.setdefault(row.id, Tally(scanned=row.scanned, archived=row.archived, files=row.files,
                                                      bytes=row.bytes, missing=row.missing, too_big=row.too_big))
        self._rows[row.id] = row
        async with self._turns.turn(row.channel_id) as take_turn:
            state, error, lasting = "done", None, False
            try:
                row = await self._until_rebuilt(row, tally)  # holding no turn: the ones after it say they wait too
                if row.channel_id in self._cancelled:
                    raise BackupCancelled
                await take_turn()
                row = await self._until_rebuilt(row, tally)  # a rebuild begun while it waited for its turn
                if row.channel_id in self._cancelled:
                    raise BackupCancelled
                gaps = self._gaps  # a gap after this: what this pages may miss what Discord did not deliver
                info = await self._info(row.channel_id)
                if info is None:
                    raise SourceError("the channel is gone or Helix can no longer see it", lasting=True)
                channels = [] if info.type == "forum" else [row.channel_id]  # a forum's messages are its posts
                await self.catalogue.call("upsert_channel", info.as_json())
                if row.threads or info.type == "forum":
                    for thread in await self.source.threads(row.channel_id):  # type: ignore[union-attr]
                        await self.catalogue.call("upsert_channel", thread.as_json())
                        channels.append(thread.id)
                for channel_id in channels:
                    if not await self._page_through_unless_gone(row, channel_id, tally):
                        state = "cancelled"
                        break
                if info.type == "forum":  # no message of its own to flush: its channel.json names it all the same
                    await self.flush(row.channel_id)
                if row.kind == "catchup" and state == "done":
                    self._catch_up_failures.pop(row.channel_id, None)
                    if gaps == self._gaps:  # each thread paged too: live messages may move their cursors now
                        self._live_ok.update({row.channel_id, *channels})
                    else:
                        self._catch_up_after.add(row.channel_id)
            except asyncio.CancelledError:
                if cancelled_by_stop():
                    raise  # a stop: the row stays running and resumes at the next start
                state, error = "failed", "Helix was interrupted while backing it up: start it again"
                log.error("capture_backup_interrupted", backup=row.id, channel=row.channel_id)
            except BackupCancelled:
                state = "cancelled"
            except (SourceError, SyncError, OSError, CatalogueError) as exc:
                state, error, lasting = "failed", getattr(exc, "hint", None) or str(exc), getattr(exc, "lasting", False)
                log.warning("capture_backup_failed", backup=row.id, channel=row.channel_id, error=error)
            except Exception as exc:
                state, error = "failed", f"{type(exc).__name__}"
                log.exception("capture_backup_crashed", backup=row.id)
            self._cancelled.discard(row.channel_id)
            done = await self.catalogue.call("finish_backup", row.id, state, error)
            if state == "failed" and done is not None:
                # A page that failed half-way was counted as it went, never committed: the row holds what was.
                for name in ("scanned", "archived", "files", "bytes", "missing", "too_big"):
                    setattr(tally, name, getattr(done, name))
            log.info("capture_backup_finished", backup=row.id, state=state, scanned=tally.scanned,
                     archived=tally.archived, files=tally.files, bytes=tally.bytes)
            self._rows.pop(row.id, None)
            if row.kind == "catchup" and state == "failed" and not lasting:  # lost access: a new gap asks again
                self._catch_up_failed(row.channel_id)
            await self._tell(done or row, tally, True)
            finished = [k for k in self.tallies if k not in self._rows]
            for old in finished[:-FINISHED_TALLIES_KEPT]:
                del self.tallies[old]
        if row.channel_id in self._catch_up_after:
            self._catch_up_after.discard(row.channel_id)
            await self._catch_up(row.channel_id)

    async def _page_through(self, row: BackupRow, channel_id: int, tally: Tally) -> bool:
        """Every page after the channel's cursor, and the files of older messages whose upload an owner
        dropped; False when cancelled (what was committed stays)."""
        ch = await self.catalogue.call("channel", channel_id)
        with self._in_hand(channel_id):
            before = {n: getattr(tally, n) for n in ("files", "bytes", "missing")}
            await self.fetch_again(channel_id, tally)
            if changed := {n: getattr(tally, n) - was for n, was in before.items() if getattr(tally, n) != was}:
                await self.catalogue.call("backup_progress", row.id, **changed)
            return await self._pages(row, channel_id, tally, ch.cursor if ch else 0)

    async def _page_through_unless_gone(self, row: BackupRow, channel_id: int, tally: Tally) -> bool:
        """A thread deleted since the backup listed it holds nothing left to back up: the others still are."""
        try:
            return await self._page_through(row, channel_id, tally)
        except SourceError as exc:
            if channel_id == row.channel_id or not exc.gone:
                raise
            log.info("capture_thread_gone_meanwhile", backup=row.id, thread=channel_id, error=str(exc))
            return True

    async def _pages(self, row: BackupRow, channel_id: int, tally: Tally, cursor: int) -> bool:
        pages = self.source.history(channel_id, cursor)  # type: ignore[union-attr]
        # Closed on the way out (a cancel, a stop, a failure), so the source's prefetching stops with it.
        async with contextlib.aclosing(pages):  # type: ignore[type-var]
            async for page in pages:
                if row.channel_id in self._cancelled:
                    break
                before = (tally.scanned, tally.archived, tally.files, tally.bytes, tally.missing, tally.too_big)
                await self.ingest(page, tally, cursor_channel=channel_id)
                await self._follow_held(channel_id, {m.id for m in page})
                after = (tally.scanned, tally.archived, tally.files, tally.bytes, tally.missing, tally.too_big)
                names = ("scanned", "archived", "files", "bytes", "missing", "too_big")
                await self.catalogue.call("backup_progress", row.id,
                                          **{n: a - b for n, a, b in zip(names, after, before, strict=True)})
                await self.flush(channel_id, full=False)
                if row.reply_message_id is None:  # the command records its answer after the backup started
                    row = self._rows[row.id] = await self.catalogue.call("backup", row.id) or row
                await self._tell(row, tally, False)
        await self.flush(channel_id)
        return row.channel_id not in self._cancelled

    async def _tell(self, row: BackupRow, tally: Tally, finished: bool) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(row, tally, finished)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("capture_listener_failed")

