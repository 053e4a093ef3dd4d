"""The one way a test waits for something another task, thread or process will do.

A test never sleeps for a fixed time: it names the condition and how long it may take. The
deadline is on ``perf_counter``, because SimCord virtualises the loop's clock (``time.monotonic``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(predicate: Callable[[], Any], within: float = 30.0, what: str | Callable[[], str] = "condition",
                     *, wake: Callable[[], Awaitable[Any]] | None = None, every: float = 0.02) -> Any:
    """Return ``predicate()``'s first true value (it may be a coroutine); fail after ``within`` seconds.

    ``wake``: an awaitable that finishes when the condition may have changed (an event), so the
    check runs at once instead of at the next poll. ``what`` (or a function that describes the
    state seen) names the condition in the failure.
    """
    deadline = time.perf_counter() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            described = what() if callable(what) else what
            raise AssertionError(f"{described}: not true within {within} s")
        if wake is None:
            await asyncio.sleep(min(every, remaining))
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 1.0)):
                    await wake()
