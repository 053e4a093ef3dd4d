"""Admin and owner commands: ``!testmega`` (round trip on the archive), ``!sync``, ``!outbox``."""

from __future__ import annotations

import discord
import structlog
from discord.ext import commands

from bot.formatting import human_duration, human_size
from bot.helix import HelixBot, UserFacingError
from bot.replies import answer, echo, sees_internals
from sync import OutboxItem, SyncError

log = structlog.get_logger("helix.bot.admin")
OUTBOX_LIST_LIMIT = 15
MESSAGE_LIMIT = 2000  # Discord's limit on a message's content
OUTBOX_HINT = "`!outbox retry <id|all>` · `!outbox drop <id>`"
SCOPE = commands.parameter(default="guild", description="`guild` (HELIX_GUILD_ID or this server, at once) "
                                                       "or `global` (within an hour)")
ITEM_ID = commands.parameter(displayed_name="id|all",
                            description="an outbox item number (the outbox command lists them), or all")


def is_admin():
    """The owner, HELIX_ADMIN_USER_IDS, or a member with a role in HELIX_ADMIN_ROLE_IDS."""

    async def predicate(ctx: commands.Context) -> bool:
        if await sees_internals(ctx):
            return True
        # The member is told who may; the variable that grants it is the operator's business (the log's).
        log.info("admin_refused", fix="add the member's role to HELIX_ADMIN_ROLE_IDS or its id to HELIX_ADMIN_USER_IDS")
        raise commands.CheckFailure(f"Only Helix admins can use {ctx.clean_prefix if ctx.prefix else '/'}"
                                    f"{ctx.command.name if ctx.command else 'this'}: ask a server admin if you "
                                    "need it.")

    return commands.check(predicate)


