"""The archive as one unit to start and stop: the sync service, its durable outbox and the worker.

Whoever runs Helix owns one of these: the bot creates it in ``setup_hook``; the demo, the tests
and the benchmark create it themselves and hand it to the bot (a task started inside a simulated
bot would be "bot-owned work" that never settles).
"""

from __future__ import annotations

from sync._outbox.store import Outbox
from sync._outbox.worker import OutboxWorker
from sync._service import SyncService
from sync.settings import SyncSettings


class Archive:
    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings
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

    async def close(self, grace_s: float = 20.0) -> None:
        """Reverse order: let the running upload finish (up to ``grace_s``), stop rclone, close the database."""
        try:
            await self.worker.stop(grace_s)
        finally:
            try:
                await self.service.close()
            finally:
                await self.outbox.close()

    async def __aenter__(self) -> Archive:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
