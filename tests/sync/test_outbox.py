"""The durable outbox, against real rclone, real SQLite and a real loopback WebDAV server.

Nothing here mocks rclone: the remote goes down by stopping its server process, and a wrong
password is rejected by the server itself. Retry bases are tiny so backoff is quick, and the
tests wait for events (hooks, drained queues) rather than for wall time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import structlog

from sync._outbox.store import Outbox, OutboxError, OutboxItem
from sync._outbox.worker import OutboxWorker
from sync._rclone.client import Progress
from sync._service import ArchiveResult, SyncService
from sync.errors import PathError, SyncError
from sync.settings import SyncSettings
from tests.support.remotes import LoopbackRemote

FAST = {"retries": 0, "outbox_retry_base_s": 0.05, "outbox_retry_cap_s": 0.4}


class Seen:
    """Hooks that record what the worker told the bot, with an event per kind."""

    def __init__(self) -> None:
        self.done: list[tuple[OutboxItem, ArchiveResult]] = []
        self.failed: list[tuple[OutboxItem, SyncError]] = []
        self.retries: list[tuple[OutboxItem, SyncError, float]] = []
        self.progress: list[Progress] = []
        self.changed = asyncio.Event()

    def attach(self, worker: OutboxWorker) -> OutboxWorker:
        worker.subscribe(self)
        return worker

    async def archive_done(self, item: OutboxItem, result: ArchiveResult) -> None:
        self.done.append((item, result))
        self.changed.set()

    async def archive_failed(self, item: OutboxItem, err: SyncError) -> None:
        self.failed.append((item, err))
        self.changed.set()

    async def archive_retry(self, item: OutboxItem, err: SyncError, delay: float) -> None:
        self.retries.append((item, err, delay))
        self.changed.set()

    async def archive_progress(self, item: OutboxItem, p: Progress) -> None:
        self.progress.append(p)
        self.changed.set()

    async def until(self, check: Callable[[], bool], within_s: float = 20.0) -> None:
        deadline = time.monotonic() + within_s
        while not check():
            assert time.monotonic() < deadline, "the expected outbox event did not happen"
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.2)
            except TimeoutError:
                pass


async def poll(check: Callable[[], Awaitable[bool]], within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def outbox(data_dir: Path):
    async with Outbox(data_dir) as box:
        yield box


# -- enqueue: durable before it returns ---------------------------------------------------------


async def test_enqueue_is_durable_and_owns_its_copy(data_dir: Path, write_file):
    src = write_file("ritual.png", 4096)
    async with Outbox(data_dir) as box:
        item = await box.enqueue(src, "rituals/2026/ritual.png", kind="ritual", meta={"channel": 1, "message": 2})
    src.unlink()  # the caller's file may vanish once enqueue returned

    async with Outbox(data_dir) as reopened:
        again = await reopened.get(item.id)
        counts = await reopened.counts()
    assert again is not None and again.state == "pending" and again.kind == "ritual"
    assert again.rel_path == "rituals/2026/ritual.png" and again.size == 4096 and len(again.sha256) == 64
    assert again.meta == {"channel": 1, "message": 2}
    assert again.local_path == reopened.data_dir / "outbox" / f"{item.id}-ritual.png"
    assert again.local_path.stat().st_size == 4096
    assert counts.pending == 1 and counts.oldest_pending_age_s is not None


async def test_enqueue_many_is_one_group_and_bad_input_records_nothing(outbox: Outbox, write_file):
    png, manifest = write_file("r.png"), write_file("r.json")
    items = await outbox.enqueue_many([(png, "rituals/r.png"), (manifest, "rituals/r.json")], kind="ritual")
    assert [i.id for i in items] == [items[0].id, items[0].id + 1] and items[0].group == items[1].group
    assert [i.rel_path for i in await outbox.group_items(items[0].group)] == ["rituals/r.png", "rituals/r.json"]

    with pytest.raises(PathError, match=r"climbs out"):
        await outbox.enqueue(png, "../etc/passwd", kind="ritual")
    with pytest.raises(PathError, match=r"does not exist"):
        await outbox.enqueue(png.with_name("missing.png"), "x.png", kind="ritual")
    assert (await outbox.counts()).pending == 2
    assert sorted(p.name for p in outbox.files_dir.iterdir()) == [f"{items[0].id}-r.png", f"{items[1].id}-r.json"]


async def test_files_queued_at_once_share_commits_and_each_is_its_own_item(data_dir: Path, write_file,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """A backup's files finish downloading side by side: their rows go to the disk together."""
    from sync._outbox import db

    transactions: list[int] = []
    insert_groups = db.ItemStore.insert_groups

    def counted(self: db.ItemStore, groups: list) -> list:
        transactions.append(len(groups))
        return insert_groups(self, groups)

    monkeypatch.setattr(db.ItemStore, "insert_groups", counted)
    files = [write_file(f"blob-{i}.bin", 100 + i) for i in range(20)]
    async with Outbox(data_dir) as box:
        items = await asyncio.gather(*(box.enqueue(f, f"blobs/{f.name}", kind="blob", move=True) for f in files))
    assert [i.rel_path for i in items] == [f"blobs/{f.name}" for f in files]
    assert len({i.id for i in items}) == 20 and all(i.local_path.stat().st_size == i.size for i in items)
    assert sum(transactions) == 20 and len(transactions) < 20, transactions

    async with Outbox(data_dir) as reopened:  # each one durable, as if queued alone
        assert (await reopened.counts()).pending == 20


