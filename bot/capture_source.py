"""capture's Source, built on discord.py: pages of history, fresh links, channels and threads.

discord.py's own rate limiter paces every request here (history is 100 messages a request), and
the next pages are fetched while one is archived, so a backfill goes as fast as Discord allows
and never bursts into 429s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import discord
import structlog

from bot.capture_checks import bot_lacks
from capture import AttachmentRef, ChannelInfo, MessageRecord, SourceError

PAGE = 100
PREFETCH = 2  # pages fetched ahead of the one being archived
YIELD_EVERY = 25

log = structlog.get_logger("helix.bot.capture_source")


def iso_time(dt: Any) -> str | None:
    """The one form every record's times are written in (``…000000Z``), so times compare as text."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if dt else None


def channel_info(channel: Any) -> ChannelInfo:
    """``parent_id`` is kept for a thread (a forum's post is one) only: a text channel's category is
    not its parent in the archive, where a parent_id says "this is a thread of that channel"."""
    kind = getattr(channel, "type", None)
    parent = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    return ChannelInfo(id=channel.id, guild_id=channel.guild.id, name=getattr(channel, "name", "") or "",
                       type=str(kind) if kind is not None else "text", topic=getattr(channel, "topic", None),
                       parent_id=parent)


def mention_names(m: discord.Message) -> dict[str, dict[str, str]]:
    """Names of whom and what the message mentions, by id, as they were when archived: the content
    has only ids (``<@123>``), and a reader of the archive has no Discord to ask."""
    found = {
        "users": {str(u.id): getattr(u, "display_name", None) or u.name for u in m.mentions},
        "roles": {str(r.id): r.name for r in m.role_mentions},
        "channels": {str(c.id): getattr(c, "name", "") or "" for c in m.channel_mentions},
    }
    return {kind: names for kind, names in found.items() if names}


def message_record(m: discord.Message) -> MessageRecord:
    """A discord.py message as capture's plain record."""
    author = m.author
    ref = m.reference.message_id if m.reference and m.reference.message_id else None
    return MessageRecord(
        id=m.id, channel_id=m.channel.id, guild_id=m.guild.id if m.guild else 0, author_id=author.id,
        author_name=getattr(author, "display_name", None) or author.name, author_bot=bool(author.bot),
        created_at=iso_time(m.created_at) or "", edited_at=iso_time(m.edited_at), content=m.content or "",
        reply_to=ref,
        embeds=tuple(e.to_dict() for e in m.embeds),
        stickers=tuple({"id": str(s.id), "name": s.name} for s in m.stickers),
        reactions=tuple({"emoji": str(r.emoji), "count": r.count} for r in m.reactions),
        attachments=tuple(AttachmentRef(id=a.id, filename=a.filename, size=a.size, content_type=a.content_type,
                                        url=a.url) for a in m.attachments),
        extra={"message_type": str(m.type).removeprefix("MessageType."),
               **({"mentions": names} if (names := mention_names(m)) else {})},
    )


def _called(channel: Any) -> str:
    """How a failure's sentence names a channel. It becomes the backup's error, which answers show
    about the channel backed up, and a thread's name may tell what its channel's readers may not
    know (a private thread's): a thread is named by its mention, which Discord shows by name only
    to whoever may open it; the log keeps the name."""
    if isinstance(channel, discord.Thread):
        return f"the thread <#{channel.id}>"
    return f"#{getattr(channel, 'name', None) or channel.id}"


