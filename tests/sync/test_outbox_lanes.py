"""The outbox worker's lanes: a backup's files upload side by side, everything else keeps its order.

Real rclone against a loopback WebDAV server (slowed by a bandwidth limit so that uploads overlap
visibly) and a local archive folder; what was uploading is sampled while it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

from sync._outbox.store import Outbox
from sync._outbox.worker import OutboxWorker
from sync._service import SyncService
from sync.settings import SyncSettings
from tests.support.remotes import LoopbackRemote
from tests.sync.test_outbox import FAST, Seen


class Sampler:
    """What the worker had uploading at once, sampled every few milliseconds while it drains."""

    def __init__(self, worker: OutboxWorker) -> None:
        self.worker = worker
        self.seen: list[tuple[str, ...]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            kinds = tuple(item.kind for item in self.worker.uploading)
            if kinds:
                self.seen.append(kinds)
            await asyncio.sleep(0.005)

    async def __aenter__(self) -> Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_a_backups_files_upload_side_by_side_and_its_segment_waits_for_them(
        webdav: LoopbackRemote, data_dir: Path, write_file):
    settings = webdav.settings(data_dir, bwlimit="2M", max_concurrent=3, **FAST)
    async with Outbox(data_dir) as box, SyncService(settings) as svc:
        worker = OutboxWorker(box, svc)
        worker.unordered("capture-blob")
        seen = Seen()
        worker.subscribe(seen)
        blobs = [await box.enqueue(write_file(f"b{i}.bin", 200_000 + i), f"blobs/b{i}", kind="capture-blob")
                 for i in range(7)]
        segment = await box.enqueue(write_file("seg.jsonl", 5_000), "messages/1-7.jsonl", kind="capture-segment")
        async with Sampler(worker) as sampler:
            worker.start()
            assert await worker.drain(60)
            await worker.stop()
    assert max(len(kinds) for kinds in sampler.seen) == 3  # the lanes were used, never more
    assert all(kinds == ("capture-segment",) for kinds in sampler.seen if "capture-segment" in kinds)
    landed = [item.id for item, _ in seen.done]
    assert sorted(landed) == [b.id for b in blobs] + [segment.id]
    assert landed[-1] == segment.id  # the segment never lands before the files it names
    assert sorted(p.name for p in webdav.files("blobs/*")) == [f"b{i}" for i in range(7)]


async def test_after_a_failure_one_file_probes_the_remote_until_one_lands(
        webdav: LoopbackRemote, data_dir: Path, write_file):
    webdav.stop()
    async with Outbox(data_dir) as box, SyncService(webdav.settings(data_dir, max_concurrent=4, **FAST)) as svc:
        worker = OutboxWorker(box, svc)
        worker.unordered("capture-blob")
        seen = Seen()
        worker.subscribe(seen)
        worker.start()
        blobs = [await box.enqueue(write_file(f"b{i}.bin", 500), f"blobs/b{i}", kind="capture-blob")
                 for i in range(4)]
        await seen.until(lambda: len(seen.retries) >= 3)
        # A down remote is asked by one upload at a time, not by every lane at once.
        assert {item.id for item, _, _ in seen.retries} == {blobs[0].id}
        webdav.start()
        assert await worker.drain(30)
        await worker.stop()
    assert sorted(item.id for item, _ in seen.done) == [b.id for b in blobs]


async def test_the_outboxs_copy_is_renamed_into_a_local_archive_not_copied(local_settings: SyncSettings,
                                                                          data_dir: Path, write_file):
    photo = write_file("photo.png", 300_000)
    async with Outbox(data_dir) as box, SyncService(replace(local_settings, **FAST)) as svc:
        item = await box.enqueue(photo, "blobs/photo", kind="capture-blob")
        inode = item.local_path.stat().st_ino
        worker = OutboxWorker(box, svc)
        worker.start()
        assert await worker.drain(20)
        await worker.stop()
        assert (await box.get(item.id)).state == "done"
    landed = local_settings.archive_dir / "blobs" / "photo"
    assert landed.stat().st_ino == inode  # the same file, handed over: no byte read or written again
    assert landed.read_bytes() == photo.read_bytes()
    assert not item.local_path.exists()


async def test_one_claim_takes_the_files_at_the_head_and_stops_at_anything_in_order(data_dir: Path, write_file):
    async with Outbox(data_dir) as box:
        first = [await box.enqueue(write_file(f"a{i}.bin", 10), f"blobs/a{i}", kind="capture-blob") for i in range(2)]
        segment = await box.enqueue(write_file("seg.jsonl", 10), "messages/1-2.jsonl", kind="capture-segment")
        later = await box.enqueue(write_file("c.bin", 10), "blobs/c", kind="capture-blob")
        blobs = frozenset({"capture-blob"})
        head, claimed = await box.claim_next(None, more=5, more_kinds=blobs)
        # The two files before the segment, not the file after it: the segment must wait for them.
        assert head.id == first[0].id and [i.id for i in claimed] == [f.id for f in first]
        assert all(i.state == "uploading" and i.attempts == 1 for i in claimed)
        head, claimed = await box.claim_next(blobs, more=5, more_kinds=blobs)
        assert head.id == segment.id and claimed == []  # beside uploads, only files may start
        head, claimed = await box.claim_next(None, more=5, more_kinds=blobs)
        assert [i.id for i in claimed] == [segment.id]  # a segment starts alone, nothing beside it
        assert (await box.get(later.id)).state == "pending"