async def test_unwritable_data_dir_is_one_sentence(tmp_path: Path):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data directory should be")
    with pytest.raises(OutboxError) as err:
        await Outbox(not_a_dir).open()
    assert "HELIX_DATA_DIR" in str(err.value) and "\n" not in str(err.value)


# -- the worker -------------------------------------------------------------------------------


async def test_worker_uploads_in_order_and_removes_local_copies(webdav: LoopbackRemote, data_dir: Path,
                                                                outbox: Outbox, write_file):
    files = [write_file(f"r{i}.bin", 2000 + i) for i in range(3)]
    queued = [await outbox.enqueue(f, f"rituals/{f.name}", kind="ritual") for f in files]
    seen = Seen()
    async with SyncService(webdav.settings(data_dir, **FAST)) as svc:
        worker = seen.attach(OutboxWorker(outbox, svc))
        worker.start()
        assert await worker.drain(30)
        await worker.stop()
    assert [item.id for item, _ in seen.done] == [q.id for q in queued]
    for (item, result), src in zip(seen.done, files, strict=True):
        assert item.state == "done" and item.remote_path == result.remote_path == f"loop:rituals/{src.name}"
        assert (webdav.root / "rituals" / src.name).read_bytes() == src.read_bytes()
        assert not item.local_path.exists()
    counts = await outbox.counts()
    assert (counts.pending, counts.failed, counts.done, counts.oldest_pending_age_s) == (0, 0, 3, None)


async def test_the_operator_reads_one_line_per_landed_file(local_settings: SyncSettings, outbox: Outbox, write_file):
    """A backup lands thousands of files: each one is one line at info, with what an operator asks of it."""
    files = [write_file(f"blob{i}.bin", 300 + i) for i in range(3)]
    with structlog.testing.capture_logs() as logs:
        for f in files:
            await outbox.enqueue(f, f"blobs/{f.name}", kind="capture-blob")
        async with SyncService(replace(local_settings, **FAST)) as svc:
            worker = OutboxWorker(outbox, svc)
            worker.start()
            assert await worker.drain(20)
            await worker.stop()
    for f in files:
        told = [e for e in logs if e["log_level"] != "debug" and f.name in str(e)]
        assert [e["event"] for e in told] == ["outbox_landed"], told
        assert told[0]["size"] == f.stat().st_size and told[0]["verified"] and "duration_s" in told[0]


async def test_a_call_cut_short_under_the_worker_does_not_end_it(local_settings: SyncSettings, outbox: Outbox,
                                                                 write_file):
    """The worker is the queue's only drainer: a call cancelled under it, with no stop asked, is
    logged and survived, and what was queued still lands."""
    claim_next = outbox.claim_next
    cut: list[bool] = []

    async def cut_once(*args, **kwargs):
        if not cut:
            cut.append(True)
            future = asyncio.get_running_loop().create_future()
            future.cancel()  # what awaiting a thread's future cancelled under its caller raises
            await future
        return await claim_next(*args, **kwargs)

    outbox.claim_next = cut_once  # type: ignore[method-assign]
    item = await outbox.enqueue(write_file("hb.json", 100), "heartbeats/hb.json", kind="heartbeat")
    with structlog.testing.capture_logs() as logs:
        async with SyncService(replace(local_settings, **FAST)) as svc:
            worker = OutboxWorker(outbox, svc)
            worker.start()
            assert await worker.drain(20), "the worker ended: nothing drains the queue any more"
            assert worker.running
            await worker.stop()
    assert cut and (await outbox.get(item.id)).state == "done"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["outbox_worker_interrupted"]


