"""Who hears what became of an outbox item, and how: the worker's subscribers, told in turn.

A report runs in the task that has the news (the worker's, or the one that dropped an item): a
subscriber keeps it quick, each is cut off after ``REPORT_TIMEOUT_S``, and its exceptions are
logged, never fatal to whoever reports.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import structlog

from sync._outbox.store import OutboxItem
from sync._rclone.client import Progress
from sync._results import ArchiveResult
from sync.errors import SyncError

log = structlog.get_logger("helix.sync.outbox")

REPORT_TIMEOUT_S = 15.0


class OutboxListener(Protocol):
    """What a subscriber of the worker's reports implements; any method may be left out."""

    async def archive_done(self, item: OutboxItem, result: ArchiveResult) -> None: ...
    async def archive_failed(self, item: OutboxItem, error: SyncError) -> None: ...
    async def archive_retry(self, item: OutboxItem, error: SyncError, delay_s: float) -> None: ...
    async def archive_progress(self, item: OutboxItem, progress: Progress) -> None: ...
    async def archive_dropped(self, item: OutboxItem) -> None: ...


class Reporting:
    """The subscribers of an outbox worker, and each report delivered to those that take it."""

    def __init__(self) -> None:
        self._listeners: list[Any] = []

    def subscribe(self, listener: Any) -> None:
        """Report outcomes to ``listener`` from now on (see OutboxListener for the methods)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Any) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _wants(self, report: str) -> bool:
        return any(callable(getattr(listener, report, None)) for listener in self._listeners)

    async def _report(self, report: str, *args: Any, limit_s: float = REPORT_TIMEOUT_S) -> None:
        for listener in list(self._listeners):
            method = getattr(listener, report, None)
            if not callable(method):
                continue
            try:
                async with asyncio.timeout(limit_s):
                    await method(*args)
            except TimeoutError:
                log.warning("outbox_report_timeout", report=report, limit_s=limit_s)
            except Exception:
                log.exception("outbox_report_failed", report=report)


__all__ = ["REPORT_TIMEOUT_S", "OutboxListener", "Reporting"]
