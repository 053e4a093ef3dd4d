"""``!status``: how Helix is doing, in one embed anyone can read."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import discord
import structlog
from discord.ext import commands

from bot.formatting import human_duration, human_size, latency_ms, rss_mb
from bot.helix import HelixBot
from bot.replies import answer, archive_name, plain_problem, sees_internals
from sync import RemoteInfo, SyncError

log = structlog.get_logger("helix.bot.status")
ABOUT_TIMEOUT_S = 5.0
ABOUT_CACHE_S = 60.0


class Status(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot
        self._about: RemoteInfo | None = None
        self._about_at = 0.0

    async def _remote_info(self) -> tuple[RemoteInfo | None, SyncError | str | None]:
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
            return self._about, exc

    @commands.hybrid_command(name="status", description="Version, uptime, latency, archive remote and queue")
    async def status(self, ctx: commands.Context) -> None:
        """Show Helix's version, uptime, latency, archive remote, queue and last archive.

        Members see the archive by name and a plain state; admins also see its path, its space
        and the fix for a problem (variables, files), which the log has too.
        """
        await ctx.defer()
        bot = self.bot
        svc = bot.archive.service
        admin = await sees_internals(ctx)
        info, error = await self._remote_info()
        if isinstance(error, SyncError):
            log.warning("status_remote_problem", kind=error.kind, hint=error.hint)
            problem: str | None = error.hint if admin else plain_problem(error, svc)
        else:
            problem = error
        counts = None
        with contextlib.suppress(SyncError, OSError):
            counts = await bot.archive.outbox.counts()

        healthy = problem is None
        colour = discord.Colour.green() if healthy else discord.Colour.orange()
        embed = discord.Embed(title="Helix status", colour=colour)
        embed.add_field(name="Version", value=bot.version)
        embed.add_field(name="Uptime", value=human_duration(bot.uptime_s))
        embed.add_field(name="Gateway latency", value=latency_ms(bot.latency))
        # A host path is an operator's detail; a remote's name and backend type are not. An unhealthy
        # remote has no known type: "(unknown)" would read as if the remote itself were unknown.
        backend = f" ({info.backend})" if info and info.backend not in ("", "unknown") else ""
        local = svc.remote.root.is_local
        remote_line = f"`{svc.display}`{backend}" if admin or not local else archive_name(svc)
        embed.add_field(name="Archive remote", value=remote_line, inline=False)
        embed.add_field(name="Remote health", value="ok" if healthy else f"⚠️ {problem}", inline=False)
        if admin and info and info.free_bytes is not None:
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
        if last is None:
            shown = "none since start"
        elif last.rel_path.startswith(("discord/", "blobs/")):
            # A captured channel's path names it, and its segments the span of its messages: this answer is
            # read by everyone here, and the channel may be one they cannot open.
            shown = f"captured messages or files ({human_size(last.size)})"
        else:
            shown = f"`{last.remote_path if admin or not local else last.rel_path}` ({human_size(last.size)})"
        embed.add_field(name="Last archive", value=shown, inline=False)
        beat = bot.last_heartbeat
        embed.add_field(name="Last heartbeat", value=beat or "none yet")
        if catalogue_line := getattr(bot.get_cog("Reindex"), "status_line", None):
            if not admin and catalogue_line.startswith("rebuild failed"):
                catalogue_line = "rebuild failed: admins see why when they run `!status`"  # the error is theirs
            embed.add_field(name="Catalogue", value=catalogue_line, inline=False)
        embed.add_field(name="Memory", value=f"{rss_mb():.0f} MB")
        embed.set_footer(text=f"at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        await answer(ctx, embed=embed)


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Status(bot))
