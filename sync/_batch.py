"""Many files archived as one rclone job (a ritual's files): a staging tree of hard links copied in
one go, then each file's size checked on the remote, instead of a job and a check per file."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from sync._hashing import hash_file_sync
from sync._local import check_readable
from sync._paths import clean_relative
from sync._rclone.client import ProgressCallback
from sync._results import ArchiveResult
from sync.errors import PathError, TemporaryError

if TYPE_CHECKING:
    from sync._service import SyncService

log = structlog.get_logger("helix.sync")


async def archive_batch(service: SyncService, pairs: Sequence[tuple[str | os.PathLike[str], str]],
                        progress: ProgressCallback | None = None) -> list[ArchiveResult]:
    relative = [(Path(p), clean_relative(r)) for p, r in pairs]
    # One thread hop for the whole batch, not one per file: 500 hops cost more than the work.
    cleaned = await asyncio.to_thread(lambda: [(p.resolve(), r) for p, r in relative])
    if not cleaned:
        return []
    if len({r for _, r in cleaned}) != len(cleaned):
        raise PathError("Two files in one batch have the same archive path: give each its own name.")
    staging_root = service.settings.data_dir / "staging"

    def build_stage() -> Path:
        staging_root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix="batch-", dir=staging_root))
        for src, rel in cleaned:
            check_readable(src)
            dest = stage / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dest)
            except OSError:
                shutil.copy2(src, dest)
        return stage

    async def once() -> list[ArchiveResult]:
        async with service._limit:
            started = time.perf_counter()
            stage = await asyncio.to_thread(build_stage)
            try:
                hashing = asyncio.ensure_future(asyncio.to_thread(
                    lambda: [hash_file_sync(src) for src, _ in cleaned]))
                try:
                    await service.remote.copy_tree_in(stage, progress=progress, timeout_s=service.settings.op_timeout_s)
                    digests = await hashing
                except BaseException:
                    hashing.cancel()
                    raise
                sizes = await _sizes(service, {rel.rsplit("/", 1)[0] if "/" in rel else "" for _, rel in cleaned})
            finally:
                await asyncio.to_thread(shutil.rmtree, stage, True)
            elapsed = time.perf_counter() - started
            results = []
            stats = await asyncio.to_thread(lambda: [src.stat().st_size for src, _ in cleaned])
            for (_, rel), digest, size in zip(cleaned, digests, stats, strict=True):
                if sizes.get(rel) != size:
                    raise TemporaryError(f"'{service.remote_path(rel)}' is missing or incomplete after the "
                                         "batch upload: archive the batch again.")
                results.append(ArchiveResult(rel, service.remote_path(rel), size, digest["sha256"], "size",
                                             elapsed))
            return results

    results = await service._retrying("archive_many", once)
    if results:
        service.last_archive = results[-1]
    log.info("archived_batch", files=len(results), remote=service.display)
    return results

async def _sizes(service: SyncService, folders: set[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for folder in sorted(folders):
        for entry in await service.remote.list(folder, recurse=False, files_only=True):
            sizes[entry.path] = entry.size
    return sizes
