"""Calls to the rclone daemon's remote-control API: JSON over its private Unix socket.

Long operations run in a stats group of their own (``_group``) so their progress can be read
from ``core/stats`` while they run and a cancelled caller stops them (``job/stopgroup``) instead
of leaving a transfer running behind its back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import structlog

from sync._rclone.classify import classify
from sync._rclone.daemon import RcloneDaemon
from sync.errors import DaemonError, NotFoundError, OperationTimeout, SyncError

log = structlog.get_logger("helix.sync.rc")


@dataclass(frozen=True)
class Progress:
    """A snapshot of one job's transfer, as rclone's core/stats reports it for the job's group."""

    bytes: int
    total_bytes: int
    speed: float
    eta_s: float | None
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.bytes / self.total_bytes) if self.total_bytes else 0.0


ProgressCallback = Callable[[Progress], Awaitable[None] | None]
_group_ids = itertools.count(1)


class RcClient:
    def __init__(self, daemon: RcloneDaemon, remote_label: str, config_file: str | None = None) -> None:
        self.daemon = daemon
        self.remote_label = remote_label
        self.config_file = config_file  # RCLONE_CONFIG, when set: a missing file explains a missing remote

    async def call(self, method: str, params: dict | None = None, *, timeout_s: float = 60.0) -> dict:
        """One synchronous rc call; rclone's failures come back as typed errors."""
        await self.daemon.wait_ready()
        try:
            async with self.daemon.session().post(
                f"http://rclone/{method}", json=params or {}, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                body = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientConnectionError, ConnectionError, FileNotFoundError) as exc:
            raise DaemonError("The rclone daemon stopped answering (it is being restarted): try again.",
                              detail=str(exc)) from None
        except TimeoutError:
            raise OperationTimeout(f"rclone did not answer {method} within {timeout_s:g} s: "
                                   "the remote may be slow or down; check that it is up.") from None
        if status != 200:
            text = body.get("error", str(body)) if isinstance(body, dict) else str(body)
            # Not "(HTTP 500)" in the text: the daemon answers 500 for any failed operation, which
            # says nothing of the remote and would read as a server error.
            raise classify(text, self.remote_label, config_file=self.config_file)
        return body if isinstance(body, dict) else {}

    async def run_job(
        self,
        method: str,
        params: dict,
        *,
        progress: ProgressCallback | None = None,
        progress_every_s: float = 0.5,
        timeout_s: float = 3600.0,
    ) -> dict:
        """Run ``method`` in its own stats group, report progress, and stop it if we are cancelled.

        One call that rclone answers when the operation is done, not a job polled for its end:
        polling costs an rc call (and a job record in rclone) every few milliseconds, takes CPU
        from the transfer, and still learns of the end late. The group names the operation for
        ``core/stats`` (progress) and for ``job/stopgroup`` (a cancel or a timeout stops it;
        closing the connection does too, as rclone cancels a call whose caller went away). The
        group's stats stay in rclone: it keeps the newest ``--max-stats-groups`` (1,000) and drops
        the oldest, so deleting each costs a call per operation and saves nothing that grows.
        """
        loop = asyncio.get_running_loop()
        group = f"helix/{next(_group_ids)}"
        started = loop.time()
        reporting = (asyncio.ensure_future(self._report_every(group, started, progress, progress_every_s))
                     if progress is not None else None)
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    # rclone's answer comes when the operation ends: the call's own limit is the job's.
                    output = await self.call(method, {**params, "_group": group}, timeout_s=timeout_s + 30.0)
            except TimeoutError:
                await self._stop(group)  # first: a cancel while the stats are read must not leave it running
                moved = await self._moved(group)  # a stopped group's stats stay readable
                if moved == 0:  # not slow: it never got through (rclone retries a refused connection for long)
                    raise OperationTimeout(
                        f"The archive remote '{self.remote_label}' did not answer within {timeout_s:g} s: check that "
                        "its server is up and its address in the remote's settings is right (rclone retries a "
                        "failed connection HELIX_LOW_LEVEL_RETRIES times before it says why)."
                    ) from None
                raise OperationTimeout(
                    f"Archiving to '{self.remote_label}' took longer than {timeout_s:g} s and was stopped: "
                    "raise HELIX_OP_TIMEOUT_S or check the remote's speed."
                ) from None
            except asyncio.CancelledError:
                await self._stop(group)
                raise
            # A SyncError needs no stop: either rclone answered (the operation is over) or the
            # connection broke, and rclone stops an operation whose caller went away by itself.
            if reporting is not None:
                reporting.cancel()
                if loop.time() - started >= progress_every_s:  # shorter: there was no progress to tell
                    await self._report(group, started, progress)
            return output
        finally:
            if reporting is not None:
                reporting.cancel()

    async def _report_every(self, group: str, started: float, progress: ProgressCallback, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self._report(group, started, progress)
            except Exception:  # the listener's bug must not stop reports, nor the upload
                log.exception("progress_report_failed", group=group)

    async def _stop(self, group: str) -> None:
        """Stop the group's operation and wait until rclone reports it finished, so nothing keeps writing."""
        stopping = asyncio.ensure_future(self._stop_and_wait(group))
        # Shielded, it outlives a second cancel of this caller (a stop's grace running out); its error
        # (rclone already gone) is then nobody's to read, and asyncio would log it with a traceback.
        stopping.add_done_callback(lambda t: t.cancelled() or t.exception())
        with contextlib.suppress(Exception):
            await asyncio.shield(stopping)

    async def _stop_and_wait(self, group: str) -> None:
        try:
            await self.call("job/stopgroup", {"group": group}, timeout_s=10.0)
        except SyncError:
            return
        for _ in range(200):
            if not await self._running_in(group):
                log.info("rc_job_stopped", group=group)
                return
            await asyncio.sleep(0.05)

    async def _running_in(self, group: str) -> bool:
        listed = await self.call("job/list", timeout_s=10.0)
        for jobid in listed.get("runningIds") or []:
            with contextlib.suppress(NotFoundError):
                status = await self.call("job/status", {"jobid": jobid}, timeout_s=10.0)
                if status.get("group") == group and not status.get("finished"):
                    return True
        return False

    async def _moved(self, group: str) -> int | None:
        """Bytes the operation moved so far; None when rclone cannot say."""
        try:
            stats = await self.call("core/stats", {"group": group}, timeout_s=5.0)
        except (SyncError, TimeoutError):
            return None
        return int(stats.get("bytes") or 0)

    async def _report(self, group: str, started: float, progress: ProgressCallback) -> None:
        try:
            stats = await self.call("core/stats", {"group": group}, timeout_s=10.0)
        except SyncError:
            return
        eta = stats.get("eta")
        snap = Progress(
            bytes=int(stats.get("bytes") or 0),
            total_bytes=int(stats.get("totalBytes") or 0),
            speed=float(stats.get("speed") or 0.0),
            eta_s=float(eta) if isinstance(eta, (int, float)) else None,
            elapsed_s=asyncio.get_running_loop().time() - started,
        )
        result = progress(snap)
        if result is not None:
            await result


__all__ = ["Progress", "ProgressCallback", "RcClient"]
