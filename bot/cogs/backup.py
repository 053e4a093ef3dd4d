"""``!backup #channel [threads]``, ``!backup status``, ``!backup cancel``; ``!watch``, ``!unwatch``, ``!watching``.

A backup is recorded in the catalogue before it is announced and runs in the capture engine,
not in the command: it survives the command, a restart and a kill. One progress message per
backup is edited at most every 2 s (Discord rate-limits edits) and once more at the end.

An answer posted in a channel is read by all its readers: about a channel some of them cannot read
(``visibility.postable_in``), it names neither that channel nor its counts nor its archive path, as
``!archive`` does; the slash form then answers the asker alone, in full. About a backup that took
threads some of them cannot open, it shows no count nor error (``bot.backup_audience``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.backup_audience import covered, known_threads, threads_withheld, withheld_rows
from bot.backup_messages import UNNAMED, counts_left_out, paused_text, progress_text, status_line
from bot.capture_checks import (
    bot_lacks,
    hidden_from,
    lacks_sentence,
    may_manage,
    refuse_as_unknown_unless_reader,
    running_capture,
    tell,
    upload_state,
)
from bot.capture_source import channel_info
from bot.cogs.errors import example
from bot.helix import HelixBot, UserFacingError
from bot.replies import PROGRESS_EDIT_S, amend, answer, echo
from bot.visibility import left_out, postable_in, readable_channel_ids
from capture import Capture, Tally
from catalogue import BackupRow

log = structlog.get_logger("helix.bot.backup")
Archivable = discord.TextChannel | discord.ForumChannel | discord.Thread
CHANNEL = commands.parameter(description="the channel, forum or thread, as #name")


class ThreadsWord(commands.Converter[str], app_commands.Transformer):
    """The word ``threads`` after the channel, however it is capitalised (a phone types ``Threads``);
    as a slash option, the one choice ``threads``. Another word fails here, and ``ignore_extra=False``
    then refuses it as one word too many."""

    async def convert(self, ctx: commands.Context, argument: str) -> str:
        if argument.casefold() != "threads":
            raise commands.BadArgument(f"{argument!r} is not `threads`")
        return "threads"

    @property
    def choices(self) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name="threads", value="threads")]

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> str:
        return str(value).casefold()


def _examples(prefix: str, slash: str, **more: str) -> dict[str, str]:
    """The hints a mistyped channel gets (``cogs/errors.py``): what to type, not the signature."""
    return {"example": prefix, "example_slash": slash, "channel": "a channel, forum or thread of this server",
            **more}


def _shown_to(ctx: commands.Context, channel_ids: list[int],
              threads: Mapping[int, tuple[int, bool]]) -> tuple[set[int], str]:
    """The channels a listing may name: those the asker can read, and, for a prefix command's answer,
    which the whole channel reads, only those all its readers may see (``visibility.postable_in``);
    and the note that says the slash form has more ('' when it has not). ``threads``: the archived
    threads' channels, for the threads Discord no longer lists (``bot.visibility``)."""
    readable = readable_channel_ids(ctx.author, channel_ids, threads)
    if ctx.interaction is not None:
        return readable, ""
    postable = postable_in(ctx.channel, readable, threads)
    slash = f"/{ctx.command.qualified_name}" if ctx.command else "the slash command"
    return postable, f"{left_out(slash)}." if readable - postable else ""


def _refuse_unless_reader(ctx: commands.Context, channel: Any, doing: str) -> None:
    """A channel hidden from the asker gets the answer of a name that matches none (``cogs/errors.py``)."""
    refuse_as_unknown_unless_reader(ctx.author, channel, doing, f"`channel` must be {ctx.command.extras['channel']}: "
                                                                f"for example `{example(ctx)}`.")


def _slash(ctx: commands.Context, prefix_form: str, slash_form: str) -> str:
    """A hint in the form the member typed the command in."""
    return slash_form if ctx.interaction is not None else prefix_form


def _manager():
    async def predicate(ctx: commands.Context) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        if await may_manage(ctx.bot, ctx.author):
            return True
        raise commands.CheckFailure("Only admins or members with Manage Server can manage backups and watches.")

    return commands.check(predicate)


