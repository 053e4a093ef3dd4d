"""The health endpoints, over real HTTP: what Railway and Docker's HEALTHCHECK will see.

``/health`` answers while the loop runs, even while a readiness check hangs; ``/ready`` follows the
bot's readiness callable, including a real archive remote that stops and comes back.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from runtime import logs
from runtime.health import HealthServer, HealthServerError
from sync._service import SyncService
from sync.errors import SyncError
from tests.support.remotes import LoopbackRemote

ReadyCheck = Callable[[], Awaitable[tuple[bool, dict]]]


class Poller:
    """What Railway does: GET a path on the server and read status and JSON body."""

    def __init__(self, server: HealthServer) -> None:
        self.base = f"http://127.0.0.1:{server.port}"
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def get(self, path: str) -> tuple[int, dict]:
        async with self.session.get(self.base + path) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Poller]]]:
    """Start health servers on free ports; stop them (and their pollers) after the test."""
    started: list[tuple[HealthServer, Poller]] = []

    async def start(ready: ReadyCheck, **kw: float) -> Poller:
        server = HealthServer(0, ready, host="127.0.0.1", **kw)
        await server.start()
        poller = Poller(server)
        started.append((server, poller))
        return poller

    yield start
    for server, poller in started:
        await poller.session.close()
        await server.stop()


async def test_health_answers_200_while_the_loop_runs(serve: Callable[..., Awaitable[Poller]]) -> None:
    async def never_ready() -> tuple[bool, dict]:
        return False, {}

    poller = await serve(never_ready)
    status, body = await poller.get("/health")
    assert status == 200 and body["status"] == "ok"


async def test_ready_is_503_then_200_as_the_bot_becomes_ready(serve: Callable[..., Awaitable[Poller]]) -> None:
    state = {"gateway": False}

    async def ready() -> tuple[bool, dict]:
        return state["gateway"], {"gateway": state["gateway"], "remote": "mega:helix"}

    poller = await serve(ready)
    assert await poller.get("/ready") == (503, {"ready": False, "gateway": False, "remote": "mega:helix"})
    state["gateway"] = True
    assert await poller.get("/ready") == (200, {"ready": True, "gateway": True, "remote": "mega:helix"})


async def test_a_failing_readiness_check_answers_503_with_the_reason_redacted(
    serve: Callable[..., Awaitable[Poller]],
) -> None:
    secret = "hunter2-is-not-a-password"
    logs.refresh_secrets({"RCLONE_CONFIG_MEGA_PASS": secret})
    try:
        async def broken() -> tuple[bool, dict]:
            raise RuntimeError(f"login failed with {secret}")

        poller = await serve(broken)
        status, body = await poller.get("/ready")
        assert status == 503 and body["ready"] is False
        assert "RuntimeError" in body["error"] and secret not in body["error"]
    finally:
        logs.refresh_secrets()


async def test_a_hung_readiness_check_answers_503_and_health_keeps_answering(
    serve: Callable[..., Awaitable[Poller]],
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def hangs() -> tuple[bool, dict]:
        entered.set()
        await release.wait()
        return True, {}

    poller = await serve(hangs, ready_timeout=1)
    pending = asyncio.create_task(poller.get("/ready"))
    await entered.wait()  # the readiness check is now hanging inside the server
    assert (await poller.get("/health"))[0] == 200
    status, body = await pending
    assert status == 503 and "took over" in body["error"]
    release.set()


async def test_a_port_already_in_use_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def ready() -> tuple[bool, dict]:
            return True, {}

        with pytest.raises(HealthServerError, match=f"Port {port} is already in use"):
            await HealthServer(port, ready, host="127.0.0.1").start()


async def test_ready_turns_503_when_the_archive_remote_stops_and_200_when_it_returns(
    serve: Callable[..., Awaitable[Poller]], webdav: LoopbackRemote, tmp_path: Path,
) -> None:
    """A readiness check that asks a real WebDAV remote, as the bot's does, follows it down and back up."""
    async with SyncService(webdav.settings(tmp_path / "data", retries=0)) as svc:

        async def remote_answers() -> tuple[bool, dict]:
            try:
                await svc.list("", recurse=False)
            except SyncError as exc:
                return False, {"remote": svc.display, "error": exc.hint}
            return True, {"remote": svc.display}

        poller = await serve(remote_answers, ready_timeout=20)
        assert (await poller.get("/ready"))[0] == 200
        webdav.stop()
        status, body = await poller.get("/ready")
        assert status == 503 and "unreachable" in body["error"]
        webdav.start()
        assert (await poller.get("/ready"))[0] == 200