async def test_an_item_that_falls_due_while_the_database_answers_is_taken_at_once(local_settings: SyncSettings,
                                                                                   outbox: Outbox, write_file):
    """The worker asked whether the head was due a moment before it was, and the answer came back
    after: it asks again, rather than sleep until a wake-up nothing sends (a slow disk, a busy host)."""
    item = await outbox.enqueue(write_file("hb.json", 100), "heartbeats/hb.json", kind="heartbeat")
    await outbox.mark_retry(item.id, "the remote was down", time.time() + 0.3)
    claim_next, slowed = outbox.claim_next, []

    async def slow_answer(*args, **kwargs):
        head, claimed = await claim_next(*args, **kwargs)
        if head is not None and not claimed and not slowed:
            slowed.append(head.id)
            await asyncio.sleep(head.next_attempt_at - time.time() + 0.05)  # due by the time it is read
        return head, claimed

    outbox.claim_next = slow_answer  # type: ignore[method-assign]
    async with SyncService(replace(local_settings, **{**FAST, "outbox_retry_cap_s": 60.0})) as svc:
        worker = OutboxWorker(outbox, svc)
        worker.start()
        assert await worker.drain(20), "the worker went to sleep with a due item at the head of its queue"
        await worker.stop()
    assert slowed == [item.id] and (await outbox.get(item.id)).state == "done"


async def test_a_queue_with_work_in_it_is_looked_at_again_without_a_wake_up(local_settings: SyncSettings,
                                                                             outbox: Outbox, write_file):
    """An item made due with nobody telling the worker still lands within the retry cap, not at the
    hour its backoff had named: the queue never depends on one wake-up arriving."""
    item = await outbox.enqueue(write_file("hb.json", 100), "heartbeats/hb.json", kind="heartbeat")
    await outbox.mark_retry(item.id, "the remote was down", time.time() + 3600)
    claim_next, looked = outbox.claim_next, asyncio.Event()

    async def claim_and_tell(*args, **kwargs):
        found = await claim_next(*args, **kwargs)
        looked.set()
        return found

    outbox.claim_next = claim_and_tell  # type: ignore[method-assign]
    async with SyncService(replace(local_settings, **FAST)) as svc:
        worker = OutboxWorker(outbox, svc)
        worker.start()
        await asyncio.wait_for(looked.wait(), 20)  # it saw the item backing off for an hour
        outbox.remove_listener(worker.wake)
        await outbox.retry(item.id)  # `!outbox retry`: due now, and this time no wake-up reaches the worker
        assert await worker.drain(20)
        await worker.stop()
    assert (await outbox.get(item.id)).state == "done"


async def test_keep_local_keeps_the_copy(local_settings: SyncSettings, outbox: Outbox, write_file):
    assert SyncSettings.from_env({"HELIX_KEEP_LOCAL": "1"}).keep_local is True
    with pytest.raises(SyncError, match="HELIX_KEEP_LOCAL"):
        SyncSettings.from_env({"HELIX_KEEP_LOCAL": "maybe"})
    item = await outbox.enqueue(write_file("hb.json", 100), "heartbeats/hb.json", kind="heartbeat")
    async with SyncService(replace(local_settings, keep_local=True, **FAST)) as svc:
        worker = OutboxWorker(outbox, svc)
        worker.start()
        assert await worker.drain(20)
        await worker.stop()
    assert item.local_path.exists() and (local_settings.archive_dir / "heartbeats/hb.json").exists()
    assert (await outbox.get(item.id)).state == "done"


async def test_remote_down_items_wait_with_backoff_then_land_in_order(webdav: LoopbackRemote, data_dir: Path,
                                                                     outbox: Outbox, write_file):
    webdav.stop()
    seen = Seen()
    async with SyncService(webdav.settings(data_dir, **FAST)) as svc:
        worker = seen.attach(OutboxWorker(outbox, svc))
        worker.start()
        queued = [await outbox.enqueue(write_file(f"q{i}.bin", 500), f"q/q{i}.bin", kind="ritual") for i in range(3)]
        await seen.until(lambda: len(seen.retries) >= 3)
        head = await outbox.get(queued[0].id)
        assert head.state in ("pending", "uploading") and head.attempts >= 3
        assert "unreachable" in (head.last_error or "")
        # Strict order: nothing behind a backing-off head is tried, so nothing can overtake it.
        assert {item.id for item, _, _ in seen.retries} == {queued[0].id}
        assert all(0 < delay <= 0.4 for _, _, delay in seen.retries)
        assert (await outbox.counts()).pending + (await outbox.counts()).uploading == 3

        webdav.start()
        assert await worker.drain(30)
        await worker.stop()
    assert [item.id for item, _ in seen.done] == [q.id for q in queued]
    assert [p.name for p in webdav.files("q/*")] == ["q0.bin", "q1.bin", "q2.bin"]


