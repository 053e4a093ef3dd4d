"""The REST half of the loopback Discord: its routes, login, the gateway address, messages, and the payloads.

``LoopbackDiscord`` (in ``tests/support/loopback.py``, the gateway half) inherits these handlers;
they run on the fake's own event loop and record what a Discord server would have received.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import yarl
from aiohttp import BodyPartReader, web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.support.loopback_limits import API

_DISCORD_EPOCH_MS = 1420070400000


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


class RestRoutes:
    """Discord's REST routes as the fake serves them; mixed into LoopbackDiscord."""

    def _add_routes(self, app: web.Application) -> None:
        """Every route the fake answers; anything else is recorded in ``unknown_routes`` and answered 404."""
        v10, channel = API, f"{API}/channels/{{channel_id}}"
        app.router.add_get("/ws", self._gateway)
        app.router.add_get("/attachments/{tail:.*}", self._cdn)
        app.router.add_get(f"{v10}/users/@me", self._users_me)
        app.router.add_get(f"{v10}/applications/@me", self._static(self._application))
        app.router.add_get(f"{v10}/oauth2/applications/@me", self._static(self._application))
        app.router.add_get(f"{v10}/gateway", self._static(lambda: {"url": self.gateway_url}))
        app.router.add_get(f"{v10}/gateway/bot", self._static(self._gateway_bot))
        app.router.add_get(f"{v10}/guilds/{{guild_id}}/channels", self._guild_channels)
        app.router.add_get(f"{v10}/guilds/{{guild_id}}/members/{{user_id}}", self._get_member)
        app.router.add_get(channel, self._get_channel)
        app.router.add_post(f"{channel}/typing", self._static(lambda: None))
        app.router.add_get(f"{channel}/messages", self._history)
        app.router.add_post(f"{channel}/messages", self._create_message)
        app.router.add_get(f"{channel}/messages/{{message_id}}", self._get_message)
        app.router.add_patch(f"{channel}/messages/{{message_id}}", self._edit_message)
        for kind in ("public", "private"):
            app.router.add_get(f"{channel}/threads/archived/{kind}", self._no_threads)
        app.router.add_get(f"{channel}/users/@me/threads/archived/private", self._no_threads)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)

    @staticmethod
    def _json(payload: Any, status: int = 200) -> web.Response:
        # discord.py decodes a body only if Content-Type is exactly "application/json": aiohttp's
        # json_response adds "; charset=utf-8", and discord.py would hand the raw string on.
        body = json.dumps(payload).encode()
        return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})

    @staticmethod
    def _static(payload: Callable[[], Any]) -> Callable[[web.Request], Coroutine[Any, Any, web.Response]]:
        """A handler answering with ``payload()`` as JSON, or 204 when it is None."""

        async def handler(_: web.Request) -> web.Response:
            body = payload()
            return web.Response(status=204) if body is None else RestRoutes._json(body)

        return handler

    async def _users_me(self, request: web.Request) -> web.Response:
        """Login: discord.py's first request; a wrong token gets Discord's 401."""
        if self.valid_token is not None and request.headers.get("Authorization") != f"Bot {self.valid_token}":
            return self._json({"message": "401: Unauthorized", "code": 0}, status=401)
        return self._json(self.bot_user)

    @contextlib.contextmanager
    def pointed(self) -> Iterator[None]:
        """Point discord.py's global REST and gateway URLs here, for code that starts a client itself."""
        old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self.api_base, yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway

    async def _unknown_route(self, request: web.Request) -> web.Response:
        self._record(self._unknown, (request.method, request.path))
        return self._json({"message": "404: Not Found (LoopbackDiscord)", "code": 0}, status=404)

    async def _create_message(self, request: web.Request) -> web.Response:
        unknown = self._unknown_channel(request)
        if unknown is not None:
            return unknown
        body, files = await self._read_body(request)
        message = self._message_payload(
            self._snowflake(), request.match_info["channel_id"], self.bot_user, body.get("content") or "",
            embeds=body.get("embeds") or [], files=files,
        )
        self._messages[message["id"]] = message  # the bot's own messages, which it may edit
        self._store(message)
        self._record(self._sent, self._sent_record("create", message, body, files))
        # The partial member riding along updates discord.py's cache: it carries the bot's role.
        member = self._member_payload(None, roles=[self.bot_role_id])
        await self._dispatch("MESSAGE_CREATE", {**message, "member": member})
        return self._json(message)

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self._messages.get(request.match_info["message_id"])
        if message is None:
            return self._json({"message": "Unknown Message", "code": 10008}, status=404)
        body, files = await self._read_body(request)
        for key in ("content", "embeds"):
            if key in body:
                message[key] = body[key] or ("" if key == "content" else [])
        if files:
            message["attachments"] = self._attachments(message["channel_id"], files)
        message["edited_timestamp"] = _now_iso()
        self._store(message)
        self._record(self._sent, self._sent_record("edit", message, body, files))
        await self._dispatch("MESSAGE_UPDATE", message)
        return self._json(message)

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        """discord.py sends JSON, or multipart with ``payload_json`` and ``files[n]`` when uploading."""
        if not request.content_type.startswith("multipart/"):
            return (await request.json() if request.can_read_body else {}), {}
        body: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.filename:
                files[part.filename] = bytes(await part.read(decode=False))
            elif part.name == "payload_json":
                body = json.loads(await part.text())
        return body, files

    def _sent_record(
        self, action: str, message: dict[str, Any], body: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        return {
            "action": action,
            "id": message["id"],
            "channel_id": message["channel_id"],
            "content": message["content"],
            "embeds": message["embeds"],
            "attachments": list(files),
            "files": files,
            "payload": body,
            "at": time.monotonic(),
        }

    # ----- payloads -----

    def _snowflake(self) -> str:
        """A new id, later than every id before it (ids are time-ordered, and history pages by them)."""
        with self._id_lock:
            self._last_id = max((int(time.time() * 1000) - _DISCORD_EPOCH_MS) << 22, self._last_id + 1)
            return str(self._last_id)

    @staticmethod
    def _iso(snowflake: str) -> str:
        """The moment a snowflake was made, as Discord's ISO timestamps."""
        ms = (int(snowflake) >> 22) + _DISCORD_EPOCH_MS
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat()

    @staticmethod
    def _user_payload(user_id: str, name: str, bot: bool = False) -> dict[str, Any]:
        return {
            "id": user_id, "username": name, "discriminator": "0", "global_name": None,
            "avatar": None, "bot": bot, "public_flags": 0, "flags": 0,
        }

    def _users(self) -> list[dict[str, Any]]:
        return [self.bot_user, self.user]

    def _member_payload(self, user: dict[str, Any] | None, roles: list[str] | None = None) -> dict[str, Any]:
        """A guild member; ``user=None`` is the partial member that rides along with a message."""
        member = {"roles": roles or [], "joined_at": _now_iso(), "deaf": False, "mute": False, "flags": 0}
        return member if user is None else {**member, "user": user}

    def _application(self) -> dict[str, Any]:
        return {
            "id": self.bot_user["id"], "name": "helix-loopback", "description": "", "icon": None,
            "bot_public": False, "bot_require_code_grant": False, "verify_key": "0" * 64,
            "owner": self.user, "team": None, "flags": 0, "summary": "",
        }

    def _gateway_bot(self) -> dict[str, Any]:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    def _message_payload(
        self,
        message_id: str,
        channel_id: str,
        author: dict[str, Any],
        content: str,
        embeds: list[dict[str, Any]] | None = None,
        files: dict[str, bytes] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": message_id, "type": 0, "channel_id": channel_id, "guild_id": self.guild_id,
            "author": author, "content": content, "timestamp": self._iso(message_id), "edited_timestamp": None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": self._attachments(channel_id, files or {}), "embeds": embeds or [], "pinned": False,
            "flags": 0, "components": [],
        }
