"""A server whose HELIX_PREFIX is not ``!`` reads its own prefix in every hint Helix gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot.sim.world import World
from sync.settings import SyncSettings
from tests.support.world import answer_to, bot_settings, hosted_world


@pytest_asyncio.fixture
async def question_world(data_dir: Path) -> AsyncIterator[World]:
    async for world in hosted_world(bot_settings(SyncSettings(data_dir=data_dir), prefix="?")):
        yield world


async def test_hints_show_the_prefix_this_server_types(question_world: World):
    world = question_world
    alice = world.member("alice")
    assert await answer_to(world, alice, "?get") == (
        "Give a message link or an archived message id: for example `?get 1456074443980800027`.")
    assert await answer_to(world, world.owner, "?backup") == "?backup needs `channel`: for example `?backup #general`."
    assert "`?find launch in:#general from:@alice`" in await answer_to(world, alice, "?find")
    helped = "\n".join(await world.say(alice, "?help get"))
    assert "?get" in helped and "`!" not in helped, helped
    assert await world.say(alice, "!get") == []  # the other prefix is not Helix's here
