"""The real HelixBot on a real websocket: heartbeats kept while a large archive runs, a dropped connection resumed.

SimCord hands events to the bot without a socket, so it cannot show the two failures that take a
bot down in production. Here the bot logs in to a loopback Discord (tests/support/loopback.py)
whose server thread records when each heartbeat arrives, and can cut the connection.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

from bot.settings import Settings
from sync.settings import SyncSettings
from tests.support.world import bot_settings, helix_on_loopback_discord

HEARTBEAT_MS = 500
BIG_MIB = 64


def settings_for(data_dir: Path, **sync: object) -> Settings:
    return bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05, **sync))


def write_big_file(path: Path, mib: int) -> Path:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for _ in range(mib):
            fh.write(chunk)
    return path


async def test_heartbeats_keep_the_servers_interval_while_a_large_file_is_archived(data_dir: Path) -> None:
    # HELIX_BWLIMIT, as an operator sets it, stretches a local copy of 64 MiB over about two seconds.
    settings = settings_for(data_dir, bwlimit="32M")
    big = await asyncio.to_thread(write_big_file, data_dir.parent / "big.bin", BIG_MIB)

    async with helix_on_loopback_discord(settings, HEARTBEAT_MS) as (fake, bot):
        copying = asyncio.Event()

        async def progress(_: object) -> None:
            copying.set()

        started = time.monotonic()
        upload = asyncio.create_task(bot.archive.service.archive(big, "uploads/big.bin", progress=progress))
        await asyncio.wait_for(copying.wait(), 10)  # rclone reports bytes moving
        reply = await fake.ask("!heartbeat")
        assert not upload.done(), "the archive finished before the heartbeat was asked: make the file bigger"
        result = await upload
        finished = time.monotonic()
        conn = fake.heartbeats[-1][0]
        await fake.wait_until(lambda: fake.heartbeats[-1][1] > finished, within=5)  # the beat closing the last gap

    assert result.size == BIG_MIB << 20 and (data_dir / "archive" / "uploads" / "big.bin").stat().st_size == result.size
    assert finished - started >= 1.5, f"the archive took {finished - started:.2f} s: too short to measure"
    assert re.match(r"💓 alive · gateway \d+ ms · loop lag \d+\.\d ms", reply["content"]), reply["content"]
    assert started < reply["at"] < finished, "!heartbeat was answered while the archive ran"
    interval = HEARTBEAT_MS / 1000
    times = [t for c, t in fake.heartbeats if c == conn and started - interval <= t]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len([t for t in times if t < finished]) >= (finished - started) / interval - 1, times
    assert max(gaps) < interval * 1.5 + 0.25, f"heartbeat gaps while archiving: {[round(g, 3) for g in gaps]}"


async def test_a_dropped_connection_is_resumed_and_the_next_command_still_answers(data_dir: Path) -> None:
    async with helix_on_loopback_discord(settings_for(data_dir), HEARTBEAT_MS) as (fake, bot):
        assert (await fake.ask("!heartbeat"))["content"].startswith("💓 alive")
        session = fake.session_id

        await fake.drop()
        await fake.wait_until(lambda: fake.resumes or len(fake.identifies) > 1)

        assert len(fake.identifies) == 1, "a drop must be RESUMED (op 6), not answered with a new IDENTIFY"
        [resume] = fake.resumes
        assert resume["accepted"] and resume["session_id"] == session
        assert (await fake.ask("!heartbeat"))["content"].startswith("💓 alive")

        # A ritual over the resumed connection: the image is uploaded, then the message is edited.
        posted = await fake.ask("!ritual 9", within=20)
        edited = await fake.wait_for_message(lambda m: m["action"] == "edit" and "✅ archived" in m["content"],
                                             within=20)

    assert posted["content"].startswith("🌀 **Ritual of 9 steps**")
    [name] = posted["attachments"]
    assert posted["files"][name].startswith(b"\x89PNG\r\n\x1a\n")
    assert edited["id"] == posted["id"]
    assert fake.unknown_routes == [], "the bot called a Discord route the loopback does not serve"