class ConfirmDrop(discord.ui.View):
    """A yes/no question that only the person who asked can answer."""

    def __init__(self, author_id: int) -> None:
        super().__init__(timeout=60)
        self.author_id = author_id
        self.confirmed: bool | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.author_id:
            await interaction.response.send_message("Only the owner who asked can answer this.", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Drop it", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.confirmed = True
        await interaction.response.edit_message(view=None)
        self.stop()

    @discord.ui.button(label="Keep it", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.confirmed = False
        await interaction.response.edit_message(view=None)
        self.stop()


class Admin(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="testmega", aliases=["testremote"],
                             description="Admins: round trip on the archive remote, each step timed")
    @is_admin()
    async def testmega(self, ctx: commands.Context) -> None:
        """Write, upload, list, read back, compare and delete a probe file on the archive remote."""
        await ctx.defer()
        report = await self.bot.archive.service.probe()
        ok = report.ok
        embed = discord.Embed(
            title=f"Archive round trip {'ok' if ok else 'FAILED'}",
            description=f"remote `{report.remote}`",
            colour=discord.Colour.green() if ok else discord.Colour.red(),
        )
        for step in report.steps:
            mark = "✅" if step.ok else "❌"
            embed.add_field(name=f"{mark} {step.name}", value=f"{step.seconds * 1000:.0f} ms")
        failed = report.failed
        if failed is not None:
            hint = failed.error.hint if failed.error else "the step did not finish"
            embed.add_field(name=f"Failed at: {failed.name}", value=hint, inline=False)
            log.warning("probe_failed", step=failed.name, kind=failed.error.kind if failed.error else None)
        else:
            embed.set_footer(text=f"total {report.total_s * 1000:.0f} ms")
        await answer(ctx, embed=embed)

    @commands.command(name="sync")
    @commands.is_owner()
    async def sync_commands(self, ctx: commands.Context, scope: str = SCOPE) -> None:
        """Owner: publish the slash commands, to HELIX_GUILD_ID (or this server) or `global`ly."""
        tree = self.bot.tree
        if scope == "global":
            synced = await tree.sync()
            where = "globally (may take up to an hour to appear)"
        else:
            guild_id = self.bot.settings.guild_id or (ctx.guild.id if ctx.guild else None)
            if guild_id is None:
                await answer(ctx, "Run `!sync` in a server, set HELIX_GUILD_ID, or use `!sync global`.")
                return
            guild = discord.Object(id=guild_id)
            tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
            where = f"to server {guild_id}"
        await answer(ctx, f"Synced {len(synced)} slash commands {where}: "
                          f"{', '.join('/' + c.name for c in synced)}.")

    @commands.group(name="outbox", invoke_without_command=True)
    @commands.is_owner()
    async def outbox(self, ctx: commands.Context) -> None:
        """Owner: what is waiting to be archived, and what failed."""
        # What follows `!outbox` when it named no subcommand (discord.py clears subcommand_passed
        # before calling the group itself).
        extra = ctx.view.read_rest().strip().split(maxsplit=1)
        if extra:
            raise UserFacingError(f"There is no `!outbox` subcommand {echo(extra[0], 20)}: use "
                                  f"`!outbox` alone, or {OUTBOX_HINT}.")
        ob = self.bot.archive.outbox
        counts = await ob.counts()
        items = await ob.list(("pending", "uploading", "failed"), limit=OUTBOX_LIST_LIMIT)
        lines = [f"**Outbox**: {counts.pending} pending, {counts.uploading} uploading, {counts.failed} failed"
                 + (f" · oldest waiting {human_duration(counts.oldest_pending_age_s)}"
                    if counts.oldest_pending_age_s is not None else "")]
        for it in items:
            why = f" — {it.last_error}" if it.last_error else ""
            lines.append(f"`#{it.id}` {it.state} · {it.kind} · `{it.rel_path}` ({human_size(it.size)}) · "
                         f"{it.attempts} {'try' if it.attempts == 1 else 'tries'}{why}")
        if not items:
            lines.append("Nothing waiting: everything has landed.")
        total = counts.pending + counts.uploading + counts.failed
        await answer(ctx, _fit(lines, total - len(items)))

    @outbox.command(name="retry", extras={"example": "!outbox retry 3"})
    @commands.is_owner()
    async def outbox_retry(self, ctx: commands.Context, which: str = ITEM_ID) -> None:
        """Owner: try failed (or waiting) items again now: an id (with the rest of its ritual), or `all`."""
        target: int | str = "all" if which.lower() == "all" else _item_id(which)
        items = await self.bot.archive.outbox.retry(target)
        if not items:
            await answer(ctx, "Nothing to retry." if target == "all" else f"#{target} is not failed or pending.")
            return
        await answer(ctx, f"Retrying {', '.join(f'#{i.id}' for i in items)} now.")

    @outbox.command(name="drop", extras={"example": "!outbox drop 3"})
    @commands.is_owner()
    async def outbox_drop(self, ctx: commands.Context,
                          which: str = commands.parameter(displayed_name="id", description="an outbox item number")
                          ) -> None:
        """Owner: give up on one item, with the rest of its ritual (asks first; its local copy is deleted)."""
        item_id = _item_id(which)
        outbox = self.bot.archive.outbox
        item = await outbox.get(item_id)
        if item is None:
            await answer(ctx, f"There is no outbox item #{item_id}.")
            return
        # The parts of its group that have not landed go with it (a ritual's image and manifest).
        rest = [i for i in await outbox.group_items(item.group) if i.id != item.id and i.state != "done"] \
            if item.group else []
        also = f" and {_ids(rest)}, queued with it" if rest else ""
        copies = "Their local copies" if rest else "Its local copy"
        view = ConfirmDrop(ctx.author.id)
        question = await answer(ctx, f"Drop #{item.id} (`{item.rel_path}`, {item.state}){also}? {copies} will be "
                                     f"deleted and {'they' if rest else 'it'} will not be uploaded.", view=view)
        timed_out = await view.wait()
        if timed_out or not view.confirmed:
            if question is not None:
                await question.edit(content=f"Kept #{item.id}.", view=None)
            return
        try:
            # Through the worker: whoever waits on these items (a ritual's message, capture) is told.
            dropped = await self.bot.archive.worker.drop(item.id)
        except SyncError as exc:
            await answer(ctx, exc.hint)
            return
        if question is not None:
            await question.edit(content=f"Dropped {_ids(dropped)} (`{item.rel_path}`"
                                        f"{', with the rest of its group' if len(dropped) > 1 else ''}).", view=None)


def _fit(lines: list[str], unlisted: int) -> str:
    """The listing in one message: whole lines only, then how many are left out, then the hint."""
    head, rows = lines[0], lines[1:]
    for shown in range(len(rows), -1, -1):
        more = unlisted + len(rows) - shown
        tail = ([f"…and {more} more."] if more > 0 else []) + [OUTBOX_HINT]
        text = "\n".join([head, *rows[:shown], *tail])
        if len(text) <= MESSAGE_LIMIT:
            return text
    return text[:MESSAGE_LIMIT]


def _ids(items: list[OutboxItem]) -> str:
    """``#3``, ``#3 and #4``, ``#3, #4 and #5``."""
    shown = [f"#{i.id}" for i in items]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _item_id(raw: str) -> int:
    text = raw.lstrip("#")
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise UserFacingError(f"{echo(raw, 20)} is not an outbox item id: use a number such as 12 (see `!outbox`).")
    return int(text)


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Admin(bot))
