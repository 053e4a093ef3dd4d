"""A backup that takes a channel's threads, answered where everyone reads: a private thread among
them is neither named nor counted there, while whoever may open every thread gets the detail."""

from __future__ import annotations

import discord
from simcord.enums import ChannelType

from bot.sim.world import World
from tests.bot.test_backup_privacy import said, told
from tests.support.capture import backup_finished
from tests.support.waiting import wait_until

SECRET = "salary-bands-for-2027"


async def launch_with_private_thread(world: World):
    """#launch, which everyone reads, holds one message; its private thread, which Helix and the
    owner were added to, holds three."""
    env, be, guild = world.env, world.env.backend, world.guild
    alice = world.member("alice")
    launch = guild.create_text_channel("launch")
    plans = be.create_thread(launch.id, SECRET, alice.id, type=ChannelType.PRIVATE_THREAD, broadcast=False)
    be.add_thread_member(plans.id, be.bot_user.id)
    be.announce_thread_create(plans)
    be.add_thread_member(plans.id, world.owner.id)
    be.create_message(launch.id, alice.id, "launch is friday", broadcast=False)
    for i in range(3):
        be.create_message(plans.id, alice.id, f"band {i}: secret numbers", broadcast=False)
    await env.settle()
    return launch, next(t for t in launch.threads if t.id == plans.id)


def thread_history_forbidden(world: World, thread) -> None:
    world.env.inject_error("GET", f"/channels/{thread.id}/messages*", status=403, code=50001,
                           message="Missing Access", times=None)


async def test_a_failed_private_thread_is_not_named_in_a_public_backup_answer(local_world: World):
    world = local_world
    launch, plans = await launch_with_private_thread(world)
    thread_history_forbidden(world, plans)
    since = len(world.env.http_requests)
    await world.say(world.owner, f"!backup <#{launch.id}> threads")  # in the lobby, which every member reads
    assert (await backup_finished(world, launch.id)).state == "failed"
    stopped = (f"❌ The backup of <#{launch.id}> and its threads stopped: `/backup status` shows how it went to "
               "whoever can read all its threads.")
    await wait_until(lambda: stopped in told(world, since), what="the backup's last edit")
    public = told(world, since)
    assert not [t for t in public if SECRET in t or "scanned" in t or f"<#{plans.id}>" in t], public


async def test_a_private_threads_messages_are_not_counted_in_a_public_backup_answer(local_world: World):
    world = local_world
    launch, _plans = await launch_with_private_thread(world)
    since = len(world.env.http_requests)
    await world.say(world.owner, f"!backup <#{launch.id}> threads")  # in the lobby, which every member reads
    assert (await backup_finished(world, launch.id)).state == "done"
    done = (f"✅ The backup of <#{launch.id}> and its threads is done: `/backup status` shows how it went to "
            "whoever can read all its threads.")
    await wait_until(lambda: done in told(world, since), what="the backup's last edit")
    public = told(world, since)
    # #launch holds one message everyone may read, the thread three: one sum would tell the thread's
    assert not [t for t in public if "scanned" in t or "messages" in t], public


async def test_backup_status_where_everyone_reads_names_and_counts_no_private_thread(local_world: World):
    """A watch's catch-up always takes the threads: its line is kept as a backup's is."""
    world, env, guild = local_world, local_world.env, local_world.guild
    launch, plans = await launch_with_private_thread(world)
    thread_history_forbidden(world, plans)
    await world.say(world.owner, f"!watch <#{launch.id}>")
    assert (await backup_finished(world, launch.id)).state == "failed"

    status = await said(world, world.owner, "!backup status")  # in the lobby, which every member reads
    assert status.startswith(f"<#{launch.id}> and its threads · catch-up after !watch · failed, started "), status
    assert "no counts: not all who read this may open all its threads" in status, status
    assert "-# Counts of backups with threads not everyone here can read are left out: `/backup status` shows " \
           "them to you alone." in status, status
    assert SECRET not in status and f"<#{plans.id}>" not in status and "scanned" not in status, status
    # a manager who reads #launch and not the thread learns no more by asking alone
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
    mod = guild.add_member(env.create_user("mod"), roles=[mods])
    await env.settle()
    alone = await mod.slash(world.channel, "backup status")
    content = alone.response.content
    assert alone.ephemeral and "no counts" in content and SECRET not in content and "scanned" not in content, alone
    assert "left out" not in content, content  # no form shows that manager more


async def test_where_every_reader_may_open_every_thread_a_manager_gets_the_detail(local_world: World):
    """Asked in the private thread itself, or by slash command of one who may open it, the backup is
    named, counted and its error shown; the error names the thread by its mention, which Discord
    shows by name only to whoever may open it."""
    world = local_world
    launch, plans = await launch_with_private_thread(world)
    thread_history_forbidden(world, plans)
    since = len(world.env.http_requests)
    await world.owner.send(plans, f"!backup <#{launch.id}> threads")  # every reader of the thread may open it
    assert (await backup_finished(world, launch.id)).state == "failed"
    lost = (f"Helix lost access to the thread <#{plans.id}>: give it back View Channel and Read Message History "
            "there.")
    stopped = f"❌ Backup of <#{launch.id}> stopped: {lost} (1 message scanned, 1 new, 0 files saved (0 B))."
    await wait_until(lambda: stopped in told(world, since), what="the backup's last edit")
    assert not [t for t in told(world, since) if SECRET in t], told(world, since)

    in_thread = await said(world, world.owner, "!backup status", where=plans)
    assert in_thread.startswith(f"<#{launch.id}> · failed, started "), in_thread
    assert f"1 scanned, 1 new, 0 files (0 B) · {lost}" in in_thread and "-#" not in in_thread, in_thread
    alone = await world.owner.slash(world.channel, "backup status")  # in the lobby, to the owner alone
    assert alone.ephemeral and f"1 scanned, 1 new, 0 files (0 B) · {lost}" in alone.response.content, alone
