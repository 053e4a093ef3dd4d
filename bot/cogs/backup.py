"""``!backup #channel [threads]``, ``!backup status``, ``!backup cancel``; ``!watch``, ``!unwatch``, ``!watching``.

A backup is recorded in the catalogue before it is announced and runs in the capture engine,
not in the command: it survives the command, a restart and a kill. One progress message per
backup is edited at most every 2 s (Discord rate-limits edits) and once more at the end.
"""

from __future__ import annotations

import time
from typing import Literal

import discord
import structlog
from discord.ext import commands

from bot.capture_checks import bot_lacks, lacks_sentence, may_manage, running_capture
from bot.capture_source import channel_info
from bot.formatting import counted, human_size
from bot.helix import HelixBot, UserFacingError
from bot.replies import PROGRESS_EDIT_S, amend, answer
from capture import Capture, Tally
from catalogue import BackupRow

log = structlog.get_logger("helix.bot.backup")
Archivable = discord.TextChannel | discord.ForumChannel | discord.Thread
CHANNEL = commands.parameter(description="the channel, forum or thread, as #name")


def _examples(prefix: str, slash: str) -> dict[str, str]:
    """The hints a mistyped channel gets (``cogs/errors.py``): what to type, not the signature."""
    return {"example": prefix, "example_slash": slash, "channel": "a channel, forum or thread of this server"}


def progress_text(row: BackupRow, tally: Tally, finished: bool, name: str, elapsed_s: float) -> str:
    # No rate in the first second: the first edit comes as the backup starts, and "0 msg/s" there
    # reads as a stalled backup.
    rate = f" · {tally.scanned / elapsed_s:,.0f} msg/s" if elapsed_s >= 1 else ""
    counts = (f"{counted(tally.scanned, 'message')} scanned, {tally.archived:,} new, {counted(tally.files, 'file')} "
              f"saved ({human_size(tally.bytes)})")
    notes = ""
    if tally.too_big:
        notes += f"; {counted(tally.too_big, 'file')} over HELIX_MAX_ATTACHMENT_MB recorded, not downloaded"
    if tally.missing:
        notes += f"; {counted(tally.missing, 'file')} already gone from Discord"
    if tally.paused and not finished:
        notes += "; paused while the spool is full (HELIX_SPOOL_MAX_GB): it goes on as uploads free it"
    if not finished:
        return f"📦 Backing up {name}: {counts}{rate}{notes}."
    where = f"`discord/{row.guild_id}/{row.channel_id}/`"
    if row.state == "done":
        return f"✅ Backup of {name} done: {counts}{notes} → {where}."
    if row.state == "cancelled":
        return f"⏹️ Backup of {name} cancelled: {counts}; what was archived stays in {where}."
    return f"❌ Backup of {name} stopped: {row.error or 'unknown error'} ({counts})."


def _manager():
    async def predicate(ctx: commands.Context) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        if await may_manage(ctx.bot, ctx.author):
            return True
        raise commands.CheckFailure("Only admins or members with Manage Server can back up or watch channels.")

    return commands.check(predicate)


