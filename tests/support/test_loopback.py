"""The loopback gateway, exercised with a plain discord.py bot over a real websocket.

These tests prove the fixture can see what an in-process simulation cannot: heartbeats kept (or
missed) while a command runs, and a dropped connection RESUMED with the missed events replayed.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import discord
import pytest
import pytest_asyncio
from discord.ext import commands

from tests.support.loopback import LoopbackDiscord

pytestmark = pytest.mark.asyncio

HEARTBEAT_MS = 500


def make_bot() -> commands.Bot:
    """A bare prefix bot; guild_ready_timeout is short so readiness costs 0.1 s instead of 2 s."""
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents, help_command=None, guild_ready_timeout=0.1)

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong")

    @bot.command()
    async def work(ctx: commands.Context[commands.Bot]) -> None:
        """Real, awaited work: the loop stays free, so heartbeats must go on."""
        proc = await asyncio.create_subprocess_exec("sleep", "3")
        await proc.wait()
        await ctx.send("worked")

    @bot.command()
    async def block(ctx: commands.Context[commands.Bot]) -> None:
        """The mistake the heartbeat test must catch: the whole loop stops for 2 s."""
        time.sleep(2)  # noqa: ASYNC251 -- blocking on purpose, to prove the measurement can fail
        await ctx.send("blocked")

    @bot.command()
    async def upload(ctx: commands.Context[commands.Bot]) -> None:
        message = await ctx.send("uploading", file=discord.File(io.BytesIO(b"spiral"), "ritual.png"))
        await message.edit(content="uploaded")

    return bot


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[LoopbackDiscord]:
    async with LoopbackDiscord(heartbeat_interval_ms=HEARTBEAT_MS) as fake:
        yield fake


async def heartbeat_gaps_through(fake: LoopbackDiscord, until: float) -> list[float]:
    """Gaps between the heartbeats of the current connection, once one has arrived after ``until``.

    Waiting for that later heartbeat makes sure the gap spanning the command is counted.
    """
    conn_id = fake.heartbeats[-1][0]
    await fake.wait_until(lambda: fake.heartbeats[-1][1] > until, within=5)
    times = [t for conn, t in fake.heartbeats if conn == conn_id]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


async def test_ping_is_answered_over_rest(fake: LoopbackDiscord) -> None:
    async with fake.client(make_bot()):
        reply = await fake.ask("!ping")

    assert reply["content"] == "pong"
    assert reply["channel_id"] == fake.channel_id
    assert fake.connections[0].get("compress") in {"zlib-stream", "zstd-stream"}
    assert len(fake.identifies) == 1
    assert fake.identifies[0]["token"] == "fake-token"
    assert fake.unknown_routes == []


async def test_heartbeats_keep_their_interval_while_a_command_awaits(fake: LoopbackDiscord) -> None:
    async with fake.client(make_bot()):
        started = time.monotonic()
        reply = await fake.ask("!work")
        gaps = await heartbeat_gaps_through(fake, until=reply["at"])
        beats_during_work = [t for _, t in fake.heartbeats if started < t < reply["at"]]

    assert reply["content"] == "worked"
    assert len(beats_during_work) >= 4, "3 s of work at 0.5 s should see about 6 heartbeats"
    assert max(gaps) < HEARTBEAT_MS / 1000 * 1.5 + 0.75, f"heartbeat gaps: {gaps}"


async def test_a_blocked_loop_shows_up_as_a_heartbeat_gap(fake: LoopbackDiscord) -> None:
    async with fake.client(make_bot()):
        reply = await fake.ask("!block")
        gaps = await heartbeat_gaps_through(fake, until=reply["at"])

    assert reply["content"] == "blocked"
    assert max(gaps) >= 1.5, f"heartbeat gaps: {gaps}"


@pytest.mark.parametrize("close_code", [4000, None], ids=["close-4000", "tcp-abort"])
async def test_a_dropped_connection_is_resumed_and_missed_events_replayed(
    fake: LoopbackDiscord, close_code: int | None
) -> None:
    async with fake.client(make_bot()):
        assert (await fake.ask("!ping"))["content"] == "pong"
        session = fake.session_id

        since = len(fake.sent_messages)
        async with fake.outage(close_code):
            await fake.dispatch_message("!ping")  # typed while the bot is away
        await fake.wait_until(lambda: fake.resumes or len(fake.identifies) > 1)

        assert len(fake.identifies) == 1, "a drop must be RESUMED, not answered with a new IDENTIFY"
        [resume] = fake.resumes
        assert resume["session_id"] == session
        assert resume["accepted"]
        assert resume["replayed"] >= 1
        assert (await fake.wait_for_message(since=since))["content"] == "pong", "the missed !ping"
        assert (await fake.ask("!ping"))["content"] == "pong"


async def test_uploads_and_edits_are_recorded(fake: LoopbackDiscord) -> None:
    async with fake.client(make_bot()):
        await fake.dispatch_message("!upload")
        edit = await fake.wait_for_message(lambda m: m["action"] == "edit")

    [created] = [m for m in fake.sent_messages if m["action"] == "create"]
    assert created["attachments"] == ["ritual.png"]
    assert created["files"]["ritual.png"] == b"spiral"
    assert edit["id"] == created["id"]
    assert edit["content"] == "uploaded"
