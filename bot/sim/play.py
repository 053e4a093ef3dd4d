"""``python -m bot play``: the demo's simulated guild, interactive.

Type a message as a user (``!ritual 42``, ``/ritual steps:7``); ``as NAME`` switches who is
typing (``owner`` is the bot's owner and an admin; ``as NAME admin`` plays a member with the
admin role); ``in CHANNEL`` moves to another channel (the prompt then names it); ``click LABEL``
presses a button; ``quit``, Ctrl-D or Ctrl-C leaves.

Lines are read by a daemon thread, not ``asyncio.to_thread``: a thread blocked in ``input()``
cannot be interrupted, and asyncio.run waits for its executor's threads at the end, so Ctrl-C
would wait for Enter. Ctrl-C is handled on the loop instead: it ends the session at once,
and leaving the simulated guild stops rclone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import threading
from pathlib import Path
from typing import Any

from bot.settings import Settings
from bot.sim.demo import demo_settings, post_community
from bot.sim.transcript import as_seen
from bot.sim.world import World, simulated_guild

HELP = ("Type as a user: !help, !status, !heartbeat, !ritual 42, /ritual steps:7, !testmega (admins), !outbox "
        "(owner).\nalice and bob posted in #launch, carol (staff) in #staff-room, which bob cannot open: as owner, "
        "!backup launch and !backup staff-room; then as anyone, !find launch, !archives, !get <archived id>.\n"
        "'as NAME' switches user ('owner' is the owner; 'as NAME admin' has the admin role), "
        "'in CHANNEL' moves to another channel (to post in a watched one: as owner, !watch launch, then in launch), "
        "'click LABEL' presses a button, 'quit' or Ctrl-C leaves.")


class Lines:
    """Lines typed at the terminal, one per ``read`` (so the prompt comes after the bot's answer).

    Read with ``os.read`` on a daemon thread: ``sys.stdin`` would hold its buffer's lock while it
    waits, and the interpreter's exit needs that lock, so Ctrl-C would end in a fatal error.
    """

    def __init__(self, fd: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._fd = fd
        self._pending = b""
        self._asks: queue.Queue[asyncio.Future[str | None]] = queue.Queue()
        threading.Thread(target=self._serve, name="helix-play-input", daemon=True).start()

    def _line(self) -> str | None:
        while b"\n" not in self._pending:
            try:
                chunk = os.read(self._fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                rest, self._pending = self._pending, b""
                return rest.decode(errors="replace") if rest else None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode(errors="replace")

    def _serve(self) -> None:
        while True:
            answer = self._asks.get()
            line = self._line()
            self._loop.call_soon_threadsafe(lambda f=answer, v=line: f.done() or f.set_result(v))
            if line is None:
                return

    async def read(self, prompt: str) -> str | None:
        """The next line, or None at the end of input."""
        print(prompt, end="", flush=True)
        answer: asyncio.Future[str | None] = self._loop.create_future()
        self._asks.put(answer)
        return await answer


async def _until_stopped(step: Any, stop: asyncio.Event) -> tuple[bool, Any]:
    """Run ``step`` unless Ctrl-C comes first: (stopped, result)."""
    task = asyncio.ensure_future(step)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return False, task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    return True, None


async def _one_line(world: World, who: str, line: str) -> tuple[str, list[str] | None]:
    """Act on one typed line: the new current user, and what to print (None: nothing)."""
    if line.startswith("as "):
        name, _, role = line[3:].strip().partition(" ")
        if not name:
            return who, ["  (say who: as NAME, or as NAME admin)"]
        if name != "owner":
            world.member(name, admin=role.strip() == "admin")
        return name, None
    if line.startswith("in "):
        name = line[3:].strip().lstrip("#")
        channels = world.guild.channels
        if name not in channels:
            return who, [f"  (no channel #{name} here; there are {', '.join(f'#{n}' for n in sorted(channels))})"]
        world.channel = channels[name]
        return who, None
    actor = world.owner if who == "owner" else world.member(who)
    try:
        if line.startswith("click "):
            lines = await world.click(actor, line[6:].strip())
        else:
            lines = await world.say(actor, line)
    except Exception as exc:  # a typo in a slash command or a label must not end the session
        return who, [f"  (simulated Discord refused that: {exc})"]
    return who, lines or ["  (no answer)"]


async def run_play(base: Settings, data_dir: Path | None = None) -> int:
    print("Starting the simulated guild: rclone, the outbox and the bot (a few seconds)…", flush=True)
    settings = demo_settings(base, data_dir or Path(base.sync.data_dir) / "play")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        # A typo is a normal part of playing: user errors must not be re-raised when the session ends.
        async with simulated_guild(settings, check_errors=False) as world:
            await world.say(world.owner, f"{settings.prefix}sync")
            await post_community(world)
            print(HELP.replace("!", settings.prefix), flush=True)
            lines = Lines()
            who, home = "alice", world.channel.id  # the prompt names any other channel
            while not stop.is_set():
                where = "" if world.channel.id == home else f" in #{world.channel.name}"
                stopped, line = await _until_stopped(lines.read(f"{who}{where} › "), stop)
                if stopped or line is None:
                    break
                line = line.strip()
                if line in ("quit", "exit"):
                    break
                if not line:
                    continue
                stopped, result = await _until_stopped(_one_line(world, who, line), stop)
                if stopped:
                    break
                who, shown = result
                if shown:
                    names = world.names()
                    print("\n".join(as_seen(line, names) for line in shown), flush=True)
            print("\nLeaving: stopping the bot and rclone…", flush=True)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    return 0
