"""What happens to a segment while it is being written: a deletion that arrives then still leaves the
remote, channel.json ends up naming every segment with its hash, and nothing writes it twice."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from bot.sim.world import World, simulated_guild
from capture import CaptureSettings
from capture.segments import write_manifest
from sync.settings import SyncSettings
from tests.support.capture import backup_finished, cdn, segment_lines, storage  # noqa: F401
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until
from tests.support.world import bot_settings


def settings(data_dir: Path):
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    return bot_settings(sync, capture=CaptureSettings(watch_flush_s=3600))  # the test plays the flusher


def slow_segment_written(world: World, monkeypatch: pytest.MonkeyPatch, go_on: asyncio.Event):
    """The first segment written takes its time to render and queue: it is recorded as written only
    once ``go_on`` is set. Returns (it is being written, it was recorded, the original ``call``, the
    names of the catalogue's operations asked for since)."""
    cat = world.capture.catalogue
    call = cat.call
    writing, written = asyncio.Event(), asyncio.Event()
    asked: list[str] = []

    async def slow(name, *args, **kwargs):
        asked.append(name)
        if name == "segment_written" and not writing.is_set():
            writing.set()
            await go_on.wait()
            found = await call(name, *args, **kwargs)
            written.set()
            return found
        return await call(name, *args, **kwargs)

    monkeypatch.setattr(cat, "call", slow)
    return writing, written, call, asked


async def test_a_message_deleted_while_its_segment_is_written_leaves_the_remote(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        await world.say(world.owner, f"!watch <#{general.id}>")
        await backup_finished(world, general.id)
        msg = be.create_message(general.id, world.member("alice").id, "my home address is 12 Elm St",
                                attachments=[cdn.attachment(env, general.id, "door.png", os.urandom(2000))])
        await env.settle()
        await wait_until(lambda: world.capture.catalogue.call("message", msg.id), 30, "archived live")
        assert await world.archive.worker.drain(30)  # its file landed

        go_on = asyncio.Event()
        writing, written, call, _asked = slow_segment_written(world, monkeypatch, go_on)
        service = world.archive.service
        delete = service.delete

        async def slow_remote_delete(path, *args, **kwargs):  # the file's deletion answers once the segment is written
            go_on.set()
            await written.wait()
            return await delete(path, *args, **kwargs)

        monkeypatch.setattr(service, "delete", slow_remote_delete)
        flushing = asyncio.create_task(world.capture.flush(general.id))  # the flusher's turn
        await wait_until(writing.is_set, 30, "the segment is being written")
        be.delete_message(general.id, msg.id)  # alice deletes her message now
        await env.settle()
        await flushing
        await wait_until(written.is_set, 30, "the segment written")
        await world.capture.flush_all()  # and the flusher's next turns
        await world.capture.flush_all()
        assert await world.archive.worker.drain(30)
        assert (await call("message", msg.id))["type"] == "tombstone"  # the catalogue followed it
        lines = segment_lines(storage(world), world.guild.id, general.id)
        assert "12 Elm St" not in str(lines), lines  # and so did the remote, the source of truth
        assert [r["type"] for r in lines] == ["tombstone"], lines


async def test_channel_json_names_each_segment_with_its_hash_once_written(data_dir: Path, cdn: LocalCdn,  # noqa: F811
                                                                         monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        be.create_message(general.id, world.member("alice").id, "hello", broadcast=False)
        await env.settle()
        go_on = asyncio.Event()
        writing, _written, _call, _asked = slow_segment_written(world, monkeypatch, go_on)
        await world.say(world.owner, f"!backup <#{general.id}>")  # its last page's flush writes the segment ...
        await wait_until(writing.is_set, 30, "the segment is being written")
        # ... while another writer of channel.json queues it, naming the segment before it has a hash
        capture = world.capture
        await write_manifest(capture.catalogue, world.archive.outbox, capture.spool, general.id)
        go_on.set()
        await backup_finished(world, general.id)
        await capture.flush_all()
        assert await world.archive.worker.drain(30)
        manifest = json.loads((storage(world) / f"discord/{world.guild.id}/{general.id}/channel.json").read_text())
        assert manifest["segments"] and all(s["sha256"] and s["size"] for s in manifest["segments"]), manifest


async def test_a_segment_being_written_when_the_flusher_comes_is_written_once(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        be.create_message(general.id, world.member("alice").id, "hello", broadcast=False)
        await env.settle()
        go_on = asyncio.Event()
        writing, _written, call, asked = slow_segment_written(world, monkeypatch, go_on)
        outbox = world.archive.outbox
        enqueue_many = outbox.enqueue_many
        queued: list[str] = []

        async def counted(files, *args, **kwargs):
            queued.extend(rel for _local, rel in files if rel.endswith(".jsonl"))
            return await enqueue_many(files, *args, **kwargs)

        monkeypatch.setattr(outbox, "enqueue_many", counted)
        await world.say(world.owner, f"!backup <#{general.id}>")  # its last page's flush writes the segment ...
        await wait_until(writing.is_set, 30, "the segment is being written")
        flusher = asyncio.create_task(world.capture.flush_all())  # ... when the flusher's turn comes
        # the flusher asked which segments are still to write: this one, as it is not written yet
        await wait_until(lambda: any(n.startswith("segments_to_") for n in asked), 30, "the flusher looked")
        go_on.set()
        await flusher
        await backup_finished(world, general.id)
        [segment] = await call("segments", general.id)
        assert queued == [segment.path], queued
