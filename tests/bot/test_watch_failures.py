"""A watch that fails for a moment (the disk full, the outbox unable to take a file) loses nothing it
heard: a new message is caught up, and an edit or a deletion is followed again, with no gap needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sim.world import World, simulated_guild
from catalogue import CatalogueError
from tests.bot.test_threads_watch import contents, watch_settings
from tests.bot.test_watch_gaps import retrying_soon, watched
from tests.support.capture import backup_finished, segment_lines, storage
from tests.support.waiting import wait_until


def full_for_a_moment(world: World, monkeypatch: pytest.MonkeyPatch, name: str) -> set[str]:
    """The catalogue's next ``name`` fails as a full disk does; the set empties once it has."""
    cat = world.capture.catalogue
    call, failing = cat.call, {name}

    async def full(op: str, *args, **kwargs):
        if op in failing:
            failing.discard(op)
            raise CatalogueError("Helix cannot write its catalogue: the disk is full; free some space.")
        return await call(op, *args, **kwargs)

    monkeypatch.setattr(cat, "call", full)
    return failing


async def test_a_message_posted_during_a_moment_of_full_disk_is_archived_all_the_same(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(watch_settings(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = await watched(world, "news")
        failing = full_for_a_moment(world, monkeypatch, "add_messages")
        be.create_message(news.id, alice.id, "posted during the full moment")
        await world.env.settle()
        await wait_until(lambda: not failing, 30, "the failing moment")
        be.create_message(news.id, alice.id, "posted after it")  # heard live: must not skip the one before
        await world.env.settle()
        await wait_until(lambda: {"posted during the full moment", "posted after it"} <= set(contents(world, news.id))
                         or None, 30, lambda: f"both archived, with no gap to catch up: {contents(world, news.id)}")

        await backup_finished(world, news.id, count=2)  # caught up: live messages move the cursor again
        later = be.create_message(news.id, alice.id, "and later")
        await world.env.settle()
        await wait_until(lambda: "and later" in contents(world, news.id) or None, 30, "the next live message")
        assert (await world.capture.catalogue.call("channel", news.id)).cursor == later.id


async def test_a_deletion_heard_during_a_moment_of_full_disk_still_leaves_the_archive(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(retrying_soon(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = await watched(world, "news")
        secret = be.create_message(news.id, alice.id, "my phone number is 555-0100")
        await world.env.settle()
        await wait_until(lambda: "my phone number is 555-0100" in contents(world, news.id) or None, 30, "archived")
        failing = full_for_a_moment(world, monkeypatch, "delete_message")
        be.delete_message(news.id, secret.id)  # alice thinks better of it, as the disk fills
        await world.env.settle()
        await wait_until(lambda: not failing, 30, "the failing moment")
        await wait_until(lambda: "my phone number is 555-0100" not in contents(world, news.id), 30,
                         lambda: f"the deletion followed again: {contents(world, news.id)}")
        lines = segment_lines(storage(world), world.guild.id, news.id)
        assert str(secret.id) in {r["id"] for r in lines if r["type"] == "tombstone"}, lines


async def test_an_edit_heard_during_a_moment_of_full_disk_is_archived_all_the_same(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(retrying_soon(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = await watched(world, "news")
        typo = be.create_message(news.id, alice.id, "teh meeting is at 5")
        await world.env.settle()
        await wait_until(lambda: "teh meeting is at 5" in contents(world, news.id) or None, 30, "archived")
        failing = full_for_a_moment(world, monkeypatch, "add_revision")
        be.edit_message(news.id, typo.id, {"content": "the meeting is at 5"})
        await world.env.settle()
        await wait_until(lambda: not failing, 30, "the failing moment")
        await wait_until(lambda: "the meeting is at 5" in contents(world, news.id, "revision") or None, 30,
                         lambda: f"the edit followed again: {contents(world, news.id, 'revision')}")
        assert (await world.capture.catalogue.call("message", typo.id))["content"] == "the meeting is at 5"

