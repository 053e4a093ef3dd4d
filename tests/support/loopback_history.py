"""The loopback Discord's guild: its roles and channels, their message history, and the files on its CDN.

``LoopbackDiscord`` inherits these handlers; they run on the fake's own event loop. History is
paged exactly as Discord pages it, because discord.py's ``history()`` relies on it:

- newest first in every answer;
- ``after=X``: the ``limit`` messages right after X (the oldest ones newer than X);
- ``before=X``: the ``limit`` messages right before X; ``around=X``: ``limit`` messages centred
  on X; none of them: the newest ``limit``;
- ``limit`` from 1 to 100, 50 when absent; anything else is Discord's 400.

Seeded messages (``add_messages``) go straight into the history, as if posted before the bot
looked: no MESSAGE_CREATE. Their attachments are served by this same server under
``/attachments/…``, outside the rate limits, as Discord's CDN is.
"""

from __future__ import annotations

import bisect
import json
import mimetypes
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

# Permission bits, from https://discord.com/developers/docs/topics/permissions
ADD_REACTIONS, VIEW_CHANNEL, SEND_MESSAGES = 1 << 6, 1 << 10, 1 << 11
EMBED_LINKS, ATTACH_FILES, READ_MESSAGE_HISTORY = 1 << 14, 1 << 15, 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
MEMBER = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS | USE_APPLICATION_COMMANDS
BOT_ROLE = MEMBER | EMBED_LINKS | ATTACH_FILES
MAX_PAGE = 100

Files = Callable[[int], Sequence[tuple[str, bytes]]]
Hosted = Callable[[int], Sequence[dict[str, Any]]]  # attachment payloads whose files another server hosts


