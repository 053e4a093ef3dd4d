"""``!backup`` over a Discord that rate-limits: every message archived once, and not a single 429.

The real HelixBot logs in to the loopback Discord (a real websocket, real HTTP) whose history
bucket admits 5 requests a second; 2,000 messages are 21 history requests, so the backup must wait
out four windows, paced by discord.py reading the ``X-RateLimit-*`` headers alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.capture import blob_files, segment_lines, sha256
from tests.support.loopback import LoopbackDiscord
from tests.support.loopback_capture import CaptureOnLoopback, capture_settings, helix_capture_on_loopback
from tests.support.loopback_limits import HISTORY, Limit

pytestmark = pytest.mark.asyncio

MESSAGES = 2000


def photo(i: int) -> list[tuple[str, bytes]]:
    """Every 100th message has a picture; the bytes differ per picture."""
    return [(f"photo-{i}.png", hashlib.sha256(str(i).encode()).digest() * 64)] if i % 100 == 0 else []


@pytest_asyncio.fixture
async def helix(data_dir: Path) -> AsyncIterator[CaptureOnLoopback]:
    async with LoopbackDiscord(heartbeat_interval_ms=1000, rate_limits={HISTORY: Limit(5, 1.0)}) as fake:
        async with helix_capture_on_loopback(capture_settings(data_dir), fake) as helix:
            yield helix


async def test_a_backup_larger_than_several_buckets_archives_every_message_once_without_a_429(helix):
    fake = helix.fake
    channel_id = await fake.add_channel("town-square")
    seeded = await fake.add_messages(channel_id, MESSAGES, content="post {i}", files=photo)

    answer = await helix.backup(channel_id)
    assert "Backing up" in answer["content"], answer["content"]
    row = await helix.finished(channel_id)

    assert row.state == "done" and row.archived == MESSAGES, row
    records = segment_lines(helix.storage, int(fake.guild_id), int(channel_id))
    assert [r["id"] for r in records] == seeded, "every message once, oldest first"
    assert records[1234]["content"] == "post 1234"
    blobs = blob_files(helix.storage)
    assert len(blobs) == MESSAGES // 100 and all(sha256(path) == name for name, path in blobs.items())
    assert fake.rate_limited == [], "discord.py kept to the headers: no 429 was needed"
    assert fake.requests[HISTORY] == MESSAGES // 100 + 1, "full pages, then the empty one that ends the history"
    assert fake.unknown_routes == []
    await fake.wait_for_message(lambda m: m["action"] == "edit" and m["content"].startswith("✅"))
    edits = [m["content"] for m in fake.sent_messages if m["action"] == "edit" and m["id"] == answer["id"]]
    assert any(e.startswith("📦 Backing up") and "messages scanned" in e for e in edits), "progress while it runs"
    assert "2,000 messages scanned, 2,000 new, 20 files saved" in edits[-1], edits[-1]

    await fake.add_messages(channel_id, 30, content="later {i}")
    await helix.backup(channel_id)
    row = await helix.finished(channel_id, count=2)
    assert row.state == "done" and row.archived == 30, "the second backup starts at the cursor"
    assert len(segment_lines(helix.storage, int(fake.guild_id), int(channel_id))) == MESSAGES + 30
    assert fake.rate_limited == []
