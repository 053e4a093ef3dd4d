"""What the engine needs from Discord, as a small protocol: the bot implements it with discord.py.

The engine never sees a discord.py object: a source hands it plain records, so the engine can be
driven by a test double of the same shape, and the format on the remote does not depend on
discord.py's classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChannelInfo:
    id: int
    guild_id: int
    name: str
    type: str  # text | forum | public_thread | private_thread | news | voice ...
    topic: str | None = None
    parent_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "guild_id": str(self.guild_id), "name": self.name, "type": self.type,
                "topic": self.topic, "parent_id": str(self.parent_id) if self.parent_id else None}


@dataclass(frozen=True)
class AttachmentRef:
    id: int
    filename: str
    size: int
    content_type: str | None
    url: str  # signed and short-lived on Discord: fetch it soon, refresh it through the source


@dataclass(frozen=True)
class MessageRecord:
    id: int
    channel_id: int
    guild_id: int
    author_id: int
    author_name: str
    created_at: str  # ISO 8601, UTC
    content: str = ""
    author_bot: bool = False
    edited_at: str | None = None
    reply_to: int | None = None
    embeds: tuple[dict[str, Any], ...] = ()
    stickers: tuple[dict[str, Any], ...] = ()
    reactions: tuple[dict[str, Any], ...] = ()
    attachments: tuple[AttachmentRef, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # type, thread id, ... kept as they come

    def as_json(self, attachments: list[dict[str, Any]]) -> dict[str, Any]:
        """The record as it is written to a segment (docs/ARCHIVE_FORMAT.md); ids are strings, as Discord's."""
        return {
            "type": "message", "id": str(self.id), "channel_id": str(self.channel_id),
            "guild_id": str(self.guild_id), "revision": 0,
            "author": {"id": str(self.author_id), "name": self.author_name, "bot": self.author_bot},
            "created_at": self.created_at, "edited_at": self.edited_at, "content": self.content,
            "reply_to": str(self.reply_to) if self.reply_to else None,
            "embeds": list(self.embeds), "stickers": list(self.stickers), "reactions": list(self.reactions),
            "attachments": attachments, **self.extra,
        }


class Source(Protocol):
    """Discord as the engine sees it. Every method may raise SourceError with a sentence."""

    async def channel_info(self, channel_id: int) -> ChannelInfo | None:
        """The channel (or thread), or None when it no longer exists or cannot be seen."""
        ...

    def history(self, channel_id: int, after: int) -> AsyncIterator[list[MessageRecord]]:
        """Pages of messages with ids above ``after``, oldest first (within and across pages)."""
        ...

    async def refetch(self, channel_id: int, message_id: int) -> MessageRecord | None:
        """The message again, with fresh attachment links; None when it was deleted."""
        ...

    async def threads(self, channel_id: int) -> list[ChannelInfo]:
        """The channel's threads, active and archived (a forum's posts)."""
        ...


class SourceError(Exception):
    """Discord refused or failed; ``str(err)`` is one sentence for the admin who asked.

    ``lasting``: trying again changes nothing until someone acts (access lost, the channel gone),
    unlike Discord failing for a while, which a later try gets past. ``gone``: Discord has no such
    channel (any more); a thread deleted during its channel's backup leaves nothing to back up.
    """

    def __init__(self, message: str, *, lasting: bool = False, gone: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting or gone
        self.gone = gone
