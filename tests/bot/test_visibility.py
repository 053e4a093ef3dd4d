"""Archived content is shown only to members who can read its channel now, by Discord's own rules."""

from __future__ import annotations

import discord
from simcord.backend.models import Overwrite
from simcord.enums import ChannelType, OverwriteType

from bot.sim.world import World
from bot.visibility import postable_in, readable_channel_ids
from tests.support.archived import archived_server
from tests.support.capture import backup_finished
from tests.support.world import answers, private_channel


async def bot_side(world: World, who) -> discord.Member:
    """The member as the bot sees them when they ask (as a command's author is), not the test's handle."""
    return await world.bot.get_guild(world.guild.id).fetch_member(who.id)


async def test_a_private_channel_is_readable_by_its_members_only_and_only_while_they_are(local_world: World):
    world = local_world
    guild = world.guild
    bot_guild = world.bot.get_guild(guild.id)
    staff = guild.create_role("Staff")
    private = guild.create_text_channel("staff-only", overwrites={
        guild.default_role: discord.PermissionOverwrite(view_channel=False),
        staff: discord.PermissionOverwrite(view_channel=True),
        bot_guild.me: discord.PermissionOverwrite(view_channel=True),
    })
    public = world.channel
    alice = guild.add_member(world.env.create_user("alice"), roles=[staff])
    bob = guild.add_member(world.env.create_user("bob"))
    await world.env.settle()
    both = [public.id, private.id]

    assert readable_channel_ids(await bot_side(world, alice), both) == {public.id, private.id}
    assert readable_channel_ids(await bot_side(world, bob), both) == {public.id}

    # Alice leaves the staff after the archive was made: from now on she sees only the public channel.
    world.env.backend.remove_member_role(guild.id, alice.id, staff.id)
    await world.env.settle()
    assert readable_channel_ids(await bot_side(world, alice), both) == {public.id}


async def test_view_without_read_message_history_is_not_enough(local_world: World):
    world = local_world
    guild = world.guild
    carol = guild.add_member(world.env.create_user("carol"))
    await world.env.settle()
    world.env.backend.set_overwrite(world.channel.id, Overwrite(
        target_id=carol.id, type=OverwriteType.MEMBER, allow=discord.Permissions(view_channel=True).value,
        deny=discord.Permissions(read_message_history=True).value))
    await world.env.settle()
    assert readable_channel_ids(await bot_side(world, carol), [world.channel.id]) == set()


async def test_nobody_reads_a_deleted_channel_nor_anything_from_a_dm(local_world: World):
    world = local_world
    dave = await bot_side(world, world.member("dave"))
    assert readable_channel_ids(dave, [world.channel.id, 123456789012345678]) == {world.channel.id}
    assert readable_channel_ids(world.bot.get_user(dave.id) or discord.Object(dave.id), [world.channel.id]) == set()


async def test_an_answer_in_a_channel_shows_only_channels_all_its_readers_can_read(local_world: World):
    world = local_world
    guild, env = world.guild, world.env
    me = world.bot.get_guild(guild.id).me
    staff, muted = guild.create_role("Staff"), guild.create_role("Muted")
    lobby = world.channel  # every member reads it
    general = guild.create_text_channel("general")
    staff_room = guild.create_text_channel("staff-room", overwrites={
        guild.default_role: discord.PermissionOverwrite(view_channel=False),
        staff: discord.PermissionOverwrite(view_channel=True), me: discord.PermissionOverwrite(view_channel=True)})
    # open to @everyone, but one role is kept out: a member with it reads the lobby, not this
    quiet = guild.create_text_channel("quiet", overwrites={muted: discord.PermissionOverwrite(view_channel=False)})
    await env.settle()
    bot_guild = world.bot.get_guild(guild.id)
    here = {c.id: bot_guild.get_channel(c.id) for c in (lobby, general, staff_room, quiet)}
    everything = set(here)

    # in the lobby: the open channels only; in the staff room: itself too, since all its readers read it
    assert postable_in(here[lobby.id], everything) == {lobby.id, general.id}
    assert postable_in(here[staff_room.id], everything) == {lobby.id, general.id, staff_room.id}
    assert postable_in(here[quiet.id], everything) == {lobby.id, general.id, quiet.id}

    # a public thread of the staff room is read by the staff room's readers: each may show the other
    thread = await here[staff_room.id].create_thread(name="plans", type=discord.ChannelType.public_thread)
    await env.settle()
    assert postable_in(thread, {staff_room.id, thread.id}) == {staff_room.id, thread.id}
    assert postable_in(here[staff_room.id], {thread.id}) == {thread.id}
    assert postable_in(here[lobby.id], {thread.id}) == set()


