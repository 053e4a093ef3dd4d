"""One Helix per data folder, for as long as its process runs.

A second Helix on the same folder would put the first one's uploads in flight back in the queue
and upload them again beside it. The lock is ``flock`` on ``helix.lock``, which names the pid
that holds it; the kernel releases it however the process ends, a kill included.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class Held(Exception):
    """Another process holds the data folder; ``pid`` is what its lock file says ("unknown" if nothing)."""

    def __init__(self, pid: str) -> None:
        super().__init__(pid)
        self.pid = pid


def take(data_dir: Path) -> int:
    """Lock ``data_dir`` for this process; return the lock file's descriptor (closing it releases
    the lock). Raises Held when another process has it."""
    fd = os.open(data_dir / "helix.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise Held(holder) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd
