"""The spool limit: a backup pauses while what waits for upload would pass HELIX_SPOOL_MAX_GB, never fills the disk."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path

from capture import CaptureSettings
from tests.support.capture import backup_finished, segment_lines
from tests.support.waiting import wait_until
from tests.support.world import log_records

MIB = 1 << 20
SHA_NAME = re.compile(r"[0-9a-f]{64}$")


def attachment_bytes_on_disk(data_dir: Path) -> int:
    """Attachments on the local disk: downloads in progress and blobs in the outbox waiting for upload."""
    downloading = sum(p.stat().st_size for p in (data_dir / "spool").glob(".download-*") if p.is_file())
    waiting = sum(p.stat().st_size for p in (data_dir / "outbox").iterdir() if p.is_file() and SHA_NAME.search(p.name))
    return downloading + waiting


@contextlib.asynccontextmanager
async def sampled(data_dir: Path):
    """Sample the attachments' bytes on disk every few milliseconds while the block runs; yields the samples."""
    samples: list[int] = []

    async def sample() -> None:
        while True:
            with contextlib.suppress(FileNotFoundError):  # a file moved or landed between listing and stat
                samples.append(await asyncio.to_thread(attachment_bytes_on_disk, data_dir))
            await asyncio.sleep(0.005)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def progress_message(world) -> str:
    """The backup's one answer as members see it now (it is edited in place)."""
    last = world.channel.last_message
    return last.content if last is not None else ""


async def _at_least(world, size: int) -> int:
    queued = await world.capture.catalogue.call("queued_blob_bytes")
    return queued if queued >= size else 0


async def test_a_backup_pauses_while_the_cloud_is_down_and_the_spool_is_full_then_lands_everything(
        webdav_world, webdav, cdn, helix_logs, data_dir):
    world = webdav_world
    env, be = world.env, world.env.backend
    limit = CaptureSettings.from_env({"HELIX_SPOOL_MAX_GB": "0.01"}).spool_max_bytes  # about 10 MiB
    world.capture.settings = replace(world.capture.settings, spool_max_bytes=limit)
    photos = world.guild.create_text_channel("photos")
    alice = world.member("alice")
    files = [os.urandom(3 * MIB + i) for i in range(8)]  # 24 MiB: more than twice the spool
    for i, data in enumerate(files):
        be.create_message(photos.id, alice.id, f"shot {i}", broadcast=False,
                          attachments=[cdn.attachment(env, photos.id, f"shot-{i}.raw", data)])
    await env.settle()

    webdav.stop()  # the cloud goes down: nothing can leave the spool
    async with sampled(data_dir) as samples:
        await world.say(world.owner, f"!backup <#{photos.id}>")
        full = await wait_until(lambda: [r for r in log_records(helix_logs)
                                         if r.get("message") == "capture_spool_full"],
                                60, "the backup to pause on a full spool")
        hint = full[0]["hint"]
        assert "HELIX_SPOOL_MAX_GB" in hint and hint.endswith(".") and ". " not in hint, hint  # one sentence
        fit = limit // len(files[-1])  # as many files as the spool holds wait in the outbox, no more
        queued = await wait_until(lambda: _at_least(world, sum(map(len, files[:fit]))), 60, "the spool to fill")
        assert queued <= limit < queued + len(files[fit]), (queued, limit)
        assert len([h for h in cdn.hits if "/shot-" in h]) == fit, cdn.hits
        assert [r.state for r in await world.capture.catalogue.call("backups", limit=5)] == ["running"]
        # the admin who asked sees the pause in the backup's progress message, without waiting for a page
        await wait_until(lambda: "paused while the spool is full (HELIX_SPOOL_MAX_GB)" in progress_message(world),
                         30, "the progress message to say the backup is paused")

        webdav.start()  # back: uploads free the spool and the backup goes on
        row = await backup_finished(world, photos.id)
    assert row.state == "done" and row.files == len(files), row
    await wait_until(lambda: progress_message(world).startswith("✅ Backup of"), 30, "the progress message to end")
    assert "paused" not in progress_message(world)
    assert samples and max(samples) <= limit, f"{max(samples)} bytes of attachments on disk, the limit is {limit}"
    assert any(r.get("message") == "capture_spool_resumed" for r in log_records(helix_logs))

    records = segment_lines(webdav.storage, world.guild.id, photos.id)
    assert [a["status"] for r in records for a in r["attachments"]] == ["saved"] * len(files)
    for data in files:
        sha = hashlib.sha256(data).hexdigest()
        assert (webdav.storage / f"blobs/sha256/{sha[:2]}/{sha}").read_bytes() == data


async def test_a_file_bigger_than_the_whole_spool_is_recorded_not_downloaded_and_the_backup_goes_on(
        local_world, cdn, helix_logs):
    world = local_world
    env, be = world.env, world.env.backend
    limit = CaptureSettings.from_env({"HELIX_SPOOL_MAX_GB": "0.01"}).spool_max_bytes
    world.capture.settings = replace(world.capture.settings, spool_max_bytes=limit)
    videos = world.guild.create_text_channel("videos")
    huge = cdn.attachment(env, videos.id, "raid.mkv", os.urandom(limit + 1))
    small = cdn.attachment(env, videos.id, "notes.txt", b"the plan")
    be.create_message(videos.id, world.member("alice").id, "footage", attachments=[huge, small], broadcast=False)
    await env.settle()

    await world.say(world.owner, f"!backup <#{videos.id}>")
    row = await backup_finished(world, videos.id, within=60)
    assert row.state == "done" and row.too_big == 1 and row.files == 1, row
    [record] = segment_lines(Path(world.archive.settings.archive_dir), world.guild.id, videos.id)
    assert [a["status"] for a in record["attachments"]] == ["too_big", "saved"]
    assert not [hit for hit in cdn.hits if "raid.mkv" in hit], "the file bigger than the spool was fetched"
    [said] = [r for r in log_records(helix_logs) if r.get("message") == "capture_bigger_than_spool"]
    assert "raid.mkv" in said["hint"] and "HELIX_SPOOL_MAX_GB" in said["hint"], said