async def test_backoff_survives_a_restart(webdav: LoopbackRemote, data_dir: Path, write_file):
    webdav.stop()
    async with Outbox(data_dir) as box, SyncService(webdav.settings(data_dir, **FAST)) as svc:
        seen = Seen()
        worker = seen.attach(OutboxWorker(box, svc, retry_base_s=600, retry_cap_s=600))
        worker.start()
        item = await box.enqueue(write_file(), "later.bin", kind="ritual")
        await seen.until(lambda: bool(seen.retries))
        await worker.stop()
    async with Outbox(data_dir) as box:
        again = await box.get(item.id)
        assert again.state == "pending" and again.next_attempt_at > time.time() + 60  # not hammered after restart
        webdav.start()
        async with SyncService(webdav.settings(data_dir, **FAST)) as svc:
            worker = OutboxWorker(box, svc)
            worker.start()
            assert not await worker.drain(0.3)  # still waiting out its backoff
            await box.retry("all")  # !outbox retry all: due now
            assert await worker.drain(20)
            await worker.stop()
    assert webdav.has("later.bin")


async def test_wrong_password_fails_once_for_all_then_retry_all_lands(webdav: LoopbackRemote, data_dir: Path,
                                                                      outbox: Outbox, write_file):
    queued = [await outbox.enqueue(write_file(f"a{i}.bin"), f"a/a{i}.bin", kind="ritual") for i in range(2)]
    seen = Seen()
    async with SyncService(webdav.settings(data_dir, password="wrong-password", **FAST)) as svc:
        worker = seen.attach(OutboxWorker(outbox, svc))
        worker.start()
        await seen.until(lambda: len(seen.failed) == 2)
        assert await worker.drain(5)  # nothing left pending: failed items are not retried in a loop
        await worker.stop()
    failed = await outbox.list(["failed"])
    assert [f.id for f in failed] == [q.id for q in queued]
    assert [f.attempts for f in failed] == [1, 0]  # one login attempt, not one per item
    for f in failed:
        assert "rejected the login" in f.last_error and "wrong-password" not in f.last_error
        assert webdav.password not in f.last_error

    async with SyncService(webdav.settings(data_dir, **FAST)) as svc:  # the operator fixed the password
        worker = seen.attach(OutboxWorker(outbox, svc))
        worker.start()
        assert [i.id for i in await outbox.retry("all")] == [q.id for q in queued]
        assert await worker.drain(20)
        await worker.stop()
    assert [p.name for p in webdav.files("a/*")] == ["a0.bin", "a1.bin"]


async def test_retry_all_after_the_password_is_fixed_lands_no_older_copy_over_a_newer_one(
        local_settings: SyncSettings, outbox: Outbox, write_file):
    """The remote refused every file for a while; meanwhile a deletion rewrote a segment and a newer
    ``channel.json`` landed. ``!outbox retry all``, as the failure told the owner, must not put the old
    segment (the deleted message in it) or the old manifest back over them."""
    seg, manifest, beat = "discord/1/10/messages/100-101.jsonl", "discord/1/10/channel.json", "heartbeat/h.json"
    old_seg = await outbox.enqueue(write_file("old.jsonl"), seg, kind="capture-segment")
    old_manifest = await outbox.enqueue(write_file("old.json"), manifest, kind="capture-manifest")
    photo = await outbox.enqueue(write_file("photo.bin"), "blobs/sha256/ab/ab12", kind="capture-blob")
    old_beat = await outbox.enqueue(write_file("beat1.json"), beat, kind="heartbeat")
    latest_beat = write_file("beat2.json")
    new_beat = await outbox.enqueue(latest_beat, beat, kind="heartbeat")
    refused = "The archive remote refused the login: fix the password, then !outbox retry all."
    assert len(await outbox.mark_failed(old_seg.id, refused, also_pending=True)) == 5
    newer = [write_file("new.jsonl"), write_file("new.json")]  # the rewrite without the deleted message
    new_seg = await outbox.enqueue(newer[0], seg, kind="capture-segment")
    await outbox.enqueue(newer[1], manifest, kind="capture-manifest")
    async with SyncService(replace(local_settings, **FAST)) as svc:  # the owner fixed the password
        worker = OutboxWorker(outbox, svc)
        worker.start()
        assert await worker.drain(20)
        with pytest.raises(OutboxError, match=rf"#{old_seg.id} was an older copy of `{seg}`, which "
                                              rf"#{new_seg.id} replaces: it was dropped, not retried"):
            await outbox.retry(old_seg.id)
        # The newest heartbeat, failed too, is the one retried.
        assert [i.id for i in await outbox.retry("all")] == [photo.id, new_beat.id]
        assert await worker.drain(20)
        await worker.stop()
    for old in (old_seg, old_manifest, old_beat):
        assert await outbox.get(old.id) is None and not old.local_path.exists()
    remote = local_settings.archive_dir
    assert [(remote / rel).read_bytes() for rel in (seg, manifest)] == [f.read_bytes() for f in newer]
    assert (remote / beat).read_bytes() == latest_beat.read_bytes()
    assert (await outbox.counts()).failed == 0


# -- crashes and corruption ---------------------------------------------------------------------


async def test_crash_mid_upload_goes_back_to_pending(data_dir: Path, write_file):
    async with Outbox(data_dir) as box:
        item = await box.enqueue(write_file(), "c.bin", kind="ritual")
        assert (await box.claim(item.id)).state == "uploading"
    # the process died here: nothing marked the item done or pending again
    async with Outbox(data_dir) as box:
        again = await box.get(item.id)
    assert box.recovered == 1 and again.state == "pending" and again.attempts == 1


async def test_corrupt_database_is_moved_aside_with_one_loud_line(data_dir: Path, write_file):
    async with Outbox(data_dir) as box:
        await box.enqueue(write_file(), "lost.bin", kind="ritual")
    db = data_dir / "outbox.sqlite3"
    for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        extra.unlink(missing_ok=True)
    db.write_bytes(os.urandom(8192))

    with structlog.testing.capture_logs() as logs:
        async with Outbox(data_dir) as box:
            fresh = await box.enqueue(write_file("new.bin"), "new.bin", kind="ritual")
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["outbox_database_corrupt_moved_aside"]
    assert box.moved_aside is not None and box.moved_aside.name.startswith("outbox.sqlite3.corrupt-")
    assert box.moved_aside.exists() and fresh.id == 1
    assert any(name.startswith("outbox.corrupt-") for name in os.listdir(data_dir))  # the old item files kept

    with structlog.testing.capture_logs() as logs:
        async with Outbox(data_dir) as box:  # the next start is a normal one: no crash loop
            assert [i.rel_path for i in await box.list()] == ["new.bin"]
    assert not [e for e in logs if e["log_level"] == "error"]


@pytest.mark.parametrize("kind", ["webdav", "s3"])  # size only / size and MD5
async def test_an_item_that_already_landed_is_not_uploaded_again(kind: str, request: pytest.FixtureRequest,
                                                                 data_dir: Path, write_file):
    remote: LoopbackRemote = request.getfixturevalue(kind)
    src = write_file("once.bin", 3000)
    async with Outbox(data_dir) as box, SyncService(remote.settings(data_dir, **FAST)) as svc:
        item = await box.enqueue(src, "r/once.bin", kind="ritual")
        await box.claim(item.id)
        await svc.archive(item.local_path, item.rel_path)  # landed ... and then the process died,
        # leaving an earlier attempt's partial upload behind (written through the server: it caches listings)
        await svc.archive(write_file("partial", 10), "r/once.bin.helix-partial-dead0001")

    async with Outbox(data_dir) as box, SyncService(remote.settings(data_dir, **FAST)) as svc:
        seen = Seen()
        worker = seen.attach(OutboxWorker(box, svc))
        with structlog.testing.capture_logs() as logs:
            worker.start()
            assert await worker.drain(20)
            await worker.stop()
    landed = [e for e in logs if e["event"] == "outbox_already_landed"]
    events = [e["event"] for e in logs]
    if kind == "s3":  # a cheap hash proves the copy there is this one: not sent again
        assert landed and landed[0]["verified"] == "md5"
        assert "archived" not in events
    else:  # no cheap hash: size cannot tell two versions apart, so it is sent again over the same name
        assert not landed and events.count("archived") == 1
    assert "outbox_partial_removed" in events
    assert [p.name for p in remote.files("r/*")] == ["once.bin"]
    sep = "" if remote.archive.endswith(":") else "/"
    assert seen.done[0][0].state == "done" and seen.done[0][1].remote_path == f"{remote.archive}{sep}r/once.bin"
    assert not seen.done[0][0].local_path.exists()


