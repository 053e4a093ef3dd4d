"""``!archive`` while its message changes on Discord: an edit or a deletion made while Helix downloads
the message's files is what the archive keeps, as it is for a backup."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.sim.world import World, simulated_guild
from tests.bot.test_capture_races import settings
from tests.support.capture import blob_files, cdn, segment_lines, storage  # noqa: F401
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until


def asked_of_catalogue(world: World, monkeypatch: pytest.MonkeyPatch, name: str) -> asyncio.Event:
    """Set once the catalogue was asked ``name``: the watch heard the change and acted on it."""
    asked, call = asyncio.Event(), world.capture.catalogue.call

    async def spy(op: str, *args, **kwargs):
        try:
            return await call(op, *args, **kwargs)
        finally:
            if op == name:
                asked.set()

    monkeypatch.setattr(world.capture.catalogue, "call", spy)
    return asked


async def archiving_with_a_file_held(world: World, cdn: LocalCdn, text: str):  # noqa: F811
    """Alice's message with a file, and the owner's ``!archive`` of it while the CDN holds the file
    back: Helix has fetched the message and is downloading it. Returns (general, message, let go,
    the command, which ends with its answers)."""
    env, be = world.env, world.env.backend
    general = world.guild.create_text_channel("general")
    files = [cdn.attachment(env, general.id, "plan.pdf", os.urandom(3000))]
    message = be.create_message(general.id, world.member("alice").id, text, attachments=files)
    await env.settle()
    asked, let_go = cdn.hold(files[0]["url"])
    link = f"https://discord.com/channels/{world.guild.id}/{general.id}/{message.id}"
    command = asyncio.create_task(world.say(world.owner, f"!archive {link}"))
    await wait_until(asked.is_set, 30, "!archive downloads the file")
    return general, message, let_go, command


async def test_a_message_deleted_while_archive_downloads_its_file_is_not_kept(data_dir: Path, cdn,  # noqa: F811
                                                                               monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(settings(data_dir)) as world:
        general, message, let_go, command = await archiving_with_a_file_held(world, cdn, "the secret plan")
        heard = asked_of_catalogue(world, monkeypatch, "delete_message")
        world.env.backend.delete_message(general.id, message.id)  # Alice thinks better of it
        await wait_until(heard.is_set, 30, "the deletion was heard")
        let_go.set()
        said = await command
        assert await world.archive.worker.drain(30)
        lines = segment_lines(storage(world), world.guild.id, general.id)
        assert [r["type"] for r in lines] == ["tombstone"], lines
        await wait_until(lambda: blob_files(storage(world)) == {}, 30, "the deleted message's file is gone")
        assert await world.capture.catalogue.call("search", "secret") == []
        assert "deleted while I archived it" in said[-1], said


async def test_an_edit_made_while_archive_downloads_is_archived_as_a_revision(data_dir: Path, cdn,  # noqa: F811
                                                                              monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(settings(data_dir)) as world:
        general, message, let_go, command = await archiving_with_a_file_held(world, cdn, "draft words")
        heard = asked_of_catalogue(world, monkeypatch, "add_revision")
        world.env.backend.edit_message(general.id, message.id, {"content": "final words"})
        await wait_until(heard.is_set, 30, "the edit was heard")
        let_go.set()
        said = await command
        assert "Archived the message by **alice** with 1 file" in said[-1], said
        record = await world.capture.catalogue.call("message", message.id)
        assert record["content"] == "final words" and record["revision"] == 1, record
        assert await world.archive.worker.drain(30)
        lines = segment_lines(storage(world), world.guild.id, general.id)
        assert [(r["type"], r["content"]) for r in lines] == [("message", "draft words"),
                                                              ("revision", "final words")], lines


async def test_a_message_deleted_while_archive_posts_its_progress_is_not_archived(data_dir: Path, monkeypatch):
    """Helix posts its progress answer (a round trip to Discord) before the message is in hand."""
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        message = be.create_message(general.id, world.member("alice").id, "my phone number is 555-0100")
        await env.settle()

        cog_module = sys.modules["bot.cogs.capture"]  # as the bot loaded it: an extension is a module of its own
        real, posting, go_on = cog_module.answer, asyncio.Event(), asyncio.Event()

        async def answered_slowly(ctx, text, **kwargs):  # Discord takes a moment to take the answer
            if not posting.is_set():  # the progress answer, the first
                posting.set()
                await env.external_wait(go_on.wait(), reason="Discord answering slowly")
            return await real(ctx, text, **kwargs)

        monkeypatch.setattr(cog_module, "answer", answered_slowly)
        link = f"https://discord.com/channels/{world.guild.id}/{general.id}/{message.id}"
        command = asyncio.create_task(world.say(world.owner, f"!archive {link}"))
        await wait_until(posting.is_set, 30, "!archive posts its progress")
        heard = asked_of_catalogue(world, monkeypatch, "delete_message")
        be.delete_message(general.id, message.id)  # alice deletes her number right then
        await wait_until(heard.is_set, 30, "the deletion was heard and followed")
        go_on.set()
        said = await command
        assert said[-1].endswith("That message was deleted on Discord meanwhile: there is nothing to archive."), said
        assert world.env.errors  # that refusal was expected: reading the errors tells SimCord so
        assert await world.archive.worker.drain(30)
        lines = segment_lines(storage(world), world.guild.id, general.id)
        assert not any("555-0100" in (r.get("content") or "") for r in lines), (said, lines)
