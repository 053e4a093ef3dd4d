"""Discord's rate limits for the loopback Discord: per-route buckets and a global limit, as real headers.

Why: a backfill is only as fast as Discord lets it be, and a bot that bursts into 429s gets its
token banned for a while. The loopback answers the way Discord documents
(https://discord.com/developers/docs/topics/rate-limits), so discord.py's own limiter
(``discord.http.Ratelimit``) reads real headers and a benchmark can compare a backfill with the
ceiling the limits allow.

- Every API response carries ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` (epoch seconds,
  float), ``-Reset-After`` (seconds, float) and ``-Bucket``: a hash of the route that leaves out
  its major parameter, as Discord's does; the bucket itself is counted per route *and* major
  parameter (channel, guild or webhook id), so two channels never share a history bucket.
- A bucket is a fixed window: the first request after a reset opens it for ``window_s``, and it
  admits ``limit`` requests until it resets. One more is answered 429 with
  ``{"message": "You are being rate limited.", "retry_after": s, "global": false}``,
  ``Retry-After`` and ``X-RateLimit-Scope: user``.
- The global limit counts every API request (default 50 a second, Discord's); past it the answer
  is 429 with ``X-RateLimit-Global: true`` and ``X-RateLimit-Scope: global``, no bucket headers.
- Every 429 also carries ``Via``: discord.py takes a 429 without it for a Cloudflare ban and
  raises instead of waiting, so Discord's real edge header is sent on every response.

``Reset-After`` is rounded *up* to the millisecond: a client that sleeps it from the moment it
read the answer wakes after the server's window has reset, never before it.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

API = "/api/v10"
HISTORY = "GET /channels/{channel_id}/messages"  # the route a backfill pages through
MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id")
_VIA = "1.1 google"  # what Discord's edge answers with; discord.py requires it on a 429


@dataclass(frozen=True)
class Limit:
    """``limit`` requests per ``window_s`` seconds."""

    limit: int
    window_s: float

    @property
    def per_second(self) -> float:
        return self.limit / self.window_s


@dataclass
class _Window:
    limit: Limit
    used: int = 0
    resets_at: float = 0.0  # monotonic; 0: not open

    def admit(self, now: float) -> bool:
        if now >= self.resets_at:
            self.used, self.resets_at = 0, now + self.limit.window_s
        if self.used >= self.limit.limit:
            return False
        self.used += 1
        return True

    def reset_after(self, now: float) -> float:
        return max(0.0, math.ceil((self.resets_at - now) * 1000) / 1000)


def bucket_hash(route: str) -> str:
    """A stable opaque id per route, like Discord's ``X-RateLimit-Bucket``."""
    return hashlib.sha1(route.encode()).hexdigest()[:16]


def route_key(request: web.Request) -> str:
    """``"GET /channels/{channel_id}/messages"``: the method and the route's template, as discord.py keys it."""
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    return f"{request.method} {template.removeprefix(API)}"


class RateLimits:
    """The server's side of Discord's limits: which request is admitted, and the headers it gets.

    ``routes`` maps a route key (``HISTORY``, ``"POST /channels/{channel_id}/messages"``, …) to its
    limit; every other route gets ``default``. ``global_limit=None`` turns the global limit off.
    The loopback counts on its server thread while a test reads ``counts()`` from its own.
    """

    def __init__(self, routes: Mapping[str, Limit | tuple[int, float]] | None = None, *,
                 default: Limit | tuple[int, float] = Limit(50, 1.0),
                 global_limit: Limit | tuple[int, float] | None = Limit(50, 1.0),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.routes = {k: _limit(v) for k, v in (routes or {}).items()}
        self.default = _limit(default)
        self.global_limit = _limit(global_limit) if global_limit is not None else None
        self.clock = clock
        self._global = _Window(self.global_limit) if self.global_limit else None
        self._buckets: dict[tuple[str, str], _Window] = {}
        self._requests: Counter[str] = Counter()  # route key -> requests seen (429s included)
        self._lock = threading.Lock()

    def counts(self) -> dict[str, int]:
        """Requests seen per route key, 429s included."""
        with self._lock:
            return dict(self._requests)

    def limit_for(self, route: str) -> Limit:
        return self.routes.get(route, self.default)

    def check(self, route: str, major: str) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Count one request: its rate-limit headers, and the 429 body if it is refused."""
        with self._lock:
            return self._check(route, major, self.clock())

    def _check(self, route: str, major: str, now: float) -> tuple[dict[str, str], dict[str, Any] | None]:
        self._requests[route] += 1
        if self._global is not None and not self._global.admit(now):
            retry = self._global.reset_after(now)
            headers = {"Via": _VIA, "Retry-After": str(math.ceil(retry)), "X-RateLimit-Global": "true",
                       "X-RateLimit-Scope": "global"}
            return headers, {"message": "You are being rate limited.", "retry_after": retry, "global": True}
        window = self._buckets.get((route, major))
        if window is None:
            window = self._buckets[(route, major)] = _Window(self.limit_for(route))
        admitted = window.admit(now)
        reset_after = window.reset_after(now)
        headers = {
            "Via": _VIA,
            "X-RateLimit-Limit": str(window.limit.limit),
            "X-RateLimit-Remaining": str(window.limit.limit - window.used),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash(route),
        }
        if admitted:
            return headers, None
        headers.update({"Retry-After": str(math.ceil(reset_after)), "X-RateLimit-Scope": "user"})
        return headers, {"message": "You are being rate limited.", "retry_after": reset_after, "global": False}


def _limit(value: Limit | tuple[int, float]) -> Limit:
    return value if isinstance(value, Limit) else Limit(int(value[0]), float(value[1]))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def limits_middleware(limits: RateLimits, on_refused: Callable[[dict[str, Any]], None]) -> Any:
    """An aiohttp middleware applying ``limits`` to every ``/api/`` request; ``on_refused`` hears each 429."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API + "/"):
            return await handler(request)  # the gateway and the CDN are not rate-limited
        route = route_key(request)
        major = next((request.match_info[p] for p in MAJOR_PARAMETERS if p in request.match_info), "")
        headers, refused = limits.check(route, major)
        if refused is not None:
            on_refused({"method": request.method, "path": request.path, "route": route,
                        "scope": headers["X-RateLimit-Scope"], "retry_after": refused["retry_after"],
                        "bucket": headers.get("X-RateLimit-Bucket"), "at": time.monotonic()})
            return web.Response(status=429, body=json.dumps(refused).encode(),
                                headers={**headers, "Content-Type": "application/json"})
        response = await handler(request)
        response.headers.update(headers)
        return response

    return middleware
