"""Reading a channel's history for a backup: pages come ahead of use, and their end is never lost."""

from __future__ import annotations

import asyncio

import pytest

from bot.capture_source import DiscordSource
from capture import SourceError
from tests.support.capture import cdn  # noqa: F401  (Discord's order of history pages)


async def test_a_history_whose_page_fetcher_was_stopped_by_someone_else_ends_with_a_sentence(local_world, cdn):  # noqa: F811
    world = local_world
    env, be = world.env, world.env.backend
    general = world.guild.create_text_channel("general")
    alice = world.member("alice")
    for i in range(1000):
        be.create_message(general.id, alice.id, f"message {i}", broadcast=False)
    await env.settle()

    pages = DiscordSource(world.bot).history(general.id, 0)
    first = await anext(pages)
    assert len(first) == 100
    fetcher = next(t for t in asyncio.all_tasks() if t.get_name() == f"helix-history-{general.id}")
    fetcher.cancel()  # what a loop shutting down, or a BaseException inside discord.py, does to it
    read = len(first)
    with pytest.raises(SourceError, match="stopped before its end: the backup can be started again"):
        async with asyncio.timeout(60):
            async for page in pages:
                read += len(page)
    assert 100 <= read < 1000
