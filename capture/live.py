"""What a watch covers: a watched channel's own messages, and those of its threads and a forum's
posts, where a forum's messages all are. A thread first seen live is recorded with its parent, so
its messages have a channel to land in and its archive a channel to follow. And what an edit leaves
of a message's archived files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from capture.source import ChannelInfo
from catalogue import Catalogue, ChannelRow

# Channel types whose parent is the channel (or forum) they belong to.
THREAD_TYPES = frozenset({"public_thread", "private_thread", "news_thread"})


async def threads_of(catalogue: Catalogue, channel_id: int) -> list[ChannelRow]:
    """The threads (or forum posts) of a channel that the catalogue knows."""
    return [c for c in await catalogue.call("channels") if c.parent_id == channel_id and c.type in THREAD_TYPES]


async def watch_covering(catalogue: Catalogue, info_of: Callable[[int], Awaitable[ChannelInfo | None]],
                         channel_id: int) -> tuple[ChannelRow, ChannelRow | None] | None:
    """The watched channel whose watch covers ``channel_id`` (itself, or the channel or forum it is a
    thread of), and ``channel_id``'s own row as it was (None: new to the catalogue); None when no
    watch covers it. A thread the catalogue does not know yet (a new post, a new thread) is asked of
    ``info_of`` (the source) and recorded with its parent."""
    ch = await catalogue.call("channel", channel_id)
    if ch is not None and ch.watched:
        return ch, ch
    info = None
    if ch is None:
        info = await info_of(channel_id)
        parent_id = info.parent_id if info is not None and info.type in THREAD_TYPES else None
    else:
        parent_id = ch.parent_id if ch.type in THREAD_TYPES else None
    parent = await catalogue.call("channel", parent_id) if parent_id else None
    if parent is None or not parent.watched:
        return None
    if info is not None:
        await catalogue.call("upsert_channel", info.as_json())
    return parent, ch


def files_left(record: dict[str, Any] | None, changes: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An edit's changes with its ``attachments`` (Discord's list of the files the message still has:
    an author removes one by editing) as the archived entries of those files, their bytes' sha256,
    blob and status kept; and the archived entries the list no longer names.

    The changes leave the files out when none was removed: Discord sends the list with every edit,
    and a revision names only what changed. A file the archive never had (one added by an edit) is
    not added: nothing downloaded it."""
    listed = {str(a.get("id")) for a in changes["attachments"]}
    archived = list((record or {}).get("attachments") or [])
    removed = [a for a in archived if str(a.get("id")) not in listed]
    rest = {k: v for k, v in changes.items() if k != "attachments"}
    if not removed:
        return rest, []
    return {**rest, "attachments": [a for a in archived if str(a.get("id")) in listed]}, removed
