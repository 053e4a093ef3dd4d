"""``!archive`` (a reply, a message link) and the "Archive message" context menu; the watch's events.

The capture engine (``bot.capture``) does the archiving; this cog decides who may, checks that
Helix can read the channel itself, and turns Discord's events into the engine's plain records.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime
from typing import Any

import aiohttp
import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.capture_checks import (
    bot_lacks,
    hidden_from,
    lacks_sentence,
    may_archive,
    not_landed_yet,
    refuse_unless_reader,
    running_capture,
    upload_state,
)
from bot.capture_source import DiscordSource, channel_info, iso_time, mention_names, message_record
from bot.formatting import counted, human_size
from bot.helix import HelixBot, UserFacingError
from bot.replies import NO_PINGS, PROGRESS_EDIT_S, amend, answer
from capture import Capture, Tally
from catalogue import CatalogueError
from sync import SyncError

log = structlog.get_logger("helix.bot.capture")
LINK = re.compile(r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+)/(\d+)/(\d+)")


HIDDEN = "Archived the message from a channel not everyone here can read"


def _progress(message: discord.Message, tally: Tally, hidden: bool = False) -> str:
    """``hidden``: the answer is read by people who cannot open the message's channel, so it names no author."""
    if tally.waiting:
        return ("⏳ Archiving that message waits: the catalogue is being rebuilt from the archive; it is archived "
                "as soon as that is done.")
    if hidden:
        return "📦 Archiving that message…"
    author = discord.utils.escape_markdown(message.author.display_name)
    total = len(message.attachments)
    files = f": {tally.files} of {total} file{'s' if total != 1 else ''} saved ({human_size(tally.bytes)})" \
        if total else ""
    return f"📦 Archiving the message by **{author}**{files}…"


def _edit_time(stamp: str) -> str:
    """Discord's raw timestamp (``…+00:00``) in the form of the record's other times (``iso_time``)."""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp  # not a time Python reads: kept as Discord sent it rather than lost
    return iso_time(when if when.tzinfo else when.replace(tzinfo=UTC)) or stamp


