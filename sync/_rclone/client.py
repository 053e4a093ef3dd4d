"""Calls to the rclone daemon's remote-control API: JSON over its private Unix socket.

Long operations run as rc jobs (``_async`` + ``_group``) so their progress can be read from
``core/stats`` while they run and a cancelled caller stops the job (``job/stop``) instead of
leaving a transfer running behind its back.
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
    def __init__(self, daemon: RcloneDaemon, remote_label: str) -> None:
        self.daemon = daemon
        self.remote_label = remote_label

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
                                   "the remote may be slow; Helix will retry.") from None
        if status != 200:
            text = body.get("error", str(body)) if isinstance(body, dict) else str(body)
            raise classify(f"{text} (HTTP {status})", self.remote_label)
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
        """Run ``method`` as an rc job, report progress, and stop the job if we are cancelled."""
        loop = asyncio.get_running_loop()
        group = f"helix/{next(_group_ids)}"
        started = loop.time()
        generation = self.daemon.restarts
        job = await self.call(method, {**params, "_async": True, "_group": group})
        jobid = job["jobid"]
        next_progress = started + progress_every_s
        try:
            while True:
                elapsed = loop.time() - started
                # Poll fast at first and slower later: the wait after the job ends stays ~2 % of its length.
                await asyncio.sleep(min(max(elapsed / 50, 0.002), 0.25))
                try:
                    status = await self.call("job/status", {"jobid": jobid}, timeout_s=30.0)
                except NotFoundError:
                    if self.daemon.restarts == generation:
                        raise
                    # The daemon was restarted under us and forgot its jobs: the caller retries.
                    raise DaemonError("rclone restarted during the transfer: Helix retries it.") from None
                if status.get("finished"):
                    if status.get("success"):
                        if progress is not None:
                            await self._report(group, started, progress)
                        return status.get("output") or {}
                    raise classify(status.get("error") or "unknown rclone error", self.remote_label)
                now = loop.time()
                if progress is not None and now >= next_progress:
                    next_progress = now + progress_every_s
                    await self._report(group, started, progress)
                if now - started > timeout_s:
                    raise OperationTimeout(
                        f"Archiving to '{self.remote_label}' took longer than {timeout_s:g} s and was stopped: "
                        "raise HELIX_OP_TIMEOUT_S or check the remote's speed."
                    )
        except (asyncio.CancelledError, SyncError):
            await self._stop(jobid)
            raise
        finally:
            with contextlib.suppress(Exception):
                await self.call("core/stats-delete", {"group": group}, timeout_s=5.0)

    async def _stop(self, jobid: int) -> None:
        """Stop the job and wait until rclone reports it finished, so nothing keeps writing."""
        stopping = asyncio.ensure_future(self._stop_and_wait(jobid))
        # Shielded, it outlives a second cancel of this caller (a stop's grace running out); its error
        # (rclone already gone) is then nobody's to read, and asyncio would log it with a traceback.
        stopping.add_done_callback(lambda t: t.cancelled() or t.exception())
        with contextlib.suppress(Exception):
            await asyncio.shield(stopping)

    async def _stop_and_wait(self, jobid: int) -> None:
        try:
            await self.call("job/stop", {"jobid": jobid}, timeout_s=10.0)
        except SyncError:
            return
        for _ in range(200):
            status = await self.call("job/status", {"jobid": jobid}, timeout_s=10.0)
            if status.get("finished"):
                log.info("rc_job_stopped", jobid=jobid)
                return
            await asyncio.sleep(0.05)

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