class Backup(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot
        self._last_edit: dict[int, float] = {}
        self._started: dict[int, tuple[float, int]] = {}  # backup id -> when this process first showed it, scanned then
        self._shown_paused: dict[int, tuple[bool, bool]] = {}
        self._finals: set[asyncio.Task[None]] = set()  # final answers waiting to learn whether their files landed

    @property
    def capture(self) -> Capture:
        return running_capture(self.bot)

    async def cog_load(self) -> None:
        if self.bot.capture is not None:
            self.bot.capture.subscribe(self.progress)

    async def cog_unload(self) -> None:
        for task in self._finals:
            task.cancel()

    def _check_bot(self, ctx: commands.Context, channel: Archivable) -> None:
        missing = bot_lacks(channel)
        if missing:
            unnamed = ctx.interaction is None and hidden_from(ctx.channel, channel.id)
            raise UserFacingError(lacks_sentence(channel, missing, unnamed))

    async def _unnamed_in(self, row: BackupRow) -> tuple[bool, bool]:
        """Whether the backup's message is read where not everyone can read its channel (a channel
        no longer known counts as such: nothing says who reads it), and where not everyone may open
        all the threads it took (``bot.backup_audience``)."""
        here = self.bot.get_channel(row.reply_channel_id) if row.reply_channel_id is not None else None
        if here is None or hidden_from(here, row.channel_id):
            return True, True
        threads = covered(self.bot, row, await known_threads(self.capture.catalogue, row.guild_id))
        return False, threads_withheld(threads, here)

    # -- the progress message -------------------------------------------------------------------

    async def progress(self, row: BackupRow, tally: Tally, finished: bool) -> None:
        if row.reply_channel_id is None or row.reply_message_id is None or row.kind != "backup":
            return
        if self.bot.stopping and not finished:
            return  # "paused by a restart" stands until the backup ends in the grace or the next start resumes it
        now = time.perf_counter()
        started, scanned_before = self._started.setdefault(row.id, (now, tally.scanned))
        # a pause is shown at once, as is a wait for the rebuild
        news = (tally.paused, tally.waiting) != self._shown_paused.get(row.id, (False, False))
        if not finished and not news and now - self._last_edit.get(row.id, 0.0) < PROGRESS_EDIT_S:
            return
        self._shown_paused[row.id] = (tally.paused, tally.waiting)
        self._last_edit[row.id] = now
        channel = self.bot.get_channel(row.channel_id)
        name = channel.mention if channel is not None else f"channel {row.channel_id}"
        target = self.bot.get_partial_messageable(row.reply_channel_id).get_partial_message(row.reply_message_id)
        earlier = finished and row.state == "done" and not tally.archived and await self.capture.catalogue.call(
            "backed_up_before", row.channel_id, row.id)
        hidden, threads_hidden = await self._unnamed_in(row)
        if finished and row.state == "done" and not earlier:
            # Its files may take a moment to land, or never while the remote is down: found out in a
            # task of its own, so the engine's next backup does not wait on this answer.
            task = asyncio.create_task(self._final(target, row, tally, name, now - started, scanned_before,
                                                   (hidden, threads_hidden)))
            self._finals.add(task)
            task.add_done_callback(self._finals.discard)
            return
        waits = getattr(self.bot.get_cog("Reindex"), "backups_wait_for", None)
        text = progress_text(row, tally, finished, name, now - started, scanned_before, earlier, hidden=hidden,
                             waits=waits, threads_hidden=threads_hidden)
        await amend(target, text, prefix=self.bot.settings.prefix)

    async def before_stop(self) -> None:
        """A restart (a deploy) pauses the running backups: each one's message says so, instead of a
        count that stops moving with nothing to say why. The next start resumes it and edits on."""
        for row in await self.capture.catalogue.call("backups", running=True, limit=50):
            if row.kind != "backup" or row.reply_channel_id is None or row.reply_message_id is None:
                continue
            tally = self.capture.tallies.get(row.id)
            scanned = max(row.scanned, tally.scanned if tally else 0)
            channel = self.bot.get_channel(row.channel_id)
            name = channel.mention if channel is not None else f"channel {row.channel_id}"
            target = self.bot.get_partial_messageable(row.reply_channel_id).get_partial_message(row.reply_message_id)
            await amend(target, paused_text(name, scanned, *await self._unnamed_in(row)),
                        prefix=self.bot.settings.prefix)

    async def _final(self, target: Any, row: BackupRow, tally: Tally, name: str, elapsed_s: float,
                     scanned_before: int, hidden: tuple[bool, bool]) -> None:
        """The last edit of a finished backup, once its files landed or the outbox shows they wait;
        ``hidden``: from ``_unnamed_in``."""
        catalogue = self.capture.catalogue
        threads = [c.id for c in await catalogue.call("channels", guild_id=row.guild_id)
                   if c.parent_id == row.channel_id]
        upload = await upload_state(self.capture, [row.channel_id, *threads])
        text = progress_text(row, tally, True, name, elapsed_s, scanned_before, upload=upload, hidden=hidden[0],
                             threads_hidden=hidden[1])
        await amend(target, text, prefix=self.bot.settings.prefix)

    # -- !backup --------------------------------------------------------------------------------

    # ignore_extra=False: a word other than `threads` fails its converter, and being optional it would
    # be skipped as if absent, so `!backup #general thread` would silently back up without threads.
    @commands.hybrid_group(name="backup", fallback="channel", invoke_without_command=True, ignore_extra=False,
                           description="Back up a channel's whole history (incremental)",
                           extras=_examples("!backup #general", "/backup channel channel:#general",
                                            too_many="`threads` is the only word after the channel: for example "
                                                     "`!backup #general threads`."))
    @_manager()
    async def backup(self, ctx: commands.Context, channel: Archivable = CHANNEL,
                     threads: ThreadsWord | None = commands.parameter(
                         default=None, description="`threads` to back up its threads too")) -> None:
        """Archive the channel's whole history, oldest first; a second run archives only what is new."""
        _refuse_unless_reader(ctx, channel, "back it up")
        self._check_bot(ctx, channel)
        row, new = await self.capture.request_backup(channel_info(channel), threads=bool(threads),
                                                     requested_by=ctx.author.id)
        status = _slash(ctx, "`!backup status`", "`/backup status`")
        if not new:
            await tell(ctx, channel, f"{channel.mention} is already being backed up: {status} shows how far.",
                        "That channel is already being backed up: `/backup status` shows how far, to you alone.")
            return
        also = " and its threads" if threads else ""
        hidden = hidden_from(ctx.channel, channel.id)
        if ctx.interaction is not None and hidden:
            # The asker alone reads the answer, and an ephemeral answer is no message Helix can edit later.
            await answer(ctx, f"📦 Backing up {channel.mention}{also}: {status} shows how far.", ephemeral=True)
            log.info("backup_requested", backup=row.id, channel=channel.id, threads=bool(threads))
            return
        reply = await answer(ctx, f"📦 Backing up {UNNAMED if hidden else channel.mention}{also}…")
        if reply is not None:
            await self.capture.catalogue.call("set_backup_reply", row.id, reply.channel.id, reply.id)
            # A short backup may end before its answer is recorded: its last edit found no message to
            # edit, and the answer would say "Backing up…" for ever.
            latest = await self.capture.catalogue.call("backup", row.id)
            if latest is not None and latest.state != "running":
                await self.progress(latest, self.capture.tallies.get(row.id) or Tally(), True)
        log.info("backup_requested", backup=row.id, channel=channel.id, threads=bool(threads))

    @backup.command(name="status", description="What backups are running and how far they are")
    @_manager()
    async def backup_status(self, ctx: commands.Context) -> None:
        """The latest backups of channels you can read and how far each got: messages scanned, new, files and bytes."""
        catalogue = self.capture.catalogue
        readable, more = _shown_to(ctx, await catalogue.call("backed_up_channels", ctx.guild.id),
                                   await catalogue.call("thread_parents", ctx.guild.id))
        rows = await catalogue.call("backups", limit=10, channel_ids=readable) if readable else []
        if not rows:
            # The same sentence whether no backup ran or none of a channel the asker can read: a
            # hidden channel's backup is not hinted at.
            await answer(ctx, more or "No backup of a channel you can read has run yet: start one with "
                                      "`!backup #channel`.", ephemeral=True)
            return
        here = ctx.channel if ctx.interaction is None else None
        withheld, slash_shows = withheld_rows(self.bot, rows, await known_threads(catalogue, ctx.guild.id), here,
                                              ctx.author)
        if slash_shows:
            more = " ".join([more, f"{counts_left_out('/backup status')}."]).strip()
        lines = [status_line(r, self.capture.tallies.get(r.id), r.id in withheld) for r in rows]
        # ephemeral: a slash answer lists what the asker may read, not what the channel may
        await answer(ctx, "\n".join([*lines, *([f"-# {more}"] if more else [])])[:1990], ephemeral=True)

    @backup.command(name="cancel", description="Stop a channel's running backup",
                    extras=_examples("!backup cancel #general", "/backup cancel channel:#general"))
    @_manager()
    async def backup_cancel(self, ctx: commands.Context, channel: Archivable = CHANNEL) -> None:
        """Stop a channel's running backup; what it archived so far stays."""
        _refuse_unless_reader(ctx, channel, "cancel its backup")
        row = await self.capture.cancel_backup(channel.id)
        if row is None:
            await tell(ctx, channel, f"No backup of {channel.mention} is running.",
                        "No backup of that channel is running.")
            return
        await tell(ctx, channel, f"Cancelled the backup of {channel.mention}; what was archived so far stays.",
                    "Cancelled that channel's backup; what was archived so far stays.")

    # -- the watch ------------------------------------------------------------------------------

    @commands.hybrid_command(name="watch", description="Archive every new message of a channel as it arrives",
                             extras=_examples("!watch #general", "/watch channel:#general"))
    @_manager()
    async def watch(self, ctx: commands.Context, channel: Archivable = CHANNEL) -> None:
        """Archive every new message of a channel (and of its threads, or a forum's posts) as it arrives, after
        catching up since its last backup."""
        _refuse_unless_reader(ctx, channel, "watch it")
        self._check_bot(ctx, channel)
        if not await self.capture.watch(channel_info(channel), ctx.author.id):
            stop = echo(_slash(ctx, f"!unwatch #{channel.name}", f"/unwatch channel:#{channel.name}"), 120, typed=False)
            await tell(ctx, channel, f"{channel.mention} is already watched: {stop} stops it.",
                        "That channel is already watched: `!unwatch #channel` stops it.")
            return
        # The watch covers the threads (a forum's posts, where all its messages are): the answer says so.
        covers = "" if isinstance(channel, discord.Thread) else \
            " and its posts" if isinstance(channel, discord.ForumChannel) else " and its threads"
        arrives = "every new message and file is archived as it arrives (and what came since its last backup is " \
                  "caught up)."
        await tell(ctx, channel, f"👀 Watching {channel.mention}{covers}: {arrives}",
                    f"👀 Watching that channel: {arrives}")

    @commands.hybrid_command(name="unwatch", description="Stop archiving a channel's new messages",
                             extras=_examples("!unwatch #general", "/unwatch channel:#general"))
    @_manager()
    async def unwatch(self, ctx: commands.Context, channel: Archivable = CHANNEL) -> None:
        """Stop archiving a channel's new messages; what was archived stays."""
        _refuse_unless_reader(ctx, channel, "stop watching it")
        if not await self.capture.unwatch(channel.id):
            await tell(ctx, channel, f"{channel.mention} is not watched.", "That channel is not watched.")
            return
        await tell(ctx, channel, f"Stopped watching {channel.mention}; what was archived stays.",
                    "Stopped watching that channel; what was archived stays.")

    @commands.hybrid_command(name="watching", description="The channels whose new messages are archived")
    @commands.guild_only()
    async def watching(self, ctx: commands.Context) -> None:
        """The channels you can read whose new messages are archived as they arrive."""
        rows = await self.capture.catalogue.call("channels", watched_only=True, guild_id=ctx.guild.id)
        readable, more = _shown_to(ctx, [r.id for r in rows],
                                   await self.capture.catalogue.call("thread_parents", ctx.guild.id))
        shown = [r for r in rows if r.id in readable]
        if not shown:
            # The same sentence whether nothing is watched or nothing the asker can read: a hidden
            # channel's watch is not hinted at. `!watch` is offered only to who may use it.
            hint = ": start with `!watch #channel`." if await may_manage(self.bot, ctx.author) else "."
            await answer(ctx, more or f"No channel you can read is watched{hint}", ephemeral=True)
            return
        listed = "Watching: " + ", ".join(f"<#{r.id}>" for r in shown) + "."
        await answer(ctx, listed + (f"\n-# {more}" if more else ""), ephemeral=True)


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Backup(bot))
