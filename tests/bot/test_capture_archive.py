"""``!archive`` (reply, link, context menu) and who may: refusals are one sentence and name what is missing."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import discord
from simcord.backend.models import Overwrite
from simcord.enums import ChannelType, OverwriteType

from tests.bot.test_threads_find import archived_threads
from tests.support.capture import blob_files, segment_lines, sha256, storage
from tests.support.world import answers, bot_messages, private_channel


def link(guild_id: int, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


async def test_archive_by_reply_link_and_context_menu(local_world, cdn):  # noqa: F811
    world = local_world
    env = world.env
    alice = world.member("alice")
    photo = b"\x89PNG fake image bytes" * 100
    msg = env.backend.create_message(world.channel.id, alice.id, "look at this",
                                     attachments=[cdn.attachment(env, world.channel.id, "cat.png", photo,
                                                                 "image/png")])
    await env.settle()
    discord_msg = world.bot.get_channel(world.channel.id).get_partial_message(msg.id)
    since = len(env.http_requests)
    await world.owner.send(world.channel, "!archive", reply_to=await discord_msg.fetch())
    # one answer, posted as progress, then edited to say where it landed
    [posted] = [a["content"] for a in answers(world, since)]
    assert posted == "📦 Archiving the message by **alice**: 0 of 1 file saved (0 B)…", posted
    reply = world.channel.last_message.content
    assert "Archived the message by **alice** with 1 file" in reply and ".jsonl`" in reply, reply
    await world.archive.worker.drain(30)
    root = storage(world)
    [record] = [r for r in segment_lines(root, world.guild.id, world.channel.id) if r["id"] == str(msg.id)]
    assert record["content"] == "look at this" and record["author"]["name"] == "alice"
    blob = root / record["attachments"][0]["blob"]
    assert blob.read_bytes() == photo and sha256(blob) == record["attachments"][0]["sha256"]

    # a second message, by link; its link expired: refreshed through Discord, then saved
    other = env.backend.create_message(world.channel.id, alice.id, "second",
                                       attachments=[cdn.attachment(env, world.channel.id, "notes.txt", b"n" * 50)])
    await env.settle()
    cdn.expire(other.attachments[0]["url"])
    cdn.rotate(env, world.channel.id, other.id)
    since = len(env.http_requests)
    await world.owner.send(world.channel, f"!archive {link(world.guild.id, world.channel.id, other.id)}")
    assert len(answers(world, since)) == 1
    reply = world.channel.last_message.content
    assert "with 1 file" in reply, reply

    # the context menu, by a member with Manage Messages in that channel
    mods = world.guild.create_role("mods", permissions=discord.Permissions(manage_messages=True))
    mod = world.guild.add_member(env.create_user("mod"), roles=[mods])
    third = env.backend.create_message(world.channel.id, alice.id, "third")
    await env.settle()
    target = await world.bot.get_channel(world.channel.id).fetch_message(third.id)
    result = await mod.context_menu(world.channel, "Archive message", target)
    assert "Archived the message by **alice**" in result.response.content and result.ephemeral
    assert len(blob_files(root)) == 2


async def test_refusals_name_what_is_missing(local_world, cdn):  # noqa: F811
    world = local_world
    env, be = world.env, world.env.backend
    bob = world.member("bob")
    msg = be.create_message(world.channel.id, bob.id, "hello")
    await env.settle()

    since = len(env.http_requests)
    await bob.send(world.channel, f"!backup <#{world.channel.id}>")
    await bob.send(world.channel, f"!archive {link(world.guild.id, world.channel.id, msg.id)}")
    said = [a["content"] for a in answers(world, since)]
    assert said[0] == "Only admins or members with Manage Server can manage backups and watches.", said
    assert said[1].startswith("Only admins, members with Manage Messages"), said

    # a private channel bob cannot read: !archive of a link into it is refused
    secret = private_channel(world, "secret", world.owner)
    hidden = be.create_message(secret.id, world.owner.id, "private words")
    archivists = world.guild.create_role("archivists")
    settings = world.bot.settings
    world.bot.settings = replace(settings, capture=replace(settings.capture,
                                                           archivist_role_ids=frozenset({archivists.id})))
    be.add_member_role(world.guild.id, bob.id, archivists.id)
    await env.settle()
    since = len(env.http_requests)
    await bob.send(world.channel, f"!archive {link(world.guild.id, secret.id, hidden.id)}")
    [said] = [a["content"] for a in answers(world, since)]
    assert said == "You can't read that channel, so I won't archive from it for you.", said
    # nor from a private thread of a channel he reads, since nobody added him to it
    plans = be.create_thread(world.channel.id, "plans", world.owner.id, type=ChannelType.PRIVATE_THREAD)
    be.add_thread_member(plans.id, be.bot_user.id)
    inside = be.create_message(plans.id, world.owner.id, "the plans")
    await env.settle()
    since = len(env.http_requests)
    await bob.send(world.channel, f"!archive {link(world.guild.id, plans.id, inside.id)}")
    [said] = [a["content"] for a in answers(world, since)]
    assert said == "You can't read that channel, so I won't archive from it for you.", said

    # Helix without Read Message History: the answer names it, and nothing is archived
    be.set_overwrite(world.channel.id, Overwrite(target_id=be.bot_user.id, type=OverwriteType.MEMBER,
                                                  allow=discord.Permissions(view_channel=True).value,
                                                  deny=discord.Permissions(read_message_history=True).value))
    await env.settle()
    since = len(env.http_requests)
    await world.owner.send(world.channel, f"!backup <#{world.channel.id}>")
    [said] = [a["content"] for a in answers(world, since)]
    assert "I lack the **Read Message History** permission" in said, said
    assert await world.capture.catalogue.call("backups") == []
    # each refusal was raised as a user-facing error and answered (reading them tells SimCord they were expected)
    assert len(world.env.errors) == 5


async def test_archive_while_the_remote_refuses_says_the_message_waits_in_the_outbox(local_world, cdn):  # noqa: F811
    world = local_world
    env = world.env
    alice = world.member("alice")
    msg = env.backend.create_message(world.channel.id, alice.id, "look at this",
                                     attachments=[cdn.attachment(env, world.channel.id, "cat.png", b"p" * 5000,
                                                                 "image/png")])
    await env.settle()
    root = Path(world.archive.service.remote.root.fs)
    for folder in ("discord", "blobs"):
        (root / folder).write_text("not a folder")  # the archive folder is broken: every upload fails

    await world.owner.send(world.channel, f"!archive {link(world.guild.id, world.channel.id, msg.id)}")
    reply = world.channel.last_message.content
    assert reply == ("Archived the message by **alice** with 1 file (4.9 KiB), kept here; ⚠️ the archive remote is "
                     "not taking files now, so it waits in the outbox (the bot's owner sees it with `!outbox`) and "
                     "goes up when it is back."), reply
    assert (await world.capture.catalogue.call("message", msg.id))["content"] == "look at this"


async def test_archive_of_a_hidden_channel_names_nobody_where_all_can_read(local_world, cdn):  # noqa: F811
    """An admin archiving from #staff-room in a public channel must not tell its readers who posted there."""
    world = local_world
    env, be = world.env, world.env.backend
    carol = world.member("carol")
    staff = private_channel(world, "staff-room", world.owner, carol)
    secret = be.create_message(staff.id, carol.id, "staff words")
    await env.settle()

    since = len(env.http_requests)
    await world.owner.send(world.channel, f"!archive {link(world.guild.id, staff.id, secret.id)}")
    await world.archive.worker.drain(30)
    seen = " ".join(str(m.get("content")) for m in bot_messages(world, since))
    assert "carol" not in seen and str(staff.id) not in seen, seen
    reply = world.channel.last_message.content
    assert reply == ("Archived the message from a channel not everyone here can read; `/archive` answers you "
                     "alone."), reply
    assert (await world.capture.catalogue.call("message", secret.id))["content"] == "staff words"

    # the slash form answers the asker alone, and so may say who and where
    result = await world.owner.slash(world.channel, "archive", link=link(world.guild.id, staff.id, secret.id))
    assert result.ephemeral, result
    assert "Archived the message by **carol**" in result.response.content, result.response.content


