"""What an earlier attempt at an outbox item may have left on the remote: the item whole, or partials.

An item tried before (a crash, a cut connection, a stop's grace running out) may already be on the
remote, or may have left a partial upload under a temporary name. Before trying again the worker
clears the partials and checks whether the item landed after all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from sync._hashing import hash_file
from sync._outbox.store import OutboxItem
from sync._service import PARTIAL_MARK, ArchiveResult, SyncService
from sync.errors import SyncError

log = structlog.get_logger("helix.sync.outbox")


async def already_landed(service: SyncService, item: OutboxItem) -> ArchiveResult | None:
    """The item as it already stands on the remote, whole, or None: then it is sent (again)."""
    started = time.perf_counter()
    remote = service.remote
    hash_type = await remote.cheap_hash_type()  # the same cheap-hash choice archive() makes
    entry = await remote.stat(item.rel_path, hash_type)
    if entry is None or entry.is_dir or entry.size != item.size:
        return None
    verified = "size"
    remote_hash = entry.hashes.get(hash_type, "") if hash_type else ""
    local_hash: str | None = None
    if remote_hash and hash_type == "sha256":
        local_hash = item.sha256
    elif remote_hash and hash_type and await asyncio.to_thread(item.local_path.is_file):
        local_hash = (await hash_file(item.local_path, (hash_type,)))[hash_type]
    if local_hash is not None:
        if local_hash != remote_hash:
            return None
        verified = str(hash_type)
    elif await asyncio.to_thread(item.local_path.is_file):
        # No cheap hash: size alone (or size and a modification time kept to the second) would
        # take a same-sized older copy, such as the previous heartbeat, for this one. Send it
        # again: it goes over the same name, so it is never a duplicate. Only without a local
        # copy left to send does the size have to do.
        return None
    log.info("outbox_already_landed", id=item.id, rel_path=item.rel_path, verified=verified)
    return ArchiveResult(item.rel_path, service.remote_path(item.rel_path), item.size, item.sha256,
                         verified, time.perf_counter() - started)


async def clear_partials(service: SyncService, item: OutboxItem) -> None:
    """Delete the partial uploads that earlier attempts at ``item`` left beside its final name."""
    folder = item.rel_path.rpartition("/")[0]
    prefix = f"{item.rel_path}{PARTIAL_MARK}"
    for entry in await service.list(folder, recurse=False):
        if not entry.is_dir and entry.path.startswith(prefix):
            with contextlib.suppress(SyncError):
                await service.delete(entry.path)
                log.info("outbox_partial_removed", id=item.id, path=entry.path)
