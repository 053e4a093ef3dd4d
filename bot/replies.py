"""Answering a user the same way from a prefix or a slash command, without ever failing twice."""

from __future__ import annotations

import discord
import structlog
from discord.ext import commands

from runtime.logs import redact

log = structlog.get_logger("helix.bot")


async def answer(ctx: commands.Context, content: str | None = None, **kwargs) -> discord.Message | None:
    """Reply to the invoking message or interaction; a failure to answer is logged, not raised."""
    if content is not None:
        content = redact(content)  # a sentence may quote rclone or the environment: never a secret
    try:
        if ctx.interaction is not None:
            kwargs.setdefault("ephemeral", False)
        return await ctx.send(content, **kwargs)
    except discord.HTTPException as exc:
        log.warning("reply_failed", status=exc.status, code=exc.code)
        return None
