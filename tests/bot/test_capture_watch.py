"""``!watch``: new messages land with their files, an edit is a revision, a deletion follows Discord."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
import pytest_asyncio

from bot.sim.world import World
from capture import CaptureSettings
from sync.settings import SyncSettings
from tests.support.capture import backup_finished, blob_files, segment_lines, storage
from tests.support.waiting import wait_until
from tests.support.world import answer_to, answers, bot_settings, hosted_world, private_channel


@pytest_asyncio.fixture(params=[False, True], ids=["deleted-removed", "keep-deleted"])
async def watch_world(request: pytest.FixtureRequest, data_dir: Path) -> AsyncIterator[World]:
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    capture = CaptureSettings(watch_flush_s=0.2, keep_deleted=request.param)
    async for world in hosted_world(bot_settings(sync, capture=capture)):
        yield world


async def test_watch_edit_delete(watch_world, cdn):  # noqa: F811
    world = watch_world
    env, be = world.env, world.env.backend
    keep = world.capture.settings.keep_deleted
    general = world.guild.create_text_channel("general")
    alice, bob = world.member("alice"), world.member("bob")
    root = storage(world)
    lines = lambda: segment_lines(root, world.guild.id, general.id)  # noqa: E731

    since = len(env.http_requests)
    await world.say(world.owner, f"!watch <#{general.id}>")
    assert "Watching" in answers(world, since)[0]["content"]
    await wait_until(lambda: world.capture.catalogue.call("channel", general.id), what="the channel is known")
    listed = await world.say(world.owner, "!watching")
    assert any("general" in line or str(general.id) in line for line in listed), listed

    shared, own = os.urandom(4000), os.urandom(5000)
    first = be.create_message(general.id, alice.id, "first words",
                              attachments=[cdn.attachment(env, general.id, "a.png", shared, "image/png")])
    await env.settle()
    await wait_until(lambda: any(r["id"] == str(first.id) for r in lines()), what="the new message landed")
    await wait_until(lambda: len(blob_files(root)) == 1, what="its file landed")

    be.edit_message(general.id, first.id, {"content": "first words, edited"})
    await env.settle()
    await wait_until(lambda: any(r["type"] == "revision" and r["id"] == str(first.id) for r in lines()),
                     what="the edit is a revision")

    again = be.create_message(general.id, bob.id, "the same picture",
                              attachments=[cdn.attachment(env, general.id, "copy.png", shared, "image/png")])
    alone = be.create_message(general.id, bob.id, "my own file",
                              attachments=[cdn.attachment(env, general.id, "own.bin", own)])
    await env.settle()
    await wait_until(lambda: {str(again.id), str(alone.id)} <= {r["id"] for r in lines()}, what="both landed")
    await wait_until(lambda: len(blob_files(root)) == 2, what="two blobs: the same bytes are stored once")
    assert await world.archive.worker.drain(30)

    be.delete_message(general.id, first.id)
    be.delete_message(general.id, alone.id)
    await env.settle()
    tomb = lambda mid: any(r["type"] == "tombstone" and r["id"] == str(mid) for r in lines())  # noqa: E731
    await wait_until(lambda: tomb(first.id) and tomb(alone.id), what="tombstones for both deletions")
    assert await world.archive.worker.drain(30)
    texts = " ".join(str(r.get("content")) for r in lines())
    if keep:
        assert "first words" in texts and len(blob_files(root)) == 2
    else:
        await wait_until(lambda: len(blob_files(root)) == 1, what="the deleted message's own file is gone")
        assert "first words" not in texts and "my own file" not in texts
        assert not any("first words" in p.read_text() for p in root.rglob("*.html"))
        assert "the same picture" in texts  # and the blob it shares with the deleted message stays
    [kept] = blob_files(root).values() if not keep else [next(p for p in blob_files(root).values()
                                                              if p.read_bytes() == shared)]
    assert kept.read_bytes() == shared
    # The manifest counts the lines each segment holds now: the edit's own segment lost its only
    # line with the deleted message, and says so.
    manifest = root / f"discord/{world.guild.id}/{general.id}/channel.json"
    held = lambda: {s["path"]: (s["records"], len((root / s["path"]).read_text().splitlines()))  # noqa: E731
                    for s in json.loads(manifest.read_text())["segments"]}
    await wait_until(lambda: all(listed == lines for listed, lines in held().values()),
                     what=f"the manifest counts each segment's lines: {held()}")
    assert sorted(listed for listed, _ in held().values())[0] == (1 if keep else 0), held()

    since = len(env.http_requests)
    await world.say(world.owner, f"!unwatch <#{general.id}>")
    assert "Stopped watching" in answers(world, since)[0]["content"]


async def test_a_manager_who_cannot_read_a_channel_can_neither_watch_it_nor_see_that_it_is(local_world, cdn):  # noqa: F811
    world = local_world
    env, be, guild = world.env, world.env.backend, world.guild
    staff = guild.create_role("Staff")
    secret = private_channel(world, "staff-only", staff)
    notices = guild.create_text_channel("notices", overwrites={  # seen, its history not
        guild.default_role: discord.PermissionOverwrite(read_message_history=False),
        world.bot.get_guild(guild.id).me: discord.PermissionOverwrite(read_message_history=True)})
    general = guild.create_text_channel("general")
    be.add_member_role(guild.id, world.owner.id, staff.id)
    managers = guild.create_role("Managers", permissions=discord.Permissions(manage_guild=True))
    carol = guild.add_member(env.create_user("carol"), roles=[managers])
    await env.settle()
    await world.say(world.owner, f"!watch <#{secret.id}>")
    await wait_until(lambda: world.capture.catalogue.call("channel", secret.id), what="the channel is known")

    # the staff's watch is not hinted at, and she cannot start, nor stop, one there
    assert await answer_to(world, carol, "!watching") == (
        "No channel you can read is watched: start with `!watch #channel`.")
    for name in ("watch", "unwatch"):  # told as a name that matches no channel, which reveals nothing
        assert await answer_to(world, carol, f"!{name} <#{secret.id}>") == (
            f"`channel` must be a channel, forum or thread of this server: for example `!{name} #general`.")
    for name in ("watch", "unwatch"):
        result = await carol.slash(world.channel, name, channel=notices)
        assert result.ephemeral, name
        assert result.response.content.startswith("You can't read that channel, so I won't "), result.response.content
    assert world.env.errors
    assert [c.id for c in await world.capture.catalogue.call("channels", watched_only=True)] == [secret.id]

    # what she can read, she watches and sees; the staff see both
    await world.say(carol, f"!watch <#{general.id}>")
    assert await answer_to(world, carol, "!watching") == f"Watching: <#{general.id}>."
    # the owner is staff: typed where carol reads too, the staff's channel stays out of the answer
    assert await answer_to(world, world.owner, "!watching") == (
        f"Watching: <#{general.id}>.\n-# Channels not everyone here can read are left out: `/watching` shows them "
        "to you alone.")
    result = await world.owner.slash(world.channel, "watching")
    assert result.ephemeral and result.response.content == f"Watching: <#{secret.id}>, <#{general.id}>."


async def test_watching_a_watched_channel_again_says_so_and_starts_nothing(local_world, cdn):  # noqa: F811
    world = local_world
    launch = world.guild.create_text_channel("launch")
    await world.say(world.owner, f"!watch <#{launch.id}>")
    await backup_finished(world, launch.id)
    assert await answer_to(world, world.owner, f"!watch <#{launch.id}>") == (
        f"<#{launch.id}> is already watched: `!unwatch #launch` stops it.")
    assert [(b.kind, b.channel_id) for b in await world.capture.catalogue.call("backups")] == [("catchup", launch.id)]
    status = (await answer_to(world, world.owner, "!backup status")).splitlines()
    assert len(status) == 1 and "catch-up after !watch" in status[0], status


async def test_watching_offers_watch_only_to_who_may_use_it(local_world, cdn):  # noqa: F811
    world = local_world
    bob = world.member("bob")  # no Manage Server, not an admin
    assert await answer_to(world, bob, "!watching") == "No channel you can read is watched."
    result = await bob.slash(world.channel, "watching")
    assert result.ephemeral and result.response.content == "No channel you can read is watched."
    assert await answer_to(world, world.owner, "!watching") == (
        "No channel you can read is watched: start with `!watch #channel`.")
