"""``!find in:#channel`` and ``!archives`` with threads and forums: a channel takes its threads (a forum its
posts) along, only those the asker may read, and ``!archives`` lists each under its channel."""

from __future__ import annotations

import json
import re

import discord
from simcord.builders import ChannelHandle
from simcord.enums import ChannelType

from bot.sim.world import World
from tests.capture.test_rebuild import restarted_on_a_fresh_volume
from tests.capture.test_rebuild_cursor import rebuilt
from tests.support.capture import backup_finished, storage
from tests.support.world import answer_to, answers, private_channel

ISO_SECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def found(answer: str) -> set[int]:
    return {int(x) for x in re.findall(r"archived id `(\d+)`", answer)}


async def archived_threads(world: World) -> dict[str, int]:
    """#help, a forum with one post; #launch with a public thread and a private one (alice and Helix in it);
    #random; all backed up, threads too. Every message speaks of the printer."""
    env, be, guild = world.env, world.env.backend, world.guild
    alice = world.member("alice")
    ids: dict[str, int] = {}
    forum = guild.create_forum_channel("help")
    post = be.create_thread(forum.id, "Printer on fire", alice.id, broadcast=False)
    be.announce_thread_create(post)
    launch, random = guild.create_text_channel("launch"), guild.create_text_channel("random")
    countdown = be.create_thread(launch.id, "countdown", alice.id, type=ChannelType.PUBLIC_THREAD, broadcast=False)
    plans = be.create_thread(launch.id, "plans", alice.id, type=ChannelType.PRIVATE_THREAD, broadcast=False)
    be.add_thread_member(plans.id, be.bot_user.id)
    for thread in (countdown, plans):
        be.announce_thread_create(thread)
    for key, channel, text in (("post", post, "the printer jammed again"), ("launch", launch, "printer out of ink"),
                               ("countdown", countdown, "the printer prints the countdown"),
                               ("plans", plans, "a printer for the surprise"), ("random", random, "printer memes")):
        ids[key] = be.create_message(channel.id, alice.id, text, broadcast=False).id
    await env.settle()
    for channel, words in ((forum, ""), (launch, " threads"), (random, "")):
        await world.say(world.owner, f"!backup <#{channel.id}>{words}")
        assert (await backup_finished(world, channel.id)).state == "done"
    ids.update(help=forum.id, post_channel=post.id, launch_channel=launch.id, countdown_channel=countdown.id,
               plans_channel=plans.id, random_channel=random.id)
    return ids


async def test_find_in_a_forum_or_a_channel_searches_its_posts_and_threads_the_asker_may_read(local_world, cdn):  # noqa: F811
    world = local_world
    ids = await archived_threads(world)
    bob = world.member("bob")
    assert found(await answer_to(world, bob, f"!find printer in:<#{ids['help']}>")) == {ids["post"]}
    assert found(await answer_to(world, bob, "!find printer in:#help")) == {ids["post"]}
    # the private thread is not bob's to read: #launch brings only its own message and its public thread
    assert found(await answer_to(world, bob, f"!find printer in:<#{ids['launch_channel']}>")) == {
        ids["launch"], ids["countdown"]}
    assert found(await answer_to(world, bob, f"!find printer in:<#{ids['countdown_channel']}>")) == {ids["countdown"]}
    # a moderator reads the private thread: asked privately, it comes along with its channel
    mods = world.guild.create_role("Mods", permissions=discord.Permissions(manage_threads=True))
    mod = world.guild.add_member(world.env.create_user("mod"), roles=[mods])
    await world.env.settle()
    result = await mod.slash(world.channel, "find", query=f"printer in:<#{ids['launch_channel']}>")
    assert result.ephemeral and found(result.response.content) == {ids["launch"], ids["countdown"], ids["plans"]}


