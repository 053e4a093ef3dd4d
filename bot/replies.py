"""Answering a user the same way from a prefix or a slash command, without ever failing twice."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import discord
import structlog
from discord.ext import commands

from runtime.logs import redact
from sync import SyncError

log = structlog.get_logger("helix.bot")

# What any message of the bot may ping: nobody, except the author of a message it replies to. A
# reply may echo what a member typed, and echoed input must never ping someone on their behalf.
NO_PINGS = discord.AllowedMentions(everyone=False, roles=False, users=False, replied_user=True)
# How often a progress message may be edited: Discord rate-limits edits of one message.
PROGRESS_EDIT_S = 2.0
MESSAGE_CHARS = 2000  # the most a bot's message may hold: Discord refuses a longer one outright


_HINT = re.compile(r"(?<!\\)`!(?=[a-z])")  # a command in a code span, as every hint writes it


def in_prefix(text: str, prefix: str) -> str:
    """Hints are written with ``!``: where HELIX_PREFIX is another, the commands they show are typed
    with that one (a backslash before the backtick marks escaped text, which is left as it is)."""
    return text if prefix == "!" else _HINT.sub(lambda _m: "`" + prefix, text)


def unmentioned(text: str) -> str:
    """``text`` with every ``@`` followed by a zero-width space: no mention (``<@id>``, ``<@&id>``,
    ``@everyone``) renders or pings, whatever markup sits between the ``@`` and the name."""
    return text.replace("@\u200b", "@").replace("@", "@\u200b")


def echo(text: str, limit: int = 32, *, typed: bool = True) -> str:
    """What a user typed, safe to quote back inside a code span: shortened, no backtick to close
    the span, and no mention. ``typed`` text that starts with ``!`` is theirs, not a hint: a word
    joiner (invisible) keeps ``in_prefix`` from giving it this server's prefix."""
    text = redact(text)  # before the cut: a token cut short is no longer one the redaction knows
    shown = unmentioned((text[:limit] + ("…" if len(text) > limit else "")).replace("`", "ˋ"))
    return "`" + ("\u2060" if typed and shown.startswith("!") else "") + shown + "`"


def fitted(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` as Discord takes it: a page over its limit is refused whole (the asker would hear
    nothing, a page turn would fail), so one that a caller let grow is cut after its last whole line
    that fits (a line closes its own spoilers and bold), and says it was."""
    if len(text) <= limit:
        return text
    more = "\n-# (cut here: the rest did not fit in one message)"
    kept = text[:limit - len(more)]
    return (kept.rsplit("\n", 1)[0] if "\n" in kept else kept) + more


def prefix_of(bot: Any) -> str:
    """HELIX_PREFIX, the one the hints of an answer are typed with."""
    return getattr(getattr(bot, "settings", None), "prefix", "!")


def outgoing(content: str | None = None, *, prefix: str = "!", hints: bool = True, **kwargs: Any) -> dict[str, Any]:
    """The keyword arguments of one message of the bot's, sent or edited, as Discord must get them.

    Its text and its files' names hold no secret: a sentence may quote rclone or the environment,
    and archived text (a name, a snippet, a message brought back) anything a member once pasted.
    Its hints are typed with ``prefix`` unless ``hints=False`` (see ``answer``), it fits in one
    message and pings nobody. Every send and edit (answers, progress, page turns, direct messages)
    goes through here, so that none can forget a step; a caller redacts archived text before it
    escapes or cuts it, too, since neither leaves a secret the redaction still knows."""
    if content is not None:
        content = redact(content)
        kwargs["content"] = fitted(in_prefix(content, prefix) if hints else content)  # both may lengthen it
    for file in [*(kwargs.get("files") or ()), *([kwargs["file"]] if kwargs.get("file") else [])]:
        file.filename = redact(file.filename)
    if isinstance(kwargs.get("embed"), discord.Embed):
        _embed_in_prefix(kwargs["embed"], prefix)
    kwargs.setdefault("allowed_mentions", NO_PINGS)
    return kwargs


async def answer(ctx: commands.Context, content: str | None = None, *, hints: bool = True,
                 **kwargs) -> discord.Message | None:
    """Reply to the invoking message or interaction; a failure to answer is logged, not raised.

    ``hints=False`` for an answer that quotes archived text: a member's `!deploy` is what they
    wrote, not a hint to retype with HELIX_PREFIX."""
    if ctx.interaction is not None:
        kwargs.setdefault("ephemeral", False)
    try:
        return await ctx.send(**outgoing(content, prefix=prefix_of(ctx.bot), hints=hints, **kwargs))
    except discord.HTTPException as exc:
        log.warning("reply_failed", status=exc.status, code=exc.code)
        return None
    except aiohttp.ClientError as exc:
        # The connection went away under the reply: a stop closed the HTTP session mid-send (after
        # the error cog was unloaded), or Discord dropped it. Nobody is left to tell; the log is.
        log.warning("reply_failed", error=type(exc).__name__)
        return None


def _embed_in_prefix(embed: discord.Embed, prefix: str) -> None:
    """The hints inside an embed (``!status``'s fields), typed with ``prefix`` like any other answer's."""
    if prefix == "!":
        return
    if embed.description:
        embed.description = in_prefix(embed.description, prefix)
    for i, field in enumerate(embed.fields):
        embed.set_field_at(i, name=field.name, value=in_prefix(str(field.value), prefix), inline=bool(field.inline))


async def amend(message: Any, content: str, *, prefix: str = "!") -> bool:
    """Edit a progress message in place; a failed edit is logged, never raised, since the work
    it reports goes on (and the next edit, or the last one, may get through). ``prefix`` is
    HELIX_PREFIX, for the hints the text shows."""
    try:
        await message.edit(**outgoing(content, prefix=prefix))
        return True
    except discord.HTTPException as exc:
        log.warning("progress_edit_failed", status=exc.status, code=exc.code)
    except aiohttp.ClientError as exc:
        log.warning("progress_edit_failed", error=type(exc).__name__)
    return False


async def sees_internals(ctx: commands.Context) -> bool:
    """Whether whoever asked is a Helix admin: only they are shown variables, paths and disk usage;
    members get plain words. From a message's context menu ``ctx.author`` is the message's author,
    not the asker."""
    return await ctx.bot.is_admin(ctx.interaction.user if ctx.interaction is not None else ctx.author)


def archive_name(service: Any) -> str:
    """The archive as a member may see it: the remote's name, or "the local archive", never a host path."""
    return "the local archive" if service.remote.root.is_local else f"`{service.display}`"


_PLAIN = {
    "temporary": "is not answering right now",
    "timeout": "is not answering right now",
    "daemon": "is not answering right now",
    "quota": "is full",
}


def plain_problem(error: SyncError, service: Any) -> str:
    """A member's version of an archive error: what is wrong in plain words, no variable, path or fix.

    The fix (``error.hint``) is for admins and the log; a member can only wait or tell an admin.
    """
    if error.kind == "outbox":
        return "Helix cannot store files on its host right now, and the operator must fix its data folder"
    state = _PLAIN.get(error.kind, "is not working: admins see why when they run `!status`")
    return f"{archive_name(service)} {state}"
