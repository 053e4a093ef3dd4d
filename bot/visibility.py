"""Who may see what was archived from a channel: members who can read that channel now.

Archived content is shown to an asker only from channels where Discord's own permission rules
(roles, channel overwrites, the guild owner, Administrator, timeouts), evaluated by discord.py at
the moment of asking, give them both View Channel and Read Message History. A channel that no
longer exists, or that the bot cannot see, is readable by nobody: its archive is for operators.
A private thread is readable by members who may manage threads there, and by those Discord has
told Helix are in it, which it does only with the Server Members intent: not by its creator on
that alone, who may have left it. A thread Discord no longer lists because it archives every quiet
one after a while follows its channel, as Discord lets a channel's readers open its archived
threads: a public one is readable by whoever may read the channel, a private one by those who may
manage threads there. A thread deleted on Discord is readable by nobody, like a deleted channel
(the catalogue leaves it out of ``thread_parents``).

An answer posted in a channel (a prefix command's) is read by everyone who can view that
channel, now and later, not by the asker alone; and a member may view a channel live without
being allowed to scroll back through it (Read Message History). So it shows a channel's archive
only where no such reader could be kept out of it: the same channel (or its thread, or the
channel of the thread it is posted in) when every member who can view it can also read its
history, whatever roles they hold, or a channel that every member can read. Everything else is
for the private forms: the slash commands' ephemeral answers, or a DM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import discord

_VOCAL = (discord.VoiceChannel, discord.StageChannel)


def can_read(member: discord.Member, channel: discord.abc.GuildChannel | discord.Thread) -> bool:
    """True when ``member`` may open ``channel`` and scroll back through it right now."""
    perms = channel.permissions_for(member)
    if not (perms.view_channel and perms.read_message_history):
        return False
    if isinstance(channel, _VOCAL) and not perms.connect:
        return False  # a voice or stage channel's text chat is shown only to those who may connect to it
    if isinstance(channel, discord.Thread) and channel.is_private() and not perms.manage_threads:
        # A private thread is readable by its members and moderators only; discord.py's
        # permissions_for follows the parent channel and cannot know who was added. Its creator
        # is no exception: one who left, or was removed, reads it no more.
        return any(m.id == member.id for m in channel.members)
    return True


def readable_channel_ids(member: discord.Member | discord.User, channel_ids: Iterable[int],
                         threads: Mapping[int, tuple[int, bool]] | None = None) -> set[int]:
    """The ids among ``channel_ids`` whose archive ``member`` may see; none at all outside a server.

    ``threads``: the archived threads' channel and whether each is private, for those Discord no
    longer lists (see the module's docstring)."""
    if not isinstance(member, discord.Member):
        return set()  # a DM carries no server, so no channel's rules can be checked
    guild = member.guild
    readable = set()
    for channel_id in channel_ids:
        channel = guild.get_channel_or_thread(channel_id)
        if channel is not None:
            if can_read(member, channel):
                readable.add(channel_id)
        elif threads and channel_id in threads:
            parent_id, private = threads[channel_id]
            parent = guild.get_channel(parent_id)
            if parent is not None and can_read(member, parent) and (
                    not private or parent.permissions_for(member).manage_threads):
                readable.add(channel_id)
    return readable


def open_to_all(channel: discord.abc.GuildChannel | discord.Thread) -> bool:
    """True when every member of the server, whatever their roles, can read ``channel``: @everyone
    may, and no overwrite takes View Channel or Read Message History from anyone (roles only add
    to @everyone, and a timeout keeps both)."""
    if isinstance(channel, discord.Thread):
        return not channel.is_private() and channel.parent is not None and open_to_all(channel.parent)
    perms = channel.permissions_for(channel.guild.default_role)
    vocal = isinstance(channel, _VOCAL)
    if not (perms.view_channel and perms.read_message_history and (perms.connect or not vocal)):
        return False
    return not any(o.view_channel is False or o.read_message_history is False or (vocal and o.connect is False)
                   for o in channel.overwrites.values())


_VIEW, _HISTORY, _VIEW_ALLOW, _VIEW_DENY, _HISTORY_ALLOW, _HISTORY_DENY = (1 << n for n in range(6))


def _role_bits(perms: discord.Permissions, overwrite: discord.PermissionOverwrite) -> int:
    """What one role brings to a member's permissions in a channel, as far as viewing and history go."""
    return ((_VIEW if perms.view_channel else 0) | (_HISTORY if perms.read_message_history else 0)
            | (_VIEW_ALLOW if overwrite.view_channel is True else 0)
            | (_VIEW_DENY if overwrite.view_channel is False else 0)
            | (_HISTORY_ALLOW if overwrite.read_message_history is True else 0)
            | (_HISTORY_DENY if overwrite.read_message_history is False else 0))


def _views_without_history(held: int, everyone: discord.PermissionOverwrite,
                           member: discord.PermissionOverwrite | None) -> bool:
    """Discord's order for one member: the roles' server permissions, then the @everyone overwrite,
    then the roles' overwrites (an allow beats a deny), then the member's own overwrite."""
    view = _over(bool(held & _VIEW), everyone.view_channel)
    history = _over(bool(held & _HISTORY), everyone.read_message_history)
    view = bool(held & _VIEW_ALLOW) or (view and not held & _VIEW_DENY)
    history = bool(held & _HISTORY_ALLOW) or (history and not held & _HISTORY_DENY)
    if member is not None:
        view, history = _over(view, member.view_channel), _over(history, member.read_message_history)
    return view and not history


def _over(value: bool, setting: bool | None) -> bool:
    """An overwrite's word on one permission: allowed, denied, or left as it was (None)."""
    return value if setting is None else setting


def history_for_every_viewer(channel: discord.abc.GuildChannel | discord.Thread) -> bool:
    """True when nobody, whatever roles they hold now or later, can view ``channel`` without also
    being allowed to read its history (a thread: its channel's rules).

    Members are not all known to a bot without the Server Members intent, so every combination of
    the server's roles is tried (administrators and the owner bypass overwrites, so they never
    lack it), and each member overwrite with each of them: what a role brings is six bits, so the
    combinations are at most 64 however many roles there are."""
    if isinstance(channel, discord.Thread):
        return channel.parent is not None and history_for_every_viewer(channel.parent)
    guild = channel.guild
    everyone = guild.default_role
    if everyone.permissions.administrator:
        return True
    held = {_role_bits(everyone.permissions, discord.PermissionOverwrite())}
    for role in guild.roles:
        if role.is_default() or role.permissions.administrator:
            continue
        bits = _role_bits(role.permissions, channel.overwrites_for(role))
        held |= {h | bits for h in held}
    members = [overwrite for target, overwrite in channel.overwrites.items()
               if not _is_role(target) and target.id != guild.owner_id]
    everyone_ow = channel.overwrites_for(everyone)
    return not any(_views_without_history(h, everyone_ow, member) for h in held for member in (None, *members))


def _is_role(target: object) -> bool:
    return isinstance(target, discord.Role) or getattr(target, "type", None) is discord.Role


def postable_in(here: discord.abc.Messageable, channel_ids: Iterable[int],
                threads: Mapping[int, tuple[int, bool]] | None = None) -> set[int]:
    """The ids among ``channel_ids`` whose archive may be posted in ``here`` for all its readers
    to see (see the module's docstring); none in a DM, where the asker alone reads the answer
    and the caller has nothing to filter. ``threads`` as for ``readable_channel_ids``: a public
    thread Discord no longer lists is postable where its channel is."""
    guild = getattr(here, "guild", None)
    if guild is None:
        return set()
    # A thread's readers can all read its channel, and its history follows that channel's rules.
    home = here.parent if isinstance(here, discord.Thread) else here
    near = {here.id, home.id} if home is not None and history_for_every_viewer(home) else set()
    postable = set()
    for channel_id in channel_ids:
        channel = guild.get_channel_or_thread(channel_id)
        if channel is None:
            parent_id, private = (threads or {}).get(channel_id, (None, True))
            parent = guild.get_channel(parent_id) if parent_id is not None and not private else None
            if parent is not None and (parent_id in near or open_to_all(parent)):
                postable.add(channel_id)
            continue
        if channel_id in near or open_to_all(channel) or (
                isinstance(channel, discord.Thread) and not channel.is_private() and channel.parent_id in near):
            postable.add(channel_id)
    return postable


def left_out(slash: str) -> str:
    """What a prefix answer says when ``postable_in`` left out channels its asker reads: which form
    shows them privately; never which channels they are, nor how many."""
    return f"Channels not everyone here can read are left out: `{slash}` shows them to you alone"
