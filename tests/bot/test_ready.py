"""Railway polls /health; an operator reads /ready. The real bot, on a real websocket, with a real remote."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.helix import HelixBot
from bot.settings import Settings
from sync.archive import Archive
from tests.support.loopback import LoopbackDiscord
from tests.support.remotes import LoopbackRemote


async def get(port: int, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.json()


async def test_ready_turns_503_when_the_remote_server_stops(webdav: LoopbackRemote, data_dir: Path):
    sync = webdav.settings(data_dir, retries=0)
    settings = Settings(health=True, port=0, heartbeat_minutes=0, sync=sync)
    archive = Archive(sync)
    bot = HelixBot(settings, archive=archive, guild_ready_timeout=0.1)
    bot.ready_window_s = 0  # ask the remote on every /ready, so the test need not wait for the window
    await archive.start()
    try:
        async with LoopbackDiscord(heartbeat_interval_ms=500) as fake, fake.client(bot):
            port = bot.health.port
            status, body = await get(port, "/health")
            assert status == 200

            status, body = await get(port, "/ready")
            assert status == 200, body
            assert body["gateway"] is True and body["remote_ok"] is True and body["remote"] == "loop:"

            webdav.stop()
            status, body = await get(port, "/ready")
            assert status == 503
            assert body["remote_ok"] is False and "unreachable" in (body["last_error"] or "")
            assert webdav.password not in str(body)

            webdav.start()
            status, body = await get(port, "/ready")
            assert status == 200, body
    finally:
        await archive.close()
