"""``!ritual [steps]``: render a ritual, post it, archive the PNG and its manifest, show the progress.

The request is durable (in the outbox) before the user is told anything; the upload itself is
the outbox worker's, so a remote that is down turns into "saved locally, queued as #N" and the
message is edited again when the files land. Edits are spaced at least 2 s apart (Discord rate
limits message edits).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import discord
import structlog
from discord.ext import commands

from bot.formatting import counted, human_duration, human_size, progress_bar
from bot.helix import HelixBot, UserFacingError
from bot.replies import PROGRESS_EDIT_S, answer, archive_name, in_prefix, plain_problem
from render.ritual_image import RitualSpec, render, seed_for
from sync import ArchiveResult, OutboxItem, Progress, SyncError

log = structlog.get_logger("helix.bot.ritual")
DEFAULT_FILE_LIMIT = 10 * 1024 * 1024
DROPPED = "🗑️ the bot's owner dropped this ritual's archive copy, so it will not be archived."


@dataclass
class RitualRun:
    """One ritual between "queued" and "landed": what to edit and what is still missing."""

    steps: int
    header: str
    started: float
    message: discord.Message | None = None
    item_ids: list[int] = field(default_factory=list)
    landed: dict[int, ArchiveResult] = field(default_factory=dict)
    outcome: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    last_edit: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def settle(self, outcome: str) -> None:
        if not self.outcome.done():
            self.outcome.set_result(outcome)


def _ritual_cooldown(ctx: commands.Context) -> commands.Cooldown | None:
    seconds = ctx.bot.settings.ritual_cooldown_s
    return commands.Cooldown(1, seconds) if seconds > 0 else None


# The most steps any configuration allows (HELIX_RITUAL_MAX_STEPS' own ceiling). The setting's
# value replaces it in the slash command's declared maximum when the cog loads.
STEPS_CEILING = 1_000_000
_ASCII_INT = re.compile(r"[+-]?[0-9]+")


class Steps(commands.Range):
    """``steps``: a whole number in ASCII digits, from 1 to HELIX_RITUAL_MAX_STEPS.

    A ``commands.Range``, so the hybrid command declares min and max to Discord and its own UI
    enforces them for ``/ritual``; for ``!ritual`` the conversion refuses what ``int()`` would take
    but nobody means (``٣``, ``1_000``), and a range error is raised while parsing, so it is told
    before the cooldown is spent or reported.
    """

    def __init__(self) -> None:
        super().__init__(annotation=int, min=1, max=STEPS_CEILING)

    async def convert(self, ctx: commands.Context, value: str) -> int:  # type: ignore[override]
        if isinstance(value, int):  # a slash command's option arrives as a number already
            number = value
        elif _ASCII_INT.fullmatch(value.strip()):
            number = int(value)
        else:
            raise commands.BadArgument(f"steps {value[:20]!r} is not a whole number")
        limit = ctx.bot.settings.ritual_max_steps
        if not 1 <= number <= limit:
            raise commands.RangeError(number, minimum=1, maximum=limit)  # type: ignore[arg-type]
        return number


STEPS = Steps()
STEPS_PARAM = commands.parameter(default=108, displayed_default=None,  # the description says it once
                                 description="how many steps the figure takes (default 108)")


def title(steps: object) -> str:
    """``Ritual of 1 step``, ``Ritual of 108 steps``; a count the outbox lost is not made up."""
    return f"Ritual of {counted(steps, 'step')}" if isinstance(steps, int) else "Ritual"


def _write_pair(folder: Path, stem: str, png: bytes, manifest: dict) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    png_path, json_path = folder / f"{stem}.png", folder / f"{stem}.json"
    png_path.write_bytes(png)
    json_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return png_path, json_path


class Ritual(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot
        self.host = socket.gethostname()
        self._runs: dict[str, RitualRun] = {}

    async def cog_load(self) -> None:
        limit = self.bot.settings.ritual_max_steps
        self.ritual.extras["steps"] = f"a whole number from 1 to {limit}"
        # Declared to Discord with the configured maximum, so its UI refuses more before we see it.
        app = self.ritual.app_command
        if app is not None:
            for param in app._params.values():  # no public setter: the range is only known at load
                if param.name == "steps":
                    param.max_value = limit

    # cooldown_after_parsing: a typo (`!ritual abc`) is refused without spending the user's cooldown.
    @commands.hybrid_command(name="ritual", description="Render a ritual image and archive it", ignore_extra=False,
                             cooldown_after_parsing=True,
                             extras={"example": "!ritual 108", "example_slash": "/ritual steps:108"})
    @commands.dynamic_cooldown(_ritual_cooldown, commands.BucketType.user)
    async def ritual(self, ctx: commands.Context, steps: STEPS = STEPS_PARAM) -> None:
        """Render a ritual of `steps` steps, post it and archive the PNG and its manifest."""
        bot = self.bot
        limit = bot.settings.ritual_max_steps
        if not 1 <= steps <= limit:
            ctx.command.reset_cooldown(ctx)  # refused, so nothing was rendered: it must not count
            example = f"{ctx.clean_prefix}ritual 108" if ctx.prefix else "/ritual steps:108"
            raise UserFacingError(f"`steps` must be a whole number from 1 to {limit}: for example `{example}`.")
        await ctx.defer()
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        art = await asyncio.to_thread(render, RitualSpec(steps=steps, seed=seed_for(steps, now)),
                                      created_at=now, version=bot.version, host=self.host)
        render_ms = (time.perf_counter() - t0) * 1000
        stamp = f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z"
        stem = f"ritual-{stamp}-{steps}"
        rel = f"rituals/{now:%Y/%m/%d}/{stem}"
        data_dir = Path(bot.settings.sync.data_dir)
        try:
            png_path, json_path = await asyncio.to_thread(_write_pair, data_dir / "tmp", stem, art.png, art.manifest)
        except OSError as exc:
            log.error("ritual_not_saved", data_dir=str(data_dir), error=exc.strerror or type(exc).__name__,
                      fix="make HELIX_DATA_DIR a folder this user can write")
            raise UserFacingError("I could not save the ritual on this host: the operator must fix its data folder "
                                  "(the log says how).") from None
        group = f"{stem}-{secrets.token_hex(3)}"
        header = f"🌀 **{title(steps)}** · {art.manifest.get('figure', '')} · rendered in {render_ms:.0f} ms"
        run = RitualRun(steps=steps, header=header, started=time.perf_counter())
        self._runs[group] = run
        # The lock is held from the enqueue to the answer: the worker may report on these items
        # before the answer exists (a remote that is down fails in milliseconds), and that report
        # must edit the answer, not find nothing to edit.
        async with run.lock:
            try:
                items = await bot.archive.outbox.enqueue_many(
                    [(png_path, f"{rel}.png"), (json_path, f"{rel}.json")], kind="ritual", group=group,
                    meta={"channel_id": ctx.channel.id, "user_id": ctx.author.id, "steps": steps}, move=True)
            except BaseException:
                self._runs.pop(group, None)
                raise
            run.item_ids = [i.id for i in items]
            log.info("ritual_queued", steps=steps, items=run.item_ids, render_ms=round(render_ms, 1),
                     png_bytes=len(art.png))

            file_limit = ctx.guild.filesize_limit if ctx.guild else DEFAULT_FILE_LIMIT
            note = ""
            file = None
            if len(art.png) <= file_limit:
                file = discord.File(io.BytesIO(art.png), filename=f"{stem}.png")
            else:
                note = f"\n(the image is {human_size(len(art.png))}, over this server's {human_size(file_limit)} " \
                       "upload limit: it is only archived)"
            ids = " and ".join(f"#{i}" for i in run.item_ids)
            run.header += note
            stuck = await self._waiting_on_remote(run)
            body = f"📦 queued as {ids} · archiving…" if stuck is None else \
                f"💾 saved locally, queued as {ids}, will retry: {archive_name(bot.archive.service)} is not " \
                "answering right now."
            # The spacing rule is between edits: the first edit may follow this send at once.
            run.message = await answer(ctx, f"{header}{note}\n{body}", file=file)
        if stuck is not None:
            run.settle("queued")
        if run.message is not None:
            for item_id in run.item_ids:
                await bot.archive.outbox.update_meta(item_id, message_id=run.message.id)
        outcome = await run.outcome
        log.info("ritual_answered", outcome=outcome, items=run.item_ids)

    # -- what the outbox worker reports -----------------------------------------------------------

    async def _edit(self, run: RitualRun, body: str, *, final: bool = False) -> None:
        """Edit the ritual's message, never more often than every PROGRESS_EDIT_S seconds."""
        async with run.lock:
            if run.message is None:
                return
            wait = run.last_edit + PROGRESS_EDIT_S - time.perf_counter()
            if wait > 0:
                if not final:
                    return  # a newer progress report will come; drop this one
                await asyncio.sleep(wait)
            try:
                # Through the channel, not the interaction webhook: one path for prefix and slash
                # replies, and it keeps working after the 15-minute interaction token expires.
                body = in_prefix(body, self.bot.settings.prefix)
                await run.message.channel.get_partial_message(run.message.id).edit(content=f"{run.header}\n{body}")
            except discord.HTTPException as exc:
                log.warning("ritual_edit_failed", status=exc.status)
            run.last_edit = time.perf_counter()

    @commands.Cog.listener()
    async def on_archive_progress(self, item: OutboxItem, progress: Progress) -> None:
        run = self._runs.get(item.group or "")
        if run is None or progress.total_bytes == 0 or progress.elapsed_s < 1.0:
            return  # an upload done within a second needs no progress bar, only the final edit
        speed = f"{human_size(progress.speed)}/s" if progress.speed else "…"
        part = "image" if item.rel_path.endswith(".png") else "manifest"
        await self._edit(run, f"📤 uploading {part} #{item.id} {progress_bar(progress.fraction)} · {speed}")

    @commands.Cog.listener()
    async def on_archive_done(self, item: OutboxItem, result: ArchiveResult) -> None:
        if item.kind != "ritual":
            return
        run = self._runs.get(item.group or "")
        if run is None:
            await self._landed_after_restart(item)
            return
        run.landed[item.id] = result
        if len(run.landed) < len(run.item_ids):
            return
        self._runs.pop(item.group or "", None)
        png = next((r for r in run.landed.values() if r.rel_path.endswith(".png")), result)
        size = sum(r.size for r in run.landed.values())
        took = human_duration(time.perf_counter() - run.started)
        try:
            await self._edit(run, f"✅ archived to {self._where(png.rel_path)} (+ manifest) · {human_size(size)} · "
                                  f"verified by {png.verified} · took {took}", final=True)
        finally:
            run.settle("archived")

    def _where(self, rel_path: str) -> str:
        """Where a file landed, as anyone in the channel may see it: never a path on the host."""
        svc = self.bot.archive.service
        if svc.remote.root.is_local:
            return f"{archive_name(svc)} as `{rel_path}`"
        return f"`{svc.remote_path(rel_path)}`"

    def _plain(self, error: SyncError) -> str:
        """A ritual's message is public: the archive's state in plain words; the fix goes to the log."""
        log.warning("ritual_archive_problem", kind=error.kind, hint=error.hint)
        return plain_problem(error, self.bot.archive.service)

    async def _waiting_on_remote(self, run: RitualRun) -> str | None:
        """Why the queue is stalled, when an item ahead of ``run``'s is backing off after a failure."""
        try:
            head = await self.bot.archive.outbox.next_pending()
        except SyncError:  # the items are queued already; only the wording of the answer is at stake
            return None
        if head is None or head.id >= min(run.item_ids) or not head.last_error or head.next_attempt_at <= time.time():
            return None
        return head.last_error

    @commands.Cog.listener()
    async def on_archive_retry(self, item: OutboxItem, error: SyncError, delay_s: float) -> None:
        # The queue is ordered and a retryable failure is the remote's, not the item's: every ritual
        # waiting behind this item is as stuck as the item's own, so each is told now, not at its turn.
        for run in list(self._runs.values()):
            if run.outcome.done() or not run.item_ids:
                continue  # told already, or still being queued (its command answers "will retry" itself)
            when = f"next try in {human_duration(delay_s)}" if item.id in run.item_ids else f"after #{item.id}"
            shown = " and ".join(f"#{i}" for i in run.item_ids)
            try:
                await self._edit(run, f"💾 saved locally, queued as {shown}, will retry ({when}): "
                                      f"{self._plain(error)}.", final=True)
            finally:
                run.settle("queued")

    @commands.Cog.listener()
    async def on_archive_failed(self, item: OutboxItem, error: SyncError) -> None:
        run = self._runs.pop(item.group or "", None)
        if run is None:
            return
        try:
            parts = " and ".join(f"#{i}" for i in run.item_ids) or f"#{item.id}"
            await self._edit(run, f"❌ could not archive {parts}: {self._plain(error)}; once it is fixed, an owner "
                                  f"can run `!outbox retry {item.id}`, which retries the whole ritual.", final=True)
        finally:
            run.settle("failed")

    @commands.Cog.listener()
    async def on_archive_dropped(self, item: OutboxItem) -> None:
        """An owner gave up on the ritual (``!outbox drop``, which takes its image and manifest together)."""
        if item.kind != "ritual" or item.state == "done":
            return  # a part that landed: only its row was forgotten
        run = self._runs.pop(item.group or "", None)
        if run is None:
            # Nobody waits on it any more (it failed, or Helix restarted since): its message still says
            # so, or "queued". Edited once, for its image: the first of the two queued, so reported first.
            if item.rel_path.endswith(".png"):
                await self._edit_later(item, DROPPED)
            return
        try:
            await self._edit(run, DROPPED, final=True)
        finally:
            run.settle("dropped")

    async def _landed_after_restart(self, item: OutboxItem) -> None:
        """Items queued before a restart: edit their message once the whole ritual has landed."""
        if not item.group:
            return
        group = await self.bot.archive.outbox.group_items(item.group)
        if any(i.state != "done" for i in group):
            return
        png = next((i for i in group if i.rel_path.endswith(".png")), item)
        await self._edit_later(item, f"✅ archived later to {self._where(png.rel_path)} (+ manifest)")

    async def _edit_later(self, item: OutboxItem, body: str) -> None:
        """Edit the message of a ritual no run holds (a restart came, or it ended), from the ids kept in the outbox."""
        channel_id, message_id = item.meta.get("channel_id"), item.meta.get("message_id")
        channel = self.bot.get_channel(int(channel_id)) if channel_id and message_id else None
        if not isinstance(channel, discord.abc.Messageable):
            return
        try:
            message = channel.get_partial_message(int(message_id))  # type: ignore[union-attr,arg-type]
            await message.edit(content=f"🌀 **{title(item.meta.get('steps'))}**\n{body}")
        except (discord.HTTPException, AttributeError) as exc:
            log.info("ritual_late_edit_skipped", reason=type(exc).__name__)


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Ritual(bot))