async def _next_page(pages: asyncio.Queue[Any], fetcher: asyncio.Task[None], name: str) -> Any:
    """The next page, or the fetcher's failure as a SourceError: a fetcher cancelled by someone else, or
    ended by a BaseException, never puts its last word in the queue, and its backup would wait for ever."""
    while pages.empty():
        if fetcher.done():
            raise SourceError(f"Reading the history of {name} stopped before its end: the backup can be started "
                              "again.")
        getter = asyncio.ensure_future(pages.get())
        try:
            await asyncio.wait((getter, fetcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()  # Queue.get leaves its item in the queue when cancelled
        if getter.done() and not getter.cancelled():
            return getter.result()
    return pages.get_nowait()


def _readable_history(channel: Any) -> None:
    """Without View Channel or Read Message History Discord answers a history request with an empty list,
    not an error: a backup would look finished, and a watch's catch-up would let live messages move the
    cursor past what it never read. Not lasting: a catch-up is asked for again until it is given back."""
    if getattr(channel, "guild", None) is not None and (missing := bot_lacks(channel)):
        raise SourceError(f"Helix lacks {missing} in {_called(channel)}, so Discord shows it none of the history "
                          "there: give it that permission back, and the backup can be started again.")


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

    async def _fetched(self, channel_id: int) -> Any:
        """A channel out of discord.py's cache, asked of Discord: a thread archived since it was listed
        (by this source, or by the one before a reconnect), which only Discord's 404 says is gone."""
        try:
            channel = await self.bot.fetch_channel(channel_id)
        except discord.NotFound:
            raise SourceError(f"Channel {channel_id} is gone from Discord.", gone=True) from None
        except discord.Forbidden:
            raise SourceError(f"Helix cannot see channel {channel_id}: give it View Channel there.",
                              lasting=True) from None
        except discord.HTTPException as exc:
            raise SourceError(f"Discord failed to send channel {channel_id} (HTTP {exc.status}): the backup can "
                              "be started again.") from None
        if isinstance(channel, discord.Thread):
            self._threads[channel.id] = channel
        return channel

    async def channel_info(self, channel_id: int) -> ChannelInfo | None:
        channel = self._channel(channel_id)
        return channel_info(channel) if channel is not None and getattr(channel, "guild", None) else None

    async def history(self, channel_id: int, after: int) -> AsyncIterator[list[MessageRecord]]:
        """Pages of ``PAGE`` messages after ``after``, oldest first; the next page is fetched while one is used.

        Discord's limiter allows a few history requests per window: a caller that ingested each
        page before asking for the next would spend its window's requests on its own work. So a
        task keeps up to ``PREFETCH`` pages ready, and stops when the caller closes the iterator.
        """
        channel = self._channel(channel_id) or await self._fetched(channel_id)
        if not hasattr(channel, "history"):
            raise SourceError(f"Channel {channel_id} holds no messages Helix can read.", lasting=True)
        _readable_history(channel)
        pages: asyncio.Queue[list[MessageRecord] | Exception | None] = asyncio.Queue(maxsize=PREFETCH)
        fetcher = asyncio.create_task(self._fetch_pages(channel, after, pages), name=f"helix-history-{channel_id}")
        try:
            while (page := await _next_page(pages, fetcher, _called(channel))) is not None:
                if isinstance(page, Exception):
                    raise page
                yield page
            _readable_history(channel)  # taken away meanwhile, the last page was cut short, not the end
        finally:
            fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetcher

    @staticmethod
    async def _fetch_pages(channel: Any, after: int, pages: asyncio.Queue[Any]) -> None:
        """Fill ``pages`` with pages of records, then None; a failure goes in as the sentence to raise."""
        name = _called(channel)
        page: list[MessageRecord] = []
        try:
            async for m in channel.history(limit=None, after=discord.Object(id=after), oldest_first=True):
                page.append(message_record(m))
                if len(page) >= PAGE:
                    await pages.put(page)
                    page = []
                elif len(page) % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a page of messages is parsed in slices: the heartbeat comes first
        except discord.Forbidden:
            log.warning("history_forbidden", channel=channel.id, name=getattr(channel, "name", None))
            await pages.put(SourceError(f"Helix lost access to {name}: give it back View Channel and Read Message "
                                        "History there.", lasting=True))
            return
        except discord.NotFound:
            await pages.put(SourceError(f"{name} is gone from Discord.", gone=True))
            return
        except discord.HTTPException as exc:
            log.warning("history_failed", channel=channel.id, name=getattr(channel, "name", None), status=exc.status)
            await pages.put(SourceError(f"Discord failed to send the history of {name} (HTTP {exc.status}): the "
                                        "backup can be started again."))
            return
        except Exception as exc:  # anything else ends the iteration in the caller, where it is reported
            await pages.put(exc)
            return
        if page:
            await pages.put(page)
        await pages.put(None)

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
            # Public archived threads need Read Message History; private ones Manage Threads as well.
            # Without either, what Discord still lists (the active threads) is archived all the same.
            # A forum's posts are all public: its listing takes no "private".
            for kwargs in ({}, *([{"private": True}] if isinstance(channel, discord.TextChannel) else [])):
                try:
                    async for t in channel.archived_threads(limit=None, **kwargs):
                        found.setdefault(t.id, t)
                except discord.HTTPException:
                    pass
        self._threads.update(found)
        return [channel_info(t) for t in found.values()]
