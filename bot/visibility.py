"""Who may see what was archived from a channel: members who can read that channel now.

Archived content is shown to an asker only from channels where Discord's own permission rules
(roles, channel overwrites, the guild owner, Administrator, timeouts), evaluated by discord.py at
the moment of asking, give them both View Channel and Read Message History. A channel that no
longer exists, or that the bot cannot see, is readable by nobody: its archive is for operators.
"""

from __future__ import annotations

from collections.abc import Iterable

import discord


def can_read(member: discord.Member, channel: discord.abc.GuildChannel | discord.Thread) -> bool:
    """True when ``member`` may open ``channel`` and scroll back through it right now."""
    perms = channel.permissions_for(member)
    if not (perms.view_channel and perms.read_message_history):
        return False
    if isinstance(channel, discord.Thread) and channel.is_private() and not perms.manage_threads:
        # A private thread is readable by its members and moderators only; discord.py's
        # permissions_for follows the parent channel and cannot know who was added.
        return any(m.id == member.id for m in channel.members) or channel.owner_id == member.id
    return True


def readable_channel_ids(member: discord.Member | discord.User, channel_ids: Iterable[int]) -> set[int]:
    """The ids among ``channel_ids`` whose archive ``member`` may see; none at all outside a server."""
    if not isinstance(member, discord.Member):
        return set()  # a DM carries no server, so no channel's rules can be checked
    guild = member.guild
    readable = set()
    for channel_id in channel_ids:
        channel = guild.get_channel_or_thread(channel_id)
        if channel is not None and can_read(member, channel):
            readable.add(channel_id)
    return readable
