"""The real HelixBot with capture, logged in to the loopback Discord: backups over real HTTP, real rate limits.

``tests/support/world.py`` puts Helix under SimCord, which answers in-process and knows no rate
limit; here every history page is a real HTTP request paced by discord.py's own limiter against
the loopback's ``X-RateLimit-*`` headers (``tests/support/loopback_limits.py``). Used by the capture
tests and by ``bench/backfill.py``.

Ownership is the production order: the archive, then capture, are opened outside the bot and
outlive its connection; the bot attaches its discord.py source once connected.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.helix import HelixBot
from bot.settings import Settings
from capture import Capture
from catalogue import BackupRow
from sync import SyncSettings
from sync.archive import Archive
from tests.support.loopback import LoopbackDiscord
from tests.support.waiting import wait_until


@dataclass
class CaptureOnLoopback:
    fake: LoopbackDiscord
    bot: HelixBot
    capture: Capture
    archive: Archive

    @property
    def storage(self) -> Path:
        return Path(self.archive.settings.archive_dir)

    async def backup(self, channel_id: str, within: float = 10.0) -> dict[str, Any]:
        """``!backup #channel`` typed by the guild's owner; returns the bot's first answer."""
        return await self.fake.ask(f"!backup <#{channel_id}>", within=within)

    async def finished(self, channel_id: str, count: int = 1, within: float = 120.0) -> BackupRow:
        """The ``count``-th finished backup of a channel, once the outbox has landed everything."""
        async def done() -> BackupRow | None:
            rows = [r for r in await self.capture.catalogue.call("backups", limit=100)
                    if r.channel_id == int(channel_id) and r.state != "running"]
            return rows[0] if len(rows) >= count else None

        row = await wait_until(done, within, f"backup {count} of channel {channel_id}")
        assert await self.archive.worker.drain(within), "the outbox did not drain"
        return row


def capture_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Helix archiving to a local folder under ``data_dir``, no health port, no periodic heartbeat."""
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05, outbox_retry_base_s=0.1,
                        outbox_retry_cap_s=0.5)
    return replace(Settings(health=False, heartbeat_minutes=0, stop_grace_s=5, sync=sync), **overrides)


@contextlib.asynccontextmanager
async def helix_capture_on_loopback(settings: Settings, fake: LoopbackDiscord) -> AsyncIterator[CaptureOnLoopback]:
    """Open the archive and capture, log the bot in to ``fake`` (already started), close in reverse."""
    archive = Archive(settings.sync, stop_grace_s=settings.stop_grace_s)
    capture = Capture(settings.capture, archive)
    bot = HelixBot(settings, archive, capture=capture, guild_ready_timeout=0.1)
    await archive.start()
    try:
        await capture.start()
        try:
            async with fake.client(bot):
                yield CaptureOnLoopback(fake, bot, capture, archive)
        finally:
            await capture.close()
    finally:
        await archive.close(grace_s=settings.stop_grace_s)
