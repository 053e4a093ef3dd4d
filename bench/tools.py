"""The contenders Helix is measured against: a plain ``rclone copyto`` process, and ``cp``.

The plain rclone gets exactly the flags Helix's daemon runs with (``RcloneDaemon.argv()``, minus
the ``rcd`` command and its ``--rc-*`` options), the same binary and the same remote definitions,
so the only difference left is the one measured: a warm daemon driven over rc versus a fresh
process per copy.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Mapping, Sequence

from sync import SyncService


class ToolFailed(RuntimeError):
    pass


def daemon_flags(daemon_argv: Sequence[str]) -> list[str]:
    """The daemon's transfer flags (transfers, timeouts, retries, log format): ``rcd`` and ``--rc-*`` removed."""
    flags: list[str] = []
    args = list(daemon_argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "rcd":
            i += 1
        elif arg.startswith("--rc-"):
            i += 1 if "=" in arg else 2  # every --rc-* option the daemon passes takes a value
        else:
            flags.append(arg)
            i += 1
    return flags


def copyto_argv(service: SyncService, src: os.PathLike[str] | str, rel: str) -> list[str]:
    """``rclone copyto SRC DST`` with the running daemon's binary and flags, DST as Helix would name it."""
    daemon = service._daemon
    root = service.remote.root
    fs = root.fs
    dst = f"{fs.rstrip('/')}/{rel}" if root.is_local else f"{fs}{'' if fs.endswith((':', '/')) else '/'}{rel}"
    assert daemon.binary is not None, "start the service first: the flags are the running daemon's"
    return [daemon.binary, "copyto", str(src), dst, *daemon_flags(daemon.argv())]


def tool_env(service: SyncService) -> dict[str, str]:
    """What the daemon's environment holds minus its rc credentials: the remote definitions."""
    env = dict(os.environ)
    env.update(service.settings.extra_env)
    env["RCLONE_ASK_PASSWORD"] = "false"
    return env


def check_exit(argv: Sequence[str], code: int, stderr: bytes) -> None:
    # rclone >= 1.69 swapped exit codes 1 and 2 (syntax vs. copy error); either way, only 0 is success.
    if code != 0:
        tail = stderr.decode(errors="replace").strip()[-600:]
        raise ToolFailed(f"{os.path.basename(argv[0])} {argv[1]} exited with {code}: {tail}")


async def run_timed(argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Run a process without blocking the loop; seconds from spawn to exit (the whole process)."""
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    _, err = await proc.communicate()
    seconds = time.perf_counter() - t0
    check_exit(argv, proc.returncode or 0, err)
    return seconds


def run_blocking(argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """The same, the way a blocking bot would do it: ``subprocess.run`` on the event loop's thread."""
    t0 = time.perf_counter()
    done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env, check=False)
    seconds = time.perf_counter() - t0
    check_exit(argv, done.returncode, done.stderr)
    return seconds
