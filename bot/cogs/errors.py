"""The one place where command errors become answers, for prefix and slash commands alike.

User mistakes (bad argument, missing permission, cooldown, unknown command) get one sentence,
seen only by the invoker when the command was a slash command.
Archive errors carry their own sentence (``SyncError.hint``). Anything else gets a short message
with an error id, and the same id is logged with the traceback: never a stack trace in Discord.
"""

from __future__ import annotations

import secrets

import discord
import structlog
from discord import app_commands
from discord.ext import commands

from bot.helix import HelixBot, Restarting, UserFacingError, bind_command_context
from bot.replies import answer, echo, plain_problem, sees_internals
from capture import SourceError
from sync import SyncError

log = structlog.get_logger("helix.bot.errors")


def example(ctx: commands.Context) -> str:
    """How to type the command, in the one hint style: ``!ritual 108``, ``/ritual steps:108``.

    Not the signature (``!ritual [steps=108]``): people type what a hint shows, brackets included.
    """
    command = ctx.command
    if command is None:
        return f"{ctx.clean_prefix}help"
    slash = ctx.interaction is not None
    shown = command.extras.get("example_slash" if slash else "example")
    if shown:
        return shown
    words = []
    for param in getattr(command, "clean_params", {}).values():  # a context menu has no parameters to type
        value = param.default if param.default not in (param.empty, None) else f"<{param.displayed_name or param.name}>"
        words.append(f"{param.name}:{value}" if slash else str(value))
    prefix = "/" if slash else ctx.clean_prefix
    return " ".join([f"{prefix}{command.qualified_name}", *words])


def _sentence_for(ctx: commands.Context, error: Exception, admin: bool = False) -> str | None:
    """The sentence for a user-caused error, or None when it is a bug; ``admin``: may name the fix."""
    prefix = ctx.clean_prefix if ctx.prefix else "/"
    name = ctx.command.qualified_name if ctx.command else "that command"
    usage = example(ctx)
    if isinstance(error, commands.HybridCommandError):
        error = error.original
    if isinstance(error, app_commands.CommandInvokeError | commands.CommandInvokeError):
        error = error.original
    if isinstance(error, UserFacingError | Restarting | SourceError):  # Discord's refusal is said as one sentence
        return str(error)
    if isinstance(error, SyncError):
        return error.hint if admin else f"I could not do that: {plain_problem(error, ctx.bot.archive.service)}."
    if isinstance(error, commands.CommandOnCooldown):
        return f"Slow down: you can use {prefix}{name} again in {error.retry_after:.0f} s."
    if isinstance(error, commands.MissingRequiredArgument):
        return f"{prefix}{name} needs `{error.param.displayed_name or error.param.name}`: for example `{usage}`."
    if isinstance(error, commands.TooManyArguments):
        said = ctx.command.extras.get("too_many") if ctx.command else None  # a command whose words are few and fixed
        return said or f"{prefix}{name} takes fewer words than that: for example `{usage}`."
    if isinstance(error, commands.BadArgument | commands.BadUnionArgument | commands.ArgumentParsingError |
                  app_commands.TransformerError):  # the last: a slash option's value Helix could not take
        param = ctx.current_parameter
        if param is not None:
            wanted = ctx.command.extras.get(param.name) if ctx.command else None
            wanted = wanted or ("a whole number" if param.annotation is int else f"a valid {param.name}")
            return f"`{param.name}` must be {wanted}: for example `{usage}`."
        return f"That is not a valid argument for {prefix}{name}: for example `{usage}`."
    if isinstance(error, commands.NotOwner):
        return f"Only the bot's owner can use {prefix}{name}."
    if isinstance(error, commands.NoPrivateMessage):
        return f"{prefix}{name} works in a server channel, not in direct messages."
    if isinstance(error, commands.MissingPermissions | commands.MissingAnyRole | commands.MissingRole):
        return f"You are not allowed to use {prefix}{name}."
    if isinstance(error, commands.BotMissingPermissions):
        missing = ", ".join(p.replace("_", " ") for p in error.missing_permissions)
        return f"I need the {missing} permission here to do that: ask a server admin to grant it."
    if isinstance(error, commands.MaxConcurrencyReached):
        return f"{prefix}{name} is already running: wait for it to finish."
    if isinstance(error, commands.CheckFailure):
        return str(error) if str(error) and "check functions" not in str(error) else \
            f"You are not allowed to use {prefix}{name}."
    return None


class Errors(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self._old_tree_error = self.bot.tree.on_error
        self.bot.tree.on_error = self.on_app_command_error

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._old_tree_error

    @commands.Cog.listener()
    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        bind_command_context(ctx)
        if isinstance(error, commands.CommandNotFound):
            if ctx.invoked_with:
                await answer(ctx, f"There is no command {echo(ctx.invoked_with)}: try `{ctx.clean_prefix}help`.")
            return
        try:
            admin = await sees_internals(ctx)
        except Exception:  # deciding who sees the fix must not stop the answer
            admin = False
        sentence = _sentence_for(ctx, error, admin)
        if sentence is None:
            error_id = secrets.token_hex(4)
            original = getattr(error, "original", error)
            log.error("command_crashed", error_id=error_id, exc_info=original)
            sentence = f"Something went wrong on my side (error id `{error_id}`); the operator can find it in the logs."
        else:
            original = getattr(error, "original", error)
            hint = original.hint if isinstance(original, SyncError) else None  # the fix, when the user was not told it
            log.info("command_refused", reason=type(error).__name__, sentence=sentence, hint=hint)
        # A slash command's refusal or error is the invoker's business only: the channel sees neither
        # the mistake nor who may do what (a prefix command's answer replies to a message all saw).
        await answer(ctx, sentence, ephemeral=ctx.interaction is not None)

    async def on_app_command_error(self, interaction: discord.Interaction,
                                   error: app_commands.AppCommandError) -> None:
        """Pure app-command errors (hybrid commands report through on_command_error)."""
        ctx = await commands.Context.from_interaction(interaction)
        await self.on_command_error(ctx, error)  # type: ignore[arg-type]


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Errors(bot))
