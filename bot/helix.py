"""HelixBot: a ``commands.Bot`` with a clear lifecycle, after discord.py's advanced_startup example.

The archive is opened by whoever runs the bot and handed in, as advanced_startup hands in its
database pool; the bot only subscribes to its reports. What the bot itself owns (the health
server) is created in ``setup_hook`` and closed in ``close()``. Cogs are extensions listed in
one tuple; one that fails to load is logged and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
import sys
import time
from typing import Any

import discord
import structlog
from discord.ext import commands

from bot import __version__
from bot.replies import NO_PINGS, in_prefix
from bot.settings import Settings
from runtime.health import HealthServer
from sync import Archive, ArchiveResult, OutboxItem, Progress, SyncError

log = structlog.get_logger("helix.bot")

EXTENSIONS = (
    "bot.cogs.errors",
    "bot.cogs.status",
    "bot.cogs.heartbeat",
    "bot.cogs.ritual",
    "bot.cogs.admin",
    "bot.cogs.capture",
    "bot.cogs.backup",
    "bot.cogs.find",
    "bot.cogs.get",
    "bot.cogs.reindex",
)


# How long a stop waits for the cogs to tell what it interrupts (running backups' messages).
BEFORE_STOP_S = 3.0
# Of HELIX_STOP_GRACE_S, what a stop keeps back for cancelling rclone's job and stopping rclone.
STOP_RESERVE_S = 2.5
# /ready trusts an answer from the archive remote for this long before asking it again.
READY_WINDOW_S = 90.0
# How long a thread doing CPU work (hashing, SQLite, rendering) may keep the GIL while the event
# loop waits for it: Python's default, 5 ms, lets a few such threads in turn delay the loop's
# heartbeat and answers by tens of milliseconds.
GIL_SWITCH_S = 0.001


class UserFacingError(commands.CommandError):
    """Raised by cogs with a finished sentence for the user.

    Defined here, not in a cog file: discord.py executes a cog's module anew for each load, so a
    class defined there is a different class for every bot that loads it.
    """


class Restarting(commands.CheckFailure):
    """Raised for every command once a stop has begun: the user should come back in a minute."""


class HelixHelp(commands.DefaultHelpCommand):
    """discord.py's help with a usage line a member can type as it reads: a subcommand under its
    full name (discord.py's shows ``!status`` for ``!backup status``), and the arguments in it."""

    def get_command_signature(self, command: commands.Command[Any, ..., Any], /) -> str:
        return f"{self.context.clean_prefix}{command.qualified_name} {command.signature}".rstrip()

    async def send_pages(self) -> None:
        prefix = self.context.bot.settings.prefix  # the examples in descriptions are written with ``!``
        self.paginator.pages[:] = [in_prefix(page, prefix) for page in self.paginator.pages]
        await super().send_pages()


def bind_command_context(ctx: commands.Context) -> None:
    """Every log line about a command carries who, where, what, and a request id to group them.

    The id is stored on the context, so the error handler (another task) logs under the same id.
    """
    request_id = getattr(ctx, "helix_request_id", None) or secrets.token_hex(6)
    ctx.helix_request_id = request_id  # type: ignore[attr-defined]
    structlog.contextvars.bind_contextvars(
        request_id=request_id,
        command=ctx.command.qualified_name if ctx.command else None,
        guild=ctx.guild.id if ctx.guild else None,
        channel=ctx.channel.id if ctx.channel else None,
        user_id=ctx.author.id,
        via="slash" if ctx.interaction else "prefix",
    )


class HelixBot(commands.Bot):
    # State one cog writes and others read, declared here rather than set on the fly.
    last_heartbeat: str | None = None

    def __init__(self, settings: Settings, archive: Archive, *, serve_health: bool | None = None,
                 capture: Any | None = None, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # prefix commands need it (a privileged intent: enable it in the portal)
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.prefix),
            intents=intents,
            owner_ids=set(settings.owner_ids) or None,
            help_command=HelixHelp(
                dm_help=False, default_argument_description="a command or category, for example `!help find`"),
            allowed_mentions=NO_PINGS,
            **options,
        )
        self.settings = settings
        self.version = __version__
        self.archive = archive
        self.capture = capture  # capture.Capture, opened by the archive's owner; None: no capture commands
        self.health: HealthServer | None = None
        # `python -m bot run` serves /health itself from before the login (bot/startup.py); a bot
        # started on its own (tests, embedding) serves it from setup_hook.
        self.serve_health = settings.health if serve_health is None else serve_health
        self.started_at = time.perf_counter()  # SimCord virtualises time.monotonic
        self.stopping = False
        self.failed_extensions: dict[str, str] = {}
        self.ready_window_s = READY_WINDOW_S
        self._frozen = False
        self.add_check(self._not_stopping)
        self.before_invoke(self._bind_log_context)
        # Subscribed before the worker reports anything of this run, so no landing goes unseen.
        archive.worker.subscribe(self)

    async def is_admin(self, member: discord.abc.User) -> bool:
        """A Helix admin: the owner, HELIX_ADMIN_USER_IDS, or a member with a role in HELIX_ADMIN_ROLE_IDS."""
        s = self.settings
        if member.id in s.admin_user_ids or await self.is_owner(member):
            return True
        return bool({r.id for r in getattr(member, "roles", [])} & s.admin_role_ids)

    async def _bind_log_context(self, ctx: commands.Context) -> None:
        bind_command_context(ctx)
        log.info("command_start")

    async def _not_stopping(self, ctx: commands.Context) -> bool:
        if self.stopping:
            raise Restarting("Helix is restarting: try again in a minute.")
        return True

    async def setup_hook(self) -> None:
        if self.serve_health:
            self.health = HealthServer(self.settings.port, self.readiness)
            await self.health.start()
        for ext in EXTENSIONS:
            try:
                await self.load_extension(ext)
            except Exception as exc:  # one broken cog must not take the bot down
                self.failed_extensions[ext] = f"{type(exc).__name__}: {exc}"
                log.exception("extension_failed", extension=ext)
        self._tune_process()

    def _tune_process(self) -> None:
        """Start-up is over: tune the process for a loop that must answer while threads work.

        What start-up built (modules, cogs, settings) lives as long as the process, so it is moved
        out of the garbage collector's sight (``gc.freeze``): a full collection during a long
        backup then walks only what the backup made, not everything the bot ever loaded. Done here,
        not in ``on_ready``: a bot method ``on_ready`` is dispatched even after ``close()`` when a
        stop lands while discord.py still waits for the guilds, and fails there.
        """
        if self._frozen:
            return
        self._frozen = True
        sys.setswitchinterval(GIL_SWITCH_S)
        gc.freeze()

    async def readiness(self) -> tuple[bool, dict]:
        """Ready = connected to the gateway and the archive remote answered recently."""
        svc = self.archive.service
        last_ok = svc.last_ok_at
        recent = last_ok is not None and time.time() - last_ok < self.ready_window_s
        if not recent:
            with contextlib.suppress(SyncError, TimeoutError):
                async with asyncio.timeout(3.0):
                    await svc.ping()
                recent = True
        body = {
            "gateway": self.is_ready() and not self.is_closed(),
            "remote": svc.display,
            "remote_ok": recent,
            "last_error": svc.last_error.hint if svc.last_error and not recent else None,
            "stopping": self.stopping,
            "version": self.version,
        }
        return bool(body["gateway"] and recent and not self.stopping), body

    # -- archive events, re-dispatched as Discord-style events so cogs can listen -------------------

    async def archive_done(self, item: OutboxItem, result: ArchiveResult) -> None:
        self.dispatch("archive_done", item, result)

    async def archive_retry(self, item: OutboxItem, error: SyncError, delay_s: float) -> None:
        self.dispatch("archive_retry", item, error, delay_s)

    async def archive_failed(self, item: OutboxItem, error: SyncError) -> None:
        self.dispatch("archive_failed", item, error)

    async def archive_progress(self, item: OutboxItem, progress: Progress) -> None:
        self.dispatch("archive_progress", item, progress)

    async def archive_dropped(self, item: OutboxItem) -> None:
        self.dispatch("archive_dropped", item)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def uptime_s(self) -> float:
        return time.perf_counter() - self.started_at

    async def shutdown(self) -> None:
        """The graceful stop (SIGTERM): refuse new commands, let uploads finish, then close."""
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping", grace_s=self.settings.stop_grace_s)
        await self._before_stop()
        # While the upload in flight gets its grace the gateway stays up, so commands sent now are
        # answered "restarting". HELIX_STOP_GRACE_S is the whole stop: keep back what stopping
        # rclone's job and rclone itself take, so the process is gone within it.
        await self.archive.worker.stop(max(0.0, self.settings.stop_grace_s - STOP_RESERVE_S))
        await self.close()

    async def _before_stop(self) -> None:
        """Cogs with work a restart interrupts say so while the gateway is still up (``before_stop``),
        within a few seconds of the grace: an answer is worth less than an upload finishing."""
        hooks = [hook() for cog in self.cogs.values() if (hook := getattr(cog, "before_stop", None))]
        if not hooks:
            return
        try:
            async with asyncio.timeout(BEFORE_STOP_S):
                await asyncio.gather(*hooks)
        except TimeoutError:
            log.warning("before_stop_cut_short", after_s=BEFORE_STOP_S)
        except Exception:
            log.exception("before_stop_failed")

    async def close(self) -> None:
        self.stopping = True
        if self._frozen:
            gc.unfreeze()  # what this bot froze may be collected once it is gone (tests run many bots)
        self.archive.worker.unsubscribe(self)
        try:
            if self.health is not None:
                await self.health.stop()
        finally:
            await super().close()
