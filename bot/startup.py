"""Getting the bot onto Discord without crash-looping, and off it again on SIGTERM in any phase.

Why a loop here instead of ``bot.start(token)`` alone: discord.py raises the first network error
of the login (DNS, refused, timed out, TLS, a 5xx) straight out of ``start()``, and a deploy during a
Discord hiccup would end in a traceback and a restart policy that gives up after a few tries. So
each attempt is one fresh ``HelixBot`` (a discord.py client is not safely restartable once its
login failed: ``static_login`` builds a new HTTP session each call and never closes the old one),
transient failures wait ``backoff_delay`` and try again, and permanent ones (token rejected, a
privileged intent not enabled) end with one sentence and ``ExitCode.CONFIG``.

The archive is opened by the caller before the first attempt and closed after the last, so the
outbox keeps landing queued items while Discord is unreachable. The phase (``starting``,
``connecting``, ``retrying``, ``ready``, ``stopping``) is what ``/ready`` reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import discord
import structlog

from bot import __version__
from bot.helix import STOP_RESERVE_S, HelixBot
from bot.settings import Settings
from runtime.backoff import backoff_delay
from runtime.exit_codes import ExitCode
from sync import Archive

log = structlog.get_logger("helix.bot")

# First wait after a failed attempt, doubled each time up to the cap: a Discord incident rarely
# ends in seconds, and Discord asks clients not to hammer a recovering API.
RETRY_BASE_S = 2.0
RETRY_CAP_S = 120.0

TOKEN_REJECTED = ("Discord rejected DISCORD_TOKEN: copy the bot token again from the developer portal "
                  "(Bot → Reset Token) and set it.")
INTENT_MISSING = ("the Message Content intent is not enabled: turn it on in the developer portal "
                  "(Bot → Privileged Gateway Intents).")


# aiohttp 3.11 added a class of its own for a name that does not resolve; before, it is a connector error.
_DNS_ERROR: type[BaseException] | tuple[()] = getattr(aiohttp, "ClientConnectorDNSError", ())


class Phase(enum.StrEnum):
    PREFLIGHT = "preflight"
    STARTING = "starting"
    CONNECTING = "connecting"
    RETRYING = "retrying"
    READY = "ready"
    STOPPING = "stopping"


class Permanent(Exception):
    """A failure that no retry can fix; the message is the operator's sentence."""


def transient_cause(exc: BaseException) -> str | None:
    """One sentence naming a failure worth retrying, or None when retrying cannot help."""
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return None
    if isinstance(exc, discord.GatewayNotFound):
        return "Discord's gateway could not be found (a Discord outage)"
    if isinstance(exc, discord.ConnectionClosed):
        if exc.code in (4004, 4010, 4011, 4012, 4013, 4014):
            return None  # authentication failed, bad sharding or intents: the same answer every time
        return f"the gateway closed the connection while connecting (code {exc.code})"
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429:
            return "Discord rate-limited the login (HTTP 429)"
        if exc.status >= 500:
            return f"Discord answered HTTP {exc.status} (trouble on Discord's side)"
        return None
    if isinstance(exc, _DNS_ERROR):
        return f"the name of Discord's server could not be resolved (DNS): {exc}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError):
        return f"the TLS handshake with Discord failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"Discord could not be reached: {exc}"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "Discord did not answer in time"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return f"the connection to Discord failed ({type(exc).__name__}: {exc})"
    return None


def point_at(api_base: str | None, gateway: str | None) -> None:
    """Send REST and the first gateway connection to another Discord (the tests' loopback one).

    discord.py builds every REST URL from the class attribute ``Route.BASE`` and opens a plain
    client's first websocket at ``DiscordWebSocket.DEFAULT_GATEWAY``; there is no per-client option.
    """
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway:
        from discord.gateway import DiscordWebSocket

        # The attribute is a yarl URL; its own class builds the new one (yarl comes with aiohttp).
        DiscordWebSocket.DEFAULT_GATEWAY = type(DiscordWebSocket.DEFAULT_GATEWAY)(gateway)


