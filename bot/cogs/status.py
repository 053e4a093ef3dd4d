"""``!status``: how Helix is doing, in one embed anyone can read."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import discord
from discord.ext import commands

from bot.formatting import human_duration, human_size, latency_ms, rss_mb
from bot.helix import HelixBot
from bot.replies import answer
from sync import RemoteInfo, SyncError

ABOUT_TIMEOUT_S = 5.0
ABOUT_CACHE_S = 60.0


class Status(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot
        self._about: RemoteInfo | None = None
        self._about_at = 0.0

    async def _remote_info(self) -> tuple[RemoteInfo | None, str | None]:
        """The remote's details, cached for a minute, never waiting more than a few seconds for them."""
        svc = self.bot.archive.service
        if self._about is not None and time.monotonic() - self._about_at < ABOUT_CACHE_S:
            return self._about, None
        try:
            async with asyncio.timeout(ABOUT_TIMEOUT_S):
                self._about = await svc.about()
            self._about_at = time.monotonic()
            return self._about, None
        except TimeoutError:
            return self._about, f"no answer within {ABOUT_TIMEOUT_S:g} s"
        except SyncError as exc:
            return self._about, exc.hint

    @commands.hybrid_command(name="status", description="Version, uptime, latency, archive remote and queue")
    async def status(self, ctx: commands.Context) -> None:
        """Show Helix's version, uptime, latency, archive remote, queue and last archive."""
        await ctx.defer()
        bot = self.bot
        svc = bot.archive.service
        info, problem = await self._remote_info()
        counts = None
        with contextlib.suppress(SyncError, OSError):
            counts = await bot.archive.outbox.counts()

        healthy = problem is None
        colour = discord.Colour.green() if healthy else discord.Colour.orange()
        embed = discord.Embed(title="Helix status", colour=colour)
        embed.add_field(name="Version", value=bot.version)
        embed.add_field(name="Uptime", value=human_duration(bot.uptime_s))
        embed.add_field(name="Gateway latency", value=latency_ms(bot.latency))
        backend = info.backend if info else "unknown"
        remote_line = f"`{svc.display}` ({backend})"
        embed.add_field(name="Archive remote", value=remote_line, inline=False)
        embed.add_field(name="Remote health", value="ok" if healthy else f"⚠️ {problem}", inline=False)
        if info and info.free_bytes is not None:
            space = f"{human_size(info.used_bytes)} used, {human_size(info.free_bytes)} free"
            embed.add_field(name="Space", value=space)
        embed.add_field(name="rclone", value=svc.rclone_version)
        if counts is not None:
            oldest = f", oldest waiting {human_duration(counts.oldest_pending_age_s)}" \
                if counts.oldest_pending_age_s is not None else ""
            embed.add_field(name="Outbox",
                            value=f"{counts.pending + counts.uploading} pending, {counts.failed} failed{oldest}",
                            inline=False)
        last = svc.last_archive
        embed.add_field(
            name="Last archive",
            value=f"`{last.remote_path}` ({human_size(last.size)})" if last else "none since start",
            inline=False,
        )
        beat = bot.last_heartbeat
        embed.add_field(name="Last heartbeat", value=beat or "none yet")
        embed.add_field(name="Memory", value=f"{rss_mb():.0f} MB")
        embed.set_footer(text=f"at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        await answer(ctx, embed=embed)


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Status(bot))
