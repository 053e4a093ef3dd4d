"""What a backup waits for before it pages: a rebuild of the catalogue, then its turn.

A backup asked for while the catalogue is rebuilt waits for the rebuild first, holding no turn, so
every backup asked for meanwhile says it waits for the rebuild, not only the first
``HELIX_BACKUP_CONCURRENCY`` ones. Then it waits for one of the turns (``Turns``), in the order asked.
``!backup cancel`` ends either wait at once: the backup is cancelled, told, and never pages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog

from capture.ingest import Tally
from capture.watching import REBUILD_POLL_S
from catalogue import BackupRow

log = structlog.get_logger("helix.capture")
WAIT_TOLD_POLLS = 10  # a waiting backup's message says how far the rebuild got every this many looks


class BackupCancelled(Exception):
    """``!backup cancel`` reached a backup before it paged anything (it waited for a rebuild or a turn)."""


class Turns:
    """At most ``n`` backups page at once; the others wait for a turn in the order they asked, and one
    cancelled while it waits leaves the line at once (a semaphore's waiter could not be told to)."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._line: dict[int, asyncio.Future[bool]] = {}  # channel id -> its wait, oldest first

    @contextlib.asynccontextmanager
    async def turn(self, channel_id: int) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        """``take``, to await a turn (``BackupCancelled`` when cancelled first); a turn taken goes back at the end."""
        held = False

        async def take() -> None:
            nonlocal held
            await self._take(channel_id)
            held = True

        try:
            yield take
        finally:
            if held:
                self._give_back()

    def leave(self, channel_id: int) -> bool:
        """The channel's backup leaves the line (``take`` raises ``BackupCancelled``); False when it waits for none."""
        waiting = self._line.pop(channel_id, None)
        if waiting is None or waiting.done():
            return False
        waiting.set_result(False)
        return True

    async def _take(self, channel_id: int) -> None:
        if self._free and not self._line:
            self._free -= 1
            return
        waiting = self._line[channel_id] = asyncio.get_running_loop().create_future()
        try:
            handed = await waiting
        except asyncio.CancelledError:  # a stop
            if self._line.get(channel_id) is waiting:
                del self._line[channel_id]
            if waiting.done() and not waiting.cancelled() and waiting.result():
                self._give_back()  # handed a turn as it stopped: the next one takes it
            raise
        if not handed:
            raise BackupCancelled

    def _give_back(self) -> None:
        while self._line:
            channel_id = next(iter(self._line))
            waiting = self._line.pop(channel_id)
            if not waiting.done():
                waiting.set_result(True)
                return
        self._free += 1


class BackupWaits:
    catalogue: Any
    _cancelled: set[int]
    _rows: dict[int, BackupRow]

    async def _tell(self, row: BackupRow, tally: Tally, finished: bool) -> None:
        raise NotImplementedError  # the engine's: its listeners

    async def _until_rebuilt(self, row: BackupRow, tally: Tally) -> BackupRow:
        """Wait while the catalogue is rebuilt from the remote; the progress message says so, and
        how far the rebuild got, now and then."""
        polls = 0
        while row.channel_id not in self._cancelled and await self.catalogue.call("rebuilding"):
            if not tally.waiting:
                log.info("capture_backup_waits_for_rebuild", backup=row.id, channel=row.channel_id)
            answered = row.reply_message_id is not None
            if not answered:  # the command records its answer after the backup started
                row = self._rows[row.id] = await self.catalogue.call("backup", row.id) or row
            if not tally.waiting or (row.reply_message_id is not None and not answered) or polls % WAIT_TOLD_POLLS == 0:
                tally.waiting = True
                await self._tell(row, tally, False)
            polls += 1
            await asyncio.sleep(REBUILD_POLL_S)
        tally.waiting = False
        return row
