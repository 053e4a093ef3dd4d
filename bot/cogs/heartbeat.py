"""``!heartbeat`` answers at once; a periodic heartbeat records that Helix is alive on the archive remote.

The periodic one writes ``heartbeat/<host>.json`` through the outbox (so a remote that is down
delays it, nothing more) and, when HELIX_HEARTBEAT_CHANNEL_ID is set, posts to that channel. A
failing tick is logged and the next tick tries again: the loop itself never dies.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import discord
import structlog
from discord.ext import commands, tasks

from bot.formatting import human_duration, latency_ms
from bot.helix import HelixBot
from bot.replies import answer
from sync import SyncError

log = structlog.get_logger("helix.bot.heartbeat")


async def loop_lag_ms() -> float:
    """How long a ready callback waits for its turn right now: the event loop's responsiveness."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.sleep(0)
    return (loop.time() - t0) * 1000


class Heartbeat(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot
        self.host = socket.gethostname()

    async def cog_load(self) -> None:
        minutes = self.bot.settings.heartbeat_minutes
        if minutes > 0:
            self.periodic.change_interval(minutes=minutes)
            self.periodic.start()

    async def cog_unload(self) -> None:
        self.periodic.cancel()

    @commands.hybrid_command(name="heartbeat", description="Is Helix alive? Latency, loop lag and uptime")
    async def heartbeat(self, ctx: commands.Context) -> None:
        """Answer at once: alive, gateway latency, event-loop lag, uptime, last periodic heartbeat."""
        lag = await loop_lag_ms()
        last = self.bot.last_heartbeat or "none yet"
        await answer(ctx, f"💓 alive · gateway {latency_ms(self.bot.latency)} · loop lag {lag:.1f} ms · "
                          f"up {human_duration(self.bot.uptime_s)} · last periodic heartbeat: {last}")

    @tasks.loop(minutes=30)
    async def periodic(self) -> None:
        try:
            await self.beat()
        except Exception:  # a tick that fails must not end the loop; the next tick tries again
            log.exception("heartbeat_failed")

    @periodic.before_loop
    async def _wait_ready(self) -> None:
        await self.bot.wait_until_ready()

    async def beat(self) -> None:
        """Queue one heartbeat record for the archive and post it where configured."""
        bot = self.bot
        now = datetime.now(UTC)
        counts = await bot.archive.outbox.counts()
        record = {
            "host": self.host, "version": bot.version, "at": now.isoformat().replace("+00:00", "Z"),
            "uptime_s": round(bot.uptime_s, 1), "latency_ms": None if bot.latency != bot.latency
            or bot.latency == float("inf") else round(bot.latency * 1000, 1),
            "loop_lag_ms": round(await loop_lag_ms(), 2),
            "outbox": {"pending": counts.pending, "failed": counts.failed},
        }
        rel = f"heartbeat/{self.host}.json"
        queued = [i for i in await bot.archive.outbox.list(("pending",), limit=200) if i.rel_path == rel]
        status = "ok"
        if queued:
            status = f"previous heartbeat #{queued[0].id} still queued"
            log.warning("heartbeat_still_queued", id=queued[0].id)
        else:
            tmp_dir = Path(bot.settings.sync.data_dir) / "tmp"
            path = await asyncio.to_thread(_write_json, tmp_dir, record)
            try:
                item = await bot.archive.outbox.enqueue(path, rel, kind="heartbeat", move=True)
                log.info("heartbeat_queued", id=item.id)
            except SyncError as exc:
                # Shown in !status and the heartbeat channel, to members: the fix (exc.hint) goes to the log.
                status = "not recorded: Helix cannot store files on its host right now"
                log.warning("heartbeat_not_queued", error=exc.hint)
        bot.last_heartbeat = f"{now:%H:%M:%S} UTC ({status})"
        channel_id = bot.settings.heartbeat_channel_id
        if channel_id:
            channel = bot.get_channel(channel_id)
            if isinstance(channel, discord.abc.Messageable):
                await channel.send(f"💓 heartbeat from `{self.host}` · up {human_duration(bot.uptime_s)} · "
                                   f"queue {counts.pending} pending, {counts.failed} failed · {status}")
            else:
                log.warning("heartbeat_channel_missing", channel_id=channel_id)


def _write_json(folder: Path, record: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".json", delete=False) as fh:
        json.dump(record, fh, indent=2)
    return Path(fh.name)


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Heartbeat(bot))
