"""Who may capture what, and whether Helix itself can read a channel: each refusal is one sentence.

Shared by the capture cogs (a cog module is executed anew on each load, so shared code lives here).
"""

from __future__ import annotations

from typing import Any

import discord

from bot.helix import HelixBot, UserFacingError
from bot.visibility import can_read


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


def lacks_sentence(channel: Any, missing: str) -> str:
    return (f"I can't archive {channel.mention}: I lack the **{missing}** permission there; give it to my role "
            "in the channel's settings (Permissions) and try again.")
