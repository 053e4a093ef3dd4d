"""A loopback Discord: just enough REST v10 and gateway v10 on 127.0.0.1 for a real discord.py client.

Why it exists: an in-process simulation hands events to the bot without a socket, so it cannot show
the two failures that take a bot down in production: heartbeats that stop while the event loop is
busy (Discord then drops the bot), and a dropped connection that is not RESUMED. Here the real
``discord.Client`` / ``commands.Bot`` logs in over HTTP and keeps a real websocket open to a fake
Discord that records what a server sees.

The fake runs in its own thread with its own event loop, like a remote server: a bot that blocks
its loop cannot also freeze the fake, so the heartbeat arrival times it records are the server's.

Usage::

    async with LoopbackDiscord(heartbeat_interval_ms=500) as fake:
        async with fake.client(bot):                  # any discord.Client, not started yet
            reply = await fake.ask("!ping")           # MESSAGE_CREATE from a user, wait for the answer
            assert reply["content"] == "pong"
            await fake.drop()                         # close code 4000: the client must RESUME
            await fake.wait_until(lambda: fake.resumes)

API (every wait gives up after ``within`` seconds with a ``TimeoutError`` saying what was seen):

- ``fake.client(client, token="fake-token")``: async context manager. Points discord.py at the fake,
  enters ``async with client``, runs ``client.start(token)`` in a task, returns once the client is
  ready (``wait_until_ready``); on exit lets running event handlers finish (a command mid-reply),
  closes the client, restores discord.py, and re-raises an error the client died of. discord.py
  waits ``guild_ready_timeout`` (2 s by default) after the last GUILD_CREATE before it is ready:
  pass ``guild_ready_timeout=0.1`` to the client in tests to save that time.
- ``await fake.dispatch_message(content, author=None)``: MESSAGE_CREATE from ``author`` (a user
  payload; default ``fake.user``, who is also the application owner) in ``fake.channel_id``; returns
  the message payload. While no connection is attached the event is kept and replayed on RESUME.
- ``await fake.ask(content)``: dispatch, then wait for the bot's next message; returns its record.
- ``await fake.wait_for_message(predicate=None, within=10, since=0)``: first record in
  ``sent_messages[since:]`` matching ``predicate``.
- ``await fake.wait_until(predicate, within=10)``: wait until ``predicate()`` is true; it is
  checked again whenever the fake records anything.
- ``await fake.drop(code=4000)``: close the client's websocket with ``code``; ``code=None`` aborts
  the TCP connection without a close frame. Returns the dropped connection's id.
- ``async with fake.outage():`` drop, and hold every new gateway connection until the block ends,
  so events dispatched inside the block are missed and must come back through RESUME.
- ``await fake.add_channel(name, private=False)``: a new text channel (CHANNEL_CREATE if a client
  is connected); ``await fake.add_messages(channel_id, n, content="message {i}", files=None)``:
  ``n`` messages already in its history, ``files(i)`` giving (filename, bytes) attachments served
  by this server; ``fake.history_of(channel_id)``: its message ids, oldest first. History pages
  as Discord's does (``tests/support/loopback_history.py``).
- Rate limits (``tests/support/loopback_limits.py``): ``LoopbackDiscord(rate_limits={HISTORY:
  Limit(10, 1.0)}, default_limit=Limit(50, 1.0), global_limit=Limit(50, 1.0))``; every API
  answer carries Discord's ``X-RateLimit-*`` headers, a request past a bucket or the global
  limit is answered 429. ``rate_limited`` lists the 429s served, ``requests`` counts per route.
- Records (copies, safe to read from the test's loop): ``heartbeats`` [(conn_id, monotonic time)],
  ``identifies`` and ``resumes`` (the op's ``d`` plus ``conn_id``; resumes also carry ``accepted``
  and ``replayed``), ``sent_messages`` (dicts with ``action`` "create"/"edit", ``id``,
  ``channel_id``, ``content``, ``embeds``, ``attachments`` [filenames], ``files`` {filename: bytes},
  ``payload``, ``at`` monotonic time; an edit lists only the files it uploaded),
  ``unknown_routes`` [(method, path)] (answered 404), ``connections`` (conn_id and the gateway
  query), ``errors`` (why the fake refused something).
- Ids and URLs: ``guild_id``, ``channel_id``, ``bot_user``, ``user``, ``session_id``, ``api_base``,
  ``gateway_url``.

How discord.py is pointed here: REST URLs are built from the class attribute
``discord.http.Route.BASE``, and a plain ``Client`` opens its first gateway connection at the class
attribute ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (it never asks ``/gateway/bot``;
only ``AutoShardedClient`` does, which is also served). ``fake.client()`` sets both for its
duration and restores them, so only one fake client may run per process at a time. Resumes go to
READY's ``resume_gateway_url``, which is this server too. Frames are compressed the way the
client asks: ``zlib-stream`` by default, ``zstd-stream`` when ``zstandard`` is installed.

The guild (``fake.guild_id``) has a text channel ``general`` (``fake.channel_id``) and those added;
its members are ``fake.user`` (the guild's and the application's owner) and the bot, whose managed
role (``fake.bot_role_id``) may read, write, embed and attach; @everyone may read and write. A
``private`` channel denies View Channel to @everyone and allows it, with Read Message History, to
the bot's role, so Helix's own permission checks run on Discord's real rules.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import discord
from aiohttp import web

from tests.support.loopback_gateway import GatewayRoutes, _Connection, _Session
from tests.support.loopback_history import HistoryRoutes
from tests.support.loopback_limits import Limit, RateLimits, limits_middleware
from tests.support.loopback_rest import RestRoutes
from tests.support.waiting import wait_until

ClientT = TypeVar("ClientT", bound=discord.Client)
T = TypeVar("T")

_client_running = threading.Lock()


def _snapshot(attr: str) -> property:
    """A read-only property returning a copy of one of the fake's records, taken under its lock."""

    def read(self: LoopbackDiscord) -> list[Any]:
        with self._lock:
            return list(getattr(self, attr))

    return property(read)


