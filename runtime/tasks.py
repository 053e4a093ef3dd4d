"""Whether a CancelledError is a stop: only the running task's own cancellation is.

A loop that is the only one doing its job (draining the outbox, scheduling backups, following the
watch) stops when its owner cancels it. A CancelledError raised by a future cancelled beneath it
(a thread's call cut short) is not that, and must not end the loop without a word.
"""

from __future__ import annotations

import asyncio


def cancelled_by_stop() -> bool:
    """True when the running task was asked to stop (``Task.cancel``), or no task runs."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0
