"""Whether a CancelledError is a stop: only the running task's own cancellation is.

A loop that is the only one doing its job (draining the outbox, scheduling backups, following the
watch) stops when its owner cancels it. A CancelledError raised by a future cancelled beneath it
(a thread's call cut short) is not that, and must not end the loop without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any


def cancelled_by_stop() -> bool:
    """True when the running task was asked to stop (``Task.cancel``), or no task runs."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


@contextlib.contextmanager
def one_turn(log: Any, name: str, **fields: Any) -> Iterator[None]:
    """One turn of a loop only its owner may end: a bug (``<name>_crashed``) or a call cancelled
    beneath it (``<name>_interrupted``) is logged and the next turn comes; a stop goes through."""
    try:
        yield
    except Exception:
        log.exception(f"{name}_crashed", **fields)
    except asyncio.CancelledError:
        if cancelled_by_stop():
            raise
        log.error(f"{name}_interrupted", **fields)
