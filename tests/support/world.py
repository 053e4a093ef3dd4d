"""Fixtures for the bot's tests: the real HelixBot in a SimCord guild, archiving to a real remote.

``world`` is what ``python -m bot demo`` runs: ``bot.sim.world.simulated_guild`` around real
rclone. Two archives are offered: the embedded default (a local folder under the data dir) and a
loopback WebDAV server (``rclone serve webdav`` with a password), which a test may stop and start
to take "the cloud" down and bring it back. Slash commands are published with the owner's
``!sync`` before the test starts, as an operator does once after inviting the bot.

``tests/conftest.py`` loads this module as a plugin, so every test module can ask for these fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import discord
import pytest
import pytest_asyncio
import structlog
from PIL import Image

from bot.helix import HelixBot
from bot.settings import Settings
from bot.sim import transcript
from bot.sim.world import World, simulated_guild
from runtime import logs
from sync._outbox.store import STATES
from sync.archive import Archive
from sync.settings import SyncSettings
from tests.support.loopback import LoopbackDiscord
from tests.support.remotes import LoopbackRemote

COOLDOWN_S = 30
DRAIN_S = 30.0
T = TypeVar("T")


def bot_settings(sync: SyncSettings, **overrides: Any) -> Settings:
    """The bot as the demo runs it (no health port, no periodic heartbeat), quick to retry."""
    sync = replace(sync, outbox_retry_base_s=0.1, outbox_retry_cap_s=0.5)
    return replace(Settings(health=False, heartbeat_minutes=0, ritual_cooldown_s=COOLDOWN_S, stop_grace_s=5,
                            sync=sync), **overrides)


@pytest_asyncio.fixture
async def local_world(data_dir: Path) -> AsyncIterator[World]:
    """Helix archiving to the embedded default: a folder at ``<data_dir>/archive``."""
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    async for world in hosted_world(bot_settings(sync)):
        yield world


@pytest_asyncio.fixture
async def nosuch_world(data_dir: Path) -> AsyncIterator[World]:
    """Helix told to archive to a remote nobody defined: every upload fails at its first try."""
    sync = SyncSettings(archive="nosuch:x", data_dir=data_dir, retries=0, retry_base_s=0.05)
    async for world in hosted_world(bot_settings(sync)):
        yield world


@pytest_asyncio.fixture
async def webdav_world(webdav: LoopbackRemote, data_dir: Path) -> AsyncIterator[World]:
    """Helix archiving to a password-protected WebDAV server on 127.0.0.1 (the ``webdav`` fixture)."""
    async for world in hosted_world(bot_settings(webdav.settings(data_dir))):
        yield world


@pytest_asyncio.fixture(params=["local", "webdav"])
async def archive_world(request: pytest.FixtureRequest, data_dir: Path) -> AsyncIterator[World]:
    """The same test against each kind of archive: the local folder, then the WebDAV server.

    The served folder is ``world.storage`` (where a test looks for what landed).
    """
    if request.param == "webdav":
        remote: LoopbackRemote = request.getfixturevalue("webdav")
        sync, storage = remote.settings(data_dir), remote.storage
    else:
        sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
        storage = sync.archive_dir
    async for world in hosted_world(bot_settings(sync)):
        world.storage = storage  # type: ignore[attr-defined]
        yield world


async def hosted_world(settings: Settings) -> AsyncIterator[World]:
    """``simulated_guild`` with the slash commands published, kept open from a fixture's setup to its teardown.

    A bot error SimCord caught during the test is re-raised at teardown (``check_errors``).
    """

    @contextlib.asynccontextmanager
    async def world_with_slash_commands() -> AsyncIterator[World]:
        async with simulated_guild(settings) as world:
            lines = await world.say(world.owner, f"{settings.prefix}sync")  # an operator does it once after the invite
            assert any(re.search(r"Synced \d+ slash commands", line) for line in lines), lines
            yield world

    async for world in hosted(world_with_slash_commands()):
        yield world


async def hosted(manager: contextlib.AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter and exit ``manager`` in one task that lives from a fixture's setup to its teardown.

    pytest-asyncio runs a fixture's setup and its teardown in different contexts, and SimCord's
    ``run()`` resets on exit a context variable it set on entry: the same task must do both.
    """
    ready: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    finished = asyncio.Event()

    async def host() -> None:
        async with manager as value:
            ready.set_result(value)
            await finished.wait()

    task = asyncio.create_task(host(), name="helix-test-host")
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        task.result()  # it failed to start: raise why
    try:
        yield ready.result()
    finally:
        finished.set()
        await task


