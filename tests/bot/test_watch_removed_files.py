"""An author removes a file by editing the message: the archive lists it no more, and unless
HELIX_KEEP_DELETED is on its bytes leave the remote, as a deleted message's do (the same bytes
posted in another message stay)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

from bot.sim.world import World, simulated_guild
from tests.bot.test_threads_watch import watch_settings
from tests.bot.test_watch_gaps import watched
from tests.capture.test_rebuild import restarted_on_a_fresh_volume
from tests.capture.test_rebuild_cursor import rebuilt
from tests.support.capture import backup_finished, blob_files, cdn, segment_lines, storage  # noqa: F401
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until


async def posted_with_files(world: World, cdn: LocalCdn):  # noqa: F811
    """In a watched channel, alice posts her ID card and a meme, and bob the same meme; all landed.
    Returns (general, alice's message, the meme's bytes)."""
    env, be = world.env, world.env.backend
    general = await watched(world, "general")
    meme = os.urandom(3000)
    mine = be.create_message(general.id, world.member("alice").id, "my files", attachments=[
        cdn.attachment(env, general.id, "oops-my-id-card.png", os.urandom(4000)),
        cdn.attachment(env, general.id, "meme.png", meme)])
    be.create_message(general.id, world.member("bob").id, "the same meme", attachments=[
        cdn.attachment(env, general.id, "meme-copy.png", meme)])
    await env.settle()
    await wait_until(lambda: len(blob_files(storage(world))) == 2 or None, 30, "both files landed")
    return general, mine, meme


def revisions(world: World, channel_id: int) -> list[dict]:
    """The channel's revision lines on the remote, oldest first (by number: segment names do not sort so)."""
    lines = segment_lines(storage(world), world.guild.id, channel_id)
    return sorted((r for r in lines if r["type"] == "revision"), key=lambda r: (r["id"], r["revision"]))


async def test_a_file_removed_by_an_edit_leaves_the_archive(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(watch_settings(data_dir)) as world:
        general, mine, meme = await posted_with_files(world, cdn)
        world.env.backend.edit_message(general.id, mine.id, {"content": "my files (oops, removed)", "attachments": []})
        await world.env.settle()
        await wait_until(lambda: revisions(world, general.id) or None, 30, "the edit is a revision")
        [revision] = revisions(world, general.id)
        assert revision["content"] == "my files (oops, removed)" and revision["attachments"] == [], revision
        record = await world.capture.catalogue.call("message", mine.id)
        assert record["attachments"] == [], record
        await wait_until(lambda: set(blob_files(storage(world))) == {hashlib.sha256(meme).hexdigest()}, 30,
                         lambda: f"only bob's meme is left: {sorted(blob_files(storage(world)))}")


async def test_with_deleted_content_kept_a_removed_file_stays_on_the_remote(data_dir: Path, cdn):  # noqa: F811
    settings = watch_settings(data_dir)
    async with simulated_guild(replace(settings, capture=replace(settings.capture, keep_deleted=True))) as world:
        general, mine, _meme = await posted_with_files(world, cdn)
        env, be = world.env, world.env.backend
        be.edit_message(general.id, mine.id, {"content": "my files, captioned"})  # the words alone
        await env.settle()
        await wait_until(lambda: revisions(world, general.id) or None, 30, "the first edit is a revision")
        assert "attachments" not in revisions(world, general.id)[0]  # a revision names what changed
        card = be.messages[general.id][mine.id].attachments[0]
        be.edit_message(general.id, mine.id, {"attachments": [card]})  # the meme removed
        await env.settle()
        await wait_until(lambda: len(revisions(world, general.id)) == 2 or None, 30, "the second edit")
        assert [a["filename"] for a in revisions(world, general.id)[1]["attachments"]] == ["oops-my-id-card.png"]
        record = await world.capture.catalogue.call("message", mine.id)
        assert [a["filename"] for a in record["attachments"]] == ["oops-my-id-card.png"], record
        assert record["attachments"][0]["status"] == "saved" and record["attachments"][0]["sha256"], record
        assert await world.archive.worker.drain(30)
        assert len(blob_files(storage(world))) == 2


async def meme_taken_back(world, cdn):  # noqa: F811
    """alice edits her message to keep only her ID card; bob's message still has the same meme. Returns
    the channel, her message and the card's sha256."""
    general, mine, meme = await posted_with_files(world, cdn)
    [card_sha] = set(blob_files(storage(world))) - {hashlib.sha256(meme).hexdigest()}
    card = world.env.backend.messages[general.id][mine.id].attachments[0]
    world.env.backend.edit_message(general.id, mine.id, {"attachments": [card]})
    await world.env.settle()
    await wait_until(lambda: revisions(world, general.id) or None, 30, "the edit is a revision")
    assert await world.archive.worker.drain(30)
    return general, mine, card_sha


async def test_bytes_a_removed_file_shared_leave_with_the_last_message_that_has_them(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(watch_settings(data_dir)) as world:
        general, mine, card_sha = await meme_taken_back(world, cdn)
        env, be, catalogue = world.env, world.env.backend, world.capture.catalogue
        assert len(blob_files(storage(world))) == 2  # bob's message still has the meme
        [bobs] = [m for m in be.messages[general.id].values() if m.content == "the same meme"]
        be.delete_message(general.id, bobs.id)  # and now bob deletes his
        await env.settle()
        await wait_until(lambda: set(blob_files(storage(world))) == {card_sha}, 30,
                         lambda: f"only alice's ID card is left: {sorted(blob_files(storage(world)))}")
        assert mine.id not in await catalogue.call("unarchived_files", general.id)  # no backup fetches it again
        await world.say(world.owner, f"!backup <#{general.id}>")
        await backup_finished(world, general.id, count=2)  # the watch's catch-up, then this one
        assert set(blob_files(storage(world))) == {card_sha}


async def test_a_file_removed_by_an_edit_stays_removed_in_a_catalogue_rebuilt_from_the_remote(data_dir: Path,
                                                                                             cdn):  # noqa: F811
    """The volume is lost after alice took her meme back: the rebuilt catalogue neither offers it again nor
    counts it as a use of the bytes bob's message shares, which leave with his message."""
    async with simulated_guild(watch_settings(data_dir)) as world:
        general, mine, card_sha = await meme_taken_back(world, cdn)
        env, be, alice = world.env, world.env.backend, world.member("alice")

        await rebuilt(await restarted_on_a_fresh_volume(world))
        await world.say(alice, f"!get {mine.id}")
        assert [f.filename for f in world.channel.last_message.attachments] == ["oops-my-id-card.png"]
        [bobs] = [m for m in be.messages[general.id].values() if m.content == "the same meme"]
        be.delete_message(general.id, bobs.id)
        await env.settle()
        await wait_until(lambda: set(blob_files(storage(world))) == {card_sha}, 30,
                         lambda: f"only alice's ID card is left: {sorted(blob_files(storage(world)))}")
