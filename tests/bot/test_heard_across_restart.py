"""A deploy between hearing an edit or a deletion and following it: the next start follows it.

Discord sends each once, and the catch-up after a restart pages new messages, not what happened to
old ones. The tests reuse one Capture object across the "restart", so they empty by hand what a
new process would not have in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from bot.sim.world import simulated_guild
from catalogue import Catalogue
from sync import SyncSettings
from tests.bot.test_threads_watch import contents, watch_settings
from tests.bot.test_watch_gaps import watched
from tests.capture.test_rebuild import (
    _deleted,
    rebuilding_after_a_lost_volume,
    restarted_on_a_fresh_volume,
    started_again,
)
from tests.support.capture import backup_finished, cdn, storage  # noqa: F401
from tests.support.waiting import wait_until
from tests.support.world import bot_settings


async def _nothing() -> int:
    return 0


@pytest.mark.parametrize("stop", ["deploy", "crash"])
async def test_a_deletion_heard_just_before_a_stop_is_followed_after_it(data_dir: Path, cdn, stop,  # noqa: F811
                                                                       monkeypatch):
    async with simulated_guild(watch_settings(data_dir)) as world:
        env, be, alice = world.env, world.env.backend, world.member("alice")
        news = await watched(world, "news")
        secret = be.create_message(news.id, alice.id, "my phone number is 555-0100")
        await env.settle()
        await wait_until(lambda: "my phone number is 555-0100" in contents(world, news.id) or None, 30, "archived")
        # A big file is being archived live (the watch follows its events in order) ...
        files = [cdn.attachment(env, news.id, "video.mp4", os.urandom(5000))]
        asked, let_go = cdn.hold(files[0]["url"])
        be.create_message(news.id, alice.id, "a video", attachments=files)
        await env.settle()
        await wait_until(asked.is_set, 30, "the live download")
        be.delete_message(news.id, secret.id)  # ... when alice deletes her number: heard, queued behind it
        await env.settle()
        if stop == "crash":  # kill -9: nothing the stop would keep is kept
            monkeypatch.setattr(world.capture, "keep_heard", _nothing)
        await world.capture.close()  # a deploy: SIGTERM
        monkeypatch.undo()
        while not world.capture._live.empty():  # a new process starts with nothing in memory
            world.capture._live.get_nowait()
        let_go.set()
        await started_again(world)
        await backup_finished(world, news.id, count=2)  # the catch-up after the restart
        await world.capture.flush_all()
        assert await world.archive.worker.drain(30)
        assert "my phone number is 555-0100" not in contents(world, news.id), contents(world, news.id)
        assert "a video" in contents(world, news.id)  # the message behind it: paged by the catch-up
    async with Catalogue(data_dir) as catalogue:  # followed: kept no longer
        assert await catalogue.call("heard_rows") == []


async def test_a_deletion_heard_during_a_rebuild_is_followed_after_a_deploy_cut_it_short(data_dir: Path, cdn,  # noqa: F811
                                                                                         monkeypatch):
    async with simulated_guild(bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))) as world:
        a, bot, go_on = await rebuilding_after_a_lost_volume(world, cdn, monkeypatch)
        world.env.backend.delete_message(a.general.id, a.ids["launch"])  # in a segment the rebuild has not read
        await world.env.settle()
        await wait_until(lambda: world.capture._after_rebuild or None, 30, "the deletion was heard")
        rebuilding = bot.get_cog("Reindex")._task
        rebuilding.cancel()  # a deploy stops Helix before the rebuild ended
        with contextlib.suppress(asyncio.CancelledError):
            await rebuilding
        await world.capture.close()
        monkeypatch.undo()
        world.capture._after_rebuild.clear()  # a new process starts with nothing in memory
        bot = await started_again(world)
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state in ("done", "failed"), 60, "the start-up rebuild")
        assert cog.progress.state == "done", cog.progress
        await wait_until(lambda: _deleted(world, a.ids["launch"]), 30, "the deletion followed after the rebuild")
        await world.capture.flush_all()
        assert await world.archive.worker.drain(30)


ADDRESS = "my new address is 12 Secret Street"


async def test_a_message_deleted_during_a_rebuild_leaves_none_of_its_edits_on_the_remote(data_dir: Path, cdn,  # noqa: F811
                                                                                         monkeypatch):
    """The rebuild has read the message's segment, not yet the later one that holds its edit."""
    async with simulated_guild(watch_settings(data_dir)) as world:
        env, be, alice = world.env, world.env.backend, world.member("alice")
        news = world.guild.create_text_channel("news")
        await world.say(world.owner, f"!watch <#{news.id}>")
        await backup_finished(world, news.id)
        message = be.create_message(news.id, alice.id, "an address I should not have posted " + "x" * 600)
        await env.settle()
        await wait_until(lambda: contents(world, news.id) or None, 30, "the message archived live")
        be.edit_message(news.id, message.id, {"content": ADDRESS})
        await env.settle()
        await wait_until(lambda: ADDRESS in contents(world, news.id, "revision") or None, 30, "the edit archived")
        assert await world.archive.worker.drain(30)

        # The volume is lost; the start-up rebuild reads the message's segment, then waits (a slow
        # remote) before the segment that holds its edit.
        monkeypatch.setattr("capture.rebuild.FIRST_BATCH_LINES", 1)  # a batch per segment
        monkeypatch.setattr("capture.rebuild.BATCH_LINES", 1)
        cat = world.capture.catalogue
        call, reached, go_on = cat.call, asyncio.Event(), asyncio.Event()

        async def slow_remote(name, *args, **kwargs):
            if name == "restore_segments" and any(".2.jsonl" in row[2] for row in args[0]):
                reached.set()
                await env.external_wait(go_on.wait(), reason="a slow remote")
            return await call(name, *args, **kwargs)

        monkeypatch.setattr(cat, "call", slow_remote)
        bot = await restarted_on_a_fresh_volume(world)
        await asyncio.wait_for(reached.wait(), 30)

        be.delete_message(news.id, message.id)  # alice deletes it now
        await env.settle()
        await wait_until(lambda: world.capture._after_rebuild or None, 30, "the deletion heard")
        go_on.set()
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state in ("done", "failed"), 60, "the rebuild")
        assert cog.progress.state == "done", cog.progress
        await wait_until(lambda: not world.capture._after_rebuild or None, 30, "followed again after the rebuild")
        await asyncio.sleep(0.5)
        await world.capture.flush_all()
        assert await world.archive.worker.drain(30)
        root = storage(world)
        held = [p for p in root.rglob("*") if p.is_file() and ADDRESS in p.read_text(errors="ignore")]
        assert held == [], f"alice deleted her message, yet the remote still holds its edit in {held}"