async def test_archives_takes_forums_and_threads_and_lists_threads_under_their_channel(local_world, cdn):  # noqa: F811
    world = local_world
    ids = await archived_threads(world)
    bob = world.member("bob")

    forum = (await answer_to(world, bob, f"!archives <#{ids['help']}>")).splitlines()
    assert forum[0] == "Archived channels (page 1):", forum
    assert forum[1].startswith(f"<#{ids['help']}> · forum: 1 post, listed after it · 1 message · "), forum
    assert forum[2].startswith(f"<#{ids['post_channel']}> · ↳ in <#{ids['help']}> · 1 message · "), forum
    assert len(forum) == 3, forum

    thread = (await answer_to(world, bob, f"!archives <#{ids['countdown_channel']}>")).splitlines()
    assert len(thread) == 2 and thread[1].startswith(f"<#{ids['countdown_channel']}> · 1 message · "), thread

    everything = [line.split(" · ")[:2] for line in (await answer_to(world, bob, "!archives")).splitlines()[1:]]
    assert everything == [
        [f"<#{ids['help']}>", "forum: 1 post, listed after it"],
        [f"<#{ids['post_channel']}>", f"↳ in <#{ids['help']}>"],
        [f"<#{ids['launch_channel']}>", "1 message"],
        [f"<#{ids['countdown_channel']}>", f"↳ in <#{ids['launch_channel']}>"],
        [f"<#{ids['random_channel']}>", "1 message"]], everything


async def test_threads_discord_archived_for_quiet_stay_found_by_who_may_read_their_channel(local_world, cdn):  # noqa: F811
    """Discord archives every quiet thread and stops listing it; its archive in Helix follows its channel:
    a public thread for the channel's readers, a private one for its moderators only."""
    world = local_world
    ids = await archived_threads(world)
    for thread in ("countdown_channel", "plans_channel", "post_channel"):
        world.env.backend.edit_channel(ids[thread], {}, thread_metadata={"archived": True})
    await world.env.settle()
    assert world.bot.get_channel(ids["countdown_channel"]) is None  # discord.py no longer holds it

    bob = world.member("bob")
    assert found(await answer_to(world, bob, "!find printer")) == {
        ids["post"], ids["launch"], ids["countdown"], ids["random"]}  # #launch and #help are open to all
    assert found(await answer_to(world, bob, f"!find printer in:<#{ids['launch_channel']}>")) == {
        ids["launch"], ids["countdown"]}
    got = await answer_to(world, bob, f"!get {ids['countdown']}")
    assert "the printer prints the countdown" in got, got
    assert ids["plans"] not in found((await bob.slash(world.channel, "find", query="printer")).response.content)
    mods = world.guild.create_role("Mods", permissions=discord.Permissions(manage_threads=True))
    mod = world.guild.add_member(world.env.create_user("mod"), roles=[mods])
    await world.env.settle()
    result = await mod.slash(world.channel, "find", query="surprise")
    assert result.ephemeral and found(result.response.content) == {ids["plans"]}


async def test_a_thread_deleted_on_discord_is_read_by_nobody_like_a_deleted_channel(local_world, cdn):  # noqa: F811
    """A moderator who deletes a thread expects its content gone from view, as a deleted channel's is
    (the owner restores either from the archive)."""
    world = local_world
    ids = await archived_threads(world)
    bob = world.member("bob")
    assert found(await answer_to(world, bob, "!find printer")) >= {ids["countdown"], ids["random"]}
    world.env.backend.delete_channel(ids["countdown_channel"])
    world.env.backend.delete_channel(ids["random_channel"])
    await world.env.settle()

    shown = found(await answer_to(world, bob, "!find printer"))
    assert shown == {ids["post"], ids["launch"]}, shown
    assert "no archived message" in (await answer_to(world, bob, f"!get {ids['countdown']}")).lower()
    assert ids["countdown"] not in found(await answer_to(world, world.owner, "!find printer"))
    rows = await world.capture.catalogue.call("thread_parents", world.guild.id)
    assert ids["countdown_channel"] not in rows and ids["plans_channel"] in rows


async def test_a_backup_with_threads_takes_the_private_threads_discord_archived_too(local_world, cdn):  # noqa: F811
    world = local_world
    env, be, guild = world.env, world.env.backend, world.guild
    alice = world.member("alice")
    launch = guild.create_text_channel("launch")
    plans = be.create_thread(launch.id, "plans", alice.id, type=ChannelType.PRIVATE_THREAD, broadcast=False)
    be.add_thread_member(plans.id, be.bot_user.id)
    be.announce_thread_create(plans)
    said = be.create_message(plans.id, alice.id, "the surprise party is on friday", broadcast=False).id
    be.edit_channel(plans.id, {}, thread_metadata={"archived": True})  # quiet for a week: Discord archived it
    await env.settle()
    await world.say(world.owner, f"!backup <#{launch.id}> threads")
    assert (await backup_finished(world, launch.id)).state == "done"
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_threads=True))
    mod = guild.add_member(env.create_user("mod"), roles=[mods])
    await env.settle()
    result = await mod.slash(world.channel, "find", query="surprise")
    assert found(result.response.content) == {said}, result.response.content