async def test_a_private_thread_is_read_by_those_discord_says_are_in_it_or_moderate_it(local_world: World):
    world = local_world
    env, be, guild = world.env, world.env.backend, world.guild
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_threads=True))
    alice, bob = guild.add_member(env.create_user("alice")), guild.add_member(env.create_user("bob"))
    mod = guild.add_member(env.create_user("mod"), roles=[mods])
    plans = be.create_thread(world.channel.id, "plans", alice.id, type=ChannelType.PRIVATE_THREAD)
    for member in (alice.id, be.bot_user.id):
        be.add_thread_member(plans.id, member)
    await env.settle()
    assert readable_channel_ids(await bot_side(world, mod), [plans.id]) == {plans.id}
    assert readable_channel_ids(await bot_side(world, bob), [plans.id]) == set()
    # Without the Server Members intent Discord does not tell Helix who is in a private thread, so
    # being its creator is no proof of being in it (she may have left): the archive stays closed.
    be.remove_thread_member(plans.id, alice.id)
    await env.settle()
    assert readable_channel_ids(await bot_side(world, alice), [plans.id]) == set()


async def test_a_channel_members_view_without_its_history_never_shows_its_archive_there(local_world: World, cdn):
    """#town-hall is live for everyone, its history for the staff only; in #lobby one member, Carol, has
    been kept from scrolling back. An answer posted in either is read live by those who may not read
    the history it would quote: staff ask there and the archive stays out of the channel."""
    world = local_world
    env, guild = world.env, world.guild
    me = world.bot.get_guild(guild.id).me
    staff = guild.create_role("Staff")
    hall = guild.create_text_channel("town-hall", overwrites={
        guild.default_role: discord.PermissionOverwrite(view_channel=True, read_message_history=False),
        staff: discord.PermissionOverwrite(read_message_history=True),
        me: discord.PermissionOverwrite(read_message_history=True),
        world.owner: discord.PermissionOverwrite(read_message_history=True)})
    lobby = guild.create_text_channel("lobby")
    alice = guild.add_member(env.create_user("alice"), roles=[staff])
    carol = world.member("carol")
    budget = env.backend.create_message(hall.id, alice.id, "last month's budget: 12k", broadcast=False).id
    drawer = env.backend.create_message(lobby.id, alice.id, "the old plans are in the drawer", broadcast=False).id
    await env.settle()
    for channel in (hall, lobby):
        await world.say(world.owner, f"!backup <#{channel.id}>")
        await backup_finished(world, channel.id)
    env.backend.set_overwrite(lobby.id, Overwrite(
        target_id=carol.id, type=OverwriteType.MEMBER, allow=discord.Permissions(view_channel=True).value,
        deny=discord.Permissions(read_message_history=True).value))
    await env.settle()

    for channel, word, message_id in ((hall, "budget", budget), (lobby, "drawer", drawer)):
        found = await said_in(world, alice, channel, f"!find {word}")
        assert str(message_id) not in found and "`/find` searches them for you alone" in found, found
        got = await said_in(world, alice, channel, f"!get {message_id}")
        assert got == "That message is from a channel not everyone here can read: I sent it to you in a direct message."
        assert word in alice.user.dm_channel.last_message.content
        listed = await said_in(world, alice, channel, "!archives")
        assert f"<#{channel.id}> ·" not in listed and "`/archives` shows them to you alone" in listed, listed
        # her own answer, which only she reads, still holds it
        result = await alice.slash(channel, "find", query=word)
        assert result.ephemeral and str(message_id) in result.response.content

    # in a channel all of whose viewers read its history, the channel's own archive is shown as before
    staff_room = private_channel(world, "staff-room", staff, world.owner)
    note = env.backend.create_message(staff_room.id, alice.id, "the budget is approved", broadcast=False).id
    await env.settle()
    await world.say(world.owner, f"!backup <#{staff_room.id}>")
    await backup_finished(world, staff_room.id)
    assert str(note) in await said_in(world, alice, staff_room, "!find approved")


async def said_in(world: World, who, channel, text: str) -> str:
    since = len(world.env.http_requests)
    await who.send(channel, text)
    return answers(world, since)[-1]["content"]


