"""SyncService: what the bot (and the CLI, the outbox, the benchmark) asks of the archive.

It owns the rclone daemon and puts policy on top of the remote's single-attempt operations
(``Remote``): paths are validated, the concurrency limit holds, retryable failures are retried
with backoff, uploads are staged under a temporary name and verified before they count.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import structlog

from runtime.backoff import backoff_delay
from sync._batch import archive_batch
from sync._bucket import check_bucket
from sync._crypt import check_crypt_readable, crypt_layout
from sync._hashing import hash_file
from sync._local import local_root_problem, readable_file
from sync._paths import ArchiveRoot, clean_relative
from sync._probe import ProbeReport, ProbeStep, run_probe
from sync._rclone.client import ProgressCallback, RcClient
from sync._rclone.daemon import RcloneDaemon
from sync._remote import Remote, RemoteEntry
from sync._results import ArchiveResult, RemoteInfo
from sync.errors import ConfigError, NotFoundError, SyncError, TemporaryError, UnsupportedError
from sync.settings import SyncSettings

log = structlog.get_logger("helix.sync")
T = TypeVar("T")
# SyncService stages uploads as "<rel>.helix-partial-<hex>"; the outbox sweeps leftovers of that shape.
PARTIAL_MARK = ".helix-partial-"
# How long close() lets background clean-up (a partial's deletion) finish before rclone stops.
CLEANUP_WAIT_S = 10.0


class SyncService:
    """The archive, as one object: start it once, share it, close it once."""

    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings
        root = ArchiveRoot.parse(settings.archive, settings.archive_dir)
        self._daemon = RcloneDaemon(settings)
        config_file = settings.extra_env.get("RCLONE_CONFIG") or os.environ.get("RCLONE_CONFIG")
        self._rc = RcClient(self._daemon, root.display, config_file.strip() or None if config_file else None)
        self.remote = Remote(self._rc, root, settings.extra_env)
        self._limit = asyncio.Semaphore(settings.max_concurrent)
        self.last_archive: ArchiveResult | None = None
        self._background: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        folder = self.remote.root.folder
        if folder is not None:
            try:
                await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(local_root_problem(folder, exc, bool(self.settings.archive))) from None
        try:
            await self._daemon.start()
            await check_bucket(self.remote)
        except BaseException:
            # Cancelled or failed half-way: the child may already exist, and nobody else will stop it.
            await asyncio.shield(self._daemon.close())
            raise

    async def close(self, *, cleanup_s: float = CLEANUP_WAIT_S) -> None:
        """``cleanup_s``: how long background clean-up may still take (a caller that sweeps partials
        itself at its next start, as the outbox does, need not wait long)."""
        if self._background:
            # Clean-up a cancelled upload started (deleting its partial) needs the daemon: stopping it
            # first would leave the partial on the remote for good. Bounded, so a dead remote does not
            # hold a stop up.
            await asyncio.wait(set(self._background), timeout=cleanup_s)
        await self._daemon.close()

    async def __aenter__(self) -> SyncService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what callers may read ---------------------------------------------------------------------

    @property
    def display(self) -> str:
        """Where archives go, as it may be shown (never an inline password)."""
        return self.remote.display

    @property
    def last_ok_at(self) -> float | None:
        return self.remote.last_ok_at

    @property
    def last_error(self) -> SyncError | None:
        return self.remote.last_error

    @property
    def rclone_version(self) -> str:
        return ".".join(map(str, self._daemon.version)) if self._daemon.version else "unknown"

    @property
    def rclone_pid(self) -> int | None:
        return self._daemon.pid

    def remote_path(self, rel: str) -> str:
        return self.remote.path_of(rel)

    # -- plumbing -------------------------------------------------------------------------------

    def _in_background(self, coro: Awaitable[object], what: str) -> None:
        """Run clean-up nobody waits for; keep a reference, and log (not lose) its failure."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task[object]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.info("background_cleanup_failed", what=what, error=str(t.exception()))

        task.add_done_callback(done)

    async def _retrying(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        s = self.settings
        attempt = 0
        while True:
            try:
                return await op()
            except SyncError as exc:
                if not exc.retryable or attempt >= s.retries:
                    log.warning("sync_failed", op=what, kind=exc.kind, attempts=attempt + 1, detail=exc.detail)
                    raise
                delay = backoff_delay(attempt, s.retry_base_s, s.retry_cap_s)
                attempt += 1
                log.info("sync_retry", op=what, kind=exc.kind, attempt=attempt, delay_s=round(delay, 2))
                await asyncio.sleep(delay)

    # -- archive ----------------------------------------------------------------------------------

    async def archive(self, local_file: str | os.PathLike[str], rel_path: str,
                      progress: ProgressCallback | None = None, *, sha256: str | None = None,
                      consume: bool = False) -> ArchiveResult:
        """Upload one file to ``rel_path`` under the archive root and verify it landed whole.

        ``sha256``: the file's hash when the caller already knows it (the outbox computed it at
        enqueue); Helix then does not read the whole file a second time unless the remote's cheap
        hash is another type: that second read is most of what archiving costs over a plain copy.

        ``consume``: the caller hands the file over (the outbox's own copy). When nothing after the
        transfer needs it (no hash left to compute, no staging), rclone moves it instead of copying:
        on a local archive folder that is a rename, with no byte read or written. A move lands whole
        or not at all, so the file is never lost between two steps.
        """
        rel = clean_relative(rel_path)
        # One thread hop for the checks: a backup archives thousands of small files.
        src, size = await asyncio.to_thread(readable_file, Path(local_file))
        handed_over: list[bool] = []  # rclone moved the file: a retry only checks what landed

        async def once() -> ArchiveResult:
            async with self._limit:
                return await self._archive_once(src, size, rel, progress, sha256, consume, handed_over)

        result = await self._retrying("archive", once)
        self.last_archive = result
        # Debug: the outbox, which archives for the bot, logs each landing once (``outbox_landed``)
        # and the command line prints its own; at info a backup of thousands of files wrote each twice.
        log.debug("archived", remote_path=result.remote_path, size=result.size, verified=result.verified,
                  duration_s=round(result.duration_s, 3))
        return result

    async def _archive_once(self, src: Path, size: int, rel: str, progress: ProgressCallback | None,
                            known_sha256: str | None, consume: bool, handed_over: list[bool]) -> ArchiveResult:
        started = time.perf_counter()
        remote = self.remote
        features = await remote.features()
        hash_type = await remote.cheap_hash_type()
        wanted = {"sha256", hash_type} - {None} - ({"sha256"} if known_sha256 else set())
        hashing = asyncio.create_task(hash_file(src, tuple(sorted(wanted)))) if wanted else None
        # Upload under a temporary name and move it into place, unless the backend already does
        # that itself (PartialUploads), so an interrupted upload never sits under the final name.
        staged = not features.partial_uploads and features.move
        target = f"{rel}{PARTIAL_MARK}{secrets.token_hex(4)}" if staged else rel
        where = self.remote_path(rel)
        try:
            move = consume and not wanted and not staged
            if not handed_over:
                await remote.copy_in(src, target, move=move, progress=progress,
                                     timeout_s=self.settings.op_timeout_s)
                if move:
                    handed_over.append(True)
            local = await hashing if hashing is not None else {}
            if known_sha256:
                local["sha256"] = known_sha256
            entry = await remote.stat(target, hash_type)
            if entry is None:
                raise TemporaryError(f"The upload to '{where}' vanished before it could be checked: the remote may "
                                     "be eventually consistent; archive the file again.")
            if entry.size != size:
                raise TemporaryError(f"The copy at '{where}' has {entry.size} bytes, not {size}: the upload was "
                                     "cut short; archive the file again.")
            verified = "size"
            if hash_type:
                remote_hash = entry.hashes.get(hash_type, "")
                if remote_hash and remote_hash != local[hash_type]:
                    raise TemporaryError(f"The copy at '{where}' does not match the local file ({hash_type}): "
                                         "something between here and the remote changed it; archive it again.")
                verified = hash_type if remote_hash else "size"
            if staged:
                await remote.move(target, rel)
        except SyncError:
            if hashing is not None:
                hashing.cancel()
            if staged:
                with contextlib.suppress(SyncError):
                    await remote.delete(target, timeout_s=30)
            raise
        except asyncio.CancelledError:
            if hashing is not None:
                hashing.cancel()
            if staged:
                # Cancelled (a stop, a timeout): do not hold the caller up. The partial is deleted in the
                # background, and the outbox deletes leftovers of earlier attempts before it retries.
                self._in_background(remote.delete(target, timeout_s=30), "delete_partial")
            raise
        return ArchiveResult(rel_path=rel, remote_path=where, size=size, sha256=local["sha256"],
                             verified=verified, duration_s=time.perf_counter() - started)

    async def archive_many(self, pairs: Sequence[tuple[str | os.PathLike[str], str]],
                           progress: ProgressCallback | None = None) -> list[ArchiveResult]:
        """Upload many files as ONE rclone job: a staging tree of hard links, copied in one go (``_batch.py``)."""
        return await archive_batch(self, pairs, progress)

    # -- reading ----------------------------------------------------------------------------------

    async def list(self, prefix: str = "", recurse: bool = True, *, missing_ok: bool = True) -> list[RemoteEntry]:
        """Entries under ``prefix``; a folder that does not exist is empty, or with ``missing_ok=False``
        a NotFoundError (so a typo in a name is not mistaken for an empty folder)."""
        remote = clean_relative(prefix, "The folder to list") if prefix.strip("/ ") else ""

        async def once() -> list[RemoteEntry]:
            try:
                return await self.remote.list(remote, recurse=recurse)
            except NotFoundError:
                if missing_ok or not remote:
                    return []
                raise

        return await self._retrying("list", once)

    async def fetch(self, rel_path: str, dest: str | os.PathLike[str]) -> Path:
        """Copy one archived object back to a local file (the probe's read-back, and restores)."""
        rel = clean_relative(rel_path)
        dest = await asyncio.to_thread(Path(dest).resolve)
        await self.remote.copy_out(rel, dest, timeout_s=self.settings.op_timeout_s)
        return dest

    async def fetch_tree(self, prefix: str, dest: str | os.PathLike[str], include: Sequence[str]) -> Path:
        """The files under ``prefix`` matching ``include`` (rclone filter rules) into a folder, in ONE job."""
        dest = await asyncio.to_thread(Path(dest).resolve)
        await self._retrying("fetch_tree", lambda: self.remote.copy_tree_out(prefix, dest, include, timeout_s=3600.0))
        return dest

    def local_folder(self, prefix: str) -> Path | None:
        """The archive's own folder at ``prefix`` when the archive is a plain local folder: a reader
        that only reads (the catalogue's rebuild) reads it in place instead of copying it first.
        Files under it appear whole or not at all (rclone and Helix both write by renaming)."""
        return self.remote.local_folder(prefix)

    async def share_link(self, rel_path: str, expire_s: float = 86_400.0) -> str:
        """A download link for one archived object, for someone who may not have rclone at hand."""
        rel = clean_relative(rel_path)
        if self.remote.root.backend == "crypt" or await crypt_layout(self.remote, self.settings.extra_env):
            # rclone hands the link on to the remote under the crypt: it would download the encrypted bytes.
            raise UnsupportedError(f"The archive remote '{self.remote.display}' is encrypted, and a share link would "
                                   f"give the encrypted bytes: fetch the file with `rclone copy` from "
                                   f"'{self.remote.path_of(rel)}' instead.")
        return await self._retrying("share_link", lambda: self.remote.public_link(rel, expire_s))

    async def delete(self, rel_path: str) -> None:
        rel = clean_relative(rel_path)
        await self._retrying("delete", lambda: self.remote.delete(rel))

    async def remove_partials(self, rel_path: str) -> list[str]:
        """Delete the staged uploads of ``rel_path`` that an interrupted run left beside it (a kill -9
        gives no chance to delete them); returns the paths removed. Only names this service makes,
        ``<rel_path>.helix-partial-<hex>``, are touched."""
        rel = clean_relative(rel_path)
        folder, _, _ = rel.rpartition("/")
        prefix = f"{rel}{PARTIAL_MARK}"
        removed = []
        for entry in await self.list(folder, recurse=False):
            if not entry.is_dir and entry.path.startswith(prefix):
                await self.delete(entry.path)
                removed.append(entry.path)
        if removed:
            log.info("partials_removed", paths=removed)
        return removed

    async def ping(self, timeout_s: float = 10.0) -> None:
        """A cheap live call that fails when the remote is unreachable or refuses us."""
        await self.remote.ping(timeout_s)

    async def about(self) -> RemoteInfo:
        """Where archives go and how much room is left; never the remote's credentials.

        Raises the remote's error when it does not answer, so a caller never reports a dead
        remote as healthy from cached details.
        """
        await self.ping()
        usage = await self.remote.usage()
        return RemoteInfo(self.display, await self.remote.backend_type(), self.rclone_version,
                          usage.total_bytes, usage.used_bytes, usage.free_bytes)

    async def check_readable_archive(self) -> None:
        """Raise ArchiveUnreadable when the archive is a crypt remote whose passwords do not read what the
        remote under it holds: rclone then lists the archive as empty, and archiving on would start a
        second archive beside the first. Call it before anything is written (the probe does, and so does
        a rebuild). Costs a few listings and one small file read; no-op for other remotes."""
        await check_crypt_readable(self.remote, self.settings.extra_env)

    async def probe(self) -> ProbeReport:
        """A round trip on the archive root, each step timed; stops at the first failing step.

        The round trip alone passes with a wrong crypt password (it writes and reads with the same
        wrong key), so a step "readable" comes first, and is reported only when it fails."""
        started = time.perf_counter()
        try:
            await self.check_readable_archive()
        except SyncError as exc:
            report = ProbeReport(self.display)
            report.steps.append(ProbeStep("readable", time.perf_counter() - started, False, exc))
            return report
        return await run_probe(self.remote)
