"""``!watch`` covers a channel's threads and a forum's posts: new posts and threads, edits, deletions,
and the catch-up after a restart, as ``!backup #channel threads`` does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from simcord.enums import ChannelType

from bot.sim.world import World, simulated_guild
from capture import CaptureSettings
from sync.settings import SyncSettings
from tests.capture.test_rebuild import started_again
from tests.support.capture import backup_finished, segment_lines, storage
from tests.support.waiting import wait_until
from tests.support.world import answer_to, bot_settings, hosted_world

ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"


def watch_settings(data_dir: Path):
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    return bot_settings(sync, capture=CaptureSettings(watch_flush_s=0.2))


@pytest_asyncio.fixture
async def watch_world(data_dir: Path) -> AsyncIterator[World]:
    async for world in hosted_world(watch_settings(data_dir)):
        yield world


def contents(world: World, channel_id: int, kind: str = "message") -> list[str]:
    return [r["content"] for r in segment_lines(storage(world), world.guild.id, channel_id) if r["type"] == kind]


async def test_a_watched_forum_archives_a_new_post_as_it_arrives(watch_world, cdn):  # noqa: F811
    world = watch_world
    env, be = world.env, world.env.backend
    alice = world.member("alice")
    forum = world.guild.create_forum_channel("help")
    await env.settle()
    said = await answer_to(world, world.owner, f"!watch <#{forum.id}>")
    assert said.startswith(f"👀 Watching <#{forum.id}> and its posts: every new message"), said
    await backup_finished(world, forum.id)

    post = be.create_thread(forum.id, "Printer on fire", alice.id, broadcast=False)
    be.announce_thread_create(post)
    be.create_message(post.id, alice.id, "how do I put out the printer")
    await env.settle()
    await wait_until(lambda: contents(world, post.id) == ["how do I put out the printer"], 30,
                     "the post's message landed")
    known = await world.capture.catalogue.call("channel", post.id)
    assert known.parent_id == forum.id and known.name == "Printer on fire", known


async def test_a_watched_channel_follows_its_threads_old_and_new_with_edits_and_deletions(watch_world, cdn):  # noqa: F811
    world = watch_world
    env, be = world.env, world.env.backend
    alice, bob = world.member("alice"), world.member("bob")
    launch = world.guild.create_text_channel("launch")
    starter = be.create_message(launch.id, alice.id, "go for launch")
    countdown = be.create_thread(launch.id, "countdown", alice.id, type=ChannelType.PUBLIC_THREAD,
                                 message_id=starter.id)
    be.create_message(countdown.id, alice.id, "T minus 10")
    await env.settle()
    await world.say(world.owner, f"!watch <#{launch.id}>")
    await backup_finished(world, launch.id)
    assert contents(world, countdown.id) == ["T minus 10"], "the watch's catch-up took the thread's history"

    # a new message in the existing thread, and a new thread with its first message
    nine = be.create_message(countdown.id, bob.id, "T minus 9")
    weather = be.create_thread(launch.id, "weather", bob.id, type=ChannelType.PUBLIC_THREAD)
    be.create_message(weather.id, bob.id, "clear skies")
    await env.settle()
    await wait_until(lambda: contents(world, countdown.id) == ["T minus 10", "T minus 9"], 30, "the thread's message")
    await wait_until(lambda: contents(world, weather.id) == ["clear skies"], 30, "the new thread's message")
    # a private thread Helix was added to is archived too (who may see it is bot/visibility.py's to say)
    plans = be.create_thread(launch.id, "plans", alice.id, type=ChannelType.PRIVATE_THREAD)
    be.add_thread_member(plans.id, be.bot_user.id)
    await env.settle()
    be.create_message(plans.id, alice.id, "surprise party")
    await env.settle()
    await wait_until(lambda: contents(world, plans.id) == ["surprise party"], 30, "the private thread's message")

    # an edit there is a revision, its time written as every record's; a deletion leaves a tombstone
    be.edit_message(countdown.id, nine.id, {"content": "T minus 9, holding"})
    await env.settle()
    revisions = lambda: [r for r in segment_lines(storage(world), world.guild.id, countdown.id)  # noqa: E731
                         if r["type"] == "revision"]
    [revision] = await wait_until(revisions, 30, "the edit became a revision")
    assert revision["content"] == "T minus 9, holding" and revision["id"] == str(nine.id)
    [message] = [r for r in segment_lines(storage(world), world.guild.id, countdown.id) if r["id"] == str(nine.id)
                 and r["type"] == "message"]
    assert re.match(ISO_Z, revision["edited_at"]), revision["edited_at"]
    assert re.match(ISO_Z, message["created_at"]), message["created_at"]
    assert revision["edited_at"] >= message["created_at"]
    be.delete_message(countdown.id, nine.id)
    await env.settle()
    tombstones = lambda: [r["id"] for r in segment_lines(storage(world), world.guild.id, countdown.id)  # noqa: E731
                          if r["type"] == "tombstone"]
    await wait_until(lambda: str(nine.id) in tombstones(), 30, "the deletion left a tombstone")


async def test_a_restart_catches_up_what_was_posted_in_threads_while_helix_was_down(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(watch_settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        alice = world.member("alice")
        launch = world.guild.create_text_channel("launch")
        countdown = be.create_thread(launch.id, "countdown", alice.id, type=ChannelType.PUBLIC_THREAD)
        be.create_message(countdown.id, alice.id, "T minus 10")
        await env.settle()
        await world.say(world.owner, f"!watch <#{launch.id}>")
        await backup_finished(world, launch.id)
        assert contents(world, countdown.id) == ["T minus 10"]
        # a private thread Helix is added to once it holds a message: what it then hears live does not
        # make the catch-ups skip what came before
        plans = be.create_thread(launch.id, "plans", alice.id, type=ChannelType.PRIVATE_THREAD, broadcast=False)
        be.create_message(plans.id, alice.id, "before Helix came", broadcast=False)
        be.add_thread_member(plans.id, be.bot_user.id)
        be.announce_thread_create(plans)
        await env.settle()
        for text in ("welcome Helix", "one more"):
            be.create_message(plans.id, alice.id, text)
            await env.settle()
        await wait_until(lambda: contents(world, plans.id) == ["welcome Helix", "one more"], 30, "the live ones")

        await world.capture.close()  # Helix is down: Discord goes on without it
        be.create_message(countdown.id, alice.id, "T minus 9", broadcast=False)
        weather = be.create_thread(launch.id, "weather", alice.id, type=ChannelType.PUBLIC_THREAD, broadcast=False)
        be.create_message(weather.id, alice.id, "clear skies", broadcast=False)
        await started_again(world)

        await backup_finished(world, launch.id, count=2)
        await wait_until(lambda: contents(world, countdown.id) == ["T minus 10", "T minus 9"], 30,
                         "the thread caught up")
        await wait_until(lambda: contents(world, weather.id) == ["clear skies"], 30, "the new thread caught up")
        everything = ["before Helix came", "welcome Helix", "one more"]
        await wait_until(lambda: sorted(contents(world, plans.id)) == sorted(everything), 30,
                         lambda: f"the private thread caught up: {contents(world, plans.id)}")
