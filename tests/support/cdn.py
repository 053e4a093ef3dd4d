"""A Discord-like attachment CDN over real HTTP on 127.0.0.1, and Discord-like history paging, for SimCord.

SimCord keeps attachments in memory (``backend.cdn._blobs``): discord.py's ``Attachment.read()``
reaches them, a plain HTTP GET of ``attachment.url`` does not (``cdn.simcord.invalid`` never
resolves). Helix downloads with its own aiohttp session, as it must on Discord (streamed, never
whole in memory), so the tests serve the bytes here under signed, expiring Discord-shaped URLs
(``?ex=&is=&hm=``): ``expire`` makes a link answer 403 as an expired Discord link does, ``rotate``
gives the message fresh links (what fetching a message again does on Discord), ``forget`` makes
the file answer 404 everywhere.

Big files are served from disk instead (``attachment_file``: linked under ``folder``, sent with
sendfile, never in memory), and ``CdnProcess`` runs the same server in a child process
(``python -m tests.support.cdn FOLDER``), so a benchmark measures the bot's process alone.

``discord_like_history``: SimCord 3.2.1 answers ``GET /channels/{id}/messages?after=X`` with the
NEWEST ``limit`` messages newer than X, where Discord answers with the ``limit`` messages right
after X; discord.py's ``history(after=..., oldest_first=True)`` then stops after one page. The
context manager swaps in a handler that pages as Discord does (SimCord internals: a test-only patch).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from simcord.backend.access import channel_accessible
from simcord.http import router
from simcord.http._helpers import message_response
from simcord.http.routes import messages as _messages


class LocalCdn:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder  # files served from disk: URL path /attachments/... is folder/attachments/...
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.expired: set[str] = set()
        self.hits: list[str] = []
        self._held: dict[str, tuple[asyncio.Event, asyncio.Event]] = {}  # path -> (asked for, let go)
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def __aenter__(self) -> LocalCdn:
        app = web.Application()
        app.router.add_get("/attachments/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        if (held := self._held.get(request.path)) is not None:
            held[0].set()
            await held[1].wait()
        if request.query.get("hm") in self.expired:
            return web.Response(status=403, text="This content is no longer available.")
        if request.path not in self.blobs:
            on_disk = self.folder / request.path.lstrip("/") if self.folder is not None else None
            if on_disk is not None and ".." not in request.path and on_disk.is_file():
                return web.FileResponse(on_disk)
            return web.Response(status=404)
        data, ctype = self.blobs[request.path]
        return web.Response(body=data, content_type=ctype)

    def _url(self, path: str) -> str:
        ex = 0x6A000000
        return f"{self.base}{path}?ex={ex:x}&is={ex - 86400:x}&hm={secrets.token_hex(32)}&"

    def attachment(self, env: Any, channel_id: int, filename: str, data: bytes,
                   content_type: str = "application/octet-stream") -> dict[str, Any]:
        """An attachment payload for ``backend.create_message(..., attachments=[...])``."""
        aid = env.backend.snowflake()
        path = f"/attachments/{channel_id}/{aid}/{filename}"
        url = self._url(path)
        self.blobs[path] = (data, content_type)
        env.backend.cdn._blobs[url] = data  # what discord.Attachment.read() reads
        return {"id": str(aid), "filename": filename, "size": len(data), "url": url, "proxy_url": url,
                "content_type": content_type}

    def attachment_file(self, env: Any, channel_id: int, src: Path,
                        content_type: str = "application/octet-stream") -> dict[str, Any]:
        """An attachment served from disk: ``src`` is linked under ``folder``; ``Attachment.read()`` cannot reach it."""
        assert self.folder is not None, "LocalCdn(folder=...) serves files from disk"
        aid = env.backend.snowflake()
        path = f"/attachments/{channel_id}/{aid}/{src.name}"
        link = self.folder / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)  # a fresh SimCord hands out the same snowflakes again
        link.symlink_to(src.resolve())
        url = self._url(path)
        return {"id": str(aid), "filename": src.name, "size": src.stat().st_size, "url": url, "proxy_url": url,
                "content_type": content_type}

    def hold(self, url: str) -> tuple[asyncio.Event, asyncio.Event]:
        """The file at ``url`` is served only once the test lets it go: (it was asked for, let it go)."""
        held = self._held[url.split("?")[0].replace(self.base, "")] = (asyncio.Event(), asyncio.Event())
        return held

    def expire(self, url: str) -> None:
        self.expired.add(url.split("hm=")[1].split("&")[0])

    def rotate(self, env: Any, channel_id: int, message_id: int) -> None:
        """Fresh signed links for a message's attachments, as Discord hands out when it is fetched again."""
        message = env.backend.messages[channel_id][message_id]
        for att in message.attachments:
            path = att["url"].split("?")[0].replace(self.base, "")
            att["url"] = att["proxy_url"] = self._url(path)
            env.backend.cdn._blobs[att["url"]] = self.blobs[path][0]

    def forget(self, env: Any, url: str) -> None:
        self.blobs.pop(url.split("?")[0].replace(self.base, ""), None)
        env.backend.cdn._blobs.pop(url, None)


class CdnProcess(LocalCdn):
    """The disk-backed CDN in a child process: its work and memory are not the bot's."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> CdnProcess:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.cdn", str(self.folder), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=env, cwd=root)
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if not line.startswith(b"http://"):
            raise RuntimeError(f"the CDN process did not start: {line!r}")
        self.base = line.decode().strip()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()  # its stdin at EOF: it stops
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None


async def _serve_folder(folder: Path) -> None:
    async with LocalCdn(folder) as cdn:
        print(cdn.base, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def _discord_history(ctx: router.RequestContext) -> Any:
    backend = ctx.backend
    channel_id = ctx.int_arg("channel_id")
    ctx.require_channel_permissions(channel_id)
    if not channel_accessible(backend, channel_id, backend.bot_user.id, history=True):
        return []
    if "around" in ctx.params:
        return _messages.get_history(ctx)
    limit = int(ctx.params.get("limit", 50))
    visible = sorted((m for m in backend.messages[channel_id].values() if not m.is_ephemeral), key=lambda m: m.id)
    if "after" in ctx.params and "before" not in ctx.params:
        after = int(ctx.params["after"])
        page = [m for m in visible if m.id > after][:limit]
    else:
        before = int(ctx.params["before"]) if "before" in ctx.params else 1 << 64
        after = int(ctx.params.get("after", 0))
        page = [m for m in visible if after < m.id < before][-limit:]
    return [message_response(ctx, m) for m in reversed(page)]  # Discord: newest first


@contextlib.contextmanager
def discord_like_history() -> Iterator[None]:
    table = router._ROUTES["GET"]
    index = next(i for i, (_, h) in enumerate(table) if h in (_messages.get_history, _discord_history))
    template, original = table[index]
    table[index] = (template, _discord_history)
    try:
        yield
    finally:
        table[index] = (template, original)


if __name__ == "__main__":
    asyncio.run(_serve_folder(Path(sys.argv[1])))