async def test_the_context_menu_tells_why_archiving_failed(local_world):
    """Apps → Archive message while Helix cannot write its data folder says so, as ``!archive`` does."""
    world, env = local_world, local_world.env
    alice = world.member("alice")
    posted = env.backend.create_message(world.channel.id, alice.id, "keep this one")
    await env.settle()
    files = Path(world.archive.outbox.files_dir)
    shutil.rmtree(files, ignore_errors=True)
    files.write_text("not a folder")  # the host's data folder is broken (a full or read-only volume)

    target = await world.bot.get_channel(world.channel.id).fetch_message(posted.id)
    since = len(env.http_requests)
    await world.owner.context_menu(world.channel, "Archive message", target)
    await env.settle()
    said = [m.get("content") or "" for m in bot_messages(world, since) if m["method"] in ("POST", "PATCH")]
    told = [s for s in said if "cannot" in s and "error id" not in s]
    assert told and "HELIX_DATA_DIR" in told[-1], said  # the owner is an admin: told what to fix


async def test_archive_by_link_into_a_quiet_thread_and_from_a_typed_category_link(local_world, cdn):  # noqa: F811
    """A thread Discord archived for being quiet is out of discord.py's cache, not out of reach; a link
    whose channel part is a category's id (typed by hand) leads to no message."""
    world = local_world
    ids = await archived_threads(world)
    world.env.backend.edit_channel(ids["countdown_channel"], {}, thread_metadata={"archived": True})
    await world.env.settle()
    assert world.bot.get_channel(ids["countdown_channel"]) is None
    await world.say(world.owner, f"!archive {link(world.guild.id, ids['countdown_channel'], ids['countdown'])}")
    assert world.channel.last_message.content.startswith("Archived the message"), world.channel.last_message.content

    category = world.guild.create_category("Projects")
    await world.env.settle()
    since = len(world.env.http_requests)
    await world.say(world.member("bob"), f"!archive {link(world.guild.id, category.id, ids['countdown'])}")
    got = answers(world, since)[-1]["content"]
    assert got.startswith("That link leads to no message"), got
    assert world.env.errors  # that refusal was expected: reading the errors tells SimCord so
