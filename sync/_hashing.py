"""Local file hashes, computed in a worker thread so the event loop never waits on the disk."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

CHUNK = 1 << 20
# The hash types rclone backends report that Python's hashlib can also compute.
HASHLIB_TYPES = ("sha256", "sha1", "md5", "sha512")


def hash_file_sync(path: Path, types: tuple[str, ...] = ("sha256",)) -> dict[str, str]:
    hashers = {t: hashlib.new(t) for t in dict.fromkeys(types)}
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {t: h.hexdigest() for t, h in hashers.items()}


async def hash_file(path: Path, types: tuple[str, ...] = ("sha256",)) -> dict[str, str]:
    return await asyncio.to_thread(hash_file_sync, path, types)