async def test_guessing_a_hidden_channels_name_gets_the_answer_of_one_that_does_not_exist(local_world):
    world = local_world
    private_channel(world, "vaultroom", world.owner)
    bob = world.member("bob")
    since = len(world.env.http_requests)
    await bob.send(world.channel, "!archives vaultroom")  # typed as text: no client turns it into a mention
    await bob.send(world.channel, "!archives nosuchroom")
    hidden, missing = (a["content"] for a in answers(world, since))
    assert hidden == missing.replace("nosuchroom", "vaultroom"), (hidden, missing)
    assert "<#" not in hidden, hidden
    assert world.env.errors is not None  # those refusals were expected: reading them tells SimCord so


async def test_a_quiet_threads_backup_stays_in_backup_status(local_world, cdn):  # noqa: F811
    world = local_world
    env, be, guild = world.env, world.env.backend, world.guild
    launch = guild.create_text_channel("launch")
    countdown = be.create_thread(launch.id, "countdown", world.member("alice").id, type=ChannelType.PUBLIC_THREAD,
                                 broadcast=False)
    be.announce_thread_create(countdown)
    be.create_message(countdown.id, world.member("alice").id, "T-10", broadcast=False)
    await env.settle()
    await world.say(world.owner, f"!backup <#{countdown.id}>")
    assert (await backup_finished(world, countdown.id)).state == "done"
    be.edit_channel(countdown.id, {}, thread_metadata={"archived": True})  # quiet: Discord archived it
    await env.settle()
    status = await answer_to(world, world.owner, "!backup status")
    assert status.startswith(f"<#{countdown.id}> · done"), status


async def test_a_thread_deleted_on_discord_stays_unread_after_the_catalogue_is_rebuilt(local_world, cdn):  # noqa: F811
    """The deletion is on the remote, in the thread's channel.json: a volume lost with the catalogue does
    not show the thread again to its channel's readers."""
    world = local_world
    ids = await archived_threads(world)
    world.env.backend.delete_channel(ids["countdown_channel"])
    await world.env.settle()
    assert await world.archive.worker.drain(30)
    manifest = storage(world) / f"discord/{world.guild.id}/{ids['countdown_channel']}/channel.json"
    assert re.fullmatch(ISO_SECONDS, json.loads(manifest.read_text()).get("gone_at") or ""), manifest.read_text()

    await rebuilt(await restarted_on_a_fresh_volume(world))
    bob = world.member("bob")
    assert found(await answer_to(world, bob, "!find printer")) == {ids["post"], ids["launch"], ids["random"]}
    assert "no archived message" in (await answer_to(world, bob, f"!get {ids['countdown']}")).lower()
    assert ids["countdown_channel"] not in await world.capture.catalogue.call("thread_parents", world.guild.id)


async def test_a_result_from_a_quiet_thread_is_not_called_a_deleted_channel(local_world, cdn):  # noqa: F811
    """Discord stops listing a thread nobody posted in for a while: it is still there, and so is its link."""
    world = local_world
    ids = await archived_threads(world)
    world.env.backend.edit_channel(ids["countdown_channel"], {}, thread_metadata={"archived": True})
    await world.env.settle()
    assert world.bot.get_channel(ids["countdown_channel"]) is None  # discord.py no longer holds it
    got = await answer_to(world, world.member("bob"), "!find countdown")
    assert str(ids["countdown"]) in got and f"<#{ids['countdown_channel']}>" in got, got
    assert "a deleted channel" not in got and f"/{ids['countdown_channel']}/{ids['countdown']}>" in got, got


async def test_slash_archives_of_a_quiet_thread_is_a_sentence_not_an_error_id(local_world, cdn):  # noqa: F811
    world = local_world
    ids = await archived_threads(world)
    thread = ChannelHandle(world.env, world.guild, world.env.backend.get_channel(ids["countdown_channel"]))
    world.env.backend.edit_channel(ids["countdown_channel"], {}, thread_metadata={"archived": True})
    await world.env.settle()
    got = await world.owner.slash(world.channel, "archives", channel=thread)
    assert got.ephemeral and got.response.content == ("That is not a valid argument for /archives: for example "
                                                      "`/archives channel:#general`."), got.response.content
    assert world.env.errors  # that refusal was expected: reading the errors tells SimCord so
