"""Whether an answer about a backup may show what the backup took from its channel's threads.

A backup with threads (``!backup #channel threads``, every catch-up after ``!watch``, a forum's,
which takes its posts) counts their messages in the one tally it keeps with the channel's, and its
error may come from one of them: an answer showing its counts or its error shows something of each
thread. So it shows them only where every reader of the answer (``visibility.postable_in``), and
the asker (``visibility.readable_channel_ids``), may open every thread the backup may have taken;
elsewhere the answer names the channel, never a count (a private thread is one its channel's
readers may not open).

Which threads a backup took is not recorded with it: they are taken to be those the catalogue knows
of its channel (the engine records each thread it lists before paging any), deleted ones too, and
those discord.py has in its cache (the ones the engine lists first). A thread created since is one
more reason to keep the counts, never one less.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import discord

from bot.visibility import postable_in, readable_channel_ids
from catalogue import BackupRow

Threads = Mapping[int, tuple[int, bool]]  # thread id -> its channel, and whether it is private


async def known_threads(catalogue: Any, guild_id: int) -> dict[int, tuple[int, bool]]:
    """Every thread the catalogue knows of a server. Unlike ``thread_parents`` it keeps the deleted
    ones: a backup made before one was deleted counted it (a deleted private thread's backups keep
    their counts for good; a public one's follow its channel, as they did when it was taken)."""
    return {c.id: (c.parent_id, c.type == "private_thread")
            for c in await catalogue.call("channels", guild_id=guild_id)
            if c.parent_id is not None and c.type.endswith("thread")}


def covered(bot: discord.Client, row: BackupRow, known: Threads) -> dict[int, tuple[int, bool]]:
    """The threads ``row`` may have taken ({} for a backup of the channel alone)."""
    channel = bot.get_channel(row.channel_id)
    if not row.threads and not isinstance(channel, discord.ForumChannel):
        return {}
    found = {thread_id: known_thread for thread_id, known_thread in known.items() if known_thread[0] == row.channel_id}
    for thread in getattr(channel, "threads", ()):
        found.setdefault(thread.id, (row.channel_id, thread.is_private()))
    return found


def threads_withheld(threads: Threads, here: Any = None, asker: Any = None) -> bool:
    """Whether an answer posted in ``here`` (None: read by ``asker`` alone) must keep a backup's
    counts and error: one of its readers, or ``asker``, may not open one of ``threads``."""
    ids = set(threads)
    if not ids:
        return False
    if here is not None and postable_in(here, ids, threads) != ids:
        return True
    return asker is not None and readable_channel_ids(asker, ids, threads) != ids


def withheld_rows(bot: discord.Client, rows: Iterable[BackupRow], known: Threads, here: Any,
                  asker: Any) -> tuple[set[int], bool]:
    """For ``!backup status``: the backups whose lines keep their counts where the answer is read
    (``here``: None for the slash form's asker alone), and whether the asker alone would see some
    of them (then the answer says which form shows them)."""
    withheld, slash_shows = set(), False
    for row in rows:
        threads = covered(bot, row, known)
        if threads_withheld(threads, here, asker):
            withheld.add(row.id)
            slash_shows = slash_shows or (here is not None and not threads_withheld(threads, asker=asker))
    return withheld, slash_shows
