"""Who may capture what, whether Helix itself can read a channel (each refusal is one sentence), what an
answer about a channel may say where it is posted, and whether what a capture command saved has
reached the archive remote yet.

Shared by the capture cogs (a cog module is executed anew on each load, so shared code lives here).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import discord

from bot.helix import HelixBot, UserFacingError
from bot.replies import answer
from bot.visibility import can_read, postable_in


async def is_helix_admin(bot: HelixBot, member: Any) -> bool:
    """The rules of ``!testmega`` (see HelixBot.is_admin)."""
    return await bot.is_admin(member)


def running_capture(bot: HelixBot) -> Any:
    """The bot's capture engine, or the sentence saying it is not running here."""
    if bot.capture is None:
        raise UserFacingError("Capture is not running on this Helix: the operator starts it with the bot.")
    return bot.capture


async def may_manage(bot: HelixBot, member: Any) -> bool:
    """``!backup`` and ``!watch``: admins, or members with Manage Server."""
    perms = getattr(member, "guild_permissions", None)
    return await is_helix_admin(bot, member) or bool(perms and perms.manage_guild)


async def may_archive(bot: HelixBot, member: Any, channel: Any) -> bool:
    """``!archive``: admins, Manage Messages in that channel, or a role in HELIX_ARCHIVIST_ROLE_IDS."""
    if await is_helix_admin(bot, member):
        return True
    if isinstance(member, discord.Member) and channel.permissions_for(member).manage_messages:
        return True
    archivists = bot.settings.capture.archivist_role_ids
    return bool({r.id for r in getattr(member, "roles", [])} & archivists)


def refuse_unless_reader(member: Any, channel: Any, doing: str) -> None:
    """Refuse ``doing`` (``"back it up"``) to a member who cannot read ``channel`` now.

    Capturing a channel, or managing its capture, shows its name and counts and puts its content
    where the member may later ask for it: a right to manage backups is not a right to read.
    """
    if not isinstance(member, discord.Member) or not can_read(member, channel):
        raise UserFacingError(f"You can't read that channel, so I won't {doing} for you.")


def refuse_as_unknown_unless_reader(member: Any, channel: Any, doing: str, unknown: str) -> None:
    """Refuse ``doing`` to a member who cannot read ``channel`` now (see ``refuse_unless_reader``).

    One who cannot even see it gets ``unknown``, the very sentence a name that matches no channel
    gets: the converter finds hidden channels by name too, and a different answer would let anyone
    with Manage Server learn which hidden channels exist by guessing. One who sees it live, without
    its history, knows it exists and is told why."""
    if isinstance(member, discord.Member) and can_read(member, channel):
        return
    seen = isinstance(member, discord.Member) and channel.permissions_for(member).view_channel and not (
        isinstance(channel, discord.Thread) and channel.is_private())
    raise UserFacingError(f"You can't read that channel, so I won't {doing} for you." if seen else unknown)


def hidden_from(here: Any, channel_id: int) -> bool:
    """Whether an answer posted in ``here`` would be read by someone who cannot read the channel: then
    it names neither that channel nor what it holds, nor who posted there (``visibility.postable_in``)."""
    return channel_id not in postable_in(here, {channel_id})


async def tell(ctx: Any, channel: Any, named: str, unnamed: str) -> discord.Message | None:
    """Answer about ``channel``: ``named`` where every reader of the answer may read it; where some may
    not, ``unnamed`` posted in the channel, or ``named`` for the slash form's asker alone (ephemeral)."""
    hidden = hidden_from(ctx.channel, channel.id)
    if ctx.interaction is not None:
        return await answer(ctx, named, ephemeral=hidden)
    return await answer(ctx, unnamed if hidden else named)


def bot_lacks(channel: Any) -> str | None:
    """The first permission Helix needs in ``channel`` and lacks, by its name in Discord's settings.

    Without Read Message History Discord answers history requests with an empty list, not an
    error: a backup would archive nothing and look finished, so this is checked first.
    """
    me = channel.guild.me
    perms = channel.permissions_for(me)
    if not perms.view_channel:
        return "View Channel"
    if not perms.read_message_history:
        return "Read Message History"
    return None


def lacks_sentence(channel: Any, missing: str, hidden: bool = False) -> str:
    """``hidden``: read where not everyone can read ``channel``, so it is not named."""
    return (f"I can't archive {'that channel' if hidden else channel.mention}: I lack the **{missing}** permission "
            "there; give it to my role in the channel's settings (Permissions) and try again.")


LANDING_WAIT_S = 10.0  # how long a final answer waits for its files to land before saying they are on the way
LANDING_POLL_S = 0.2
QUEUED = ("kept here; ⚠️ the archive remote is not taking files now, so {it} {waits} in the outbox (the bot's "
          "owner sees {them} with `!outbox`) and {goes} up when it is back")
UPLOADING = "kept here and still going up to the archive remote (the bot's owner sees how far with `!outbox`)"


def not_landed_yet(state: str, one: bool = False) -> str:
    """The clause a final answer ends with when its files are not on the remote (``state`` from ``upload_state``)."""
    if state == "uploading":
        return UPLOADING
    return QUEUED.format(it="it" if one else "they", waits="waits" if one else "wait", them="it" if one else "them",
                         goes="goes" if one else "go")


async def upload_state(capture: Any, channel_ids: Iterable[int], blob_shas: Iterable[str] = (),
                       only: str | None = None) -> str:
    """``landed`` once every segment of ``channel_ids`` (or the one at path ``only``) and every blob of
    ``blob_shas`` is on the remote;
    ``stuck`` as soon as the outbox shows the remote is not taking them (one of them failed, or the
    queue's head is waiting to retry); ``uploading`` when neither is known within LANDING_WAIT_S.

    The catalogue holds what was captured durably the moment it is queued, so a command could answer
    at once; but "→ `path`" then claims a landing that a failing remote may never give.
    """
    channel_ids, blob_shas = list(channel_ids), list(blob_shas)
    deadline = time.perf_counter() + LANDING_WAIT_S  # real time: a simulated loop's clock may run ahead of the upload
    while True:
        paths = {s.path for cid in channel_ids for s in await capture.catalogue.call("segments", cid)
                 if s.state != "landed" and only in (None, s.path)}
        item_ids = set()
        for sha in blob_shas:
            blob = await capture.catalogue.call("blob", sha)
            if blob is not None and blob.state == "queued":
                item_ids.add(blob.outbox_id)
        if not paths and not item_ids:
            return "landed"
        if await _remote_refusing(capture.archive.outbox, paths, item_ids):
            return "stuck"
        if time.perf_counter() >= deadline:
            return "uploading"
        await asyncio.sleep(LANDING_POLL_S)


async def _remote_refusing(outbox: Any, paths: set[str], item_ids: set[int | None]) -> bool:
    """One of these items failed for good, or the queue (strictly ordered) waits on an item backing off
    after a failure."""
    head = await outbox.next_pending()
    if head is not None and head.last_error and head.next_attempt_at > time.time():
        return True
    failed = await outbox.list(("failed",), limit=10_000)
    return any(item.rel_path in paths or item.id in item_ids for item in failed)