async def test_any_mix_of_roles_that_views_a_channel_without_its_history_keeps_its_archive_out(local_world: World):
    world = local_world
    guild, env = world.guild, world.env
    muted, staff, guests = (guild.create_role(name) for name in ("Muted", "Staff", "Guests"))
    hidden = discord.PermissionOverwrite(view_channel=False)
    # Muted may not scroll back; with Staff, who may view, a member holds both: live, without history
    muted_room = guild.create_text_channel("muted-room", overwrites={
        guild.default_role: hidden, staff: discord.PermissionOverwrite(view_channel=True),
        muted: discord.PermissionOverwrite(view_channel=False, read_message_history=False)})
    # Guests view it, history given only to the staff: a guest views it live
    guest_room = guild.create_text_channel("guest-room", overwrites={
        guild.default_role: discord.PermissionOverwrite(view_channel=False, read_message_history=False),
        staff: discord.PermissionOverwrite(view_channel=True, read_message_history=True),
        guests: discord.PermissionOverwrite(view_channel=True)})
    # everyone who may view it is staff, and the staff read its history: its own archive may be shown there
    staff_room = guild.create_text_channel("staff-room", overwrites={
        guild.default_role: discord.PermissionOverwrite(view_channel=False, read_message_history=False),
        staff: discord.PermissionOverwrite(view_channel=True, read_message_history=True)})
    await env.settle()
    bot_guild = world.bot.get_guild(guild.id)
    for channel, shown in ((muted_room, set()), (guest_room, set()), (staff_room, {staff_room.id})):
        assert postable_in(bot_guild.get_channel(channel.id), {channel.id}) == shown, channel.name


LOUNGE_SECRET = "the vip lounge password is hunter2"


async def _locked_voice_chat_archived(world: World):
    """A voice channel's text chat is read, by Discord's rules, only by members who may also Connect."""
    env, be, guild = world.env, world.env.backend, world.guild
    vip = guild.create_role("VIP")
    lounge = guild.create_voice_channel("vip-lounge")
    me = world.bot.get_guild(guild.id).me
    connect = discord.Permissions(connect=True).value
    # everyone sees the lounge in the list, only VIPs (and Helix) may connect: the usual "locked" voice room
    be.set_overwrite(lounge.id, Overwrite(target_id=guild.id, type=OverwriteType.ROLE, allow=0, deny=connect))
    be.set_overwrite(lounge.id, Overwrite(target_id=vip.id, type=OverwriteType.ROLE, allow=connect, deny=0))
    be.set_overwrite(lounge.id, Overwrite(target_id=me.id, type=OverwriteType.MEMBER, allow=connect, deny=0))
    alice = guild.add_member(env.create_user("alice"), roles=[vip])
    bob = guild.add_member(env.create_user("bob"))
    be.add_member_role(guild.id, world.owner.id, vip.id)  # the owner may connect: it archives from there
    message_id = be.create_message(lounge.id, alice.id, LOUNGE_SECRET, broadcast=False).id
    await env.settle()
    await world.say(world.owner, f"!archive https://discord.com/channels/{guild.id}/{lounge.id}/{message_id}")
    await env.settle()
    bot_lounge = world.bot.get_guild(guild.id).get_channel(lounge.id)
    bob_side = await world.bot.get_guild(guild.id).fetch_member(bob.id)
    assert not bot_lounge.permissions_for(bob_side).connect  # Discord keeps the lounge's chat from bob
    return alice, bob


async def test_find_shows_a_locked_voice_channels_chat_to_a_member_who_cannot_connect(local_world: World):
    world = local_world
    alice, bob = await _locked_voice_chat_archived(world)
    # control: the archive holds it, for whoever may open the lounge
    got = await alice.slash(world.channel, "find", query="password")
    assert "hunter2" in got.response.content, got.response.content

    got = await bob.slash(world.channel, "find", query="password")
    assert "hunter2" not in got.response.content, got.response.content


async def test_find_typed_in_a_public_channel_posts_a_locked_voice_chat_for_everyone(local_world: World):
    world = local_world
    alice, _bob = await _locked_voice_chat_archived(world)
    since = len(world.env.http_requests)
    await alice.send(world.channel, "!find password")  # #general: bob reads it too
    said = answers(world, since)[-1]["content"]
    assert "hunter2" not in said, said


async def test_status_does_not_name_the_last_archived_channel_to_a_member_who_cannot_read_it(local_world: World,
                                                                                               cdn):
    """The path of a captured channel's files names the channel, and a segment's the span of its messages."""
    a = await archived_server(local_world, cdn)  # #general, then the staff-only #secret, backed up last
    world = local_world
    since = len(world.env.http_requests)
    await a.bob.send(a.general, "!status")  # bob is not staff: he cannot open #secret
    [said] = answers(world, since)
    fields = {f["name"]: f["value"] for f in said["embeds"][0]["fields"]}
    assert str(a.secret.id) not in fields["Last archive"] and "(" in fields["Last archive"], fields["Last archive"]
