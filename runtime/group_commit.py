"""Group commit: requests that arrive while one write is on its way to the disk share the next one.

A database commit costs a disk sync whatever it holds. Many small writes at once (a backup's
files, each queued and recorded as it finishes downloading) would each wait for their own
sync, one after another in the database's one thread. Here the first request is written at
once, and those that come in meanwhile are written together as soon as it is done: one
transaction, one sync. Nobody waits longer than one sync for company, and nobody is told
"done" before the write that holds their request is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """``await submit(x)`` returns ``write([..., x, ...])``'s answer for ``x``.

    ``write`` takes the requests of one group, in arrival order, and returns one answer per
    request in the same order, all in one transaction: if it raises, every request of the group
    gets that exception (none of them was written).
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]], *, most: int = 256) -> None:
        self._write = write
        self._most = most
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, request: T) -> R:
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, answer))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:self._most], self._waiting[self._most:]
            live = [(req, fut) for req, fut in group if not fut.cancelled()]
            if not live:
                continue
            try:
                answers = await self._write([req for req, _ in live])
            except BaseException as exc:
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    for _, fut in self._waiting:
                        fut.cancel()
                    self._waiting = []
                    raise
                continue
            for (_, fut), ans in zip(live, answers, strict=True):
                if not fut.done():
                    fut.set_result(ans)
