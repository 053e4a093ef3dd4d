"""Files to archive: incompressible bytes, written once per run in one scratch folder on one disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

MIB = 1 << 20


def random_file(path: Path, size: int) -> Path:
    """``size`` random bytes (nothing compresses or dedupes them), flushed to disk before timing starts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 4 * MIB)
            fh.write(os.urandom(n))
            left -= n
        fh.flush()
        os.fsync(fh.fileno())
    return path


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder (sources, local archive and WebDAV root all live in it: one disk)."""
    root = Path(tempfile.mkdtemp(prefix=f"helix-bench-{prefix}-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def remove(path: Path) -> None:
    """Delete a file or a folder if it is there: the destination is cleared between runs."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
