"""A backup a stop left running, of a channel Helix could not see at the next start, runs when asked again."""

from __future__ import annotations

from simcord.enums import ChannelType

from tests.support.capture import backup_finished, cdn  # noqa: F401
from tests.support.world import answers


async def test_a_backup_of_an_archived_thread_left_by_a_stop_runs_when_asked_for_again(local_world, cdn):  # noqa: F811
    world = local_world
    env, be = world.env, world.env.backend
    alice = world.member("alice")
    launch = world.guild.create_text_channel("launch")
    thread = be.create_thread(launch.id, "countdown", alice.id, type=ChannelType.PUBLIC_THREAD, broadcast=False)
    be.announce_thread_create(thread)
    be.create_message(thread.id, alice.id, "T minus 10", broadcast=False)
    await env.settle()
    # A deploy stopped Helix during a backup of the thread; Discord archived the quiet thread since, so
    # at the next start nothing Helix can see names it, and the row stays running.
    await world.capture.catalogue.call("upsert_channel", {"id": str(thread.id), "guild_id": str(world.guild.id),
                                                          "name": "countdown", "type": "public_thread",
                                                          "parent_id": str(launch.id)})
    left, _ = await world.capture.catalogue.call("start_backup", world.guild.id, thread.id, threads=False,
                                                 kind="backup", requested_by=world.owner.id, reply=None)
    be.edit_channel(thread.id, {}, thread_metadata={"archived": True})
    world.bot.dispatch("ready")
    await env.settle()
    assert (await world.capture.catalogue.call("backup", left.id)).state == "running"

    be.edit_channel(thread.id, {}, thread_metadata={"archived": False})  # a member posts in it again
    await env.settle()
    since = len(env.http_requests)
    await world.say(world.owner, f"!backup <#{thread.id}>")
    assert answers(world, since), "the owner is answered"
    row = await backup_finished(world, thread.id)
    assert row.id == left.id and row.state == "done" and row.archived == 1, row
