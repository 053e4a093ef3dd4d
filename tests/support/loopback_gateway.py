"""The gateway half of the loopback Discord: HELLO, IDENTIFY, heartbeats, RESUME and dispatch.

``LoopbackDiscord`` (``tests/support/loopback.py``) inherits these handlers; they run on the fake's
own event loop. A session outlives its connections, which is what RESUME relies on: events
dispatched while no connection is attached are kept and replayed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_OP_DISPATCH, _OP_HEARTBEAT, _OP_IDENTIFY, _OP_RESUME, _OP_REQUEST_MEMBERS = 0, 1, 2, 6, 8
_OP_INVALID_SESSION, _OP_HELLO, _OP_HEARTBEAT_ACK = 9, 10, 11


@dataclass(eq=False)
class _Connection:
    """One gateway websocket; sends are serialised because the zlib stream is shared state."""

    id: int
    ws: web.WebSocketResponse
    request: web.Request
    compress: Callable[[bytes], bytes] | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        async with self.lock:
            if self.compress is None:
                await self.ws.send_str(text)
            else:
                await self.ws.send_bytes(self.compress(text.encode()))


def _stream_compressor(kind: str) -> Callable[[bytes], bytes]:
    """Transport compression as discord.py asks for it: one stream per connection, each frame flushed.

    discord.py asks for ``zstd-stream`` when it can import ``zstandard`` (the ``discord.py[speed]``
    extra), else ``zlib-stream``, whose frames must end with the Z_SYNC_FLUSH marker 00 00 ff ff.
    """
    if kind == "zlib-stream":
        zlib_stream = zlib.compressobj()
        return lambda data: zlib_stream.compress(data) + zlib_stream.flush(zlib.Z_SYNC_FLUSH)
    if kind == "zstd-stream":
        import zstandard  # only present, and only asked for, with discord.py[speed]

        zstd_stream = zstandard.ZstdCompressor().compressobj()
        return lambda data: zstd_stream.compress(data) + zstd_stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    raise ValueError(f"unsupported gateway compression {kind!r}")


@dataclass(eq=False)
class _Session:
    """A gateway session outlives its connections: that is what RESUME relies on."""

    id: str
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    conn: _Connection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class GatewayRoutes:
    """The websocket side, mixed into LoopbackDiscord."""

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        assert self._accepting is not None
        await self._accepting.wait()
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        query = dict(request.query)
        try:
            if query.get("encoding", "json") != "json":
                raise ValueError(f"unsupported gateway encoding {query['encoding']!r}")
            compress = _stream_compressor(query["compress"]) if "compress" in query else None
        except (ValueError, ImportError) as exc:
            # 4012 (invalid API version) is one of the codes discord.py gives up on instead of
            # reconnecting in a tight loop, so the test fails at once with this error recorded.
            self._record(self._errors, f"gateway {query}: {exc}")
            await ws.close(code=4012, message=str(exc).encode()[:120])
            return ws
        conn = _Connection(next(self._conn_ids), ws, request, compress)
        self._conns.add(conn)
        self._record(self._connections, {"conn_id": conn.id, **query})
        try:
            await conn.send({"op": _OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is web.WSMsgType.TEXT:
                    await self._on_op(conn, json.loads(msg.data))
        except ConnectionResetError:
            pass  # the client went away mid-send; the session keeps the events for RESUME
        finally:
            self._conns.discard(conn)
            session = self._session
            if session is not None and session.conn is conn:
                session.conn = None
        return ws

    async def _on_op(self, conn: _Connection, message: dict[str, Any]) -> None:
        op, data = message.get("op"), message.get("d")
        if op == _OP_HEARTBEAT:
            self._record(self._heartbeats, (conn.id, time.monotonic()))
            await conn.send({"op": _OP_HEARTBEAT_ACK})
        elif op == _OP_IDENTIFY:
            await self._identify(conn, data)
        elif op == _OP_RESUME:
            await self._resume(conn, data)
        elif op == _OP_REQUEST_MEMBERS:
            chunk = {"guild_id": self.guild_id, "members": [self._member_payload(u) for u in self._users()]}
            chunk.update(chunk_index=0, chunk_count=1, not_found=[], nonce=data.get("nonce"))
            await self._dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        old = self._session
        if old is not None and old.conn is not None and old.conn is not conn:
            await old.conn.ws.close(code=4005, message=b"a new session was identified")
        session = self._session = _Session(uuid.uuid4().hex)
        async with session.lock:
            session.conn = conn
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": self.guild_id, "unavailable": True}],
            "session_id": session.id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": self.bot_user["id"], "flags": 0},
            "private_channels": [],
            "relationships": [],
            "session_type": "normal",
        }
        if "shard" in data:
            ready["shard"] = data["shard"]  # AutoShardedClient reads it back
        await self._dispatch("READY", ready)
        await self._dispatch("GUILD_CREATE", self._guild_payload())
        self._record(self._identifies, {**data, "conn_id": conn.id})

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        session, seq = self._session, data.get("seq") or 0
        record = {**data, "conn_id": conn.id, "accepted": False, "replayed": 0}
        if session is None or data.get("session_id") != session.id or seq > session.seq:
            await conn.send({"op": _OP_INVALID_SESSION, "d": False})
            self._record(self._resumes, record)
            return
        async with session.lock:
            missed = [event for event in session.events if event["s"] > seq]
            for event in missed:
                await conn.send(event)
            session.seq += 1
            resumed = {"op": _OP_DISPATCH, "t": "RESUMED", "s": session.seq, "d": {}}
            session.events.append(resumed)
            await conn.send(resumed)
            session.conn = conn
        self._record(self._resumes, {**record, "accepted": True, "replayed": len(missed)})

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Number and log an event, and send it if a connection is attached (else RESUME replays it)."""
        session = self._session
        if session is None:
            raise RuntimeError("no client has identified with LoopbackDiscord yet")
        async with session.lock:
            session.seq += 1
            frame = {"op": _OP_DISPATCH, "t": event, "s": session.seq, "d": data}
            session.events.append(frame)
            if session.conn is not None:
                try:
                    await session.conn.send(frame)
                except ConnectionResetError:
                    session.conn = None

    async def _drop(self, code: int | None, hold: bool) -> int:
        session = self._session
        conn = session.conn if session else None
        if session is None or conn is None:
            raise RuntimeError("no client connection to drop")
        assert self._accepting is not None
        if hold:
            self._accepting.clear()
        async with session.lock:
            session.conn = None
        if code is None:
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
        else:
            await conn.ws.close(code=code, message=b"dropped by LoopbackDiscord")
        return conn.id

    async def _reopen(self) -> None:
        assert self._accepting is not None
        self._accepting.set()
