"""``!get``: an archived message back; small files attached byte-identical, big ones as a link to the asker only."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest_asyncio

from bot.sim.world import World
from capture import CaptureSettings
from sync.settings import SyncSettings
from tests.support.archived import PHOTO, archived_server
from tests.support.capture import backup_finished, blob_files, storage
from tests.support.remotes import LoopbackRemote, obscure
from tests.support.waiting import wait_until
from tests.support.world import answers, bot_settings, hosted_world

BIG = os.urandom(1_500_000)  # over the 1 MB limit the tests set


def link(world: World, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{world.guild.id}/{channel_id}/{message_id}"


async def said(world: World, who, text: str) -> str:
    since = len(world.env.http_requests)
    await who.send(world.channel, text)
    return answers(world, since)[-1]["content"]


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - a loopback URL from the test's S3
        return response.read()


@pytest_asyncio.fixture
async def s3_world(s3: LoopbackRemote, data_dir: Path) -> AsyncIterator[World]:
    """Helix archiving to a loopback S3 (presigned share links), posting files back up to 1 MB."""
    async for world in hosted_world(bot_settings(s3.settings(data_dir), get_upload_mb=1)):
        yield world


async def post_big(world: World, cdn) -> int:  # noqa: F811
    env = world.env
    alice = world.member("alice")
    big = env.backend.create_message(world.channel.id, alice.id, "the full recording",
                                     attachments=[cdn.attachment(env, world.channel.id, "talk.bin", BIG)],
                                     broadcast=False).id
    await env.settle()
    await world.say(world.owner, f"!backup <#{world.channel.id}>")
    assert (await backup_finished(world, world.channel.id)).state == "done"
    return big


async def test_a_small_file_comes_back_attached_and_byte_identical(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world = local_world
    got = await said(world, a.bob, f"!get {link(world, a.general.id, a.ids['photo'])}")
    assert "photo of the launch pad" in got and "**alice**" in got
    posted = world.channel.last_message
    [attachment] = posted.attachments
    assert attachment.filename == "pad.png" and await attachment.read() == PHOTO
    assert not list((Path(world.archive.settings.data_dir) / "get").glob("*/*")), "the temporary copy is deleted"
    # by its archived id, as a slash command: ephemeral
    result = await a.bob.slash(world.channel, "get", message=str(a.ids["photo"]))
    assert result.ephemeral and "photo of the launch pad" in result.response.content


async def test_get_follows_the_visibility_rule(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world, env = local_world, local_world.env
    refusal = f"I have no archived message `{a.ids['code']}` from a channel you can read."
    assert await said(world, a.bob, f"!get {a.ids['code']}") == refusal
    assert await said(world, a.bob, f"!get {link(world, a.secret.id, a.ids['code'])}") == refusal
    result = await a.bob.slash(world.channel, "get", message=str(a.ids["code"]))
    assert result.response.content == refusal
    # alice is staff; typed where bob reads too, the message goes to her alone
    told = await said(world, a.alice, f"!get {a.ids['code']}")
    assert told == "That message is from a channel not everyone here can read: I sent it to you in a direct message."
    assert "the launch code is 4242" in a.alice.user.dm_channel.last_message.content
    since = len(env.http_requests)
    await a.alice.send(a.secret, f"!get {a.ids['code']}")  # in the channel itself: answered there
    assert "the launch code is 4242" in answers(world, since)[-1]["content"]
    result = await a.alice.slash(world.channel, "get", message=str(a.ids["code"]))
    assert result.ephemeral and "the launch code is 4242" in result.response.content
    env.backend.remove_member_role(world.guild.id, a.alice.id, a.staff.id)
    await env.settle()
    assert await said(world, a.alice, f"!get {a.ids['code']}") == refusal
    assert (await said(world, a.bob, "!get hello")).startswith("Give a message link or an archived message id")
    assert await said(world, a.bob, "!get 123456789012345678") == \
        "I have no archived message `123456789012345678` from a channel you can read."


async def test_a_big_file_gets_a_link_that_downloads_byte_identical(s3_world: World, cdn):  # noqa: F811
    world = s3_world
    big = await post_big(world, cdn)
    bob = world.member("bob")
    result = await bob.slash(world.channel, "get", message=str(big))
    text = result.response.content
    assert result.ephemeral and "talk.bin" in text and "http://127.0.0.1:" in text, text
    [url] = re.findall(r"<(http://127\.0\.0\.1:[^>]+)>", text)
    assert hashlib.sha256(await asyncio.to_thread(download, url)).digest() == hashlib.sha256(BIG).digest()
    # the prefix form answers in the channel, and sends the link by DM to the asker alone
    got = await said(world, bob, f"!get {big}")
    assert "I sent you the link in a direct message" in got and "127.0.0.1" not in got
    dm = bob.user.dm_channel.last_message.content
    assert "talk.bin" in dm and "http://127.0.0.1:" in dm


async def test_a_backend_without_links_sends_members_to_an_admin_and_tells_admins_how(local_world: World, cdn):  # noqa: F811
    world = local_world
    world.bot.settings = replace(world.bot.settings, get_upload_mb=1)
    big = await post_big(world, cdn)
    got = await said(world, world.member("bob"), f"!get {big}")
    assert got.endswith("`talk.bin` (1.4 MiB) is over the 1.0 MiB upload limit and the local archive offers no "
                        "share links: ask an admin, who can fetch it from the archive for you."), got
    assert "rclone" not in got and "blobs/sha256/" not in got and "error id" not in got, got
    got = await said(world, world.member("ada", admin=True), f"!get {big}")
    assert "offers no share links" in got and "`rclone copy`" in got and "blobs/sha256/" in got, got


async def test_the_text_comes_back_whole_with_its_lines_and_no_mention(local_world: World, cdn):  # noqa: F811
    world, env = local_world, local_world.env
    alice = world.member("alice")
    bob = world.member("bob")
    lines = f"the plan:\n1. **fuel** at dawn\n2. count down @everyone\n```\nT-10\n```\nask <@{bob.id}>"
    essay = "\n".join(f"paragraph {i:2}: " + "lorem ipsum " * 13 + "dolor sit," for i in range(11))  # 1,990 characters
    assert len(essay) == 1990  # as long as a member may post: quoted, with a header, more than a bot's message
    short = env.backend.create_message(world.channel.id, alice.id, lines, broadcast=False).id
    long = env.backend.create_message(world.channel.id, alice.id, essay, broadcast=False).id
    await env.settle()
    await world.say(world.owner, f"!backup <#{world.channel.id}>")
    assert (await backup_finished(world, world.channel.id)).state == "done"

    got = await said(world, alice, f"!get {short}")
    assert "> 1. **fuel** at dawn\n> 2. count down @\u200beveryone\n> ```\n> T-10\n> ```" in got, got
    # bob shows as the name he was mentioned by, and is not pinged: the answer allows no mention
    assert f"> ask <@{bob.id}>" in got, got
    [answer_payload] = [m for m in answers(world) if f"<@{bob.id}>" in (m.get("content") or "")]
    assert "users" not in (answer_payload.get("allowed_mentions") or {"parse": ["users"]}).get("parse", []), \
        answer_payload
    got = await said(world, alice, f"!get {long}")
    assert len(got) <= 2000 and "paragraph  0:" in got and f"`message-{long}.txt`" in got, got
    [whole] = world.channel.last_message.attachments
    assert whole.filename == f"message-{long}.txt" and (await whole.read()).decode() == essay


async def test_an_id_too_large_for_any_message_is_an_answer_not_an_error(local_world: World):
    bob = local_world.member("bob")
    for typed in ("99999999999999999999", "18446744073709551615"):
        got = await said(local_world, bob, f"!get {typed}")
        assert got == f"I have no archived message `{typed}` from a channel you can read.", got
        result = await bob.slash(local_world.channel, "get", message=typed)
        assert result.ephemeral and "error id" not in result.response.content


async def test_many_files_and_a_long_text_fit_what_one_message_may_hold(local_world: World, cdn):  # noqa: F811
    world, env = local_world, local_world.env
    world.bot.settings = replace(world.bot.settings, get_upload_mb=1)
    alice = world.member("alice")
    where = world.channel.id
    smalls = [cdn.attachment(env, where, f"note_{i}.txt", f"note {i}\n".encode()) for i in range(9)]
    big = cdn.attachment(env, where, "big_file.bin", os.urandom(1_100_000))
    crowded = env.backend.create_message(where, alice.id, "minutes " * 237, attachments=[*smalls, big],
                                         broadcast=False).id
    pair = env.backend.create_message(where, alice.id, "two halves", broadcast=False, attachments=[
        cdn.attachment(env, where, f"half_{i}.bin", os.urandom(600_000)) for i in range(2)]).id
    await env.settle()
    await world.say(world.owner, f"!backup <#{where}>")
    assert (await backup_finished(world, where)).state == "done"

    # ten files at most in a message: the text that does not fit goes as one, with nine of the notes
    got = await said(world, alice, f"!get {crowded}")
    posted = world.channel.last_message
    assert len(posted.attachments) == 10 and posted.attachments[0].filename == f"message-{crowded}.txt", got
    # the sentence about the big file is whole, its name as typed (no markdown escape in a code span)
    assert len(got) <= 2000 and got.endswith("ask an admin, who can fetch it from the archive for you."), got
    assert "`big_file.bin` (1.0 MiB) is over the 1.0 MiB upload limit" in got, got

    # each half is under the limit, only not both together: that is what it says
    got = await said(world, alice, f"!get {pair}")
    assert "`half_1.bin` (585.9 KiB) does not fit in the same post as the others" in got, got
    assert "over the" not in got, got


@pytest_asyncio.fixture
async def keeping_world(data_dir: Path) -> AsyncIterator[World]:
    """A server that keeps deleted messages in the archive (HELIX_KEEP_DELETED=1), watching fast."""
    capture = CaptureSettings(watch_flush_s=0.2, keep_deleted=True)
    async for world in hosted_world(bot_settings(SyncSettings(data_dir=data_dir), capture=capture)):
        yield world


async def test_a_kept_deleted_message_comes_back_marked_as_deleted(keeping_world: World):
    world, env = keeping_world, keeping_world.env
    alice = world.member("alice")
    await world.say(world.owner, f"!watch <#{world.channel.id}>")
    gone = env.backend.create_message(world.channel.id, alice.id, "an answer I regret")
    await env.settle()
    await wait_until(lambda: world.capture.catalogue.call("message", gone.id), what="the message is archived")
    env.backend.delete_message(world.channel.id, gone.id)
    await env.settle()

    async def deleted() -> bool:
        archived = await world.capture.catalogue.call("archived_message", gone.id, {world.channel.id})
        return archived is not None and archived.deleted

    await wait_until(deleted, what="the deletion is archived")
    got = await said(world, world.owner, f"!get {gone.id}")
    assert "an answer I regret" in got and "Deleted on Discord; the archive keeps deleted messages" in got, got


async def test_a_file_the_remote_cannot_give_now_leaves_the_text_and_a_note(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world = local_world
    for blob in blob_files(storage(world)).values():
        blob.unlink()  # as good as a remote that does not answer, for this one file
    got = await said(world, a.bob, f"!get {a.ids['photo']}")
    assert "photo of the launch pad" in got and "`pad.png` could not be fetched from the archive just now" in got, got
    assert "error id" not in got and not world.channel.last_message.attachments


async def test_a_long_text_cut_short_leaves_no_spoiler_or_code_block_open(local_world: World, cdn):  # noqa: F811
    world, env = local_world, local_world.env
    alice = world.member("alice")
    spoiled = env.backend.create_message(world.channel.id, alice.id, "intro ||" + "SECRET " * 280 + "||",
                                         broadcast=False).id
    coded = env.backend.create_message(world.channel.id, alice.id, "see:\n```\n" + "x = 1\n" * 330 + "```",
                                       broadcast=False).id
    await env.settle()
    await world.say(world.owner, f"!backup <#{world.channel.id}>")
    assert (await backup_finished(world, world.channel.id)).state == "done"

    got = await said(world, alice, f"!get {spoiled}")
    assert len(got) <= 2000 and got.count("||") % 2 == 0 and "`message-" in got, got
    got = await said(world, alice, f"!get {coded}")
    assert len(got) <= 2000 and got.count("```") % 2 == 0, got
    note = got.rsplit("\n", 1)[-1]
    assert note.startswith("-# The whole text is attached"), got  # after the block, not inside it


async def test_a_link_to_another_server_and_a_copied_id_are_read_as_members_mean_them(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world = local_world
    # the same message id in a link to another server is not this server's message
    elsewhere = f"https://discord.com/channels/999999999999999999/{a.general.id}/{a.ids['photo']}"
    assert await said(world, a.bob, f"!get {elsewhere}") == \
        "That message link is from another server: I get back messages archived from this one only."
    # Shift + Copy ID gives "channel-message"
    got = await said(world, a.bob, f"!get {a.general.id}-{a.ids['photo']}")
    assert "photo of the launch pad" in got, got


async def test_a_slash_user_is_shown_the_slash_form(local_world: World):
    bob = local_world.member("bob")
    result = await bob.slash(local_world.channel, "get", message="hello")
    assert result.ephemeral and result.response.content == \
        "Give a message link or an archived message id: for example `/get message:1456074443980800027`."
    assert (await said(local_world, bob, "!get hello")).endswith("for example `!get 1456074443980800027`.")


async def test_a_file_whose_name_is_longer_than_a_filesystem_allows_comes_back(local_world: World, cdn):  # noqa: F811
    world, env = local_world, local_world.env
    alice = world.member("alice")
    long = "二〇二六年度第一四半期定例会議議事録" * 5 + ".txt"  # 270 bytes in UTF-8: Linux takes 255
    posted = env.backend.create_message(world.channel.id, alice.id, "the minutes", broadcast=False, attachments=[
        cdn.attachment(env, world.channel.id, long, b"minutes\n" * 10, "text/plain")]).id
    await env.settle()
    await world.say(world.owner, f"!backup <#{world.channel.id}>")
    assert (await backup_finished(world, world.channel.id)).state == "done"
    got = await said(world, alice, f"!get {posted}")
    [attached] = world.channel.last_message.attachments
    assert attached.filename == long and await attached.read() == b"minutes\n" * 10, got


async def test_six_big_files_give_six_whole_links_and_the_whole_text(s3_world: World, cdn):  # noqa: F811
    """Presigned S3 links are a few hundred characters each: more than one message holds beside the text."""
    world, env = s3_world, s3_world.env
    names = [f"clip-{i}.mp4" for i in range(6)]
    big = env.backend.create_message(world.channel.id, world.member("alice").id, "the six clips of the launch",
                                     attachments=[cdn.attachment(env, world.channel.id, n, os.urandom(1_100_000))
                                                  for n in names], broadcast=False).id
    await env.settle()
    await world.say(world.owner, f"!backup <#{world.channel.id}>")
    assert (await backup_finished(world, world.channel.id)).state == "done"
    result = await world.member("bob").slash(world.channel, "get", message=str(big))
    said_all = [result.response.content, *(m.content for m in result.followups)]
    assert "the six clips of the launch" in said_all[0], said_all[0]
    whole = re.compile(r"`(clip-\d\.mp4)` \([^)]*\): <(http://[^>\s]+X-Amz-Signature=[0-9a-f]{64})>")
    assert sorted(m[0] for text in said_all for m in whole.findall(text)) == names, said_all
    assert all(len(text) <= 2000 for text in said_all) and result.ephemeral
    got = await said(world, world.member("bob"), f"!get {big}")  # the prefix form: the links by DM, whole too
    assert "I sent you the links in a direct message" in got, got
    last_dm = world.member("bob").user.dm_channel.last_message.content
    assert len(last_dm) <= 2000 and whole.findall(last_dm), last_dm


@pytest_asyncio.fixture
async def sealed_s3_world(s3: LoopbackRemote, data_dir: Path) -> AsyncIterator[World]:
    """The README's encryption at rest: a crypt remote over a backend that has share links."""
    base = s3.settings(data_dir)
    crypt = {"RCLONE_CONFIG_SEALED_TYPE": "crypt", "RCLONE_CONFIG_SEALED_REMOTE": f"{s3.archive.rstrip('/')}/sealed",
             "RCLONE_CONFIG_SEALED_PASSWORD": obscure("correct horse battery"),
             "RCLONE_CONFIG_SEALED_PASSWORD2": obscure("staple salt")}
    sync = replace(base, archive="sealed:", extra_env={**base.extra_env, **crypt})
    async for world in hosted_world(bot_settings(sync, get_upload_mb=1)):
        yield world


async def test_an_encrypted_archive_gives_no_link_to_encrypted_bytes(sealed_s3_world: World, cdn):  # noqa: F811
    """rclone hands a crypt's share link on to the remote under it: the link would download ciphertext."""
    world = sealed_s3_world
    big = await post_big(world, cdn)
    text = (await world.member("bob").slash(world.channel, "get", message=str(big))).response.content
    assert "http" not in text and "ask an admin, who can fetch it from the archive for you" in text, text
    got = (await world.member("ada", admin=True).slash(world.channel, "get", message=str(big))).response.content
    assert "is encrypted, and a share link would give the encrypted bytes" in got and "`rclone copy`" in got, got