@contextlib.asynccontextmanager
async def helix_on_loopback_discord(settings: Settings, heartbeat_interval_ms: int = 500,
                                    ) -> AsyncIterator[tuple[LoopbackDiscord, HelixBot]]:
    """The real HelixBot logged in to a loopback Discord over a real websocket (see tests/support/loopback.py).

    The archive is started outside the bot and handed in, as the demo does; the bot wires its
    hooks to the worker before the worker starts.
    """
    archive = Archive(settings.sync)
    bot = HelixBot(settings, archive=archive, guild_ready_timeout=0.1)
    await archive.start()
    try:
        async with LoopbackDiscord(heartbeat_interval_ms=heartbeat_interval_ms) as fake, fake.client(bot):
            yield fake, bot
    finally:
        await archive.close(grace_s=settings.stop_grace_s)


@pytest.fixture
def helix_logs() -> Iterator[io.StringIO]:
    """Helix's real log pipeline (JSON lines, redacted) writing to a buffer the test can read."""
    stream = io.StringIO()
    logs.configure(level="INFO", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler.get_name() == "helix":
                root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        structlog.reset_defaults()


def log_records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def private_channel(world: World, name: str, *readers: Any) -> Any:
    """A text channel that only ``readers`` (roles or members) and the bot can open."""
    guild = world.guild
    hidden, shown = discord.PermissionOverwrite(view_channel=False), discord.PermissionOverwrite(view_channel=True)
    me = world.bot.get_guild(guild.id).me
    return guild.create_text_channel(name, overwrites={guild.default_role: hidden, me: shown,
                                                       **{reader: shown for reader in readers}})


# -- what the bot did, read back from SimCord ---------------------------------------------------


def bot_messages(world: World, since: int = 0) -> list[dict[str, Any]]:
    """Messages the bot posted or edited since HTTP request ``since``, as sent (see bot.sim.transcript)."""
    return transcript.bot_messages(world.env.http_requests[since:])


def answers(world: World, since: int = 0) -> list[dict[str, Any]]:
    """The bot's answers (new messages and interaction replies), not its edits nor a bare 'thinking…'."""
    return [m for m in bot_messages(world, since)
            if m["method"] == "POST" and (m.get("content") or m.get("embeds"))]


def last_edit(world: World, since: int) -> str:
    """The text of the bot's latest edit since HTTP request ``since`` ('' before the first)."""
    edits = [m.get("content") or "" for m in bot_messages(world, since) if m["method"] == "PATCH"]
    return edits[-1] if edits else ""


async def answer_to(world: World, who: Any, text: str) -> str:
    """``who`` types ``text``; the bot's one answer. A refusal is an error SimCord caught: reading
    ``env.errors`` tells it the error was expected."""
    since = len(world.env.http_requests)
    await world.say(who, text)
    [said] = answers(world, since)
    assert world.env.errors is not None
    return said["content"]


async def outbox_counts(world: World) -> dict[str, int]:
    counts = await world.archive.outbox.counts()
    return {state: getattr(counts, state) for state in STATES}


async def drained(world: World) -> None:
    assert await world.archive.worker.drain(DRAIN_S), "the outbox did not drain"


def check_ritual_pair(storage: Path, png_name: str, steps: int) -> dict[str, Any]:
    """The archived PNG decodes and matches its manifest; returns the manifest."""
    [png] = storage.glob(f"rituals/*/*/*/{png_name}")
    manifest_path = png.with_suffix(".json")
    assert manifest_path.is_file(), f"no manifest next to {png}"
    manifest = json.loads(manifest_path.read_text())
    data = png.read_bytes()
    assert manifest["steps"] == steps
    assert manifest["png_sha256"] == hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "PNG" and min(image.size) >= 256
    return manifest