class HistoryRoutes:
    """Channels, history and attachments as the fake serves them; mixed into LoopbackDiscord."""

    def _init_guild(self) -> None:
        self.bot_role_id = self._snowflake()
        self._channels: dict[str, dict[str, Any]] = {}
        self._order: dict[str, list[int]] = {}  # channel id -> its message ids, oldest first
        self._wire: dict[str, dict[int, bytes]] = {}  # channel id -> message id -> the message as JSON
        self._files: dict[str, bytes] = {}  # CDN path -> bytes
        self._channels[self.channel_id] = self._channel_payload(self.channel_id, "general", private=False)
        self._order[self.channel_id] = []

    # ----- what tests do -----

    async def add_channel(self, name: str, *, private: bool = False) -> str:
        """A new text channel; ``private``: hidden from @everyone, readable by the bot's role. Returns its id."""
        return await self._on_server(self._add_channel(name, private))

    async def add_messages(self, channel_id: str, count: int, *, author: dict[str, Any] | None = None,
                           content: str = "message {i}", files: Files | None = None,
                           hosted: Hosted | None = None) -> list[str]:
        """``count`` messages already in ``channel_id``'s history (no event); ``files(i)``: (name, bytes)
        pairs served here; ``hosted(i)``: attachment payloads served elsewhere (a CDN process, for
        files too big to keep in memory)."""
        return await self._on_server(self._add_messages(channel_id, count, author or self.user, content, files,
                                                        hosted))

    def history_of(self, channel_id: str) -> list[str]:
        """The ids of a channel's messages, oldest first."""
        with self._lock:
            return [str(i) for i in self._order.get(channel_id, [])]

    # ----- server side -----

    async def _add_channel(self, name: str, private: bool) -> str:
        channel_id = self._snowflake()
        self._channels[channel_id] = payload = self._channel_payload(channel_id, name, private=private)
        self._order[channel_id] = []
        if self._session is not None:
            await self._dispatch("CHANNEL_CREATE", payload)
        return channel_id

    async def _add_messages(self, channel_id: str, count: int, author: dict[str, Any], content: str,
                            files: Files | None, hosted: Hosted | None) -> list[str]:
        ids = []
        for i in range(count):
            message = self._message_payload(self._snowflake(), channel_id, author, content.format(i=i),
                                            files=dict(files(i)) if files else None)
            if hosted is not None:
                message["attachments"] += list(hosted(i))
            self._store(message)
            ids.append(message["id"])
        return ids

    def _store(self, message: dict[str, Any]) -> None:
        """Keep a message as the bytes Discord would send: tens of thousands of them must not weigh on the
        bot's garbage collector (bytes are not tracked; the dicts they come from would be)."""
        channel_id, message_id = message["channel_id"], int(message["id"])
        with self._lock:  # history_of reads it from the test's thread
            wire = self._wire.setdefault(channel_id, {})
            if message_id not in wire:
                bisect.insort(self._order.setdefault(channel_id, []), message_id)
            wire[message_id] = json.dumps(message).encode()

    def _unknown_channel(self, request: web.Request) -> web.Response | None:
        if request.match_info["channel_id"] in self._channels:
            return None
        return self._json({"message": "Unknown Channel", "code": 10003}, status=404)

    async def _get_channel(self, request: web.Request) -> web.Response:
        return self._unknown_channel(request) or self._json(self._channels[request.match_info["channel_id"]])

    async def _guild_channels(self, request: web.Request) -> web.Response:
        return self._json(list(self._channels.values()))

    async def _history(self, request: web.Request) -> web.Response:
        unknown = self._unknown_channel(request)
        if unknown is not None:
            return unknown
        query = request.query
        try:
            limit = int(query.get("limit", 50))
            marks = {k: int(query[k]) for k in ("before", "after", "around") if k in query}
        except ValueError:
            return self._invalid_form("a snowflake or a number was expected")
        if not 1 <= limit <= MAX_PAGE:
            return self._invalid_form("limit must be between 1 and 100")
        with self._lock:
            body = self._page(request.match_info["channel_id"], limit, marks)
        return web.Response(body=body, headers={"Content-Type": "application/json"})

    def _page(self, channel_id: str, limit: int, marks: dict[str, int]) -> bytes:
        """The answer to one history request, newest first, as Discord's JSON."""
        ids = self._order.get(channel_id, [])
        if "around" in marks:
            at = bisect.bisect_left(ids, marks["around"])
            start = max(0, min(at - limit // 2, len(ids) - limit))
            page = ids[start:start + limit]
        elif "before" in marks:
            end = bisect.bisect_left(ids, marks["before"])
            page = ids[max(0, end - limit):end]
        elif "after" in marks:
            start = bisect.bisect_right(ids, marks["after"])
            page = ids[start:start + limit]
        else:
            page = ids[-limit:]
        wire = self._wire.get(channel_id, {})
        return b"[" + b",".join(wire[i] for i in reversed(page)) + b"]"

    async def _get_message(self, request: web.Request) -> web.Response:
        unknown = self._unknown_channel(request)
        if unknown is not None:
            return unknown
        message = self._wire.get(request.match_info["channel_id"], {}).get(int(request.match_info["message_id"]))
        if message is None:
            return self._json({"message": "Unknown Message", "code": 10008}, status=404)
        return web.Response(body=message, headers={"Content-Type": "application/json"})

    async def _no_threads(self, request: web.Request) -> web.Response:
        """Archived threads: none here (the listing discord.py's ``archived_threads()`` pages through)."""
        return self._json({"threads": [], "members": [], "has_more": False})

    async def _get_member(self, request: web.Request) -> web.Response:
        user = next((u for u in self._users() if u["id"] == request.match_info["user_id"]), None)
        if user is None:
            return self._json({"message": "Unknown Member", "code": 10007}, status=404)
        return self._json(self._member_payload(user))

    async def _cdn(self, request: web.Request) -> web.Response:
        data = self._files.get(request.path)
        if data is None:
            return web.Response(status=404)
        ctype = mimetypes.guess_type(request.path)[0] or "application/octet-stream"
        return web.Response(body=data, content_type=ctype)

    def _invalid_form(self, why: str) -> web.Response:
        return self._json({"message": f"Invalid Form Body ({why})", "code": 50035}, status=400)

    # ----- payloads -----

    def _channel_payload(self, channel_id: str, name: str, *, private: bool) -> dict[str, Any]:
        overwrites = []
        if private:
            overwrites = [
                {"id": self.guild_id, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
                {"id": self.bot_role_id, "type": 0, "allow": str(VIEW_CHANNEL | READ_MESSAGE_HISTORY), "deny": "0"},
            ]
        return {
            "id": channel_id, "type": 0, "guild_id": self.guild_id, "name": name, "position": len(self._channels),
            "permission_overwrites": overwrites, "nsfw": False, "topic": None, "parent_id": None,
            "last_message_id": None, "rate_limit_per_user": 0,
        }

    def _roles(self) -> list[dict[str, Any]]:
        role = {"color": 0, "hoist": False, "mentionable": False, "flags": 0}
        return [
            {**role, "id": self.guild_id, "name": "@everyone", "permissions": str(MEMBER), "position": 0,
             "managed": False},
            {**role, "id": self.bot_role_id, "name": "helix-loopback", "permissions": str(BOT_ROLE), "position": 1,
             "managed": True, "tags": {"bot_id": self.bot_user["id"]}},
        ]

    def _guild_payload(self) -> dict[str, Any]:
        members = [self._member_payload(self.bot_user, roles=[self.bot_role_id]), self._member_payload(self.user)]
        return {
            "id": self.guild_id, "name": "Loopback Guild", "owner_id": self.user["id"], "unavailable": False,
            "member_count": len(members), "large": False, "joined_at": self._iso(self.guild_id),
            "roles": self._roles(), "channels": list(self._channels.values()), "members": members,
            "emojis": [], "stickers": [], "features": [], "voice_states": [], "presences": [],
            "threads": [], "stage_instances": [], "guild_scheduled_events": [],
        }

    def _attachments(self, channel_id: str, files: dict[str, bytes]) -> list[dict[str, Any]]:
        found = []
        for name, data in files.items():
            attachment_id = self._snowflake()
            path = f"/attachments/{channel_id}/{attachment_id}/{name}"
            self._files[path] = data
            url = f"http://127.0.0.1:{self.port}{path}"
            found.append({"id": attachment_id, "filename": name, "size": len(data), "url": url, "proxy_url": url,
                          "content_type": mimetypes.guess_type(name)[0] or "application/octet-stream"})
        return found