class CaptureCog(commands.Cog, name="Capture"):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Archive message", callback=self.archive_menu)
        self._sessions = 0  # gateway sessions that became ready since the cog was loaded

    @property
    def capture(self) -> Capture:
        return running_capture(self.bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)
        if self.bot.capture is not None and self.bot.is_ready():
            self.bot.capture.attach(DiscordSource(self.bot))

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @commands.Cog.listener("on_ready")
    async def session_ready(self) -> None:
        """Backups left running and watched channels resume once connected. A second ``on_ready`` is a
        new gateway session after an outage: Discord replays nothing of the gap, so the watched
        channels are caught up again."""
        self._attach(gap=self._sessions > 0)
        self._sessions += 1

    @commands.Cog.listener("on_guild_available")
    @commands.Cog.listener("on_guild_join")
    async def server_seen(self, *_: Any) -> None:
        """Once connected, a server available again was out (or Helix was away from it): caught up too."""
        self._attach(gap=self._sessions > 0)

    def _attach(self, *, gap: bool) -> None:
        if self.bot.capture is not None:
            self.bot.capture.attach(DiscordSource(self.bot), gap=gap)

    # -- !archive ---------------------------------------------------------------------------------

    @commands.hybrid_command(name="archive", description="Archive one message and its files (reply to it, or a link)")
    @commands.guild_only()
    async def archive(self, ctx: commands.Context, link: str | None = commands.parameter(
            default=None, description="a message link (or reply to the message instead)")) -> None:
        """Archive the message you reply to, or the one a message link points to, with its files."""
        # A slash answer into a channel some of whose readers cannot open the message's is shown to the
        # asker alone; that is decided before the "thinking…", which cannot be made private later.
        found = LINK.search(link or "")
        private = ctx.interaction is not None and found is not None and hidden_from(ctx.channel, int(found[2]))
        await ctx.defer(ephemeral=private)  # files may take a while: "thinking…" (slash) or typing (prefix)
        target = await self._target(ctx, link)
        await self._check(ctx.author, target)
        hidden = ctx.interaction is None and hidden_from(ctx.channel, target.channel.id)
        shown = await answer(ctx, _progress(target, Tally(), hidden), ephemeral=private)
        text = await self._archive(target, shown, hidden)
        if shown is None:
            await answer(ctx, text, ephemeral=private)

    async def archive_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await self._check(interaction.user, message)
        except UserFacingError as exc:
            await interaction.followup.send(str(exc), ephemeral=True, allowed_mentions=NO_PINGS)
            return
        shown = await interaction.followup.send(_progress(message, Tally()), ephemeral=True, wait=True,
                                                allowed_mentions=NO_PINGS)
        await self._archive(message, shown)

    async def _target(self, ctx: commands.Context, link: str | None) -> discord.Message:
        if link:
            found = LINK.search(link)
            if not found:
                raise UserFacingError("That is not a message link: right-click a message → Copy Message Link, "
                                      "then `!archive <link>`.")
            guild_id, channel_id, message_id = map(int, found.groups())
            if ctx.guild is None or guild_id != ctx.guild.id:
                raise UserFacingError("That message is in another server: I archive messages of this server only.")
            channel = ctx.guild.get_channel_or_thread(channel_id)
            if channel is None:  # a thread Discord archived for being quiet is out of discord.py's cache
                with contextlib.suppress(discord.NotFound, discord.Forbidden, discord.InvalidData):
                    channel = await ctx.guild.fetch_channel(channel_id)
            if channel is None:
                raise UserFacingError("You can't read that channel, so I won't archive from it for you.")
            refuse_unless_reader(ctx.author, channel, "archive from it")
            if not isinstance(channel, discord.abc.Messageable):  # a category's id, typed by hand
                raise UserFacingError("That link leads to no message: right-click a message → Copy Message Link, "
                                      "then `!archive <link>`.")
            missing = bot_lacks(channel)
            if missing:
                raise UserFacingError(lacks_sentence(channel, missing))
            try:
                return await channel.fetch_message(message_id)
            except discord.NotFound:
                raise UserFacingError("That message no longer exists: there is nothing to archive.") from None
        ref = ctx.message.reference if ctx.interaction is None else None
        if ref is None or ref.message_id is None:
            raise UserFacingError("Reply to the message with `!archive`, give its link (`!archive <link>`), or use "
                                  "Apps → Archive message on it.")
        if isinstance(ref.resolved, discord.Message):
            return ref.resolved
        try:
            return await ctx.channel.fetch_message(ref.message_id)
        except discord.NotFound:
            raise UserFacingError("That message no longer exists: there is nothing to archive.") from None

    async def _check(self, who: Any, message: discord.Message) -> None:
        """Refuse before anything is posted or downloaded: who may, and whether Helix can read it."""
        if message.guild is None:
            raise UserFacingError("I archive messages of servers only, not direct messages.")
        if not await may_archive(self.bot, who, message.channel):
            raise UserFacingError("Only admins, members with Manage Messages in that channel or an archivist role "
                                  "can archive messages.")
        missing = bot_lacks(message.channel)
        if missing:
            raise UserFacingError(lacks_sentence(message.channel, missing))

    async def _archive(self, message: discord.Message, shown: Any, hidden: bool = False) -> str:
        """Archive it while ``shown`` (the one answer) is edited with the files saved so far, at most
        every few seconds, and once more with where it landed; returns that last text."""
        tally = Tally()
        work = asyncio.create_task(self.capture.archive_message(channel_info(message.channel),
                                                                message_record(message), tally))
        try:
            while shown is not None:
                done, _ = await asyncio.wait({work}, timeout=PROGRESS_EDIT_S)
                if done:
                    break
                await amend(shown, _progress(message, tally, hidden), prefix=self.bot.settings.prefix)
            record, tally = await work
        except BaseException:
            work.cancel()  # the command was cancelled or failed: so is its archiving
            if shown is not None:  # the error is the one answer (the error handler gives it), not a stale progress
                with contextlib.suppress(discord.HTTPException, aiohttp.ClientError):
                    await shown.delete()
            raise
        text = await self._landed(message, record, tally, hidden)
        if shown is not None:
            await amend(shown, text, prefix=self.bot.settings.prefix)
        return text

    async def _landed(self, message: discord.Message, record: dict[str, Any] | None, tally: Tally,
                      hidden: bool = False) -> str:
        """The last answer: where the message landed, or, until its files are on the archive remote,
        that they wait in the outbox (the catalogue holds them: nothing is lost, but nothing landed)."""
        where = await self.capture.catalogue.call("segment_of", message.id)
        files = [a for a in (record or {}).get("attachments", []) if a.get("status") == "saved"]
        size = sum(int(a.get("size") or 0) for a in files)
        upload = await upload_state(self.capture, [message.channel.id], [a["sha256"] for a in files if a.get("sha256")],
                                    only=where)
        log.info("capture_archived_one", message_id=message.id, files=len(files), segment=where, upload=upload)
        if (record or {}).get("type") == "tombstone":  # its deletion came while its files downloaded
            return "That message was deleted while I archived it: the archive keeps only that it was deleted."
        if hidden:
            return f"{HIDDEN}; `/archive` answers you alone." if upload == "landed" else \
                f"{HIDDEN}, {not_landed_yet(upload, one=True)}."
        parts = [f"Archived the message by **{discord.utils.escape_markdown(message.author.display_name)}**"]
        if files:
            parts.append(f" with {counted(len(files), 'file')} ({human_size(size)})")
        if upload != "landed":
            parts.append(f", {not_landed_yet(upload, one=True)}")
        elif where:
            parts.append(f" → `{where}`")
        if tally.too_big_names:
            limit = human_size(self.bot.settings.capture.max_attachment_bytes)
            n = len(tally.too_big_names)
            parts.append(f"; {counted(n, 'file')} over the {limit} limit {'was' if n == 1 else 'were'} recorded, "
                         "not downloaded")
        if tally.missing:
            parts.append(f"; {counted(tally.missing, 'file')} {'was' if tally.missing == 1 else 'were'} already "
                         "gone from Discord")
        if tally.failed:
            parts.append(f"; {counted(tally.failed, 'file')} Discord's CDN failed to send: the next backup of "
                         "the channel tries again")
        return "".join(parts) + "."

    # -- the watch: Discord's events as plain records ------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if self.bot.capture is None or message.guild is None:
            return
        if message.author.id == getattr(self.bot.user, "id", None):
            return  # Helix's own answers are not the community's content
        self.bot.capture.observe("message", message_record(message))

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if self.bot.capture is None:
            return
        data = payload.data
        if not data.get("edited_timestamp"):
            return  # Discord filling in a link preview, not a member's edit
        changes: dict[str, Any] = {"edited_at": _edit_time(str(data["edited_timestamp"]))}
        for key in ("content", "embeds"):
            if key in data:
                changes[key] = data[key] or ("" if key == "content" else [])
        if "content" in data and (names := mention_names(payload.message)):  # whom the new text mentions, by name
            changes["mentions"] = names
        if "attachments" in data:  # the files left (an author may remove one by editing): by id, no links
            changes["attachments"] = [{"id": str(a["id"])} for a in data["attachments"] or [] if a.get("id")]
        self.bot.capture.observe("edit", (payload.channel_id, payload.message_id, changes))

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if self.bot.capture is not None:
            self.bot.capture.observe("delete", (payload.channel_id, payload.message_id))

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if self.bot.capture is not None:
            for message_id in sorted(payload.message_ids):
                self.bot.capture.observe("delete", (payload.channel_id, message_id))

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        """A deleted thread's archive is read by nobody from now on, as a deleted channel's is: Discord
        no longer lists it, and without this it would pass for one archived for being quiet."""
        if self.bot.capture is None:
            return
        try:
            if await self.bot.capture.catalogue.call("thread_gone", payload.thread_id):
                # Its channel.json says so now, not at the next flush: a volume lost meanwhile would take
                # the deletion with it, and the catalogue rebuilt from the remote show the thread again.
                await self.bot.capture.flush(payload.thread_id, full=False)
        except CatalogueError as exc:
            log.warning("capture_thread_gone_not_recorded", thread=payload.thread_id, error=str(exc),
                        action="its archive stays shown to its channel's readers; check the data volume")
        except (SyncError, OSError) as exc:
            log.warning("capture_thread_gone_not_written", thread=payload.thread_id, error=str(exc),
                        action="its channel.json says so at the next flush")


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(CaptureCog(bot))
