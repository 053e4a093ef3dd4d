"""The catalogue rebuilt from the remote: at start-up when it is empty or a rebuild was cut short,
and on demand with ``!reindex``.

The remote is the source of truth. A fresh volume starts with an empty catalogue; the rebuild runs
in the background (commands are answered meanwhile, ``!status`` shows how far it got), so nothing
archived is lost with the volume. A deploy that stops Helix half-way through a rebuild leaves a
catalogue that is not empty but not whole either: the next start reads the rest (segments read
already are skipped).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import structlog
from discord.ext import commands, tasks

from bot.formatting import counted
from bot.helix import HelixBot
from bot.replies import PROGRESS_EDIT_S, amend, answer
from capture.rebuild import RebuildProgress, rebuild
from catalogue import CatalogueError

log = structlog.get_logger("helix.bot.reindex")
# A failed start-up rebuild is tried again after this, then twice as long each time up to 32 times as
# long, for as long as it fails: until one ends no backup runs, and an outage must not need an owner.
RETRY_FIRST_S = 30.0
RETRY_DOUBLINGS = 5


class Reindex(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot
        self.progress = RebuildProgress()
        self._task: asyncio.Task[RebuildProgress] | None = None
        self._reply: Any = None  # the !reindex reply that shows the progress while it runs

    @property
    def status_line(self) -> str | None:
        """For ``!status``: the rebuild's progress, once one has started and found something to read."""
        p = self.progress
        if p.state == "idle" or (p.state == "done" and p.segments_total == 0):
            return None
        return in_words(p)

    @property
    def incomplete(self) -> str | None:
        """While a rebuild runs, why an answer from the catalogue may miss something: without it
        a member searching during a start-up rebuild would read "nothing matches" as the archive's
        answer."""
        p = self.progress
        if p.state == "failed":
            return ("the catalogue's rebuild from the archive has not finished (it failed; admins see why in "
                    "`!status`), so some archived messages may be missing")
        if p.state != "running":
            return None
        read = f" ({files_read(p)})" if p.segments_total else ""
        return f"the catalogue is still being rebuilt from the archive{read}, so some archived messages may be missing"

    @property
    def backups_wait_for(self) -> str:
        """Why a backup has not started while a rebuild is due (the engine holds it until one ends)."""
        p = self.progress
        if p.state == "failed":
            again = f"Helix tries again {in_time(p.retry_at)}, or " if p.retry_at else ""
            return (f"the catalogue's rebuild from the archive failed: `!status` says why to admins; {again}the "
                    "owner can retry with `!reindex`")
        if p.state == "running":
            read = f" ({files_read(p)})" if p.segments_total else ""
            return f"the catalogue is being rebuilt from the archive{read}"
        return "the catalogue is to be rebuilt from the archive first: the owner starts it with `!reindex`"

    async def cog_load(self) -> None:
        if self.bot.capture is not None:
            self._task = asyncio.create_task(self._at_start(), name="helix-catalogue-rebuild")

    async def cog_unload(self) -> None:
        self._report.cancel()
        self._retry.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _at_start(self) -> RebuildProgress:
        """The start-up rebuild, tried again a few times while it fails: the remote may be down for a
        moment, and until a rebuild ends no backup runs (it would archive everything again)."""
        try:
            reason = await self.bot.capture.catalogue.call("rebuild_reason")  # type: ignore[union-attr]
        except CatalogueError as exc:
            log.warning("rebuild_skipped", error=str(exc))
            return self.progress
        if reason is None:
            return self.progress
        log.info("rebuild_started", reason=reason)
        done = await self._run()
        if done.state == "failed":
            self._retry_later()
        return done

    def _retry_later(self) -> None:
        """A failed rebuild leaves one due, and the backups waiting for it: it is tried again by itself,
        later each time, whoever started it (an outage must not need an owner)."""
        if not self._retry.is_running():
            self._retry.change_interval(seconds=RETRY_FIRST_S)
            self._retry.start()

    @tasks.loop(seconds=RETRY_FIRST_S)
    async def _retry(self) -> None:
        """The failed start-up rebuild once more, each wait twice as long as the one before (up to a cap)."""
        if self._retry.current_loop > 0:
            if self.progress.state != "failed":
                self._retry.cancel()  # an owner's !reindex ran in between
                return
            self._task = asyncio.create_task(self._run(), name="helix-catalogue-rebuild")
            if (await asyncio.shield(self._task)).state != "failed":
                self._retry.cancel()
                return
        delay = RETRY_FIRST_S * 2 ** min(self._retry.current_loop, RETRY_DOUBLINGS)
        self._retry.change_interval(seconds=delay)
        self.progress.retry_at = time.time() + delay
        log.warning("rebuild_retry_scheduled", in_s=delay, action="or run !reindex once the archive remote answers")

    async def _run(self) -> RebuildProgress:
        capture = self.bot.capture
        assert capture is not None
        self.progress.retry_at = None
        done = await rebuild(capture.catalogue, self.bot.archive.service,
                             Path(self.bot.archive.settings.data_dir), self.progress)
        if done.state == "done":
            capture.rebuilt()  # the watches it brought back catch up; the backups waiting for it start
        return done

    @commands.command(name="reindex")
    @commands.is_owner()
    async def reindex(self, ctx: commands.Context) -> None:
        """Owner: rebuild the search catalogue from the archive remote's segments (adds what is missing)."""
        if self.bot.capture is None:
            await answer(ctx, "Capture is not running on this Helix, so there is no catalogue to rebuild.")
            return
        if self._task is not None and not self._task.done():
            await answer(ctx, f"A rebuild is already running ({in_words(self.progress)}): see `!status`.")
            return
        self._retry.cancel()  # a failed start-up rebuild waiting to be tried again: now, then
        # Taken before the reply's round trip to Discord: a second !reindex meanwhile must find this one
        # running, not start another on the same catalogue and progress. Shown as running at once, so
        # its answer does not quote the last rebuild's end.
        self.progress.state, self.progress.segments_done = "running", 0
        self._task = asyncio.create_task(self._run(), name="helix-catalogue-reindex")
        reply = self._reply = await answer(ctx, "Rebuilding the catalogue from the archive remote…")
        self._report.start()
        try:
            done = await asyncio.shield(self._task)
        finally:
            self._reply = None
            self._report.cancel()
            if (reporting := self._report.get_task()) is not None:
                await asyncio.wait([reporting])  # its last edit must not land after the result
        if done.state == "failed":
            self._retry_later()
        result = (f"Catalogue {in_words(done)}." if done.state != "failed" else
                  f"The rebuild failed: {done.error} Helix tries again by itself; `!reindex` runs it at once.")
        # The result replaces the progress in the same reply, so no stale "Rebuilding…" is left above it.
        if reply is None or not await amend(reply, result, prefix=self.bot.settings.prefix):
            await answer(ctx, result)

    @tasks.loop(seconds=PROGRESS_EDIT_S)
    async def _report(self) -> None:
        """A big archive takes minutes to read: the reply says how far the rebuild got."""
        p = self.progress
        if self._report.current_loop == 0 or self._reply is None or p.state != "running":
            return  # the first turn comes at once, when the reply says it all already
        await amend(self._reply, f"Rebuilding the catalogue from the archive remote: {files_read(p)}…",
                    prefix=self.bot.settings.prefix)


