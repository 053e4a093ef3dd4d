"""Files the outbox takes in: durably on disk (fsynced, the rename too) before their row is committed.

Everything here blocks: ``ingest`` runs in a worker thread (a file copied and hashed, or moved,
while the event loop goes on), ``fsync_dir`` in the database thread, for the renames of a commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX needs the directory itself flushed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ingest(src: Path, dest: Path, move: bool, sha256: str | None = None) -> tuple[str, int]:
    """Put ``src`` at ``dest`` (rename if asked and possible, else copy), fsynced; return SHA-256 and size.

    ``sha256``: the hash the caller computed while writing ``src`` (a download); a rename then
    keeps those very bytes, so they are not read again.
    """
    digest = hashlib.sha256()
    size = 0
    moved = False
    if move:
        with contextlib.suppress(OSError):  # another filesystem: copy instead (the caller removes src)
            os.replace(src, dest)
            moved = True
    if moved and sha256:
        with open(dest, "rb") as fh:
            os.fsync(fh.fileno())
            return sha256, os.fstat(fh.fileno()).st_size
    if moved:
        with open(dest, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            os.fsync(fh.fileno())
    else:
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            while chunk := fin.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
    return digest.hexdigest(), size


def take_file(src: Path, dest: Path, move: bool, sha256: str | None) -> tuple[str, int] | None:
    """``ingest`` for a source that is a file; None when it is not (one thread hop for both)."""
    return ingest(src, dest, move, sha256) if src.is_file() else None
