"""``!backup``, ``!watch`` and their kin about a private channel, typed where everyone reads the answer:
the channel is named, counted and located only for those who may read it."""

from __future__ import annotations

import discord
from simcord.enums import ChannelType

from bot.sim.world import World
from tests.support.capture import backup_finished
from tests.support.waiting import wait_until
from tests.support.world import answers, bot_messages, private_channel


def told(world: World, since: int) -> list[str]:
    """Everything the bot posted or edited since ``since``, as the channel reads it."""
    return [m.get("content") or "" for m in bot_messages(world, since)]


async def said(world: World, who, text: str, where=None) -> str:
    since = len(world.env.http_requests)
    await who.send(where or world.channel, text)
    return answers(world, since)[-1]["content"]


async def test_a_private_channel_backed_up_and_watched_from_a_public_one_is_not_named_there(local_world: World):
    world, env, guild = local_world, local_world.env, local_world.guild
    staff = guild.create_role("Staff")
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
    hr = private_channel(world, "hr-complaints", staff)
    mod = guild.add_member(env.create_user("mod"), roles=[mods, staff])
    for i in range(7):
        env.backend.create_message(hr.id, mod.id, f"complaint {i}", broadcast=False)
    await env.settle()
    secrets = (f"<#{hr.id}>", "hr-complaints", "7 messages", f"discord/{guild.id}/{hr.id}")

    since = len(env.http_requests)
    await mod.send(world.channel, f"!backup <#{hr.id}>")  # in the public channel everyone reads
    await backup_finished(world, hr.id)
    await wait_until(lambda: any("is done" in t for t in told(world, since)), what="the backup's last edit")
    public = told(world, since)
    assert public[0] == "📦 Backing up a channel not everyone here can read…", public
    assert public[-1] == ("✅ The backup of a channel not everyone here can read is done: `/backup status` shows how "
                          "it went to whoever can read that channel."), public
    assert not [t for t in public if any(s in t for s in secrets)], public
    # in the channel itself all its readers may read it: named, counted and located as ever
    since = len(env.http_requests)
    await mod.send(hr, f"!backup <#{hr.id}>")
    await backup_finished(world, hr.id, count=2)
    await wait_until(lambda: any(t.startswith(f"✅ Backup of <#{hr.id}> done: ") and f"discord/{guild.id}/{hr.id}/" in t
                                 for t in told(world, since)), what="the named backup's last edit")
    # and the slash form answers its asker alone, in full
    status = await mod.slash(world.channel, "backup status")
    assert status.ephemeral and f"<#{hr.id}>" in status.response.content, status

    watched = await mod.slash(world.channel, "watch", channel=hr)
    assert watched.ephemeral and watched.response.content.startswith(f"👀 Watching <#{hr.id}> and its threads"), watched
    again = await said(world, mod, f"!watch <#{hr.id}>")
    assert again == "That channel is already watched: `!unwatch #channel` stops it.", again
    assert await said(world, mod, f"!unwatch <#{hr.id}>") == "Stopped watching that channel; what was archived stays."
    assert await said(world, mod, f"!unwatch <#{hr.id}>") == "That channel is not watched."
    assert await said(world, mod, f"!backup cancel <#{hr.id}>") == "No backup of that channel is running."
    got = await said(world, mod, f"!watch <#{hr.id}>")
    assert got.startswith("👀 Watching that channel: every new message") and f"<#{hr.id}>" not in got, got
    cancel = await mod.slash(world.channel, "backup cancel", channel=hr)
    assert cancel.ephemeral and cancel.response.content == f"No backup of <#{hr.id}> is running.", cancel
    started = await mod.slash(world.channel, "backup channel", channel=hr)
    assert started.ephemeral and started.response.content == \
        f"📦 Backing up <#{hr.id}>: `/backup status` shows how far.", started
    await backup_finished(world, hr.id, count=3)


async def test_a_watched_thread_named_with_backticks_is_quoted_whole(local_world: World):
    world, env = local_world, local_world.env
    thread = env.backend.create_thread(world.channel.id, "notes `@everyone` **x**", world.owner.id,
                                       type=ChannelType.PUBLIC_THREAD, broadcast=False)
    env.backend.announce_thread_create(thread)
    await env.settle()
    await world.say(world.owner, f"!watch <#{thread.id}>")
    again = await said(world, world.owner, f"!watch <#{thread.id}>")
    assert again == f"<#{thread.id}> is already watched: `!unwatch #notes ˋ@\u200beveryoneˋ **x**` stops it.", again


async def test_a_manager_who_cannot_read_a_channel_learns_nothing_of_it_from_its_name(local_world: World):
    """Manage Server is not a right to read: naming a hidden channel is answered as naming none, or a
    manager could find which hidden channels exist by guessing their names."""
    world, env, guild = local_world, local_world.env, local_world.guild
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
    private_channel(world, "hr-complaints")
    mod = guild.add_member(env.create_user("mod"), roles=[mods])
    await env.settle()
    for command in ("!backup", "!watch", "!backup cancel", "!unwatch"):
        hidden = await said(world, mod, f"{command} hr-complaints")
        unknown = await said(world, mod, f"{command} nosuch-room")
        assert hidden == unknown == (f"`channel` must be a channel, forum or thread of this server: for example "
                                     f"`{command} #general`."), (command, hidden, unknown)
    # a channel the manager sees live, without its history, is known to exist: the answer says why
    guild.create_text_channel("notices", overwrites={
        guild.default_role: discord.PermissionOverwrite(read_message_history=False),
        world.bot.get_guild(guild.id).me: discord.PermissionOverwrite(read_message_history=True)})
    await env.settle()
    assert await said(world, mod, "!watch notices") == "You can't read that channel, so I won't watch it for you."
    assert env.errors  # those refusals were expected