class Backup(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot
        self._last_edit: dict[int, float] = {}
        self._started: dict[int, float] = {}
        self._shown_paused: dict[int, bool] = {}

    @property
    def capture(self) -> Capture:
        return running_capture(self.bot)

    async def cog_load(self) -> None:
        if self.bot.capture is not None:
            self.bot.capture.subscribe(self.progress)

    def _check_bot(self, channel: Archivable) -> None:
        missing = bot_lacks(channel)
        if missing:
            raise UserFacingError(lacks_sentence(channel, missing))

    # -- the progress message -------------------------------------------------------------------

    async def progress(self, row: BackupRow, tally: Tally, finished: bool) -> None:
        if row.reply_channel_id is None or row.reply_message_id is None or row.kind != "backup":
            return
        now = time.perf_counter()
        started = self._started.setdefault(row.id, now)
        news = tally.paused != self._shown_paused.get(row.id, False)  # a pause is shown at once
        if not finished and not news and now - self._last_edit.get(row.id, 0.0) < PROGRESS_EDIT_S:
            return
        self._shown_paused[row.id] = tally.paused
        self._last_edit[row.id] = now
        channel = self.bot.get_channel(row.channel_id)
        name = channel.mention if channel is not None else f"channel {row.channel_id}"
        target = self.bot.get_partial_messageable(row.reply_channel_id).get_partial_message(row.reply_message_id)
        await amend(target, progress_text(row, tally, finished, name, now - started))

    # -- !backup --------------------------------------------------------------------------------

    @commands.hybrid_group(name="backup", fallback="channel", invoke_without_command=True,
                           description="Back up a channel's whole history (incremental)",
                           extras=_examples("!backup #general", "/backup channel channel:#general"))
    @_manager()
    async def backup(self, ctx: commands.Context, channel: Archivable = CHANNEL,
                     threads: Literal["threads"] | None = commands.parameter(
                         default=None, description="`threads` to back up its threads too")) -> None:
        """Archive the channel's whole history, oldest first; a second run archives only what is new."""
        self._check_bot(channel)
        row, new = await self.capture.request_backup(channel_info(channel), threads=bool(threads),
                                                     requested_by=ctx.author.id)
        if not new:
            await answer(ctx, f"{channel.mention} is already being backed up: `!backup status` shows how far.")
            return
        reply = await answer(ctx, f"📦 Backing up {channel.mention}{' and its threads' if threads else ''}…")
        if reply is not None:
            await self.capture.catalogue.call("set_backup_reply", row.id, reply.channel.id, reply.id)
        log.info("backup_requested", backup=row.id, channel=channel.id, threads=bool(threads))

    @backup.command(name="status", description="What backups are running and how far they are")
    @_manager()
    async def backup_status(self, ctx: commands.Context) -> None:
        """The latest backups and how far each got: messages scanned, new, files and bytes."""
        rows = await self.capture.catalogue.call("backups", limit=10)
        if not rows:
            await answer(ctx, "No backup has run yet: start one with `!backup #channel`.")
            return
        lines = []
        for r in rows:
            tally = self.capture.tallies.get(r.id)
            scanned = tally.scanned if tally else r.scanned
            lines.append(f"<#{r.channel_id}> · {r.state} · {scanned:,} scanned, {r.archived:,} new, "
                         f"{counted(r.files, 'file')} ({human_size(r.bytes)})" + (f" · {r.error}" if r.error else ""))
        await answer(ctx, "\n".join(lines)[:1990])

    @backup.command(name="cancel", description="Stop a channel's running backup",
                    extras=_examples("!backup cancel #general", "/backup cancel channel:#general"))
    @_manager()
    async def backup_cancel(self, ctx: commands.Context, channel: Archivable = CHANNEL) -> None:
        """Stop a channel's running backup; what it archived so far stays."""
        row = await self.capture.cancel_backup(channel.id)
        if row is None:
            await answer(ctx, f"No backup of {channel.mention} is running.")
            return
        await answer(ctx, f"Cancelled the backup of {channel.mention}; what was archived so far stays.")

    # -- the watch ------------------------------------------------------------------------------

    @commands.hybrid_command(name="watch", description="Archive every new message of a channel as it arrives",
                             extras=_examples("!watch #general", "/watch channel:#general"))
    @_manager()
    async def watch(self, ctx: commands.Context, channel: Archivable = CHANNEL) -> None:
        """Archive every new message of a channel as it arrives, after catching up since its last backup."""
        self._check_bot(channel)
        await self.capture.watch(channel_info(channel), ctx.author.id)
        await answer(ctx, f"👀 Watching {channel.mention}: every new message and file is archived as it arrives "
                          "(and what came since its last backup is caught up).")

    @commands.hybrid_command(name="unwatch", description="Stop archiving a channel's new messages",
                             extras=_examples("!unwatch #general", "/unwatch channel:#general"))
    @_manager()
    async def unwatch(self, ctx: commands.Context, channel: Archivable = CHANNEL) -> None:
        """Stop archiving a channel's new messages; what was archived stays."""
        if not await self.capture.unwatch(channel.id):
            await answer(ctx, f"{channel.mention} is not watched.")
            return
        await answer(ctx, f"Stopped watching {channel.mention}; what was archived stays.")

    @commands.hybrid_command(name="watching", description="The channels whose new messages are archived")
    @commands.guild_only()
    async def watching(self, ctx: commands.Context) -> None:
        """The channels whose new messages are archived as they arrive."""
        rows = await self.capture.catalogue.call("channels", watched_only=True, guild_id=ctx.guild.id)
        if not rows:
            await answer(ctx, "No channel is watched: start with `!watch #channel`.")
            return
        await answer(ctx, "Watching: " + ", ".join(f"<#{r.id}>" for r in rows) + ".")


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Backup(bot))
