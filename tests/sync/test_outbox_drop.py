"""A drop through the worker: the parts of a group that have not landed go together, and every
subscriber hears of each, so nothing waits for an item that will never be reported again."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync._outbox.store import Outbox, OutboxError, OutboxItem
from sync._outbox.worker import OutboxWorker
from sync._service import SyncService
from sync.settings import SyncSettings


class Dropped:
    def __init__(self) -> None:
        self.items: list[OutboxItem] = []

    async def archive_dropped(self, item: OutboxItem) -> None:
        self.items.append(item)


async def test_a_drop_takes_what_of_its_group_has_not_landed_and_is_reported(data_dir: Path, write_file):
    async with Outbox(data_dir) as outbox:
        worker = OutboxWorker(outbox, SyncService(SyncSettings(data_dir=data_dir)))  # never started: no upload
        heard = Dropped()
        worker.subscribe(heard)
        alone = await outbox.enqueue(write_file("a.bin"), "a.bin", kind="heartbeat")
        png, manifest = await outbox.enqueue_many([(write_file("r.png"), "rituals/r.png"),
                                                   (write_file("r.json"), "rituals/r.json")], kind="ritual")

        await outbox.claim(png.id)  # the image is uploading: nothing of its ritual may go now
        with pytest.raises(OutboxError, match=rf"#{png.id} is uploading right now"):
            await worker.drop(manifest.id)
        assert heard.items == [] and (await outbox.get(manifest.id)).state == "pending"

        await outbox.requeue(png.id)
        dropped = await worker.drop(manifest.id)
        assert [i.id for i in dropped] == [png.id, manifest.id] == [i.id for i in heard.items]
        assert await outbox.get(png.id) is None and await outbox.get(manifest.id) is None
        assert not png.local_path.exists() and not manifest.local_path.exists()
        assert (await outbox.get(alone.id)).state == "pending"

        landed, waiting = await outbox.enqueue_many([(write_file("s.png"), "rituals/s.png"),
                                                     (write_file("s.json"), "rituals/s.json")], kind="ritual")
        await outbox.claim(landed.id)
        await outbox.mark_done(landed.id, "x:rituals/s.png")
        assert [i.id for i in await worker.drop(waiting.id)] == [waiting.id]  # what landed stays landed
        assert (await outbox.get(landed.id)).state == "done"
        with pytest.raises(OutboxError, match="no outbox item #999"):
            await worker.drop(999)