class LoopbackDiscord(GatewayRoutes, HistoryRoutes, RestRoutes):
    """A fake Discord on 127.0.0.1 for one discord.py client at a time; see the module docstring."""

    def __init__(self, *, heartbeat_interval_ms: int = 41250, valid_token: str | None = None,
                 port: int = 0, rate_limits: Mapping[str, Limit | tuple[int, float]] | None = None,
                 default_limit: Limit | tuple[int, float] = Limit(50, 1.0),
                 global_limit: Limit | tuple[int, float] | None = Limit(50, 1.0)) -> None:
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.valid_token = valid_token  # None: any token logs in; else others get 401, as Discord answers
        self.limits = RateLimits(rate_limits, default=default_limit, global_limit=global_limit)
        self._id_lock = threading.Lock()
        self._last_id = 0
        self.guild_id = self._snowflake()
        self.channel_id = self._snowflake()
        self.bot_user = self._user_payload(self._snowflake(), "helix-loopback", bot=True)
        self.user = self._user_payload(self._snowflake(), "tester")
        self.port = port  # 0: a free one; a fixed one lets a bot be told the address before the fake starts
        self._lock = threading.Lock()
        self._messages: dict[str, dict[str, Any]] = {}
        self._init_guild()
        self._rate_limited: list[dict[str, Any]] = []
        self._heartbeats: list[tuple[int, float]] = []
        self._identifies: list[dict[str, Any]] = []
        self._resumes: list[dict[str, Any]] = []
        self._sent: list[dict[str, Any]] = []
        self._unknown: list[tuple[str, str]] = []
        self._connections: list[dict[str, Any]] = []
        self._errors: list[str] = []
        # Owned by the server thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: _Session | None = None
        self._conns: set[_Connection] = set()
        self._conn_ids = itertools.count(1)
        self._accepting: asyncio.Event | None = None
        # Owned by the caller's loop.
        self._caller_loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----

    async def __aenter__(self) -> LoopbackDiscord:
        self._caller_loop = asyncio.get_running_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(started,), name="loopback-discord")
        self._thread.start()
        await asyncio.wrap_future(started)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._thread is not None
        await self._on_server(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)

    def _serve(self, started: concurrent.futures.Future[None]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            runner = loop.run_until_complete(self._start_site())
        except BaseException as exc:
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _start_site(self) -> web.AppRunner:
        self._accepting = asyncio.Event()
        self._accepting.set()
        app = web.Application(middlewares=[limits_middleware(self.limits, self._on_rate_limited)])
        self._add_routes(app)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    async def _close_all(self) -> None:
        for conn in list(self._conns):
            await conn.ws.close(code=1001, message=b"LoopbackDiscord shutting down")

    async def _on_server(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop and await its result from the caller's loop."""
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # ----- what tests read -----

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def session_id(self) -> str | None:
        session = self._session
        return session.id if session else None

    # Records: copies taken under the lock, safe to read from the test's loop.
    heartbeats = _snapshot("_heartbeats")  # [(conn_id, monotonic time)]
    identifies = _snapshot("_identifies")
    resumes = _snapshot("_resumes")
    sent_messages = _snapshot("_sent")
    unknown_routes = _snapshot("_unknown")
    connections = _snapshot("_connections")
    rate_limited = _snapshot("_rate_limited")  # the 429s served
    errors = _snapshot("_errors")

    @property
    def requests(self) -> dict[str, int]:
        """Requests seen per route key (``"GET /channels/{channel_id}/messages"``), 429s included."""
        return self.limits.counts()

    def _on_rate_limited(self, refusal: dict[str, Any]) -> None:
        self._record(self._rate_limited, refusal)

    def _describe(self) -> str:
        """What the fake has seen, for failure messages."""
        return (
            f"connections={self.connections} identifies={len(self.identifies)} resumes={self.resumes} "
            f"sent={[m['content'] for m in self.sent_messages]} unknown_routes={self.unknown_routes} "
            f"errors={self.errors}"
        )

    def _record(self, records: list[Any], item: Any) -> None:
        """Append from the server thread and wake whoever waits on the caller's loop."""
        with self._lock:
            records.append(item)
        assert self._caller_loop is not None
        self._caller_loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], Any], within: float = 10.0) -> None:
        """Wait for a condition on the records without polling: each new record re-checks it."""
        await wait_until(predicate, within, lambda: f"condition on the loopback Discord; {self._describe()}",
                         wake=lambda: self._changed.wait())

    async def wait_for_message(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        within: float = 10.0,
        since: int = 0,
    ) -> dict[str, Any]:
        """First message the bot sent or edited, from index ``since`` on, that matches ``predicate``."""
        found: list[dict[str, Any]] = []

        def match() -> bool:
            found[:] = [m for m in self.sent_messages[since:] if predicate is None or predicate(m)][:1]
            return bool(found)

        await self.wait_until(match, within)
        return found[0]

    # ----- what tests do -----

    async def dispatch_message(self, content: str, author: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send MESSAGE_CREATE from a user, as Discord does when someone types in the channel."""
        author = author or self.user
        payload = self._message_payload(self._snowflake(), self.channel_id, author, content)
        payload["member"] = self._member_payload(None)
        await self._on_server(self._dispatch("MESSAGE_CREATE", payload))
        return payload

    async def ask(
        self, content: str, author: dict[str, Any] | None = None, within: float = 10.0
    ) -> dict[str, Any]:
        """Dispatch ``content`` and return the next message the bot sends."""
        since = len(self.sent_messages)
        await self.dispatch_message(content, author)
        return await self.wait_for_message(within=within, since=since)

    async def drop(self, code: int | None = 4000) -> int:
        """Cut the client's connection the way a network or Discord restart would."""
        return await self._on_server(self._drop(code, hold=False))

    @contextlib.asynccontextmanager
    async def outage(self, code: int | None = 4000) -> AsyncIterator[int]:
        """Drop the connection and keep the gateway unreachable until the block ends."""
        conn_id = await self._on_server(self._drop(code, hold=True))
        try:
            yield conn_id
        finally:
            await self._on_server(self._reopen())

    @contextlib.asynccontextmanager
    async def client(
        self, client: ClientT, token: str = "fake-token", within: float = 10.0
    ) -> AsyncIterator[ClientT]:
        """Run ``client`` against this fake until the block ends; see the module docstring."""
        if not _client_running.acquire(blocking=False):
            raise RuntimeError("another LoopbackDiscord client is running: discord.py's URLs are global")
        try:
            with self.pointed():
                async with client:
                    runner = asyncio.create_task(client.start(token), name="loopback-client")
                    try:
                        await self._until_ready(client, runner, within)
                        yield client
                    finally:
                        await self._drain_handlers(within)
                        await client.close()
                        await asyncio.wait({runner})
                    runner.result()  # a client that crashed during the block fails it
        finally:
            _client_running.release()

    async def _until_ready(self, client: discord.Client, runner: asyncio.Task[None], within: float) -> None:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({runner, ready}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if ready in done:
            return
        ready.cancel()
        if runner in done:
            cause = runner.exception()
            raise RuntimeError(f"the client stopped before it was ready; {self._describe()}") from cause
        raise TimeoutError(f"the client was not ready in {within}s; {self._describe()}")

    @staticmethod
    async def _drain_handlers(within: float) -> None:
        """Let event handlers already running finish, so closing never cuts a command off mid-reply.

        discord.py runs every event handler (a prefix command runs inside ``on_message``) as a task
        named ``discord.py: on_<event>``; a handler still running after ``within`` s is cut off.
        """
        me = asyncio.current_task()
        running = [t for t in asyncio.all_tasks() if t is not me and t.get_name().startswith("discord.py: ")]
        if running:
            await asyncio.wait(running, timeout=within)
