"""Fixtures and readers for the capture tests: a guild with a real-HTTP CDN, and what landed on the remote."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot.sim.world import World
from tests.support.cdn import LocalCdn, discord_like_history
from tests.support.waiting import wait_until

BACKUP_S = 120.0


@pytest_asyncio.fixture
async def cdn() -> AsyncIterator[LocalCdn]:
    async with LocalCdn() as served:
        with discord_like_history():
            yield served


async def backup_finished(world: World, channel_id: int, count: int = 1, within: float = BACKUP_S) -> Any:
    """Wait for ``count`` finished backups of a channel, then for the outbox to land everything."""
    async def done() -> Any:
        rows = [r for r in await world.capture.catalogue.call("backups", limit=100) if r.channel_id == channel_id]
        finished = [r for r in rows if r.state != "running"]
        return finished[0] if len(finished) >= count else None

    row = await wait_until(done, within, f"backup {count} of channel {channel_id}")
    assert await world.archive.worker.drain(60), "the outbox did not drain"
    return row


def storage(world: World) -> Path:
    return Path(world.archive.settings.archive_dir)


def segment_lines(root: Path, guild_id: int, channel_id: int) -> list[dict[str, Any]]:
    lines = []
    for seg in sorted((root / f"discord/{guild_id}/{channel_id}/messages").glob("*.jsonl")):
        lines += [json.loads(line) for line in seg.read_text().splitlines() if line.strip()]
    return lines


def blob_files(root: Path) -> dict[str, Path]:
    return {p.name: p for p in (root / "blobs/sha256").glob("*/*")} if (root / "blobs").exists() else {}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
