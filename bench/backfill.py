"""Backfill under Discord's rate limits: ``!backup`` of a large channel against the ceiling the limits allow.

The real HelixBot with capture logs in to the loopback Discord (a real websocket and real HTTP on
127.0.0.1, ``tests/support/loopback.py``) whose history route is rate-limited with Discord's
headers: ``BUCKET`` requests per window, answered 429 past it. A history request returns at most
100 messages, so no client can page faster than ``100 × limit ÷ window`` messages a second: that
is the ceiling, and the figure is Helix's backfill rate divided by it.

One round: a fresh channel seeded with ``messages`` messages (untimed), then, timed, ``!backup``
typed by the owner until the backup row is finished and the outbox has drained (every segment,
transcript and ``channel.json`` landed on the local archive). Meanwhile the 5 ms ticker measures
the event loop's lag, and the fake records each gateway heartbeat on its own thread: one that
arrives more than ``LATE_S`` after its interval is late. A warm-up round (a small channel) runs
first and is not recorded. After each round the same ticker and heartbeats are read for
``IDLE_S`` with the bot idle: the shared machine's own noise at that moment, for comparison.

The contender side by side is plain discord.py paging the same route with ``channel.history()``
and nothing else, on a quarter of the channel: it shows what the client's own limiter reaches,
so a shortfall can be told apart as Helix's or the pacing's.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from typing import Any

import discord

from bench.stats import median, spread, summary
from bench.ticker import Ticker
from bench.workload import scratch
from tests.support.loopback import LoopbackDiscord
from tests.support.loopback_capture import CaptureOnLoopback, capture_settings, helix_capture_on_loopback
from tests.support.loopback_limits import HISTORY, Limit
from tests.support.waiting import wait_until

BUCKET = Limit(10, 1.0)  # the history bucket: 10 requests a second, so 1,000 messages a second at most
PAGE = 100
HEARTBEAT_MS = 1000
LATE_S = 0.020
WARMUP_MESSAGES = 500
IDLE_S = 3.0  # long enough to see a few heartbeats
_names = itertools.count(1)


def _late_heartbeats(fake: LoopbackDiscord, start: float, end: float) -> tuple[int, int, float]:
    """(heartbeats in the window, how many came late, the longest gap in seconds), per connection."""
    beats: dict[int, list[float]] = {}
    for conn, at in fake.heartbeats:
        beats.setdefault(conn, []).append(at)
    count = late = 0
    longest = 0.0
    for times in beats.values():
        for earlier, later in zip(times, times[1:], strict=False):
            if start <= later <= end:
                count += 1
                gap = later - earlier
                longest = max(longest, gap)
                late += gap > HEARTBEAT_MS / 1000 + LATE_S
    return count, late, longest


async def _helix_round(helix: CaptureOnLoopback, messages: int) -> dict[str, Any]:
    fake = helix.fake
    channel_id = await fake.add_channel(f"backfill-{next(_names)}")
    await fake.add_messages(channel_id, messages, content="message {i} of the backfill")
    requests_before = fake.requests.get(HISTORY, 0)
    refused_before = len(fake.rate_limited)
    async with Ticker() as ticker:
        t0 = time.perf_counter()
        m0 = time.monotonic()
        answer = await helix.backup(channel_id)
        row = await helix.finished(channel_id, within=600)
        seconds = time.perf_counter() - t0
        m1 = time.monotonic()
    if "Backing up" not in answer["content"] or row.state != "done" or row.archived != messages:
        raise RuntimeError(f"the backup did not archive {messages} messages: {answer['content']!r}, {row}")
    beats, late, longest = _late_heartbeats(fake, m0, m1)
    return {"seconds": seconds, "rate": messages / seconds, "requests": fake.requests[HISTORY] - requests_before,
            "refused": len(fake.rate_limited) - refused_before, "lag_max_ms": ticker.max_ms,
            "lag_p99_ms": ticker.p99_ms, "heartbeats": beats, "heartbeats_late": late,
            "heartbeat_gap_max_ms": longest * 1000}


async def _plain_round(helix: CaptureOnLoopback, messages: int) -> dict[str, Any]:
    """The same route paged by discord.py alone, with no archiving: the client's own ceiling."""
    fake = helix.fake
    channel_id = await fake.add_channel(f"plain-{next(_names)}")
    await fake.add_messages(channel_id, messages)
    channel = await wait_until(lambda: helix.bot.get_channel(int(channel_id)), 10, "the new channel in the cache")
    t0 = time.perf_counter()
    got = 0
    async for _ in channel.history(limit=None, after=discord.Object(id=0), oldest_first=True):
        got += 1
    seconds = time.perf_counter() - t0
    if got != messages:
        raise RuntimeError(f"plain paging got {got} of {messages} messages")
    return {"seconds": seconds, "rate": messages / seconds}


