"""The real HelixBot in a SimCord guild, as a child process the fault tests can kill, stop and restart.

    python -m tests.support.fault_bot

Configuration comes from the environment exactly as for ``python -m bot run`` (HELIX_DATA_DIR,
HELIX_ARCHIVE, RCLONE_CONFIG_*, HELIX_STOP_GRACE_S, HELIX_BWLIMIT, ...); only Discord is
simulated. SIGTERM and SIGINT get the handlers ``python -m bot run`` installs
(``bot.signals.install_stop_handlers``), so the graceful stop under test is the production one.

stdin, one JSON object a line (EOF is the same as "quit")::

    {"op": "say", "as": "owner" | "<member name>", "text": "!ritual 7"}
    {"op": "enqueue", "size": 1048576, "rel": "faults/x.bin"}   random bytes, straight into the outbox
    {"op": "drain", "within_s": 30}                              wait until nothing is pending or uploading
    {"op": "quit"}                                               the graceful stop, as SIGTERM does it

stdout, one JSON object a line::

    {"event": "ready", "pid": ..., "rclone_pid": ..., "recovered": ...}
    {"event": "answer", "text": ..., "lines": [...]}         what the bot posted or edited for one "say"
    {"event": "enqueued", "ids": [...], "sha256": ..., "rel": ...}
    {"event": "error", "op": ..., "error": ...}              a request the harness could not carry out
    {"event": "claimed" | "landed" | "retry" | "failed", "id": ..., ...}   the outbox worker at work
    {"event": "drained", "ok": true, "pending": 0, "uploading": 0, "failed": 0, "done": 3}
    {"event": "discord", "lines": [...]}                     messages edited outside a "say" (late landings)
    {"event": "bot_error", "type": ..., "original": ..., "message": ...}   an exception the bot raised (SimCord
                                                             saw it); user mistakes are errors too, bugs answer
                                                             "Something went wrong"
    {"event": "stopping"}                                   the graceful stop has begun
    {"event": "stopped"}                                    the archive is closed; exit 0 follows

SIGUSR1 dumps every thread's stack to stderr (even when the loop is stuck), SIGUSR2 every asyncio
task's stack and the outbox worker's state: what a test that waited in vain shows beside its log.

A problem at start (data directory, rclone, settings) prints ``{"event": "fatal", "error": ...}``
and the same sentence on stderr, and exits 2, like ``python -m bot run``.

``FaultBot`` (below) is the tests' side: it starts this script, sends requests and waits for events
with deadlines, never for fixed times.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.settings import Settings
from bot.signals import install_stop_handlers
from bot.sim.world import World, simulated_guild
from runtime import logs
from sync._outbox.store import OutboxItem
from sync._service import ArchiveResult
from sync.errors import SyncError
from tests.support.cdn import discord_like_history


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stdout.flush()


class Harness:
    def __init__(self, world: World) -> None:
        self.world = world
        self.printed = len(world.env.http_requests)
        self.in_say = False
        self.told_stopping = False
        self.errors_seen = world.env.error_cursor
        self._tap()

    def _tap(self) -> None:
        """Report the worker's steps on stdout, beside the bot that also hears them."""
        archive = self.world.archive
        outbox = archive.outbox
        claim_next = outbox.claim_next

        async def claimed(kinds: frozenset[str] | None = None, **more: Any) -> tuple[OutboxItem | None,
                                                                                    list[OutboxItem]]:
            head, items = await claim_next(kinds, **more)
            for item in items:
                emit("claimed", id=item.id, attempts=item.attempts, rel=item.rel_path, size=item.size)
            return head, items

        outbox.claim_next = claimed  # type: ignore[method-assign]
        archive.worker.subscribe(self)

    async def archive_done(self, item: OutboxItem, result: ArchiveResult) -> None:
        emit("landed", id=item.id, rel=item.rel_path, remote_path=result.remote_path, verified=result.verified)

    async def archive_retry(self, item: OutboxItem, error: SyncError, delay_s: float) -> None:
        emit("retry", id=item.id, kind=error.kind, error=error.hint, delay_s=delay_s)

    async def archive_failed(self, item: OutboxItem, error: SyncError) -> None:
        emit("failed", id=item.id, kind=error.kind, error=error.hint)

    def dump_tasks(self) -> None:
        """Where each task of the loop waits, and what the worker holds (SIGUSR2)."""
        worker = self.world.archive.worker
        task = worker._task
        state = {"running": worker.running, "uploads": sorted(worker._uploads), "flowing": worker._flowing,
                 "wake_set": worker._wake.is_set(), "stopping": worker._stopping,
                 "ended": None if task is None or not task.done() else
                 ("cancelled" if task.cancelled() else repr(task.exception()))}
        print(json.dumps({"dump": "worker", **state}), file=sys.stderr, flush=True)
        loop = asyncio.get_running_loop()
        timers = sorted((h.when() - loop.time(), getattr(h._callback, "__qualname__", "?"))  # noqa: SLF001
                        for h in getattr(loop, "_scheduled", []) if not h.cancelled())
        print(json.dumps({"dump": "timers", "due_in_s": [(round(t, 3), name) for t, name in timers[:12]]}),
              file=sys.stderr, flush=True)
        for each in asyncio.all_tasks():
            frames, coro = [], each.get_coro()
            while coro is not None and len(frames) < 12:  # down the awaits: a task's own stack is one frame
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
                if frame is not None:
                    frames.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
                coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
            where = " -> ".join(frames)
            print(json.dumps({"dump": "task", "name": each.get_name(), "where": where}), file=sys.stderr, flush=True)

    def report_errors(self) -> None:
        env = self.world.env
        for error in env.errors_since(self.errors_seen):
            original = getattr(error, "original", None)
            emit("bot_error", type=type(error).__name__, original=type(original).__name__ if original else None,
                 message=str(error)[:500])
        self.errors_seen = env.error_cursor

    def tell_stopping(self) -> None:
        if self.world.bot.stopping and not self.told_stopping:
            self.told_stopping = True
            emit("stopping")

    def actor(self, name: str) -> Any:
        return self.world.owner if name == "owner" else self.world.member(name)

    async def watch_discord(self) -> None:
        """Messages the bot edits on its own (a ritual that lands after its command finished)."""
        while True:
            await asyncio.sleep(0.05)
            self.tell_stopping()
            self.report_errors()
            if self.in_say or len(self.world.env.http_requests) == self.printed:
                continue
            lines = self.world.render(self.printed)
            self.printed = len(self.world.env.http_requests)
            if lines:
                emit("discord", lines=lines)

    async def handle(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op == "say":
            self.in_say = True
            try:
                lines = await self.world.say(self.actor(str(request.get("as", "alice"))), str(request["text"]))
            finally:
                self.printed = len(self.world.env.http_requests)
                self.in_say = False
            self.report_errors()
            emit("answer", text=request["text"], lines=lines)
        elif op == "drain":
            ok = await self.world.archive.worker.drain(float(request.get("within_s", 30)))
            counts = await self.world.archive.outbox.counts()
            emit("drained", ok=ok, pending=counts.pending, uploading=counts.uploading, failed=counts.failed,
                 done=counts.done)
        elif op == "enqueue":
            data_dir = self.world.archive.outbox.data_dir
            payload = os.urandom(int(request["size"]))
            src = data_dir / "tmp" / f"fault-{os.getpid()}-{hashlib.sha256(payload).hexdigest()[:12]}.bin"
            await asyncio.to_thread(src.parent.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(src.write_bytes, payload)
            item = await self.world.archive.outbox.enqueue(src, str(request["rel"]), kind="fault", move=True)
            emit("enqueued", ids=[item.id], sha256=item.sha256, rel=item.rel_path)
        else:
            emit("error", op=op, error=f"unknown op {op!r}")


def seed_channel(world: World, count: int) -> int | None:
    """``#general`` with ``count`` messages, the same ids on every start (SimCord's snowflakes are sequential).

    Created before anything else happens in the guild, so a restarted harness shows the same channel
    and messages as the run that was killed: a resumed backup finds the history it left.
    """
    if not count:
        return None
    general = world.guild.create_text_channel("general")
    author = world.member("alice")
    for i in range(count):
        world.env.backend.create_message(general.id, author.id, f"message {i}", broadcast=False)
    return general.id


async def serve(settings: Settings) -> int:
    # Errors are reported as they happen (bot_error) rather than raised by SimCord at the end.
    async with simulated_guild(settings, check_errors=False) as world:
        seeded = seed_channel(world, int(os.environ.get("FAULT_SEED_MESSAGES") or 0))
        stopped = install_stop_handlers(world.bot)
        harness = Harness(world)
        await world.say(world.owner, "!sync")
        harness.printed = len(world.env.http_requests)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        watcher = asyncio.create_task(harness.watch_discord())
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
        loop.add_signal_handler(signal.SIGUSR2, harness.dump_tasks)
        emit("ready", pid=os.getpid(), rclone_pid=world.archive.service.rclone_pid,
             recovered=world.archive.outbox.recovered, seeded_channel=seeded)
        try:
            while not stopped.done():
                line_task = asyncio.ensure_future(reader.readline())
                await asyncio.wait({line_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not line_task.done():
                    line_task.cancel()
                    break
                line = line_task.result()
                if line and not line.strip():
                    continue
                request = json.loads(line) if line else {"op": "quit"}
                if request.get("op") == "quit":
                    harness.told_stopping = True
                    emit("stopping")
                    await world.bot.shutdown()
                    break
                try:
                    await harness.handle(request)
                except SyncError as exc:
                    emit("error", op=request.get("op"), error=exc.hint)
        finally:
            harness.tell_stopping()
            harness.report_errors()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if lines := world.render(harness.printed):  # what the stop itself edited (a paused backup)
                emit("discord", lines=lines)
    emit("stopped")
    return 0


def main() -> int:
    # Log lines go to stderr: stdout carries only the harness's JSON events.
    logs.configure(level=os.environ.get("LOG_LEVEL") or "INFO", fmt="json", stream=sys.stderr)
    try:
        base = Settings.from_env(dotenv=None)
        settings = replace(base, health=False, heartbeat_minutes=0)
        with discord_like_history():
            return asyncio.run(serve(settings))
    except SyncError as exc:
        emit("fatal", error=exc.hint)
        print(f"error: {exc}", file=sys.stderr)
        return 2


# -- the tests' side ---------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
Event = dict[str, Any]


def one_sentence(text: str) -> bool:
    """An answer line (``helix › ...``) is one sentence: one line, no second sentence, no traceback or error id."""
    body = re.sub(r"^\s*helix [›✎] ", "", text).strip()
    return (bool(body) and "\n" not in body and len(body) < 400 and body[-1] in ".!?"
            and "Traceback" not in body and "went wrong" not in body
            and len(re.split(r"(?<=[.!?])\s+(?=[A-Z])", body)) == 1)


class FaultBot:
    """One run of the harness as a child process: requests in, events out, signals and kill -9."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # closed in wait_exit or close
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.fault_bot"], cwd=REPO, env=dict(env),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, bufsize=1)
        self.events: list[Event] = []
        self.eof = False
        self._cond = threading.Condition()
        threading.Thread(target=self._read, name="fault-bot-stdout", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "line": line}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    # -- talking to it --------------------------------------------------------------------------

    def mark(self) -> int:
        """Where the events are now: wait_for(..., since=mark) looks only at what comes after."""
        with self._cond:
            return len(self.events)

    def send(self, op: str, **fields: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()

    def wait_for(self, match: str | Callable[[Event], bool], *, since: int = 0, within_s: float = 30.0) -> Event:
        """The first event from ``since`` on that matches (an event name, or a predicate)."""
        check = (lambda e: e.get("event") == match) if isinstance(match, str) else match
        deadline = time.monotonic() + within_s
        with self._cond:
            while True:
                for event in self.events[since:]:
                    if check(event):
                        return event
                since = len(self.events)
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    raise AssertionError(f"no matching event within {within_s:g} s (harness "
                                         f"{'exited' if self.eof else 'running'}); last events: "
                                         f"{self.events[-8:]}\n{self.log_tail()}{self._dumped()}")
                self._cond.wait(min(left, 0.5))

    def ready(self, within_s: float = 60.0) -> Event:
        event = self.wait_for(lambda e: e.get("event") in ("ready", "fatal"), within_s=within_s)
        assert event["event"] == "ready", f"the bot did not start: {event}"
        return event

    def say(self, who: str, text: str, within_s: float = 60.0) -> list[str]:
        """``who`` types ``text`` in the guild; what the bot posted and edited for it."""
        since = self.mark()
        self.send("say", text=text, **{"as": who})
        return self.wait_for(lambda e: e.get("event") == "answer" and e.get("text") == text, since=since,
                             within_s=within_s)["lines"]

    def enqueue(self, size: int, rel: str) -> Event:
        since = self.mark()
        self.send("enqueue", size=size, rel=rel)
        return self.wait_for(lambda e: e.get("event") in ("enqueued", "error"), since=since)

    def drain(self, within_s: float = 60.0) -> Event:
        since = self.mark()
        self.send("drain", within_s=within_s)
        return self.wait_for("drained", since=since, within_s=within_s + 30)

    def all(self, name: str) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.get("event") == name]

    # -- ending it ------------------------------------------------------------------------------

    def kill(self) -> None:
        """kill -9: no handler runs, nothing is flushed or closed."""
        self.proc.send_signal(signal.SIGKILL)
        self.wait_exit(30)

    def terminate(self) -> None:
        """SIGTERM, as Railway sends it at a redeploy."""
        self.proc.send_signal(signal.SIGTERM)

    def quit(self, within_s: float = 60.0) -> int:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.send("quit")
        return self.wait_exit(within_s)

    def wait_exit(self, within_s: float) -> int:
        try:
            code = self.proc.wait(within_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the harness did not exit within {within_s:g} s\n{self.log_tail()}") from None
        with self._cond:
            self._cond.wait_for(lambda: self.eof, 10)
        self._log.close()
        return code

    def close(self) -> None:
        """Teardown: whatever state it is in, leave no process behind."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        with contextlib.suppress(OSError):
            self._log.close()

    def _dumped(self) -> str:
        """The harness's threads and tasks as they are now, for a wait that ended in vain."""
        if self.eof or self.proc.poll() is not None:
            return ""
        start = self.log_path.stat().st_size
        for sig in (signal.SIGUSR1, signal.SIGUSR2):
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        time.sleep(1.0)  # the dump is written by the child; nothing to wait on but its file
        with contextlib.suppress(OSError), open(self.log_path, "rb") as f:
            f.seek(start)
            return "\n-- the harness's threads and tasks --\n" + f.read().decode(errors="replace")[-6000:]
        return ""

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


if __name__ == "__main__":
    sys.exit(main())
