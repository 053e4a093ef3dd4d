"""The HTTP health endpoints Railway (and Docker's HEALTHCHECK) poll.

``/health`` answers 200 as long as the event loop runs its handlers: it is the liveness signal
Railway waits for before it calls a deployment Active, so it must come up before the Discord login
finishes (a slow login must not fail the deploy). ``/ready`` asks the bot whether it can do its job
(gateway connected, archive remote answered recently) and answers 200 or 503 with the details as
JSON, so an operator can see *why* from a browser or ``railway logs``.

Both run on the bot's own loop with aiohttp, so nothing here blocks; the readiness callable gets a
time limit, so a hung check answers 503 instead of hanging the poller.
"""

from __future__ import annotations

import asyncio
import errno
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from runtime.logs import redact

log = structlog.get_logger("helix.health")

ReadyCheck = Callable[[], Awaitable[tuple[bool, dict]]]


class HealthServerError(RuntimeError):
    """The health server could not start; the message names the port and the fix."""


class HealthServer:
    """``/health`` and ``/ready`` on ``host:port`` (port 0 picks a free port; read ``.port`` after start)."""

    def __init__(self, port: int, ready: ReadyCheck, host: str = "0.0.0.0", *, ready_timeout: float = 5.0) -> None:
        self._requested_port = port
        self._ready = ready
        self._host = host
        self._ready_timeout = ready_timeout
        self._runner: web.AppRunner | None = None
        self._started_at = time.monotonic()
        self.port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready_handler)
        return app

    async def start(self) -> None:
        """Bind and serve; raises HealthServerError with one sentence if the port cannot be used."""
        # access_log=None: Railway and Docker poll every few seconds; those lines would drown the log.
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise HealthServerError(
                    f"Port {self._requested_port} is already in use, so the health server cannot start: "
                    "stop the other process or set PORT to a free port."
                ) from None
            raise HealthServerError(
                f"The health server cannot listen on {self._host}:{self._requested_port} ({exc.strerror}): "
                "set PORT to a port this user may bind (1024 or above)."
            ) from None
        self._runner = runner
        self._started_at = time.monotonic()
        addresses = runner.addresses  # the bound socket names: the real port when 0 was asked for
        self.port = addresses[0][1] if addresses else self._requested_port
        log.info("health_server_started", host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            log.info("health_server_stopped")

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _health(self, _request: web.Request) -> web.Response:
        # Being here proves the loop is running handlers; that is the whole liveness question.
        return _json(200, {"status": "ok", "uptime_s": round(time.monotonic() - self._started_at, 1)})

    async def _ready_handler(self, _request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(self._ready_timeout):  # not wait_for: it can swallow a cancel on 3.11
                ok, details = await self._ready()
        except TimeoutError:
            return _json(503, {"ready": False, "error": f"the readiness check took over {self._ready_timeout:g} s"})
        except Exception as exc:  # an answer is still owed to the poller; the reason goes to it and the log
            log.warning("readiness_check_failed", error=f"{type(exc).__name__}: {exc}")
            return _json(503, {"ready": False, "error": redact(f"{type(exc).__name__}: {exc}")})
        body = {"ready": bool(ok), **(details or {})}
        return _json(200 if ok else 503, body)


def _json(status: int, body: dict[str, Any]) -> web.Response:
    # default=str: details may hold datetimes or paths; redact: they must never carry a secret.
    return web.Response(status=status, text=redact(json.dumps(body, default=str)), content_type="application/json")