async def _idle_round(fake: LoopbackDiscord) -> dict[str, Any]:
    """The same measurements with the bot idle, right after a round: this machine's own noise at that moment."""
    async with Ticker() as ticker:
        m0 = time.monotonic()
        await asyncio.sleep(IDLE_S)
        m1 = time.monotonic()
    _, late, _ = _late_heartbeats(fake, m0, m1)
    return {"lag_max_ms": ticker.max_ms, "heartbeats_late": late}


async def run(cfg: dict) -> dict:
    messages, rounds = int(cfg["messages"]), int(cfg["rounds"])
    ceiling = PAGE * BUCKET.per_second
    with scratch("backfill") as root:
        async with LoopbackDiscord(heartbeat_interval_ms=HEARTBEAT_MS, rate_limits={HISTORY: BUCKET}) as fake:
            async with helix_capture_on_loopback(capture_settings(root / "data"), fake) as helix:
                await _helix_round(helix, min(messages, WARMUP_MESSAGES))  # warm-up: imports, caches, rclone
                plain = await _plain_round(helix, max(PAGE * BUCKET.limit, messages // 4))
                runs, idle = [], []
                for _ in range(rounds):
                    runs.append(await _helix_round(helix, messages))
                    idle.append(await _idle_round(fake))
                refused_total = len(fake.rate_limited)
                requests = fake.requests
    ratios = [r["rate"] / ceiling for r in runs]
    lags = [r["lag_max_ms"] for r in runs]
    return {
        "figures": {
            "backfill_ratio": median(ratios),
            "backfill_429s": float(refused_total),
            "backfill_loop_lag_max_ms": median(lags),
            "backfill_heartbeats_late": float(sum(r["heartbeats_late"] for r in runs)),
        },
        "spread": {"backfill_ratio": spread(ratios), "backfill_loop_lag_max_ms": spread(lags)},
        "details": {
            "messages": messages, "rounds": rounds,
            "bucket": {"limit": BUCKET.limit, "window_s": BUCKET.window_s},
            "ceiling_msg_s": ceiling,
            "pages_per_round": math.ceil(messages / PAGE),
            "history_requests_per_round": [r["requests"] for r in runs],
            "responses_429": refused_total,
            "requests_by_route": requests,
            "seconds": summary([r["seconds"] for r in runs], 3),
            "rate_msg_s": [round(r["rate"], 1) for r in runs],
            "ratios": [round(x, 4) for x in ratios],
            "plain_discord_py": {"messages": max(PAGE * BUCKET.limit, messages // 4),
                                 "rate_msg_s": round(plain["rate"], 1),
                                 "ratio": round(plain["rate"] / ceiling, 4)},
            "loop_lag_max_ms": [round(x, 2) for x in lags],
            "loop_lag_p99_ms": [round(r["lag_p99_ms"], 2) for r in runs],
            "idle_s": IDLE_S,
            "loop_lag_idle_max_ms": [round(r["lag_max_ms"], 2) for r in idle],
            "heartbeats_late_idle": [r["heartbeats_late"] for r in idle],
            "heartbeat_interval_ms": HEARTBEAT_MS,
            "heartbeats": [r["heartbeats"] for r in runs],
            "heartbeats_late": [r["heartbeats_late"] for r in runs],
            "heartbeat_gap_max_ms": [round(r["heartbeat_gap_max_ms"], 1) for r in runs],
        },
    }
