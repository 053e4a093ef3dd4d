"""A Discord-like attachment CDN over real HTTP on 127.0.0.1, and Discord-like history paging, for SimCord.

SimCord keeps attachments in memory (``backend.cdn._blobs``): discord.py's ``Attachment.read()``
reaches them, a plain HTTP GET of ``attachment.url`` does not (``cdn.simcord.invalid`` never
resolves). Helix downloads with its own aiohttp session, as it must on Discord (streamed, never
whole in memory), so the tests serve the bytes here under signed, expiring Discord-shaped URLs
(``?ex=&is=&hm=``): ``expire`` makes a link answer 403 as an expired Discord link does, ``rotate``
gives the message fresh links (what fetching a message again does on Discord), ``forget`` makes
the file answer 404 everywhere.

``discord_like_history``: SimCord 3.2.1 answers ``GET /channels/{id}/messages?after=X`` with the
NEWEST ``limit`` messages newer than X, where Discord answers with the ``limit`` messages right
after X; discord.py's ``history(after=..., oldest_first=True)`` then stops after one page. The
context manager swaps in a handler that pages as Discord does (SimCord internals: a test-only patch).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from simcord.backend.access import channel_accessible
from simcord.http import router
from simcord.http._helpers import message_response
from simcord.http.routes import messages as _messages


class LocalCdn:
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.expired: set[str] = set()
        self.hits: list[str] = []
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
        if request.query.get("hm") in self.expired:
            return web.Response(status=403, text="This content is no longer available.")
        if request.path not in self.blobs:
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
