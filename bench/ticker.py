"""A 5 ms ticker on the event loop: how late each tick wakes is how long the loop was blocked.

It also samples this process's resident memory on every tick (``/proc/self/statm``), so a peak
during an archive is caught without a second thread that would itself disturb the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from bench.stats import percentile

PERIOD_S = 0.005
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of one process (not its children), from /proc."""
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


class Ticker:
    """``async with Ticker() as t: ...`` then ``t.lags_ms`` (each tick's delay beyond 5 ms) and ``t.peak_rss``."""

    def __init__(self, period_s: float = PERIOD_S) -> None:
        self.period_s = period_s
        self.lags_ms: list[float] = []
        self.peak_rss = self.start_rss = 0
        self._task: asyncio.Task[None] | None = None
        self._last = 0.0

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            now = time.perf_counter()
            self.lags_ms.append(max(0.0, (now - self._last - self.period_s) * 1000))
            self.peak_rss = max(self.peak_rss, rss_bytes())
            self._last = now

    async def __aenter__(self) -> Ticker:
        self.peak_rss = self.start_rss = rss_bytes()
        self._last = time.perf_counter()
        self._task = asyncio.create_task(self._run(), name="bench-ticker")
        await asyncio.sleep(0)  # let the first tick's clock start before the measured work does
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        # A loop blocked until now never let the last tick run: count the wait it is already owed.
        overdue = (time.perf_counter() - self._last - self.period_s) * 1000
        if overdue > 0:
            self.lags_ms.append(overdue)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak_rss = max(self.peak_rss, rss_bytes())

    @property
    def max_ms(self) -> float:
        return max(self.lags_ms, default=0.0)

    @property
    def p99_ms(self) -> float:
        return percentile(self.lags_ms, 99) if self.lags_ms else 0.0
