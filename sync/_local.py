"""Local files at the edges of archiving: the source a caller hands in, and a local archive root.

Both fail in ways no retry fixes and that are not the remote's fault (a file this user cannot
read, a folder path running through a file), so they are named as local problems, for good,
before rclone would report them as a remote's failure.
"""

from __future__ import annotations

import os
from pathlib import Path

from sync.errors import PathError


def check_readable(src: Path) -> int:
    """Refuse, for good, a source no retry can fix: missing, a folder, or unreadable by this user;
    return its size.

    Checked before rclone sees it, because rclone's error for it would be blamed on the remote
    (and retried) rather than named as the local problem it is.
    """
    if src.is_dir():
        raise PathError(f"{src} is a folder, not a file: give the path of one file to archive.")
    try:
        with open(src, "rb") as fh:
            return os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise PathError.missing_file(src) from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise PathError(f"Cannot read {src}: {reason}; make it readable by this user.") from None


def readable_file(path: Path) -> tuple[Path, int]:
    """The file's resolved path and size, once ``check_readable`` let it through."""
    src = path.resolve()
    return src, check_readable(src)


def local_root_problem(folder: Path, exc: OSError, configured: bool) -> str:
    """One sentence for a local archive folder that cannot be created, naming the variable to fix."""
    what = f"HELIX_ARCHIVE {folder}" if configured else f"The local archive folder {folder} (HELIX_DATA_DIR/archive)"
    fix = "set HELIX_ARCHIVE to a folder this user can write" if configured else \
        "set HELIX_DATA_DIR (or HELIX_ARCHIVE) to a folder this user can write"
    blocker = folder
    while not blocker.exists() and blocker != blocker.parent:
        blocker = blocker.parent
    if blocker.exists() and not blocker.is_dir():
        why = "is a file" if blocker == folder else f"cannot be created because {blocker} is a file"
        return f"{what} {why}, not a folder: {fix}."
    reason = (exc.strerror or type(exc).__name__).lower()
    return f"{what} cannot be created ({reason} in {blocker}): {fix}."
