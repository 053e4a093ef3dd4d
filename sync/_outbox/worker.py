"""The outbox worker: uploads queued items through SyncService, in order, until each lands or fails for good.

Whoever owns the SyncService starts the worker next to it (not the bot: a task created inside the
bot would be an "unknown wait" under SimCord) and stops it before closing the service.

- The queue is strictly ordered: the worker always takes the lowest-id pending item and, if that
  one is backing off, waits for it rather than overtaking it. A retryable failure (remote down,
  daemon restarting, timeout) is a property of the remote, not of the item, so nothing behind it
  would fare better, and items land in the order users asked for them.
- Kinds declared ``unordered`` (content-addressed blobs, whose order nobody sees) upload up to
  ``lanes`` at once (``HELIX_MAX_CONCURRENT``) while the remote answers: a backup's files then
  land as fast as they download. Any other item waits until everything before it has landed, so
  a segment never lands before the files it names, and after a failure one item at a time probes
  the remote until one lands again.
- Retryable failures back off exponentially with jitter, capped (``outbox_retry_base_s`` and
  ``outbox_retry_cap_s``); the next attempt time is persisted, so the schedule survives restarts.
- Permanent failures are not retried in a loop. When the remote refuses everything (auth, quota or
  a full disk under a local archive folder, an undefined remote) every pending item is failed with the
  same reason at once, so a wrong password costs one login attempt, not one per item; ``!outbox retry
  all`` after the fix.
- An item tried before (a crash, a cut connection) may already be on the remote: it is checked
  with ``stat`` first and, if the copy there has its size (and hash, where the backend has a
  cheap one), marked done without uploading again. Leftover partial uploads of earlier attempts
  are deleted.
- An owner's drop goes through the worker (``drop``), so it is reported like any other outcome:
  nothing waits for an item that is gone, and nothing takes it for landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import partial
from pathlib import Path

import structlog

from runtime.backoff import backoff_delay
from runtime.tasks import cancelled_by_stop
from sync._outbox.leftovers import already_landed, clear_partials
from sync._outbox.reports import Reporting
from sync._outbox.store import Outbox, OutboxError, OutboxItem, remove_local
from sync._rclone.client import Progress
from sync._service import ArchiveResult, SyncService
from sync.errors import SyncError

log = structlog.get_logger("helix.sync.outbox")

CLEANUP_S = 2.0  # how long stop() lets a cut-short upload clean up before interrupting that too


class OutboxWorker(Reporting):
    """Drains an Outbox through a SyncService and reports each outcome to its subscribers.

    A subscriber (``subscribe(listener)``) gets ``archive_done(item, result)`` after an item landed
    and was verified, ``archive_failed(item, error)`` when it failed for good,
    ``archive_retry(item, error, delay_s)`` when it will be tried again,
    ``archive_progress(item, progress)`` while it uploads and ``archive_dropped(item)`` when an
    owner gave up on it (``drop``). Reports run in the worker's task (a drop's in the dropping one):
    keep them quick (each is cut off after 15 s); their exceptions are logged, never fatal.
    """

    def __init__(self, outbox: Outbox, service: SyncService, *, keep_local: bool | None = None,
                 retry_base_s: float | None = None, retry_cap_s: float | None = None,
                 lanes: int | None = None) -> None:
        super().__init__()
        s = service.settings
        self.outbox = outbox
        self.service = service
        self.keep_local = s.keep_local if keep_local is None else keep_local
        self.retry_base_s = s.outbox_retry_base_s if retry_base_s is None else retry_base_s
        self.retry_cap_s = s.outbox_retry_cap_s if retry_cap_s is None else retry_cap_s
        self.lanes = max(1, s.max_concurrent if lanes is None else lanes)
        self._unordered: set[str] = set()
        self._uploads: dict[int, tuple[OutboxItem, asyncio.Task[None]]] = {}  # item id -> it, its upload
        self._settling: set[int] = set()  # uploads that landed and are being recorded: their lane is free
        self._crashed: list[tuple[int, BaseException]] = []  # uploads whose result could not be recorded
        self._flowing = False  # an item landed since the start or the last failure: more lanes may open
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def unordered(self, kind: str) -> None:
        """Items of ``kind`` need no order among themselves: several may upload at once."""
        self._unordered.add(kind)

    @property
    def uploading(self) -> list[OutboxItem]:
        """The items uploading right now, oldest first (not those landed and being recorded)."""
        return [item for item_id, (item, _) in sorted(self._uploads.items()) if item_id not in self._settling]

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the worker loop in the running event loop; it picks up what earlier runs left."""
        if self.running:
            return
        self._stopping = False
        self.outbox.add_listener(self.wake)
        self._task = asyncio.create_task(self._run(), name="helix-outbox-worker")

    def wake(self) -> None:
        """Look at the queue now (called by the Outbox after an enqueue or a retry)."""
        self._wake.set()

    async def drop(self, item_id: int) -> list[OutboxItem]:
        """Give up on an item, with the parts of its group that have not landed (``Outbox.drop_group``),
        and report ``archive_dropped`` for each, in id order: whoever waits on one must neither wait
        for ever nor take it for landed. Raises OutboxError for no such item, or one uploading."""
        dropped = await self.outbox.drop_group(item_id)
        self._changed.set()
        self.wake()  # a dropped head that was backing off holds the queue up no longer
        for item in dropped:
            await self._report("archive_dropped", item)
        return dropped

    async def drain(self, timeout_s: float) -> bool:
        """Wait until nothing is pending or uploading (failed items aside); False if ``timeout_s`` passed first."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            self._changed.clear()
            counts = await self.outbox.counts()
            if counts.pending == 0 and counts.uploading == 0:
                return True
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):
                    await self._changed.wait()

    async def stop(self, grace_s: float = 20.0) -> None:
        """Take no new item; let the running uploads finish for up to ``grace_s``, else cancel them.

        A cancelled upload stops its rclone job and goes back to pending, due at once on the next
        start. Call this before closing the SyncService.
        """
        self._stopping = True
        self.outbox.remove_listener(self.wake)
        self._wake.set()
        running = {task: item for item, task in self._uploads.values() if not task.done()}
        if running:
            _, late = await asyncio.wait(running, timeout=grace_s)
            if late:
                log.warning("outbox_upload_cut_short", id=min(running[t].id for t in late), uploads=len(late),
                            grace_s=grace_s)
                # The uploads' own cleanup (stop the rclone job, delete its partial) gets a short while,
                # not the 30 s a busy remote may take: the stop must end within the deploy's drain time.
                # A partial left behind is swept by the item's next attempt; the item is requeued anyway.
                for _ in range(2):
                    for task in late:
                        task.cancel()
                    _, late = await asyncio.wait(late, timeout=CLEANUP_S)
                    if not late:
                        break
        task, self._task = self._task, None
        if task is not None:
            # The loop notices _stopping within one database call; cancel only if it does not.
            done, _ = await asyncio.wait({task}, timeout=5.0)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._step()
            except (OutboxError, OSError) as exc:  # the database itself failed: say so, wait, try again
                log.error("outbox_unavailable", error=str(exc))
                await self._sleep(self.retry_cap_s)
            except Exception:  # a bug must not silently end the only thing that drains the queue
                log.exception("outbox_worker_error")
                await self._sleep(self.retry_cap_s)
            except asyncio.CancelledError:
                if self._stopping or cancelled_by_stop():  # only stop() cancels the worker
                    raise
                log.error("outbox_worker_interrupted", fix="nothing to do: the worker goes on")
                await self._sleep(self.retry_cap_s)

    async def _step(self) -> None:
        if self._crashed:
            item_id, exc = self._crashed.pop(0)
            with contextlib.suppress(OutboxError):
                await self.outbox.requeue(item_id)
            raise OutboxError(f"The outbox could not record the result of #{item_id}: it stays queued.",
                              detail=repr(exc))
        free = self.lanes - self._lanes_busy() - 1 if self._flowing else 0  # lanes beside the head's
        head, claimed = await self.outbox.claim_next(self._startable(), more=max(0, free),
                                                     more_kinds=frozenset(self._unordered))
        if not claimed:
            if head is None:  # nothing queued: an enqueue wakes the worker
                return await self._sleep(None)
            delay = head.next_attempt_at - time.time()
            if delay > 0:  # it backs off until it is due: nothing behind it overtakes it
                return await self._sleep(min(delay, self.retry_cap_s))
            if self._uploads:  # it waits for the uploads in flight: one ending wakes the worker
                return await self._sleep(self.retry_cap_s)
            # Nothing in flight: it fell due while the database was being asked. Ask again now,
            # rather than wait for a wake-up that nothing is going to send.
            return None
        for item in claimed:
            if self._stopping:
                await self.outbox.requeue(item.id)
                continue
            # Not awaited here: stop() decides when to cancel it, and the next item may start beside it.
            task = asyncio.create_task(self._process(item), name=f"helix-outbox-item-{item.id}")
            self._uploads[item.id] = (item, task)
            task.add_done_callback(partial(self._ended, item.id))

    def _startable(self) -> frozenset[str] | None:
        """The kinds that may start now (None: any): beside uploads in flight only unordered ones,
        behind unordered ones, on a remote that answers."""
        if not self._uploads:
            return None
        if self._lanes_busy() >= self.lanes or not self._flowing:
            return frozenset()
        if any(running.kind not in self._unordered for running, _ in self._uploads.values()):
            return frozenset()
        return frozenset(self._unordered)

    def _lanes_busy(self) -> int:
        return len(self._uploads) - len(self._settling)

    def _ended(self, item_id: int, task: asyncio.Task[None]) -> None:
        self._uploads.pop(item_id, None)
        self._settling.discard(item_id)
        if not task.cancelled() and task.exception() is not None:
            self._crashed.append((item_id, task.exception()))  # type: ignore[arg-type]
        self._changed.set()
        self._wake.set()

    async def _sleep(self, seconds: float | None) -> None:
        # asyncio.timeout, not wait_for, throughout: on 3.11 wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _process(self, item: OutboxItem) -> None:
        try:
            result = await self._land(item)
        except asyncio.CancelledError:
            await asyncio.shield(self.outbox.requeue(item.id))
            log.info("outbox_upload_interrupted", id=item.id)
            raise
        except SyncError as err:
            await self._failed(item, err)
            return
        except Exception as exc:
            log.exception("outbox_item_crashed", id=item.id)
            await self._failed(item, OutboxError(
                f"Helix hit an unexpected error while archiving #{item.id} ({type(exc).__name__}): "
                f"see the logs, then retry it with !outbox retry {item.id}."))
            return
        self._flowing = True
        # Landed: its lane takes the next upload while the landing is recorded and reported (an
        # item of another kind still waits for this one to end).
        self._settling.add(item.id)
        self._wake.set()
        done = await self.outbox.mark_done(item.id, result.remote_path) or item
        if not self.keep_local:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(remove_local, done)
        log.info("outbox_landed", id=item.id, kind=item.kind, remote_path=result.remote_path, size=result.size,
                 attempts=item.attempts, verified=result.verified, duration_s=round(result.duration_s, 3))
        await self._report("archive_done", done, result)

    async def _land(self, item: OutboxItem) -> ArchiveResult:
        svc = self.service
        if item.attempts > 1:  # an earlier attempt may have left a partial upload behind, or landed
            await clear_partials(self.service, item)
            already = await already_landed(self.service, item)
            if already is not None:
                return already
        size = await asyncio.to_thread(_size_or_none, item.local_path)
        if size is None:
            raise OutboxError(f"The local copy of #{item.id} ({item.local_path}) is gone and it is not on the "
                              f"remote: it cannot be archived; drop it with !outbox drop {item.id}.")
        if size != item.size:
            raise OutboxError(f"The local copy of #{item.id} changed since it was queued ({size} bytes, not "
                              f"{item.size}): the disk may be failing; check it, then retry or drop the item.")

        async def progress(p: Progress) -> None:
            await self._report("archive_progress", item, p, limit_s=5.0)

        # The hash recorded at enqueue spares a second full read of the file (the copy lives in
        # Helix's own outbox folder); rclone still checks the transfer, and the size is checked above.
        watched = self._wants("archive_progress")
        return await svc.archive(item.local_path, item.rel_path, progress=progress if watched else None,
                                 sha256=item.sha256, consume=not self.keep_local)

    async def _failed(self, item: OutboxItem, err: SyncError) -> None:
        self._flowing = False
        if err.retryable:
            delay = backoff_delay(item.attempts - 1, self.retry_base_s, self.retry_cap_s)
            updated = await self.outbox.mark_retry(item.id, err.hint, time.time() + delay) or item
            log.warning("outbox_retry_later", id=item.id, kind=err.kind, attempts=item.attempts,
                        delay_s=round(delay, 2), error=err.hint)
            await self._report("archive_retry", updated, err, delay)
            return
        failed = await self.outbox.mark_failed(item.id, err.hint, also_pending=err.remote_wide)
        log.error("outbox_failed", id=item.id, kind=err.kind, error=err.hint,
                  also_failed=[f.id for f in failed if f.id != item.id])
        for it in failed:
            await self._report("archive_failed", it, err)


__all__ = ["OutboxWorker"]


def _size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
