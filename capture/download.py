"""Downloading attachments: streamed to the spool folder and hashed as written, never whole in memory.

Discord's attachment links are signed and expire (403), and a deleted file answers 404: both
raise ``LinkDead`` so the engine can refresh the link by fetching the message again. A file
larger than the limit is refused before its first byte is kept (``TooBig``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aiohttp

CHUNK = 1 << 20
WRITERS = 8  # threads writing and hashing downloads: more than a backup downloads at once


class LinkDead(Exception):
    """The link answered 403, 404 or 410: expired or gone; fetch the message again for a fresh one."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class TooBig(Exception):
    """The file is larger than HELIX_MAX_ATTACHMENT_MB."""


class DownloadFailed(Exception):
    """Anything else (connection reset, 5xx): worth a later retry, not a refresh."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    size: int


def _write(dest: Path, holder: list[BinaryIO], digest: hashlib._Hash, chunks: list[bytes], last: bool) -> None:
    """Write and hash ``chunks``; the first call opens the file, the last closes it (one thread hop
    each, not three more per file). No sync here: the outbox syncs the file when it takes it, after
    the download has given its place to the next one."""
    if not holder:
        holder.append(open(dest, "wb"))  # noqa: SIM115 -- closed by the last call, or by fetch() on failure
    fh = holder[0]
    for chunk in chunks:
        fh.write(chunk)
        digest.update(chunk)
    if last:
        holder.clear()
        fh.close()


class Downloader:
    """One HTTP session for all downloads; ``await open()`` before use, ``close()`` once."""

    def __init__(self, spool: Path, *, timeout_s: float = 600.0) -> None:
        self.spool = spool
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        # The downloads' own threads for writing and hashing: in the shared default pool a write would
        # queue behind whatever else waits for the disk there (the outbox syncing the files it takes).
        self._writers: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        await asyncio.to_thread(self.spool.mkdir, parents=True, exist_ok=True)
        # force_close: no idle keep-alive timer (SimCord waits for those in real time, and a CDN
        # link is fetched once anyway).
        self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="helix-download")
        connector = aiohttp.TCPConnector(force_close=True, limit=16)
        self._session = aiohttp.ClientSession(connector=connector,
                                              timeout=aiohttp.ClientTimeout(total=None, sock_read=120))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._writers is not None:
            self._writers.shutdown(wait=False)
            self._writers = None

    async def fetch(self, url: str, max_bytes: int) -> Downloaded:
        """Stream ``url`` into a new spool file; its SHA-256 is computed on the way in."""
        if self._session is None:
            raise DownloadFailed("the downloader is closed")
        dest = self.spool / f".download-{secrets.token_hex(8)}"
        holder: list[BinaryIO] = []
        try:
            return await self._stream(url, max_bytes, dest, holder)
        except BaseException:
            for fh in holder:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(fh.close)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(dest.unlink, True)
            raise

    async def _stream(self, url: str, max_bytes: int, dest: Path, holder: list[BinaryIO]) -> Downloaded:
        assert self._session is not None
        try:
            async with self._session.get(url, allow_redirects=True) as resp:
                if resp.status in (403, 404, 410):
                    raise LinkDead(resp.status)
                if resp.status != 200:
                    raise DownloadFailed(f"HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise TooBig()
                digest = hashlib.sha256()
                size = 0
                # The socket hands over a few dozen KB at a time: they are gathered to a MiB and
                # written and hashed in a thread while the next MiB arrives (one write in flight,
                # so at most two MiB of a file are ever in memory).
                batch: list[bytes] = []
                batched = 0
                writing: asyncio.Future[None] | None = None
                try:
                    async for chunk in resp.content.iter_any():
                        size += len(chunk)
                        if size > max_bytes:
                            raise TooBig()
                        batch.append(chunk)
                        batched += len(chunk)
                        if batched >= CHUNK:
                            if writing is not None:
                                await writing
                            writing = asyncio.ensure_future(self._written(dest, holder, digest, batch, False))
                            batch, batched = [], 0
                    if writing is not None:
                        await writing
                    await self._written(dest, holder, digest, batch, True)
                finally:
                    if writing is not None:  # let it end before the file is closed
                        with contextlib.suppress(BaseException):
                            await writing
                return Downloaded(dest, digest.hexdigest(), size)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownloadFailed(f"{type(exc).__name__}: {exc}") from None

    async def _written(self, dest: Path, holder: list[BinaryIO], digest: hashlib._Hash, chunks: list[bytes],
                       last: bool) -> None:
        await asyncio.get_running_loop().run_in_executor(self._writers, _write, dest, holder, digest, chunks, last)

    def sweep(self) -> None:
        """Delete what a stop left in the spool that nothing refers to: half-written downloads, and
        segments and manifests rendered but not yet handed to the outbox (written again from the
        catalogue, which still counts them as due)."""
        for pattern in (".download-*", "segment-*", "channel-*"):
            for path in self.spool.glob(pattern):
                with contextlib.suppress(OSError):
                    path.unlink()
