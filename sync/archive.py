"""The archive as one unit to start and stop: the sync service, its durable outbox and the worker.

Whoever runs Helix owns one of these and hands it to the bot: ``python -m bot run``, the demo,
the tests and the benchmark alike (``async with Archive(...) as archive, HelixBot(..., archive)``).
The bot never starts or closes it, so it outlives the Discord connection on both sides: queued
items keep landing while Discord is unreachable, and the outbox closes last.
"""

from __future__ import annotations

from sync._outbox.store import Outbox
from sync._outbox.worker import OutboxWorker
from sync._service import SyncService
from sync.settings import SyncSettings

STOP_CLEANUP_S = 1.0  # seconds a stop lets a cut-short upload's partial be deleted before rclone goes


class Archive:
    def __init__(self, settings: SyncSettings, *, stop_grace_s: float = 20.0) -> None:
        self.settings = settings
        self.stop_grace_s = stop_grace_s
        self.service = SyncService(settings)
        self.outbox = Outbox(settings.data_dir)
        self.worker = OutboxWorker(self.outbox, self.service)

    async def start(self) -> None:
        """Outbox first (it must accept requests even if rclone cannot start), then rclone, then the worker."""
        await self.outbox.open()
        try:
            await self.service.start()
        except BaseException:
            await self.outbox.close()
            raise
        self.worker.start()

    async def close(self, grace_s: float | None = None) -> None:
        """Reverse order: let the running upload finish (up to ``grace_s``), stop rclone, close the database."""
        try:
            await self.worker.stop(self.stop_grace_s if grace_s is None else grace_s)
        finally:
            try:
                # The outbox sweeps its partials at the next start: a stop's grace is not spent on them.
                await self.service.close(cleanup_s=STOP_CLEANUP_S)
            finally:
                await self.outbox.close()

    async def __aenter__(self) -> Archive:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
