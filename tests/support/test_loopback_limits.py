"""The loopback Discord's rate limits: discord.py keeps to them by their headers; a raw burst is refused.

The history bucket here is tight (5 requests a second): paging 2,000 messages takes 20 requests,
so four windows, and discord.py must wait each one out by the headers alone, never by a 429.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
import pytest_asyncio

from tests.support.loopback import LoopbackDiscord
from tests.support.loopback_limits import HISTORY, Limit, bucket_hash

pytestmark = pytest.mark.asyncio

TIGHT = Limit(5, 1.0)


def plain_client() -> discord.Client:
    return discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.1)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[LoopbackDiscord]:
    async with LoopbackDiscord(heartbeat_interval_ms=1000, rate_limits={HISTORY: TIGHT}) as fake:
        yield fake


async def raw_gets(fake: LoopbackDiscord, path: str, count: int) -> list[tuple[int, dict, object]]:
    """``count`` GETs at once, as a client that ignores the headers would send them."""
    async with aiohttp.ClientSession(headers={"Authorization": "Bot fake-token"}) as session:
        async def one() -> tuple[int, dict, object]:
            async with session.get(f"{fake.api_base}{path}") as resp:
                return resp.status, dict(resp.headers), await resp.json()

        return await asyncio.gather(*(one() for _ in range(count)))


async def test_discord_py_pages_two_thousand_messages_by_the_headers_without_a_429(fake: LoopbackDiscord):
    channel_id = await fake.add_channel("history")
    seeded = await fake.add_messages(channel_id, 2000, content="line {i}")

    async with fake.client(plain_client()) as client:
        channel = client.get_channel(int(channel_id))
        got = [m async for m in channel.history(limit=None, after=discord.Object(id=0), oldest_first=True)]
        newest = [m async for m in channel.history(limit=250)]

    assert [str(m.id) for m in got] == seeded, "every message, once, oldest first"
    assert got[1234].content == "line 1234"
    assert [str(m.id) for m in newest] == seeded[::-1][:250], "newest first without after="
    assert fake.rate_limited == []
    assert fake.requests[HISTORY] == 21 + 3, "20 full pages and an empty one, then 3 pages of the newest"
    assert fake.unknown_routes == []


async def test_a_burst_past_the_bucket_gets_429_with_retry_after_and_the_headers(fake: LoopbackDiscord):
    channel_id = await fake.add_channel("burst")
    await fake.add_messages(channel_id, 10)

    answers = await raw_gets(fake, f"/channels/{channel_id}/messages?limit=2", 8)

    ok = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] == 429]
    assert len(ok) == TIGHT.limit and len(refused) == 3
    remaining = sorted(int(h["X-RateLimit-Remaining"]) for _, h, _ in ok)
    assert remaining == [0, 1, 2, 3, 4]
    for _, headers, _ in ok:
        assert headers["X-RateLimit-Limit"] == "5"
        assert headers["X-RateLimit-Bucket"] == bucket_hash(HISTORY)
        assert 0 < float(headers["X-RateLimit-Reset-After"]) <= 1.0
        assert abs(float(headers["X-RateLimit-Reset"]) - time.time() - float(headers["X-RateLimit-Reset-After"])) < 1
    status, headers, body = refused[0]
    assert body["message"] == "You are being rate limited." and body["global"] is False
    assert 0 < body["retry_after"] <= 1.0
    assert headers["X-RateLimit-Scope"] == "user" and headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["Retry-After"]) >= 1 and headers["Via"]
    assert [r["scope"] for r in fake.rate_limited] == ["user"] * 3
    assert fake.rate_limited[0]["route"] == HISTORY

    other = await fake.add_channel("elsewhere")  # the bucket is per channel: another one is untouched
    [(status, headers, _)] = await raw_gets(fake, f"/channels/{other}/messages", 1)
    assert status == 200 and headers["X-RateLimit-Remaining"] == "4"


async def test_a_burst_past_the_global_limit_gets_a_global_429():
    async with LoopbackDiscord(global_limit=Limit(20, 1.0), default_limit=Limit(100, 1.0)) as fake:
        answers = await raw_gets(fake, f"/channels/{fake.channel_id}", 30)

        refused = [(h, b) for s, h, b in answers if s == 429]
        assert sum(1 for s, _, _ in answers if s == 200) == 20 and len(refused) == 10
        headers, body = refused[0]
        assert headers["X-RateLimit-Global"] == "true" and headers["X-RateLimit-Scope"] == "global"
        assert "X-RateLimit-Bucket" not in headers, "a global 429 carries no bucket"
        assert body["global"] is True and 0 < body["retry_after"] <= 1.0
        assert {r["scope"] for r in fake.rate_limited} == {"global"}
        assert fake.requests["GET /channels/{channel_id}"] == 30


async def test_history_pages_the_way_discord_does():
    async with LoopbackDiscord() as fake:
        channel_id = await fake.add_channel("pages")
        ids = await fake.add_messages(channel_id, 30)
        base = f"/channels/{channel_id}/messages"

        [(_, _, after)] = await raw_gets(fake, f"{base}?after={ids[9]}&limit=5", 1)
        [(_, _, before)] = await raw_gets(fake, f"{base}?before={ids[9]}&limit=5", 1)
        [(_, _, around)] = await raw_gets(fake, f"{base}?around={ids[9]}&limit=5", 1)
        [(_, _, newest)] = await raw_gets(fake, base, 1)
        [(status, _, too_many)] = await raw_gets(fake, f"{base}?limit=101", 1)

    assert [m["id"] for m in after] == ids[10:15][::-1], "the 5 right after, newest first"
    assert [m["id"] for m in before] == ids[4:9][::-1]
    assert [m["id"] for m in around] == ids[7:12][::-1]
    assert [m["id"] for m in newest] == ids[::-1], "50 by default: all 30, newest first"
    assert status == 400 and too_many["code"] == 50035