async def test_stop_mid_upload_leaves_it_pending_and_it_lands_later(webdav: LoopbackRemote, data_dir: Path,
                                                                    outbox: Outbox, write_file):
    item = await outbox.enqueue(write_file("big.bin", 3 * 1024 * 1024), "big.bin", kind="ritual")
    seen = Seen()
    async with SyncService(webdav.settings(data_dir, bwlimit="256K", **FAST)) as svc:
        worker = seen.attach(OutboxWorker(outbox, svc))
        worker.start()
        await seen.until(lambda: bool(seen.progress))
        await worker.stop(grace_s=0.05)
    stopped = await outbox.get(item.id)
    assert stopped.state == "pending" and not webdav.has("big.bin") and not seen.done
    assert stopped.next_attempt_at <= time.time()  # due at once on the next start

    async with SyncService(webdav.settings(data_dir, **FAST)) as svc:
        worker = seen.attach(OutboxWorker(outbox, svc))
        worker.start()
        assert await worker.drain(30)
        await worker.stop()
    assert [p.name for p in webdav.files()] == ["big.bin"]  # one copy, no partial left behind


async def test_retry_and_drop_answer_with_sentences(outbox: Outbox, write_file):
    item = await outbox.enqueue(write_file(), "d.bin", kind="ritual")
    await outbox.claim(item.id)
    with pytest.raises(OutboxError, match="uploading right now"):
        await outbox.drop(item.id)
    await outbox.mark_failed(item.id, "The archive remote 'x:' rejected the login: check its password.")
    assert [i.state for i in await outbox.retry(item.id)] == ["pending"]
    with pytest.raises(OutboxError, match="not an item number"):
        await outbox.retry("abc")
    with pytest.raises(OutboxError, match="#999 does not exist"):
        await outbox.retry(999)
    dropped = await outbox.drop(item.id)
    assert not dropped.local_path.exists() and await outbox.get(item.id) is None
    with pytest.raises(OutboxError, match="no outbox item #999"):
        await outbox.drop(999)
    with pytest.raises(OutboxError, match="no outbox item"):
        await outbox.update_meta(item.id, message=5)


async def test_rows_of_items_that_landed_long_ago_are_pruned_on_open(data_dir: Path, write_file):
    """A bot that runs for months must not grow its database forever: landed rows older than 30 days go."""
    import sqlite3

    from sync._outbox import db as outbox_db

    async with Outbox(data_dir) as box:
        old = await box.enqueue(write_file("old.bin", 10), "a/old.bin", kind="ritual")
        await box.claim(old.id)
        await box.mark_done(old.id, "x:a/old.bin")
        recent = await box.enqueue(write_file("new.bin", 10), "a/new.bin", kind="ritual")
        await box.claim(recent.id)
        await box.mark_done(recent.id, "x:a/new.bin")
        waiting = await box.enqueue(write_file("wait.bin", 10), "a/wait.bin", kind="ritual")
    with sqlite3.connect(data_dir / "outbox.sqlite3") as conn:  # the old one landed 31 days ago
        conn.execute("UPDATE items SET updated_at = updated_at - ? WHERE id = ?",
                     (outbox_db.DONE_KEPT_S + 86400, old.id))
    async with Outbox(data_dir) as box:
        assert await box.get(old.id) is None
        assert (await box.get(recent.id)).state == "done"
        assert (await box.get(waiting.id)).state == "pending"


async def test_a_second_helix_on_the_same_data_folder_is_refused_until_the_first_stops(tmp_path: Path):
    """Its start would put the first one's uploads in flight back in the queue and upload them again."""
    first = await Outbox(tmp_path).open()
    try:
        with pytest.raises(OutboxError, match=r"Another Helix process \(pid \d+\) is already using HELIX_DATA_DIR"):
            await Outbox(tmp_path).open()
    finally:
        await first.close()
    second = await Outbox(tmp_path).open()  # the first one stopped: its lock went with it
    await second.close()
