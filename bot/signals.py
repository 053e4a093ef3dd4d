"""SIGTERM (Railway's stop) and SIGINT start the bot's graceful stop; discord.py installs no handlers itself."""

from __future__ import annotations

import asyncio
import signal
from typing import Protocol

import structlog

log = structlog.get_logger("helix.bot")
_stopping_tasks: set[asyncio.Task[None]] = set()  # the loop keeps only a weak reference to a task


class Stoppable(Protocol):
    async def shutdown(self) -> None: ...


def install_stop_handlers(bot: Stoppable) -> asyncio.Future[None]:
    """SIGTERM and SIGINT start ``bot.shutdown()``; the future is done when that stop has finished.

    The fault tests' child process uses this too, so they stop the bot exactly as Railway does.
    """
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[None] = loop.create_future()

    def finished(_task: asyncio.Task[None]) -> None:
        if not stopped.done():
            stopped.set_result(None)

    def on_signal(sig: signal.Signals) -> None:
        log.info("signal", signal=sig.name)
        task = asyncio.ensure_future(bot.shutdown())
        _stopping_tasks.add(task)
        task.add_done_callback(_stopping_tasks.discard)
        task.add_done_callback(finished)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    return stopped
