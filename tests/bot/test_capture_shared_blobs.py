"""The same file posted in two messages is one blob on the remote: deleting one message must not take
the bytes from the other, however the deletion and the other message's archiving overlap."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from bot.sim.world import World, simulated_guild
from capture import CaptureSettings
from sync.settings import SyncSettings
from tests.support.capture import backup_finished, blob_files, cdn, segment_lines, storage  # noqa: F401
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until
from tests.support.world import bot_settings


def settings(data_dir: Path):
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    return bot_settings(sync, capture=CaptureSettings(watch_flush_s=0.2))


async def alice_posts_a_picture(world: World, cdn: LocalCdn, picture: bytes, *,  # noqa: F811
                                backed_up: bool = False):
    """Alice's picture in #news (``backed_up``: and #news backed up, the picture on the remote);
    returns (#news, her message)."""
    env = world.env
    news = world.guild.create_text_channel("news")
    message = env.backend.create_message(news.id, world.member("alice").id, "a picture",
                                         attachments=[cdn.attachment(env, news.id, "pic.png", picture)])
    await env.settle()
    if backed_up:
        await world.say(world.owner, f"!backup <#{news.id}>")
        await backup_finished(world, news.id)
        assert hashlib.sha256(picture).hexdigest() in blob_files(storage(world))
    return news, message


async def followed(world: World, message_id: int, call=None) -> bool:
    record = await (call or world.capture.catalogue.call)("message", message_id)
    return record is not None and record["type"] == "tombstone"


async def blob_state(world: World, sha: str, call=None) -> str | None:
    blob = await (call or world.capture.catalogue.call)("blob", sha)
    return blob.state if blob is not None else None


async def settled(world: World, sha: str, call=None) -> bool:
    """The blob is no longer doomed: deleted from the remote, or archived again."""
    return await blob_state(world, sha, call) in ("deleted", "landed")


async def bobs_copy_is_kept(world: World, general_id: int, sha: str) -> None:
    """Bob's archived message names the picture, and the remote and the catalogue both have it."""
    assert await world.archive.worker.drain(30)
    [kept] = [r for r in segment_lines(storage(world), world.guild.id, general_id) if r["content"] == "same picture"]
    assert kept["attachments"][0]["status"] == "saved" and kept["attachments"][0]["sha256"] == sha
    assert sha in blob_files(storage(world)), "bob's archived picture names a blob the remote no longer has"
    assert await blob_state(world, sha) == "landed"


async def test_a_message_deleted_while_a_backup_holds_another_with_the_same_file_leaves_the_file(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        picture = os.urandom(4000)
        sha = hashlib.sha256(picture).hexdigest()
        news, first = await alice_posts_a_picture(world, cdn, picture, backed_up=True)

        # #general: bob posts the same picture, and another file the CDN is slow to serve
        general = world.guild.create_text_channel("general")
        bob = world.member("bob")
        copy = be.create_message(general.id, bob.id, "same picture", broadcast=False,
                                 attachments=[cdn.attachment(env, general.id, "copy.png", picture)])
        slow = cdn.attachment(env, general.id, "big.bin", os.urandom(5000))
        be.create_message(general.id, bob.id, "slow file", attachments=[slow], broadcast=False)
        asked, let_go = cdn.hold(slow["url"])
        cat = world.capture.catalogue
        call = cat.call
        checked = asyncio.Event()

        async def spy(name, *args, **kwargs):
            found = await call(name, *args, **kwargs)
            if name == "blob" and args and args[0] == sha:
                checked.set()  # the backup found the bytes on the remote already: it keeps no copy of its own
            return found

        monkeypatch.setattr(cat, "call", spy)
        await env.settle()
        await world.say(world.owner, f"!backup <#{general.id}>")
        await wait_until(lambda: asked.is_set() and checked.is_set(), 30, "the backup holds both files")

        be.delete_message(news.id, first.id)  # alice deletes her message in #news meanwhile
        await env.settle()
        await wait_until(lambda: followed(world, first.id, call), 30, "the deletion followed")
        let_go.set()
        await backup_finished(world, general.id)
        await wait_until(lambda: settled(world, sha, call), 30, "the blob's state settled")
        await world.capture.flush_all()  # and the flusher's turn, which deletes what is doomed
        await bobs_copy_is_kept(world, general.id, sha)

        be.delete_message(general.id, copy.id)  # bob deletes his too: now nothing names the picture
        await env.settle()
        await wait_until(lambda: sha not in blob_files(storage(world)), 30, "the picture left the remote")


async def test_a_file_whose_upload_lands_after_its_message_was_deleted_stays_for_the_other_message(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        picture = os.urandom(4000)
        sha = hashlib.sha256(picture).hexdigest()
        service = world.archive.service
        archive = service.archive
        uploading, land, landed = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def slow_upload(local, rel_path, *args, **kwargs):  # a big file takes a while to reach the cloud
            if not rel_path.endswith(sha):
                return await archive(local, rel_path, *args, **kwargs)
            uploading.set()
            await land.wait()
            try:
                return await archive(local, rel_path, *args, **kwargs)
            finally:
                landed.set()

        monkeypatch.setattr(service, "archive", slow_upload)
        news, first = await alice_posts_a_picture(world, cdn, picture)
        await world.say(world.owner, f"!backup <#{news.id}>")
        await wait_until(uploading.is_set, 30, "alice's picture is uploading")

        general = world.guild.create_text_channel("general")
        bob = world.member("bob")
        be.create_message(general.id, bob.id, "same picture", broadcast=False,
                          attachments=[cdn.attachment(env, general.id, "copy.png", picture)])
        slow = cdn.attachment(env, general.id, "big.bin", os.urandom(5000))
        be.create_message(general.id, bob.id, "slow file", attachments=[slow], broadcast=False)
        asked, let_go = cdn.hold(slow["url"])
        await env.settle()
        await world.say(world.owner, f"!backup <#{general.id}>")
        await wait_until(asked.is_set, 30, "bob's backup holds his files")
        # bob's copy is the blob on its way already
        await wait_until(lambda: world.capture.catalogue.call("blob", sha), 30, "the picture is queued")

        be.delete_message(news.id, first.id)  # alice deletes her message while her picture uploads
        await env.settle()
        await wait_until(lambda: followed(world, first.id), 30, "the deletion followed")
        land.set()  # her picture reaches the remote after all
        await wait_until(landed.is_set, 30, "the upload landed")
        let_go.set()
        await backup_finished(world, general.id)
        await wait_until(lambda: settled(world, sha), 30, "the blob's state settled")
        await world.capture.flush_all()
        await bobs_copy_is_kept(world, general.id, sha)


async def test_a_file_posted_again_while_its_first_copy_is_being_deleted_stays(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        picture = os.urandom(4000)
        sha = hashlib.sha256(picture).hexdigest()
        news, first = await alice_posts_a_picture(world, cdn, picture, backed_up=True)

        service = world.archive.service
        delete = service.delete
        deleting, go_on, deleted = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def slow_remote_delete(path, *args, **kwargs):  # a cloud remote takes a moment to answer
            deleting.set()
            await go_on.wait()
            try:
                return await delete(path, *args, **kwargs)
            finally:
                deleted.set()

        monkeypatch.setattr(service, "delete", slow_remote_delete)
        be.delete_message(news.id, first.id)  # alice deletes her message: her picture goes
        await env.settle()
        await wait_until(deleting.is_set, 30, "the picture's deletion is on its way")

        # bob posts the same picture in #general, archived meanwhile
        general = world.guild.create_text_channel("general")
        be.create_message(general.id, world.member("bob").id, "same picture", broadcast=False,
                          attachments=[cdn.attachment(env, general.id, "copy.png", picture)])
        await env.settle()
        await world.say(world.owner, f"!backup <#{general.id}>")
        await backup_finished(world, general.id)
        go_on.set()  # the remote answers the deletion
        await wait_until(deleted.is_set, 30, "the first copy's deletion answered")
        await wait_until(lambda: settled(world, sha), 30, "the blob's state settled")
        await bobs_copy_is_kept(world, general.id, sha)