def in_time(at: float) -> str:
    """When a retry comes, as an admin reads it: "in 2 min"."""
    seconds = max(0.0, at - time.time())
    return f"in {seconds:.0f} s" if seconds < 90 else f"in {seconds / 60:.0f} min"


def files_read(p: RebuildProgress) -> str:
    return f"{p.segments_done:,}/{p.segments_total:,} archive files read"


def in_words(p: RebuildProgress) -> str:
    """The rebuild in an admin's words, for ``!reindex`` and ``!status`` alike: what a segment or a
    line is belongs to the archive format, not to the people reading the reply."""
    if p.state == "running":
        return f"rebuilding from the archive remote: {files_read(p)}"
    if p.state == "failed":
        # "rebuild failed" first: !status shows members that much and no more (the error is the admins').
        again = f"Helix tries again {in_time(p.retry_at)}, or " if p.retry_at else ""
        return f"rebuild failed: {(p.error or 'see the log').rstrip('.')}; {again}the owner can retry with `!reindex`"
    if p.state == "done":
        new = "message, edit or deletion" if p.lines_added == 1 else "messages, edits or deletions"
        return (f"rebuilt from the archive remote: {counted(p.segments_done, 'archive file')} read, "
                f"{p.lines_added:,} new {new}")
    return "not rebuilt"


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Reindex(bot))