class OneLineReconnects(logging.Filter):
    """discord.py logs each gateway reconnect with a full traceback; here it is one line naming the cause.

    discord.py retries a failed gateway connection itself (``Client.connect``), logging
    "Attempting a reconnect in %.2fs" with the exception attached. The record becomes
    ``discord_reconnect`` with ``cause`` and ``retry_in_s`` fields, like Helix's own ``discord_retry``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Attempting a reconnect in %.2fs" and record.exc_info and record.exc_info[1]:
            exc = record.exc_info[1]
            record.cause = transient_cause(exc) or f"{type(exc).__name__}: {exc}"
            record.retry_in_s = round(float(record.args[0]), 1) if record.args else None  # type: ignore[index]
            record.msg, record.args, record.exc_info, record.exc_text = "discord_reconnect", (), None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class Startup:
    """Attempts, phases and the stop; ``readiness`` is what the health server's ``/ready`` asks."""

    def __init__(self, settings: Settings, *, retry_cap_s: float | None = None,
                 make_bot: Callable[[Settings, Archive], HelixBot] | None = None) -> None:
        self.settings = settings
        self.retry_cap_s = RETRY_CAP_S if retry_cap_s is None else retry_cap_s
        # Set by the caller once the archive is open: the health server and the stop handlers are up
        # before it, so /health answers and SIGTERM is honoured while rclone starts.
        self.archive: Archive | None = None
        self.capture: Any | None = None  # capture.Capture, opened by the caller after the archive
        self._make_bot = make_bot or (lambda s, a: HelixBot(s, a, serve_health=False, capture=self.capture))
        self.phase = Phase.STARTING
        self.last_error: str | None = None
        self.attempts = 0
        self.bot: HelixBot | None = None
        self._attempt: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        bot = self.bot
        if self.phase is Phase.READY and bot is not None:
            ok, body = await bot.readiness()
            return ok, {"phase": self.phase.value, **body}
        return False, {"phase": self.phase.value, "last_error": self.last_error, "attempts": self.attempts,
                       "gateway": False, "stopping": self._stopping, "version": __version__}

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    async def wait_stop(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        """SIGTERM: whatever the phase, uploads get their grace, the attempt ends, the run returns 0."""
        if self._stopping:
            return
        self._stopping = True
        self.phase = Phase.STOPPING
        self._stop.set()
        try:
            bot = self.bot
            if bot is not None and bot.is_ready() and not bot.is_closed():
                await bot.shutdown()  # the gateway stays up while uploads finish: commands hear "restarting"
            else:
                if bot is not None:
                    bot.stopping = True
                if self._attempt is not None:
                    self._attempt.cancel()  # a hanging login or connect has nothing to finish
                if self.archive is not None:
                    await self.archive.worker.stop(max(0.0, self.settings.stop_grace_s - STOP_RESERVE_S))
        finally:
            self._stopped.set()

    async def run(self, token: str) -> int:
        """Attempt until connected and then closed, a permanent failure, or a stop."""
        assert self.archive is not None, "open the archive and set Startup.archive first"
        reconnects = OneLineReconnects()
        discord_log = logging.getLogger("discord.client")
        discord_log.addFilter(reconnects)
        try:
            while not self._stop.is_set():
                code = await self._one_attempt(token)
                if code is not None:
                    return code
                delay = backoff_delay(self.attempts - 1, min(RETRY_BASE_S, self.retry_cap_s), self.retry_cap_s)
                log.warning("discord_retry", cause=self.last_error, attempt=self.attempts,
                            retry_in_s=round(delay, 1))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
            return ExitCode.OK
        finally:
            if self._stop.is_set():
                await self._stopped.wait()  # the stop's grace for uploads runs to its end
            discord_log.removeFilter(reconnects)
            log.info("stopped")

    async def _one_attempt(self, token: str) -> int | None:
        """None: failed in a way worth retrying (``last_error`` says how); else the exit code."""
        self.attempts += 1
        self.phase = Phase.CONNECTING
        assert self.archive is not None
        bot = self._make_bot(self.settings, self.archive)
        self.bot = bot
        async with bot:
            if self._stop.is_set():
                return ExitCode.OK
            self._attempt = asyncio.create_task(bot.start(token), name=f"discord-attempt-{self.attempts}")
            watcher = asyncio.create_task(self._mark_ready(bot))
            try:
                await asyncio.shield(self._attempt)
            except asyncio.CancelledError:
                if not self._attempt.cancelled():
                    self._attempt.cancel()
                    raise
                return ExitCode.OK  # cancelled by the stop
            except discord.LoginFailure:
                return self._permanent(TOKEN_REJECTED)
            except discord.PrivilegedIntentsRequired:
                return self._permanent(INTENT_MISSING)
            except Exception as exc:  # sorted below: retry, a sentence, or a crash
                if self._stop.is_set():
                    return ExitCode.OK
                cause = transient_cause(exc)
                if cause is None and isinstance(exc, AttributeError) and bot.ws is None:
                    # discord.py retries a first gateway connection that failed by itself, then reads the
                    # socket it never had: the gateway could not be reached, retried as a failed login is.
                    cause = "Discord's gateway could not be reached"
                if cause is None:
                    if isinstance(exc, discord.ConnectionClosed):
                        return self._permanent(f"Discord closed the gateway with code {exc.code}: check the "
                                               "token, the intents in the developer portal and the settings.")
                    raise
                self.last_error = cause
                self.phase = Phase.RETRYING
                return None
            finally:
                watcher.cancel()
                self._attempt = None
        return ExitCode.OK  # the client closed: the stop (or an owner command) ended it

    async def _mark_ready(self, bot: HelixBot) -> None:
        await bot.wait_until_ready()
        if not self._stopping:
            self.phase = Phase.READY
            self.last_error = None
            log.info("discord_ready", attempts=self.attempts)

    def _permanent(self, sentence: str) -> int:
        print(f"error: {sentence}", file=sys.stderr)
        log.error("discord_permanent_failure", error=sentence)
        return ExitCode.CONFIG
