"""What happens on Discord while a backup has a message in hand, and a backup's life around a
restart: nothing is archived against what Discord now says, and no backup stops on its own."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bot.sim.world import World, simulated_guild
from capture import CaptureSettings
from catalogue import CatalogueError
from sync.settings import SyncSettings
from tests.bot.test_threads_watch import contents
from tests.capture.test_rebuild import connected_again
from tests.support.capture import backup_finished, blob_files, cdn, segment_lines, storage  # noqa: F401
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until
from tests.support.world import bot_settings, last_edit


def settings(data_dir: Path):
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    return bot_settings(sync, capture=CaptureSettings(watch_flush_s=0.2))


async def backing_up_with_a_file_held(world: World, cdn: LocalCdn):  # noqa: F811
    """Alice's message with a file, and the owner's ``!backup #general`` while the CDN holds the file
    back: the backup has fetched the message and is downloading it. Returns (general, message, let go)."""
    env, be = world.env, world.env.backend
    general = world.guild.create_text_channel("general")
    alice = world.member("alice")
    files = [cdn.attachment(env, general.id, "plan.pdf", os.urandom(3000))]
    message = be.create_message(general.id, alice.id, "the secret plan, do not share", attachments=files,
                                broadcast=False)
    asked, let_go = cdn.hold(files[0]["url"])
    await env.settle()
    await world.owner.send(world.channel, f"!backup <#{general.id}>")
    await wait_until(asked.is_set, 30, "the backup downloads the file")
    return general, message, let_go


async def test_a_message_deleted_while_the_backup_downloads_its_file_is_not_archived(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        general, message, let_go = await backing_up_with_a_file_held(world, cdn)
        world.env.backend.delete_message(general.id, message.id)  # Alice thinks better of it
        await world.env.settle()
        let_go.set()
        await backup_finished(world, general.id)
        await wait_until(lambda: blob_files(storage(world)) == {}, 30, "the deleted message's file is gone")
        lines = segment_lines(storage(world), world.guild.id, general.id)
        assert [r["type"] for r in lines] == ["tombstone"], lines
        assert not any("secret plan" in p.read_text() for p in storage(world).rglob("*.*") if p.is_file()
                       and p.suffix in (".jsonl", ".html"))
        assert await world.capture.catalogue.call("search", "secret") == []


async def test_an_edit_made_while_the_backup_downloads_is_archived_as_a_revision(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        general, message, let_go = await backing_up_with_a_file_held(world, cdn)
        world.env.backend.edit_message(general.id, message.id, {"content": "the plan, for everyone"})
        await world.env.settle()
        let_go.set()
        await backup_finished(world, general.id)
        record = await world.capture.catalogue.call("message", message.id)
        assert record["content"] == "the plan, for everyone" and record["revision"] == 1, record


async def test_cancelling_a_backup_a_restart_left_running_does_not_cancel_the_next_one(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        big = [cdn.attachment(env, general.id, "big.bin", os.urandom(1000))]
        first = be.create_message(general.id, world.member("alice").id, "a file", attachments=big, broadcast=False)
        asked, let_go = cdn.hold(big[0]["url"])
        await env.settle()
        await world.owner.send(world.channel, f"!backup <#{general.id}>")
        await wait_until(asked.is_set, 30, "the backup downloads the file")

        await world.capture.close()  # a deploy stops Helix mid-backup: the backup stays running
        let_go.set()
        await world.capture.start()  # started again, not yet connected to Discord
        assert (await world.capture.cancel_backup(general.id)).state == "cancelled"
        await connected_again(world)
        await world.say(world.owner, f"!backup <#{general.id}>")
        row = await backup_finished(world, general.id, count=2)
        assert row.state == "done", row
        assert [r["id"] for r in segment_lines(storage(world), world.guild.id, general.id)] == [str(first.id)]


async def test_a_moment_of_a_full_disk_does_not_stop_later_backups(data_dir: Path, cdn,  # noqa: F811
                                                                   monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(settings(data_dir)) as world:
        be = world.env.backend
        general = world.guild.create_text_channel("general")
        be.create_message(general.id, world.member("alice").id, "hello", broadcast=False)
        cat = world.capture.catalogue
        call, failing = cat.call, {"backups", "unclaimed_channels"}

        async def full_for_a_moment(name: str, *args, **kwargs):
            if name in failing:
                failing.discard(name)
                raise CatalogueError("Helix cannot write its catalogue: the disk is full; free some space.")
            return await call(name, *args, **kwargs)

        monkeypatch.setattr(cat, "call", full_for_a_moment)
        world.capture.attach(world.capture.source)  # a server available again: the scheduler looks for work
        await wait_until(lambda: not failing, 30, "the failing moment")
        await asyncio.sleep(0.5)  # the flusher's turn came too
        await world.say(world.owner, f"!backup <#{general.id}>")
        row = await backup_finished(world, general.id)
        assert row.state == "done" and len(segment_lines(storage(world), world.guild.id, general.id)) == 1


async def test_a_backup_stopped_by_a_full_disk_tells_what_it_kept_as_its_status_does(data_dir: Path, cdn,  # noqa: F811
                                                                                       monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        be.create_message(general.id, world.member("alice").id, "with a file", broadcast=False,
                          attachments=[cdn.attachment(env, general.id, "a.bin", os.urandom(2000))])
        await env.settle()
        cat = world.capture.catalogue
        call = cat.call

        async def full_disk(name: str, *args, **kwargs):
            if name == "add_messages":
                raise CatalogueError("Helix cannot write its catalogue: the disk is full; free some space.")
            return await call(name, *args, **kwargs)

        monkeypatch.setattr(cat, "call", full_disk)
        since = len(env.http_requests)
        await world.say(world.owner, f"!backup <#{general.id}>")
        row = await backup_finished(world, general.id)
        assert row.state == "failed" and row.scanned == 0, row
        await wait_until(lambda: "stopped" in last_edit(world, since), 30, "the backup's last answer")
        assert "0 messages scanned" in last_edit(world, since) and "0 files" in last_edit(world, since)
        status = " ".join(await world.say(world.owner, "!backup status"))
        assert "0 scanned" in status or "0 messages" in status, status


async def test_a_call_cut_short_beneath_capture_stops_none_of_its_work(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """A catalogue call cancelled under the scheduler, the flusher and the watch (no stop asked) is
    logged, and each goes on: later backups run and later live messages are archived."""
    async with simulated_guild(settings(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = world.guild.create_text_channel("news")
        first = be.create_message(news.id, alice.id, "before the watch", broadcast=False)
        await world.say(world.owner, f"!watch <#{news.id}>")
        await backup_finished(world, news.id)
        cat = world.capture.catalogue
        call, cut = cat.call, {"backups", "unclaimed_channels", "rebuilding"}

        async def cut_short(name: str, *args, **kwargs):
            if name in cut:
                cut.discard(name)
                future = asyncio.get_running_loop().create_future()
                future.cancel()  # what awaiting a thread's future cancelled beneath the caller raises
                await future
            return await call(name, *args, **kwargs)

        monkeypatch.setattr(cat, "call", cut_short)
        be.edit_message(news.id, first.id, {"content": "before the watch, edited"})  # the watch asks: a rebuild?
        world.capture.attach(world.capture.source)  # a server available again: the scheduler looks for work
        await world.env.settle()
        await wait_until(lambda: not cut, 30, "the calls cut short")
        be.create_message(news.id, alice.id, "after the moment")
        await world.env.settle()
        await wait_until(lambda: "after the moment" in contents(world, news.id) or None, 30, "the live message")
        general = world.guild.create_text_channel("general")
        be.create_message(general.id, alice.id, "hello", broadcast=False)
        await world.say(world.owner, f"!backup <#{general.id}>")
        row = await backup_finished(world, general.id)
        assert row.state == "done" and len(segment_lines(storage(world), world.guild.id, general.id)) == 1


async def test_a_cancel_that_comes_as_a_backup_ends_does_not_cancel_the_channels_next_one(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(settings(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        general = world.guild.create_text_channel("general")
        be.create_message(general.id, alice.id, "hello", broadcast=False)
        cat = world.capture.catalogue
        call = cat.call
        ending, asked, let_end = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def slow_to_end(name: str, *args, **kwargs):
            if name == "finish_backup" and not let_end.is_set():
                ending.set()  # the backup paged everything and is recording its end
                await let_end.wait()
            found = await call(name, *args, **kwargs)
            if name == "backups" and ending.is_set():
                asked.set()  # the cancel found the backup still running
            return found

        monkeypatch.setattr(cat, "call", slow_to_end)
        await world.say(world.owner, f"!backup <#{general.id}>")
        await wait_until(ending.is_set, 30, "the backup's end")
        cancel = asyncio.create_task(world.capture.cancel_backup(general.id))  # the owner's cancel, a moment late
        await wait_until(asked.is_set, 30, "the cancel")
        let_end.set()
        assert (await cancel).state == "done"  # too late to cancel: it had ended

        be.create_message(general.id, alice.id, "posted since", broadcast=False)
        await world.say(world.owner, f"!backup <#{general.id}>")
        row = await backup_finished(world, general.id, count=2)
        assert row.state == "done", row
        assert len(segment_lines(storage(world), world.guild.id, general.id)) == 2
