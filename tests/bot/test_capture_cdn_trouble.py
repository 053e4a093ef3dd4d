"""A few seconds of trouble on Discord's CDN: the file is not recorded as gone, and the next backup fetches it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.sim.world import simulated_guild
from capture import CaptureSettings
from capture.download import DownloadFailed
from sync.settings import SyncSettings
from tests.bot.test_archive_races import asked_of_catalogue
from tests.support.capture import backup_finished, blob_files, cdn, segment_lines, sha256, storage  # noqa: F401
from tests.support.waiting import wait_until
from tests.support.world import bot_settings, last_edit


def settings(data_dir: Path):
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    return bot_settings(sync, capture=CaptureSettings(watch_flush_s=0.2))


def cdn_down_for(world, monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
    """The next ``failures`` downloads answer as a CDN in an incident does (a 503), then it is back."""
    fetch, left = world.capture.downloader.fetch, [failures]

    async def hiccup(url, limit):
        if left[0] > 0:
            left[0] -= 1
            raise DownloadFailed("HTTP 503")
        return await fetch(url, limit)

    monkeypatch.setattr(world.capture.downloader, "fetch", hiccup)


async def test_a_file_the_cdn_failed_to_send_is_fetched_by_the_next_backup(data_dir: Path, cdn,  # noqa: F811
                                                                         monkeypatch: pytest.MonkeyPatch):
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        data = os.urandom(3000)
        be.create_message(general.id, world.member("alice").id, "the plan",
                          attachments=[cdn.attachment(env, general.id, "plan.pdf", data)], broadcast=False)
        await env.settle()
        cdn_down_for(world, monkeypatch, 3)

        since = len(env.http_requests)
        await world.say(world.owner, f"!backup <#{general.id}>")
        row = await backup_finished(world, general.id)
        await wait_until(lambda: "✅" in last_edit(world, since), what="the backup's last edit")
        final = last_edit(world, since)
        assert "1 file Discord's CDN failed to send: the next backup tries them again" in final, final
        assert "gone from Discord" not in final and row.missing == 0, (final, row)
        [line] = segment_lines(storage(world), world.guild.id, general.id)
        assert line["attachments"][0]["status"] == "failed" and not blob_files(storage(world)), line

        # the CDN answers again: the next backup finds nothing new, and fetches the file all the same
        await world.say(world.owner, f"!backup <#{general.id}>")
        await backup_finished(world, general.id, count=2)
        await wait_until(lambda: segment_lines(storage(world), world.guild.id, general.id)[0]["attachments"][0]
                         ["status"] == "saved", what="the message's line rewritten with its file")
        [line] = segment_lines(storage(world), world.guild.id, general.id)
        [blob] = blob_files(storage(world)).values()
        assert line["attachments"][0]["sha256"] == sha256(blob) and blob.read_bytes() == data, line
        assert await world.capture.catalogue.call("unarchived_files", general.id) == {}  # not fetched a third time


async def test_a_file_discord_says_is_gone_stays_missing(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        gone = cdn.attachment(env, general.id, "vanished.txt", b"soon gone")
        be.create_message(general.id, world.member("alice").id, "a file", attachments=[gone], broadcast=False)
        cdn.forget(env, gone["url"])
        await env.settle()
        await world.say(world.owner, f"!backup <#{general.id}>")
        row = await backup_finished(world, general.id)
        [line] = segment_lines(storage(world), world.guild.id, general.id)
        assert row.missing == 1 and line["attachments"][0]["status"] == "missing", (row, line)
        assert await world.capture.catalogue.call("unarchived_files", general.id) == {}


async def test_alice_deletes_her_message_while_the_next_backup_fetches_its_file_again_and_the_file_goes(
        data_dir: Path, cdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    """No line names bytes fetched for a message deleted during their download: they must not stay."""
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        files = [cdn.attachment(env, general.id, "scan-of-my-passport.png", os.urandom(3000))]
        message = be.create_message(general.id, world.member("alice").id, "my passport", attachments=files,
                                    broadcast=False)
        await env.settle()
        cdn_down_for(world, monkeypatch, 3)  # a moment of trouble on Discord's CDN
        await world.say(world.owner, f"!backup <#{general.id}>")
        await backup_finished(world, general.id)
        assert segment_lines(storage(world), world.guild.id, general.id)[0]["attachments"][0]["status"] == "failed"

        asked, let_go = cdn.hold(files[0]["url"])
        await world.say(world.owner, f"!backup <#{general.id}>")  # fetches the file again ...
        await wait_until(asked.is_set, 30, "the next backup downloads the file again")
        heard = asked_of_catalogue(world, monkeypatch, "delete_message")
        be.delete_message(general.id, message.id)  # ... as alice deletes her message
        await wait_until(heard.is_set, 30, "the deletion followed")
        let_go.set()
        await backup_finished(world, general.id, count=2)
        assert await world.archive.worker.drain(30)
        lines = segment_lines(storage(world), world.guild.id, general.id)
        assert [r["type"] for r in lines] == ["tombstone"], lines
        # Its upload may land after the backup: the report of that landing deletes it.
        await wait_until(lambda: blob_files(storage(world)) == {}, 10, "alice's deleted file gone from the remote")
