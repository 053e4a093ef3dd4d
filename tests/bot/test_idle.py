"""A guild left idle answers at once: nothing in Helix waits on a real-time timer between commands.

aiohttp keeps an idle pooled connection for 15 s and arms a timer to close it. Armed from the
bot's code, SimCord has to wait that timer out in real time before the command counts as done,
and its clock jumps: in ``python -m bot play`` a command after a pause took 15 to 30 s. The rc
socket is local, so Helix opens a connection per call and no such timer exists.
"""

from __future__ import annotations

import asyncio

import discord

from bot.sim.world import World
from tests.support.world import answers

# Longer than aiohttp's keep-alive (15 s): the pause a user takes between two commands in play.
REAL_IDLE_S = 16.0
ANSWER_WITHIN_S = 10.0


async def test_status_and_testmega_answer_promptly_after_a_real_pause(local_world: World) -> None:
    world = local_world
    alice, owner = world.member("alice"), world.owner
    await world.say(alice, "!status")

    # The pause itself is what is tested: there is no event to wait for, only time passing.
    await asyncio.sleep(REAL_IDLE_S)
    await world.env.advance_time(30)  # and the simulated guild idles too
    for text, who in (("!status", alice), ("!testmega", owner), ("!status", alice)):
        since = len(world.env.http_requests)
        before = discord.utils.utcnow()
        try:
            async with asyncio.timeout(ANSWER_WITHIN_S):
                await world.say(who, text)
        except TimeoutError:
            raise AssertionError(f"{text} was not answered within {ANSWER_WITHIN_S} s after a pause") from None
        jumped = (discord.utils.utcnow() - before).total_seconds()
        assert answers(world, since), f"{text} got no answer after the pause"
        # The bot sets no timer for these commands: the simulated clock stands still while it answers.
        assert jumped < 1.0, f"{text}: the simulated clock jumped {jumped:.1f} s while answering"
