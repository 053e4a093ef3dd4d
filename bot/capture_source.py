"""capture's Source, built on discord.py: pages of history, fresh links, channels and threads.

discord.py's own rate limiter paces every request here (history is 100 messages a request), so
a backfill goes as fast as Discord allows and never bursts into 429s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import discord

from capture import AttachmentRef, ChannelInfo, MessageRecord, SourceError

PAGE = 100


def _iso(dt: Any) -> str | None:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if dt else None


def channel_info(channel: Any) -> ChannelInfo:
    kind = getattr(channel, "type", None)
    return ChannelInfo(id=channel.id, guild_id=channel.guild.id, name=getattr(channel, "name", "") or "",
                       type=str(kind) if kind is not None else "text", topic=getattr(channel, "topic", None),
                       parent_id=getattr(channel, "parent_id", None) or getattr(channel, "category_id", None))


def message_record(m: discord.Message) -> MessageRecord:
    """A discord.py message as capture's plain record."""
    author = m.author
    ref = m.reference.message_id if m.reference and m.reference.message_id else None
    return MessageRecord(
        id=m.id, channel_id=m.channel.id, guild_id=m.guild.id if m.guild else 0, author_id=author.id,
        author_name=getattr(author, "display_name", None) or author.name, author_bot=bool(author.bot),
        created_at=_iso(m.created_at) or "", edited_at=_iso(m.edited_at), content=m.content or "",
        reply_to=ref,
        embeds=tuple(e.to_dict() for e in m.embeds),
        stickers=tuple({"id": str(s.id), "name": s.name} for s in m.stickers),
        reactions=tuple({"emoji": str(r.emoji), "count": r.count} for r in m.reactions),
        attachments=tuple(AttachmentRef(id=a.id, filename=a.filename, size=a.size, content_type=a.content_type,
                                        url=a.url) for a in m.attachments),
        extra={"message_type": str(m.type).removeprefix("MessageType.")},
    )


class DiscordSource:
    def __init__(self, bot: discord.Client) -> None:
        self.bot = bot
        # Archived threads are not in discord.py's cache: the ones listed by threads() are kept here.
        self._threads: dict[int, Any] = {}

    def _channel(self, channel_id: int) -> Any:
        found = self.bot.get_channel(channel_id) or self._threads.get(channel_id)
        if found is None:
            for guild in self.bot.guilds:
                found = guild.get_thread(channel_id)
                if found is not None:
                    break
        return found

    async def channel_info(self, channel_id: int) -> ChannelInfo | None:
        channel = self._channel(channel_id)
        return channel_info(channel) if channel is not None and getattr(channel, "guild", None) else None

    async def history(self, channel_id: int, after: int) -> AsyncIterator[list[MessageRecord]]:
        channel = self._channel(channel_id)
        if channel is None or not hasattr(channel, "history"):
            raise SourceError(f"Channel {channel_id} is gone or Helix cannot see it.")
        page: list[MessageRecord] = []
        try:
            async for m in channel.history(limit=None, after=discord.Object(id=after), oldest_first=True):
                page.append(message_record(m))
                if len(page) >= PAGE:
                    yield page
                    page = []
        except discord.Forbidden:
            raise SourceError(f"Helix lost access to #{getattr(channel, 'name', channel_id)}: give it back "
                              "View Channel and Read Message History there.") from None
        except discord.HTTPException as exc:
            raise SourceError(f"Discord failed to send the history of #{getattr(channel, 'name', channel_id)} "
                              f"(HTTP {exc.status}): the backup can be started again.") from None
        if page:
            yield page

    async def refetch(self, channel_id: int, message_id: int) -> MessageRecord | None:
        channel = self._channel(channel_id)
        if channel is None:
            return None
        try:
            return message_record(await channel.fetch_message(message_id))
        except (discord.NotFound, discord.Forbidden):
            return None

    async def threads(self, channel_id: int) -> list[ChannelInfo]:
        channel = self._channel(channel_id)
        found: dict[int, Any] = {t.id: t for t in getattr(channel, "threads", [])}
        if hasattr(channel, "archived_threads"):
            try:
                async for t in channel.archived_threads(limit=None):
                    found.setdefault(t.id, t)
            except discord.HTTPException:
                pass  # archived threads need Read Message History; the active ones are still archived
        self._threads.update(found)
        return [channel_info(t) for t in found.values()]
