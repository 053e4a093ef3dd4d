"""SyncService: what the bot (and the CLI, the outbox, the benchmark) asks of the archive.

It owns the rclone daemon and speaks to it only through the rc API. Every public operation
validates its paths, respects the concurrency limit, retries retryable failures with
exponential backoff and jitter, and raises typed errors carrying a sentence for people.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import structlog

from sync._hashing import HASHLIB_TYPES, hash_file, hash_file_sync
from sync._paths import ArchiveRoot, clean_relative
from sync._probe import run_probe
from sync._rclone.client import ProgressCallback, RcClient
from sync._rclone.daemon import RcloneDaemon
from sync.errors import NotFoundError, PathError, SyncError, TemporaryError
from sync.settings import SyncSettings

if TYPE_CHECKING:
    from sync._probe import ProbeReport

log = structlog.get_logger("helix.sync")
T = TypeVar("T")
# rclone skips a copy or move whose destination has the same size and modification time, and many
# backends keep times to the second: a same-sized file written over within a second (a heartbeat)
# would silently stay the old one. An archive request always means "store this one".
ALWAYS_TRANSFER = {"IgnoreTimes": True}


@dataclass(frozen=True)
class ArchiveResult:
    rel_path: str
    remote_path: str
    size: int
    sha256: str
    verified: str  # the hash type compared with the remote's, or "size" where the backend has none
    duration_s: float


@dataclass(frozen=True)
class RemoteEntry:
    path: str
    size: int
    is_dir: bool
    mod_time: str


@dataclass(frozen=True)
class RemoteInfo:
    remote: str
    backend: str
    rclone_version: str
    total_bytes: int | None
    used_bytes: int | None
    free_bytes: int | None


class SyncService:
    """The archive, as one object: start it once, share it, close it once."""

    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings
        self.root = ArchiveRoot.parse(settings.archive, settings.archive_dir)
        self.daemon = RcloneDaemon(settings)
        self.rc = RcClient(self.daemon, self.root.display)
        self._limit = asyncio.Semaphore(settings.max_concurrent)
        self._fsinfo: dict | None = None
        self.last_archive: ArchiveResult | None = None
        self.last_ok_at: float | None = None
        self.last_error: SyncError | None = None
        self._background: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        if self.root.is_local:
            await asyncio.to_thread(Path(self.root.fs).mkdir, parents=True, exist_ok=True)
        try:
            await self.daemon.start()
        except BaseException:
            # Cancelled or failed half-way: the child may already exist, and nobody else will stop it.
            await asyncio.shield(self.daemon.close())
            raise

    async def close(self) -> None:
        await self.daemon.close()

    async def __aenter__(self) -> SyncService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def rclone_version(self) -> str:
        return ".".join(map(str, self.daemon.version)) if self.daemon.version else "unknown"

    def remote_path(self, rel: str) -> str:
        sep = "" if self.root.display.endswith((":", "/")) else "/"
        return f"{self.root.display}{sep}{rel}"

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
                result = await op()
                self.last_ok_at = time.time()
                return result
            except SyncError as exc:
                self.last_error = exc
                if not exc.retryable or attempt >= s.retries:
                    log.warning("sync_failed", op=what, kind=exc.kind, attempts=attempt + 1, detail=exc.detail)
                    raise
                delay = min(s.retry_cap_s, s.retry_base_s * (2**attempt)) * random.uniform(0.5, 1.0)
                attempt += 1
                log.info("sync_retry", op=what, kind=exc.kind, attempt=attempt, delay_s=round(delay, 2))
                await asyncio.sleep(delay)

    async def fsinfo(self) -> dict:
        if self._fsinfo is None:
            self._fsinfo = await self.rc.call("operations/fsinfo", {"fs": self.root.fs})
        return self._fsinfo

    async def _verify_hash_type(self) -> str | None:
        """A hash the backend reports cheaply and hashlib can compute; None means size only."""
        info = await self.fsinfo()
        if info.get("Features", {}).get("SlowHash"):
            return None  # rclone already checked this during the transfer; re-reading would double the cost
        hashes = [h.lower() for h in info.get("Hashes") or []]
        return next((h for h in HASHLIB_TYPES if h in hashes), None)

    async def stat(self, rel: str, hash_type: str | None = None) -> dict | None:
        params: dict = {"fs": self.root.fs, "remote": clean_relative(rel)}
        if hash_type:
            params["opt"] = {"showHash": True, "hashTypes": [hash_type]}
        try:
            out = await self.rc.call("operations/stat", params)
        except NotFoundError:
            return None
        return out.get("item")

    # -- archive ----------------------------------------------------------------------------------

    async def archive(self, local_file: str | os.PathLike[str], rel_path: str,
                      progress: ProgressCallback | None = None, *, sha256: str | None = None) -> ArchiveResult:
        """Upload one file to ``rel_path`` under the archive root and verify it landed whole.

        ``sha256``: the file's hash when the caller already knows it (the outbox computed it at
        enqueue); Helix then does not read the whole file a second time unless the remote's cheap
        hash is another type. The benchmark measured that second read as most of the overhead
        over a plain ``rclone copyto``.
        """
        rel = clean_relative(rel_path)
        src = await asyncio.to_thread(Path(local_file).resolve)
        if not await asyncio.to_thread(src.is_file):
            raise PathError(f"The file to archive, {src}, does not exist: it may have been removed.")

        async def once() -> ArchiveResult:
            async with self._limit:
                return await self._archive_once(src, rel, progress, sha256)

        result = await self._retrying("archive", once)
        self.last_archive = result
        log.info("archived", remote_path=result.remote_path, size=result.size, verified=result.verified,
                 duration_s=round(result.duration_s, 3))
        return result

    async def _archive_once(self, src: Path, rel: str, progress: ProgressCallback | None,
                            known_sha256: str | None) -> ArchiveResult:
        started = time.perf_counter()
        info = await self.fsinfo()
        hash_type = await self._verify_hash_type()
        wanted = {"sha256", hash_type} - {None} - ({"sha256"} if known_sha256 else set())
        hashing = asyncio.create_task(hash_file(src, tuple(sorted(wanted)))) if wanted else None
        features = info.get("Features", {})
        # Upload under a temporary name and move it into place, unless the backend already does
        # that itself (PartialUploads), so an interrupted upload never sits under the final name.
        staged = not features.get("PartialUploads") and features.get("Move")
        target = f"{rel}.helix-partial-{secrets.token_hex(4)}" if staged else rel
        try:
            await self.rc.run_job("operations/copyfile", {
                "srcFs": str(src.parent), "srcRemote": src.name, "dstFs": self.root.fs, "dstRemote": target,
                "_config": ALWAYS_TRANSFER,
            }, progress=progress, timeout_s=self.settings.op_timeout_s)
            local = await hashing if hashing is not None else {}
            if known_sha256:
                local["sha256"] = known_sha256
            item = await self.stat(target, hash_type)
            if item is None:
                raise TemporaryError(f"The upload to '{self.remote_path(rel)}' vanished before it could be "
                                     "checked: Helix will retry.")
            size = (await asyncio.to_thread(src.stat)).st_size
            if int(item.get("Size", -1)) != size:
                raise TemporaryError(f"The copy at '{self.remote_path(rel)}' has {item.get('Size')} bytes, "
                                     f"not {size}: Helix will upload it again.")
            verified = "size"
            if hash_type:
                remote_hash = (item.get("Hashes") or {}).get(hash_type, "")
                if remote_hash and remote_hash.lower() != local[hash_type]:
                    raise TemporaryError(f"The copy at '{self.remote_path(rel)}' does not match the local "
                                         f"file ({hash_type}): Helix will upload it again.")
                verified = hash_type if remote_hash else "size"
            if staged:
                await self.rc.call("operations/movefile", {"srcFs": self.root.fs, "srcRemote": target,
                                                          "dstFs": self.root.fs, "dstRemote": rel,
                                                          "_config": ALWAYS_TRANSFER})
        except SyncError:
            if hashing is not None:
                hashing.cancel()
            if staged:
                with contextlib.suppress(SyncError):
                    await self.rc.call("operations/deletefile", {"fs": self.root.fs, "remote": target}, timeout_s=30)
            raise
        except asyncio.CancelledError:
            if hashing is not None:
                hashing.cancel()
            if staged:
                # Cancelled (a stop, a timeout): do not hold the caller up. The partial is deleted in the
                # background, and the outbox deletes leftovers of earlier attempts before it retries.
                self._in_background(self.rc.call("operations/deletefile", {"fs": self.root.fs, "remote": target},
                                                 timeout_s=30), "delete_partial")
            raise
        return ArchiveResult(rel_path=rel, remote_path=self.remote_path(rel), size=size,
                             sha256=local["sha256"], verified=verified,
                             duration_s=time.perf_counter() - started)

    async def archive_many(self, pairs: Sequence[tuple[str | os.PathLike[str], str]],
                           progress: ProgressCallback | None = None) -> list[ArchiveResult]:
        """Upload many files as ONE rclone job: a staging tree of hard links, copied in one go."""
        relative = [(Path(p), clean_relative(r)) for p, r in pairs]
        # One thread hop for the whole batch, not one per file: 500 hops cost more than the work.
        cleaned = await asyncio.to_thread(lambda: [(p.resolve(), r) for p, r in relative])
        if not cleaned:
            return []
        if len({r for _, r in cleaned}) != len(cleaned):
            raise PathError("Two files in one batch have the same archive path: give each its own name.")
        staging_root = self.settings.data_dir / "staging"

        def build_stage() -> Path:
            staging_root.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix="batch-", dir=staging_root))
            for src, rel in cleaned:
                if not src.is_file():
                    raise PathError(f"The file to archive, {src}, does not exist: it may have been removed.")
                dest = stage / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dest)
                except OSError:
                    shutil.copy2(src, dest)
            return stage

        async def once() -> list[ArchiveResult]:
            async with self._limit:
                started = time.perf_counter()
                stage = await asyncio.to_thread(build_stage)
                try:
                    hashing = asyncio.ensure_future(asyncio.to_thread(
                        lambda: [hash_file_sync(src) for src, _ in cleaned]))
                    try:
                        await self.rc.run_job("sync/copy", {
                            "srcFs": str(stage), "dstFs": self.root.fs, "createEmptySrcDirs": False,
                            "_config": {"NoTraverse": True},
                        }, progress=progress, timeout_s=self.settings.op_timeout_s)
                        digests = await hashing
                    except BaseException:
                        hashing.cancel()
                        raise
                    sizes = await self._sizes({rel.rsplit("/", 1)[0] if "/" in rel else "" for _, rel in cleaned})
                finally:
                    await asyncio.to_thread(shutil.rmtree, stage, True)
                elapsed = time.perf_counter() - started
                results = []
                stats = await asyncio.to_thread(lambda: [src.stat().st_size for src, _ in cleaned])
                for (_, rel), digest, size in zip(cleaned, digests, stats, strict=True):
                    if sizes.get(rel) != size:
                        raise TemporaryError(f"'{self.remote_path(rel)}' is missing or incomplete after the "
                                             "batch upload: Helix will retry.")
                    results.append(ArchiveResult(rel, self.remote_path(rel), size, digest["sha256"], "size",
                                                 elapsed))
                return results

        results = await self._retrying("archive_many", once)
        if results:
            self.last_archive = results[-1]
        log.info("archived_batch", files=len(results), remote=self.root.display)
        return results

    async def _sizes(self, folders: set[str]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for folder in sorted(folders):
            out = await self.rc.call("operations/list", {"fs": self.root.fs, "remote": folder,
                                                         "opt": {"filesOnly": True}})
            for item in out.get("list", []):
                sizes[item["Path"]] = int(item["Size"])
        return sizes

    # -- reading ----------------------------------------------------------------------------------

    async def list(self, prefix: str = "", recurse: bool = True) -> list[RemoteEntry]:
        remote = clean_relative(prefix, "The folder to list") if prefix.strip("/ ") else ""

        async def once() -> list[RemoteEntry]:
            try:
                out = await self.rc.call("operations/list", {"fs": self.root.fs, "remote": remote,
                                                             "opt": {"recurse": recurse}})
            except NotFoundError:
                return []
            return [RemoteEntry(i["Path"], int(i.get("Size", 0)), bool(i.get("IsDir")), i.get("ModTime", ""))
                    for i in out.get("list", [])]

        return await self._retrying("list", once)

    async def fetch(self, rel_path: str, dest: str | os.PathLike[str]) -> Path:
        """Copy one archived object back to a local file (the probe's read-back, and restores)."""
        rel = clean_relative(rel_path)
        dest = await asyncio.to_thread(Path(dest).resolve)
        await self.rc.run_job("operations/copyfile", {"srcFs": self.root.fs, "srcRemote": rel,
                                                      "dstFs": str(dest.parent), "dstRemote": dest.name},
                              timeout_s=self.settings.op_timeout_s)
        return dest

    async def delete(self, rel_path: str) -> None:
        rel = clean_relative(rel_path)
        await self._retrying("delete", lambda: self.rc.call("operations/deletefile",
                                                            {"fs": self.root.fs, "remote": rel}))

    async def backend_type(self) -> str:
        if self.root.backend:
            return self.root.backend
        name = self.root.remote_name or ""
        env_key = f"RCLONE_CONFIG_{name.upper().replace('-', '_').replace('.', '_')}_TYPE"
        env_type = self.settings.extra_env.get(env_key) or os.environ.get(env_key)
        if env_type:
            return env_type
        with contextlib.suppress(SyncError):
            section = await self.rc.call("config/get", {"name": name})
            if section.get("type"):
                return str(section["type"])  # only the type: the section also holds credentials
        return "unknown"

    async def ping(self, timeout_s: float = 10.0) -> None:
        """A cheap live call that fails when the remote is unreachable or refuses us.

        A missing root folder still counts as an answer: the remote is up, the folder comes with
        the first archive.
        """
        try:
            await self.rc.call("operations/list", {"fs": self.root.fs, "remote": "", "opt": {"dirsOnly": True}},
                               timeout_s=timeout_s)
        except NotFoundError:
            pass
        except SyncError as exc:
            self.last_error = exc
            raise
        self.last_ok_at = time.time()

    async def about(self) -> RemoteInfo:
        """Where archives go and how much room is left; never the remote's credentials.

        Raises the remote's error when it does not answer, so a caller never reports a dead
        remote as healthy from cached details.
        """
        total = used = free = None
        await self.ping()
        info = await self.fsinfo()
        if info.get("Features", {}).get("About"):
            with contextlib.suppress(SyncError):
                usage = await self.rc.call("operations/about", {"fs": self.root.fs}, timeout_s=30)
                total, used, free = usage.get("total"), usage.get("used"), usage.get("free")
        return RemoteInfo(self.root.display, await self.backend_type(), self.rclone_version, total, used, free)

    async def probe(self) -> ProbeReport:
        """A round trip on the archive root, each step timed; stops at the first failing step."""
        return await run_probe(self)
